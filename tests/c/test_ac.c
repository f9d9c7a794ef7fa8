/* test_ac.c -- the Aho-Corasick matcher: a chunk scanned in lanes (ac.c, smtpc__ac_feed on 64
 * bytes or more) reports exactly the matches, in the same order and at the same offsets, as
 * the same bytes fed one at a time (which always takes the plain serial loop), and ends in the
 * same state. The inputs are built to reach the lanes' corner cases: a pattern prefix longer
 * than the lanes' overlap pending at a segment boundary (the lane's state is then wrong and the
 * segment must be rescanned), more matches in one lane than it buffers, white-space runs and
 * case folding across boundaries, and chunks of every length around the lane threshold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac.h"

static const char *const patterns[] = {
  "user unknown", "unknown", "user", "no such user", "mailbox full", "box", "x", "aa", "aaaa",
  "mailbox is full", "over quota", "quota", " ", "rejected", "ejected",
  /* longer than the lanes' overlap, and periodic: deep states at any boundary inside it */
  "abcabcabcabcabcabcabcabcabcabcabcabcabc", "bcabcabcabcabcabcabcabcabcabcabcabcabcab",
  "the quick brown fox jumps over the lazy dog", "fox", "lazy dog", "dog",
  ".example.jp\n", "said:", "5.1.1", "550"};
#define NPAT (sizeof patterns / sizeof patterns[0])

typedef struct hit {
  size_t pat, end;
} hit;

typedef struct hits {
  hit *v;
  size_t n, cap;
  size_t chunk_start; /* to check end_chunk against end_stream */
  int bad_chunk_offset;
} hits;

static void on_hit(void *ud, size_t pat, size_t end_stream, size_t end_chunk) {
  hits *h = ud;
  if (end_chunk != end_stream - h->chunk_start) h->bad_chunk_offset = 1;
  if (h->n == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 256;
    h->v = realloc(h->v, h->cap * sizeof *h->v);
    assert_non_null(h->v);
  }
  h->v[h->n].pat = pat;
  h->v[h->n].end = end_stream;
  h->n++;
}

static uint32_t rng = 12345;
static uint32_t next_rand(void) {
  rng = rng * 1103515245u + 12345u;
  return rng >> 8;
}

/* Text from pattern pieces, pattern-alphabet noise, upper case, white-space runs and bytes no
 * pattern holds. */
static size_t make_text(char *buf, size_t len) {
  static const char noise[] = "abcxyz ox.:-\t\r\nAB\x01\xff";
  size_t n = 0;
  while (n < len) {
    uint32_t r = next_rand() % 10;
    if (r < 5) {
      const char *p = patterns[next_rand() % NPAT];
      int upper = next_rand() % 4 == 0;
      for (; *p && n < len; p++) buf[n++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
    } else if (r < 6) {
      size_t k = next_rand() % 40; /* a long run of one letter: many overlapping matches */
      while (k-- && n < len) buf[n++] = 'a';
    } else if (r < 7) {
      size_t k = 1 + next_rand() % 5;
      while (k-- && n < len) buf[n++] = " \t\r\n"[next_rand() % 4];
    } else {
      buf[n++] = noise[next_rand() % (sizeof noise - 1)];
    }
  }
  return n;
}

static void lanes_match_serial(void **state) {
  smtpc__ac ac;
  static char buf[2048];
  hits a = {0}, b = {0};
  int round;
  (void)state;
  assert_int_equal(smtpc__ac_build(&ac, patterns, NPAT), 0);
  for (round = 0; round < 20000; round++) {
    size_t len = round < 600 ? (size_t)round % 300 : next_rand() % 1200, nchunks, c, off, i;
    smtpc__ac_scan sa, sb;
    make_text(buf, len);
    nchunks = 1 + next_rand() % 3;
    a.n = b.n = 0;
    a.bad_chunk_offset = b.bad_chunk_offset = 0;
    smtpc__ac_scan_init(&sa);
    smtpc__ac_scan_init(&sb);
    for (c = 0, off = 0; c < nchunks; c++) {
      size_t l = c + 1 == nchunks ? len - off : len / nchunks;
      a.chunk_start = sa.pos;
      smtpc__ac_feed(&ac, &sa, buf + off, l, on_hit, &a);
      for (i = 0; i < l; i++) { /* one byte at a time: the serial loop */
        b.chunk_start = sb.pos;
        smtpc__ac_feed(&ac, &sb, buf + off + i, 1, on_hit, &b);
      }
      off += l;
    }
    assert_false(a.bad_chunk_offset);
    assert_int_equal(sa.pos, sb.pos);
    assert_int_equal(sa.state, sb.state);
    assert_int_equal(a.n, b.n);
    for (i = 0; i < a.n; i++) {
      assert_int_equal(a.v[i].pat, b.v[i].pat);
      assert_int_equal(a.v[i].end, b.v[i].end);
    }
  }
  free(a.v);
  free(b.v);
  smtpc__ac_free(&ac);
}

/* A pattern prefix longer than the overlap pending at every boundary: the lanes' guess is
 * wrong and each segment is rescanned; the one long match must still be reported once. */
static void long_pattern_across_boundaries(void **state) {
  smtpc__ac ac;
  static const char *const one[] = {"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"};
  char text[200];
  hits h = {0};
  smtpc__ac_scan s;
  (void)state;
  assert_int_equal(smtpc__ac_build(&ac, one, 1), 0);
  memset(text, '-', sizeof text);
  memcpy(text + 70, one[0], strlen(one[0]));
  smtpc__ac_scan_init(&s);
  smtpc__ac_feed(&ac, &s, text, sizeof text, on_hit, &h);
  assert_int_equal(h.n, 1);
  assert_int_equal(h.v[0].end, 70 + strlen(one[0]));
  free(h.v);
  smtpc__ac_free(&ac);
}

/* ---- against a plain search ---------------------------------------------------------------
 * Random pattern sets (lengths 1 to 7; some starting or ending with a space) matched over
 * random texts fed in random pieces: every report (pattern, end offset) must equal what a plain
 * search finds -- ASCII case folded, every run of white space read as one space, a match ending
 * at a run ending at the run's first octet. Lanes and serial scan alike must lose no match and
 * invent none. */
#define MAXPAT 8
#define MAXTEXT 400
#define MAXHITS 4096

typedef struct phit {
  size_t pattern, end;
} phit;

typedef struct phits {
  phit h[MAXHITS];
  size_t n;
} phits;

static void on_plain_match(void *ud, size_t pattern, size_t end_stream, size_t end_chunk) {
  phits *hs = ud;
  (void)end_chunk;
  if (hs->n < MAXHITS) hs->h[hs->n++] = (phit){pattern, end_stream};
}

static int cmp_hit(const void *a, const void *b) {
  const phit *x = a, *y = b;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->pattern < y->pattern ? -1 : x->pattern > y->pattern;
}

/* white space, and the quotes, which the matcher folds with it */
static int ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '`';
}
static char fold(char c) { return ws(c) ? ' ' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* The plain search: text and patterns folded (runs of white space -> one space, remembering
 * where each folded octet of the text starts), every pattern compared at every folded offset. */
static void plain(const char *const *pat, size_t np, const char *t, size_t n, phits *hs) {
  char f[MAXTEXT];
  size_t at[MAXTEXT], k = 0;
  for (size_t i = 0; i < n; i++) {
    if (ws(t[i]) && k && f[k - 1] == ' ' && i && ws(t[i - 1])) continue;
    at[k] = i;
    f[k++] = fold(t[i]);
  }
  hs->n = 0;
  for (size_t p = 0; p < np; p++) {
    char fp[64];
    size_t len = 0;
    for (const char *c = pat[p]; *c && len < sizeof fp; c++)
      if (!(ws(*c) && len && fp[len - 1] == ' ')) fp[len++] = fold(*c);
    for (size_t s = 0; s + len <= k; s++) {
      size_t j = 0;
      while (j < len && f[s + j] == fp[j]) j++;
      if (j == len && hs->n < MAXHITS) hs->h[hs->n++] = (phit){p, at[s + len - 1] + 1};
    }
  }
}

static void random_pattern(char *out, unsigned *seed) {
  /* runs of white space and quotes too ("isn't", "' ip"): the build folds them as the scan does */
  static const char alpha[] = "abcAB  '\"";
  size_t len = 1 + (size_t)rand_r(seed) % 7, k = 0;
  while (k < len) out[k++] = alpha[rand_r(seed) % (sizeof alpha - 1)];
  out[k] = '\0';
}

static void test_random_against_plain(void **state) {
  (void)state;
  /* pattern letters and others, which no pattern holds */
  static const char alpha[] = "abcABxyzxyz0123 \t\n\r'\"`";
  unsigned seed = 11;
  for (int round = 0; round < 20000; round++) {
    char store[MAXPAT][9];
    const char *pat[MAXPAT];
    size_t np = 1 + (size_t)rand_r(&seed) % MAXPAT;
    /* some rounds with long patterns only: fewer, deeper matches */
    size_t min = (size_t)round % 5 + 1;
    for (size_t i = 0; i < np; i++) {
      do random_pattern(store[i], &seed);
      while (strlen(store[i]) < min);
      pat[i] = store[i];
    }
    smtpc__ac ac;
    assert_int_equal(smtpc__ac_build(&ac, pat, np), 0);
    char t[MAXTEXT];
    size_t n = (size_t)rand_r(&seed) % MAXTEXT;
    for (size_t i = 0; i < n; i++) t[i] = alpha[rand_r(&seed) % (sizeof alpha - 1)];
    static phits got, want;
    got.n = 0;
    smtpc__ac_scan sc;
    smtpc__ac_scan_init(&sc);
    size_t most = round % 2 ? 9 : 200;
    for (size_t i = 0; i < n;) { /* random pieces, empty ones included */
      size_t k = (size_t)rand_r(&seed) % most;
      if (k > n - i) k = n - i;
      smtpc__ac_feed(&ac, &sc, t + i, k, on_plain_match, &got);
      i += k;
    }
    plain(pat, np, t, n, &want);
    qsort(got.h, got.n, sizeof got.h[0], cmp_hit);
    qsort(want.h, want.n, sizeof want.h[0], cmp_hit);
    if (got.n != want.n || memcmp(got.h, want.h, got.n * sizeof got.h[0])) {
      fprintf(stderr, "round %d: %zu matches, want %zu; patterns:", round, got.n, want.n);
      for (size_t i = 0; i < np; i++) fprintf(stderr, " [%s]", pat[i]);
      fprintf(stderr, "\ntext: [%.*s]\n", (int)n, t);
      fail();
    }
    smtpc__ac_free(&ac);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(lanes_match_serial),
    cmocka_unit_test(long_pattern_across_boundaries),
    cmocka_unit_test(test_random_against_plain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
