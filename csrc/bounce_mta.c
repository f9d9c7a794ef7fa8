/* bounce_mta.c -- the dispatcher over the non-RFC 3464 formats of bounce_mta_formats.def.
 *
 * Thirty-odd formats each looking through every message would read the text thirty times; a
 * bounce reader meets mostly messages that are none of them. So one scan of the bounce's text
 * and of the header fields the formats read finds which formats' gate markers occur, and
 * only those formats are tried, in the file's order.
 *
 * The scan skips (Wu-Manber): each marker has a key, six octets of it without white space,
 * and the scan looks at the last two octets of a six-octet window; a pair that ends no key
 * moves the window as far as no key can be missed (five octets for most pairs of text, a
 * quarter of the octets looked at). Where a key may end, the keys ending in that pair are
 * compared and a marker whose key is there is checked around it. The Aho-Corasick DFA of
 * ac.h, which loads a transition for every octet, cost half as much again on the corpus
 * (callgrind: the whole parse 57,000 -> 55,000 instructions a message). The tables are built
 * once and read-only after. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "bounce_mta.h"

static const struct format {
  const char *name;
  smtpc__bmta_fn fn;
  const char *const *gate;
} formats[] = {
#define SMTPC__FMT(id, name, fn, ...) {name, fn, (const char *const[]){__VA_ARGS__, NULL}},
#include "bounce_mta_formats.def"
#undef SMTPC__FMT
};

#define NFORMATS (sizeof formats / sizeof formats[0])

enum {
#define SMTPC__FMT(id, ...) FMT_##id,
#include "bounce_mta_formats.def"
#undef SMTPC__FMT
};

#define MAX_GATES 256
#define KEY 6          /* octets of a marker's key: every marker has a word this long */
#define NCHAINS 4096   /* hashes of a key's last octet pair: six bits an octet */

/* Which formats a scan found: one bit each. */
typedef uint64_t hits;
typedef char formats_fit_in_hits[NFORMATS <= 64 ? 1 : -1];

static struct {
  uint8_t shift[65536];       /* octet pair (as loaded: pair_at) -> octets the window may
                                 move; 0: a key may end here. 64 KiB, of which text touches
                                 the few lines of its common pairs                          */
  uint8_t fold[256];          /* octet -> as compared: lower case, white space ' '          */
  uint16_t chain[NCHAINS];    /* hash -> first marker + 1 whose key ends in it, 0: none     */
  struct gate {
    uint64_t key, fold;       /* the key's octets in lower case, and 0x20 where a letter is:
                                 six octets of text t match when (t | fold) == key           */
    hits formats;             /* the formats it lets in (Exim's markers are Mail.Ru's too)   */
    const char *mark;
    uint16_t next;            /* the next marker + 1 in the same chain                      */
    uint8_t key_at;           /* where its key starts in it                                  */
  } gate[MAX_GATES];
  size_t ngates;
  int ok;
} g;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static unsigned hash(unsigned char a, unsigned char b) { /* either case alike */
  return (unsigned)(g.fold[a] & 63) << 6 | (g.fold[b] & 63);
}
static unsigned pair_at(const char *s) { /* two octets as one index, in the order loaded */
  uint16_t v;
  memcpy(&v, s, 2);
  return v;
}
static uint64_t octets(const char *s) { /* KEY octets as one word (the same on any byte order) */
  uint64_t w = 0;
  memcpy(&w, s, KEY);
  return w;
}

/* How many gate markers contain w[0..KEY) (any case; duplicates counted). */
static int markers_with(const char *w) {
  char k[KEY + 1];
  int n = 0;
  memcpy(k, w, KEY);
  k[KEY] = '\0';
  for (size_t f = 0; f < NFORMATS; f++)
    for (const char *const *mk = formats[f].gate; *mk; mk++)
      n += smtpc__bfind(*mk, strlen(*mk), k) != NULL;
  return n;
}

/* The key of a marker: of its space-free runs of KEY octets, one of rare letters and in few
 * other markers, so that the text's words seldom end one: a word the markers share
 * ("following", "delivered", "-----") is one that bounces use all the time, and a key found
 * costs a check of every marker it stands in. -1 when it has none. */
static int choose_key(const char *mk) {
  static const char by_frequency[] = "etaoinshrdlcumwfgypbvkjxqz";
  int best = -1, best_score = 0;
  for (size_t i = 0; mk[i]; i++) {
    int score = 0;
    size_t k;
    for (k = 0; k < KEY && mk[i + k] && mk[i + k] != ' '; k++) {
      const char *f = strchr(by_frequency, lower((unsigned char)mk[i + k]));
      score += f && *f ? (int)(f - by_frequency) : mk[i + k] == '-' ? 0 : 20; /* "-----" rules */
    }
    if (k < KEY) continue;
    score -= 30 * markers_with(mk + i);
    if (best < 0 || score > best_score) best = (int)i, best_score = score;
  }
  return best;
}

static int same_mark(const char *a, const char *b) { /* ASCII case-insensitive */
  while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
  return lower((unsigned char)*a) == lower((unsigned char)*b);
}

static void build(void) {
  for (unsigned c = 0; c < 256; c++)
    g.fold[c] = is_ws((unsigned char)c) ? ' ' : lower((unsigned char)c);
  memset(g.shift, KEY - 1, sizeof g.shift); /* a pair in no key: the window moves past it */
  for (size_t f = 0; f < NFORMATS; f++)
    for (const char *const *mk = formats[f].gate; *mk; mk++) {
      size_t n = 0;
      while (n < g.ngates && !same_mark(g.gate[n].mark, *mk)) n++;
      if (n < g.ngates) { /* the same marker for another format */
        g.gate[n].formats |= (hits)1 << f;
        continue;
      }
      int at = choose_key(*mk);
      if (n == MAX_GATES || at < 0) return; /* g.ok stays 0: every format is tried */
      struct gate *gt = &g.gate[n];
      char key[KEY], fold[KEY];
      for (size_t j = 0; j < KEY; j++) {
        unsigned char c = lower((unsigned char)(*mk)[at + j]);
        key[j] = (char)c;
        fold[j] = c >= 'a' && c <= 'z' ? 0x20 : 0;
        for (unsigned v = 0; j && v < 4; v++) { /* the pair ending at j, in either case */
          char two[2] = {(char)(key[j - 1] ^ (v & 1 ? fold[j - 1] : 0)),
                         (char)(c ^ (v & 2 ? fold[j] : 0))};
          uint8_t *sh = &g.shift[pair_at(two)];
          if (*sh > KEY - 1 - j) *sh = (uint8_t)(KEY - 1 - j);
        }
      }
      gt->key = octets(key);
      gt->fold = octets(fold);
      gt->formats = (hits)1 << f;
      gt->mark = *mk;
      gt->key_at = (uint8_t)at;
      unsigned h = hash((unsigned char)key[KEY - 2], (unsigned char)key[KEY - 1]);
      gt->next = g.chain[h];
      g.chain[h] = (uint16_t)(n + 1);
      g.ngates = n + 1;
    }
  g.ok = 1;
}

/* Does marker mk occur in t[0..n) around its key, which stands at t[i..i + KEY)? As
 * bounce_mta_formats.def says markers match: ASCII case-insensitive, and a space in the marker
 * stands for any run of white space (a phrase wrapped across lines still counts). */
static int marker_at(const char *t, size_t n, size_t i, const char *mk, size_t key_at) {
  const unsigned char *u = (const unsigned char *)t, *f = g.fold;
  size_t q = i + KEY, p = key_at + KEY;
  for (; mk[p]; p++) { /* after the key */
    unsigned char c = f[(unsigned char)mk[p]];
    if (q >= n || f[u[q++]] != c) return 0;
    if (c == ' ')
      while (q < n && f[u[q]] == ' ') q++;
  }
  for (q = i, p = key_at; p > 0;) { /* before it, backwards */
    unsigned char c = f[(unsigned char)mk[--p]];
    if (q == 0 || f[u[--q]] != c) return 0;
    if (c == ' ')
      while (q > 0 && f[u[q - 1]] == ' ') q--;
  }
  return 1;
}

/* The formats whose markers occur in t[0..n), added to *h. A marker is looked for within one
 * piece of text (the body, a field's value): none that a format requires spans two. */
static void scan(const char *t, size_t n, hits *h) {
  const unsigned char *u = (const unsigned char *)t;
  for (size_t e = KEY - 1; e < n; e++) { /* e: the window's last octet */
    unsigned s = g.shift[pair_at(t + e - 1)];
    if (s) {
      e += s - 1;
      continue;
    }
    uint64_t w = octets(t + e + 1 - KEY);
    for (unsigned k = g.chain[hash(u[e - 1], u[e])]; k; k = g.gate[k - 1].next) {
      const struct gate *gt = &g.gate[k - 1];
      if ((w | gt->fold) == gt->key && (gt->formats & ~*h) &&
          marker_at(t, n, e + 1 - KEY, gt->mark, gt->key_at))
        *h |= gt->formats;
    }
  }
}

/* The header fields that may hold a format's gate marker: the gate reads these values and no
 * other field (Received: lines are most of a header, Content-Type's boundary is long, and
 * neither holds what a format requires). A field whose presence alone a format requires
 * lets that format through by its name. Keep in step with the modules: a format whose
 * marker stands in another field (smtpc__bmta_hdr_has) must add it here. */
static const struct gate_field {
  const char *name;
  size_t len;
  int format; /* -1: the value is read for markers; else the format its presence lets in */
} gate_fields[] = {
    {"From", 4, -1}, {"X-Mailer", 8, -1}, {"X-Original-Mailer", 17, -1},
    {"x-amz-sns-message-id", 20, FMT_AMAZONSES}, /* SES's SNS notifications */
};

static const struct gate_field *gate_field(const smtpc__bheader *h) {
  for (size_t i = 0; i < sizeof gate_fields / sizeof gate_fields[0]; i++)
    if (h->name_len == gate_fields[i].len &&
        smtpc__bstarts(h->name, h->name_len, gate_fields[i].name))
      return &gate_fields[i];
  return NULL;
}

/* The delay notice row: its markers in the head of the notice (not in a returned copy of
 * some other message further down) say so. Never claims the message. */
int smtpc__bmta_delay_notice(smtpc__bmsg *m) {
  static const char *const marks[] = {SMTPC__DELAY_MARKS, NULL};
  m->delay_notice = smtpc__bmta_any(m->body, m->body_len < 2048 ? m->body_len : 2048, marks);
  return 0;
}

int smtpc__bmta_formats(smtpc__bmsg *m) {
  hits h = ~(hits)0; /* without the tables (a marker without a key): every format */
  pthread_once(&g_once, build);
  if (g.ok) {
    h = 0;
    scan(m->body, m->body_len, &h);
    for (size_t i = 0; i < m->nheaders; i++) {
      const struct gate_field *f = gate_field(&m->headers[i]);
      if (f && f->format >= 0) h |= (hits)1 << f->format;
      else if (f) scan(m->headers[i].value, m->headers[i].value_len, &h);
    }
    const smtpc_bounce *r0 = m->nrecords ? smtpc__bounce_rec(m, 0) : NULL;
    const char *rep = r0 ? r0->field[SMTPC_BOUNCE_F_REPORTING_MTA] : NULL;
    if (rep) scan(rep, strlen(rep), &h);
  }
  for (size_t f = 0; f < NFORMATS; f++) {
    if (!(h >> f & 1)) continue;
    int rc = formats[f].fn(m);
    if (rc < 0) return rc;
    if (rc == 0) continue;
    /* the format that claimed the message names it, for the records it read or amended */
    for (size_t i = 0; i < m->nrecords; i++) {
      smtpc_bounce *r = smtpc__bounce_rec(m, i);
      if (!r->field[SMTPC_BOUNCE_F_MTA] &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_MTA, formats[f].name,
                                  strlen(formats[f].name))) != 0)
        return rc;
    }
    return 1;
  }
  return 0;
}
