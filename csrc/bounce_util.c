/* bounce_util.c -- small text helpers shared by the bounce core and the MTA modules. */
#include <string.h>

#include "bounce_internal.h"

static const unsigned char lower_tab[256] = {
#define L4(i) L1(i), L1(i + 1), L1(i + 2), L1(i + 3)
#define L1(i) (unsigned char)((i) >= 'A' && (i) <= 'Z' ? (i) + 32 : (i))
#define L16(i) L4(i), L4(i + 4), L4(i + 8), L4(i + 12)
    L16(0),   L16(16),  L16(32),  L16(48),  L16(64),  L16(80),  L16(96),  L16(112),
    L16(128), L16(144), L16(160), L16(176), L16(192), L16(208), L16(224), L16(240),
#undef L16
#undef L1
#undef L4
};

/* How common an octet is in mail text (lower = rarer: letters by English frequency, space the
 * most common): the search anchors on the rarest octet of the needle, so memchr skips most of
 * the haystack. */
static const unsigned char commonness[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    40, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 2, 2, 2, 2, 2, 2,
    2, 28, 11, 19, 20, 30, 16, 14, 22, 26, 7, 9, 21, 17, 25, 27, 15, 6, 23, 24, 29, 18, 10, 13, 8, 12, 5, 2, 2, 2, 2, 2,
    2, 28, 11, 19, 20, 30, 16, 14, 22, 26, 7, 9, 21, 17, 25, 27, 15, 6, 23, 24, 29, 18, 10, 13, 8, 12, 5, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

int smtpc__bcode_in(const char *t, size_t n, const char *after) {
  for (size_t i = 0; i + 3 <= n; i++)
    if ((t[i] == '4' || t[i] == '5') && t[i + 1] >= '0' && t[i + 1] <= '9' && t[i + 2] >= '0' &&
        t[i + 2] <= '9' && (i == 0 || (t[i - 1] && strchr(after, t[i - 1]))) &&
        (i + 3 == n || t[i + 3] == ' ' || t[i + 3] == '-'))
      return 1;
  return 0;
}

const char *smtpc__bfind(const char *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  if (k == 0) return hay;
  if (k > n) return NULL;
  const unsigned char *h = (const unsigned char *)hay, *nd = (const unsigned char *)needle;
  if (n < 96) { /* a short line: a plain scan costs less than choosing an anchor */
    unsigned char f = lower_tab[nd[0]];
    for (size_t i = 0; i + k <= n; i++) {
      if (lower_tab[h[i]] != f) continue;
      size_t t = 1;
      while (t < k && lower_tab[h[i + t]] == lower_tab[nd[t]]) t++;
      if (t == k) return hay + i;
    }
    return NULL;
  }
  /* any anchor finds the same first match: the rarest among the first 8 octets is rare
   * enough, and choosing costs no more for a long needle (corpus, callgrind: 8 cost fewer
   * instructions than 4, 12 or 16) */
  size_t j = 0;
  for (size_t i = 1; i < k && i < 8; i++)
    if (commonness[nd[i]] < commonness[nd[j]]) j = i;
#if defined(__SSE2__)
  /* Sixteen starts a step, each kept only when the anchor and the needle's last octet (its
   * first when the anchor is the last) both match, case aside: a letter is compared with its
   * 0x20 bit set on both sides, any other octet as it is. Two octets far apart rarely both
   * match where the needle does not, so few starts are compared in full; two memchr passes
   * (either case of the anchor) stopped at every anchor octet and cost more than the scan. */
  {
    size_t j2 = j == k - 1 ? 0 : k - 1;
    unsigned char a1 = lower_tab[nd[j]], a2 = lower_tab[nd[j2]];
    const __m128i m1 = _mm_set1_epi8((char)(a1 >= 'a' && a1 <= 'z' ? 0x20 : 0));
    const __m128i m2 = _mm_set1_epi8((char)(a2 >= 'a' && a2 <= 'z' ? 0x20 : 0));
    const __m128i v1 = _mm_set1_epi8((char)a1), v2 = _mm_set1_epi8((char)a2);
    size_t i = 0, last = n - k; /* starts [0, last]; a load at i + j or i + j2 reads 16 octets
                                   from there: up to i + 15 + k - 1 <= n - 1 when i + 15 <= last */
    for (; i + 15 <= last; i += 16) {
      __m128i b1 = _mm_or_si128(_mm_loadu_si128((const __m128i *)(h + i + j)), m1);
      __m128i b2 = _mm_or_si128(_mm_loadu_si128((const __m128i *)(h + i + j2)), m2);
      unsigned mask = (unsigned)_mm_movemask_epi8(
          _mm_and_si128(_mm_cmpeq_epi8(b1, v1), _mm_cmpeq_epi8(b2, v2)));
      while (mask) {
        const unsigned char *s = h + i + (size_t)__builtin_ctz(mask);
        size_t t = 0;
        while (t < k && lower_tab[s[t]] == lower_tab[nd[t]]) t++;
        if (t == k) return (const char *)s;
        mask &= mask - 1;
      }
    }
    for (; i <= last; i++) {
      if (lower_tab[h[i + j]] != a1) continue;
      size_t t = 0;
      while (t < k && lower_tab[h[i + t]] == lower_tab[nd[t]]) t++;
      if (t == k) return hay + i;
    }
    return NULL;
  }
#else
  unsigned char lo = lower_tab[nd[j]], up = (lo >= 'a' && lo <= 'z') ? (unsigned char)(lo - 32) : lo;
  /* anchor positions: [j, n - k + j] */
  const unsigned char *start = h + j, *last = h + (n - k + j);
  size_t span = (size_t)(last - start) + 1;
  const unsigned char *pl = memchr(start, lo, span);
  const unsigned char *pu = up != lo ? memchr(start, up, span) : NULL;
  while (pl || pu) {
    const unsigned char *c = (!pu || (pl && pl < pu)) ? pl : pu;
    const unsigned char *s = c - j;
    size_t t = 0;
    while (t < k && lower_tab[s[t]] == lower_tab[nd[t]]) t++;
    if (t == k) return (const char *)s;
    if (c == pl) pl = c < last ? memchr(c + 1, lo, (size_t)(last - c)) : NULL;
    else pu = c < last ? memchr(c + 1, up, (size_t)(last - c)) : NULL;
  }
  return NULL;
#endif
}

int smtpc__bstarts(const char *s, size_t n, const char *prefix) {
  /* the prefix's end found on the way (no strlen first): most calls fail at the first octet */
  for (size_t i = 0; prefix[i]; i++)
    if (i >= n || lower_tab[(unsigned char)s[i]] != lower_tab[(unsigned char)prefix[i]]) return 0;
  return 1;
}

int smtpc__bline(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len) {
  if (*pos >= len) return 0;
  const char *start = text + *pos;
  const char *nl = smtpc__bchr(start, len - *pos, '\n');
  size_t n = nl ? (size_t)(nl - start) : len - *pos;
  *line = start;
  *line_len = n;
  *pos += n + (nl ? 1 : 0);
  return 1;
}

static int atom_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL) || c >= 0x80;
}

int smtpc__baddr(const char *s, size_t n, const char **addr, size_t *addr_len) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '@') continue;
    size_t a = i, b = i + 1;
    while (a > 0 && atom_char((unsigned char)s[a - 1])) a--;
    while (b < n && atom_char((unsigned char)s[b]) && s[b] != '/') b++;
    while (b > i + 1 && s[b - 1] == '.') b--;  /* a sentence's full stop */
    while (a < i && s[a] == '.') a++;
    if (a == i || b == i + 1) continue;
    if (!memchr(s + i + 1, '.', b - i - 1) && !(b - i - 1 >= 9 && smtpc__bstarts(s + i + 1, b - i - 1, "localhost"))) continue;
    *addr = s + a;
    *addr_len = b - a;
    return 1;
  }
  return 0;
}

const char *smtpc__bheader_get(const smtpc__bheader *h, size_t n, const char *name, size_t *len) {
  size_t k = strlen(name);
  for (size_t i = 0; i < n; i++) {
    if (h[i].name_len == k && smtpc__bstarts(h[i].name, k, name)) {
      if (len) *len = h[i].value_len;
      return h[i].value;
    }
  }
  return NULL;
}

/* The placeholder row of bounce_mta.def. */
int smtpc__bmta_none(smtpc__bmsg *m) {
  (void)m;
  return 0;
}

size_t smtpc__bpara_end(const char *t, size_t len, size_t from, size_t cap) {
  size_t lim = cap < len ? cap + 1 : len; /* an end found at cap is still cap */
  for (size_t e = from; e < lim;) {
    const char *nl = smtpc__bchr(t + e, lim - e, '\n');
    if (!nl) break;
    e = (size_t)(nl - t);
    if (e + 1 < len && t[e + 1] == '\n') return e;
    e++;
  }
  return cap < len ? cap : len;
}

const char *smtpc__bmemmem(const char *hay, size_t n, const char *needle, size_t k) {
  if (k == 0) return hay;
  while (n >= k) {
    const char *c = memchr(hay, needle[0], n - k + 1);
    if (!c) return NULL;
    if (!memcmp(c, needle, k)) return c;
    n -= (size_t)(c - hay) + 1;
    hay = c + 1;
  }
  return NULL;
}
