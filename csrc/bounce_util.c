/* bounce_util.c -- small text helpers shared by the bounce core and the MTA modules. */
#include <string.h>

#include "bounce_internal.h"

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

const char *smtpc__bfind(const char *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  if (k == 0) return hay;
  if (k > n) return NULL;
  int first = lower((unsigned char)needle[0]);
  for (size_t i = 0; i + k <= n; i++) {
    if (lower((unsigned char)hay[i]) != first) continue;
    size_t j = 1;
    while (j < k && lower((unsigned char)hay[i + j]) == lower((unsigned char)needle[j])) j++;
    if (j == k) return hay + i;
  }
  return NULL;
}

int smtpc__bstarts(const char *s, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  if (k > n) return 0;
  for (size_t i = 0; i < k; i++)
    if (lower((unsigned char)s[i]) != lower((unsigned char)prefix[i])) return 0;
  return 1;
}

int smtpc__bline(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len) {
  if (*pos >= len) return 0;
  const char *start = text + *pos;
  const char *nl = memchr(start, '\n', len - *pos);
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
