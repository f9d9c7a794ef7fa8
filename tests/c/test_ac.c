/*
 * test_ac.c -- the Aho-Corasick matcher (csrc/ac.c) against a plain search.
 *
 * The scan skips text at the root by byte pairs, one to four positions at a time (ac.c); a
 * skip that passed over the start of a match, or over part of one still open at the end of a
 * fed piece, would lose it. So random pattern sets (lengths 1 to 7: every skip and the no-skip
 * case; some starting or ending with a space) are matched over random texts fed in random
 * pieces, and every report (pattern, end offset) must equal what a plain search finds: ASCII
 * case folded, every run of white space read as one space, a match ending at a run ending at
 * the run's first octet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ac.h"

#define MAXPAT 8
#define MAXTEXT 400
#define MAXHITS 4096

typedef struct hit {
  size_t pattern, end;
} hit;

typedef struct hits {
  hit h[MAXHITS];
  size_t n;
} hits;

static void on_match(void *ud, size_t pattern, size_t end_stream, size_t end_chunk) {
  hits *hs = ud;
  (void)end_chunk;
  if (hs->n < MAXHITS) hs->h[hs->n++] = (hit){pattern, end_stream};
}

static int cmp_hit(const void *a, const void *b) {
  const hit *x = a, *y = b;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->pattern < y->pattern ? -1 : x->pattern > y->pattern;
}

static int ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static char fold(char c) { return ws(c) ? ' ' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* The plain search: text folded (runs of white space -> one space, remembering where each
 * folded octet starts in the text), every pattern compared at every folded offset. */
static void plain(const char *const *pat, size_t np, const char *t, size_t n, hits *hs) {
  char f[MAXTEXT];
  size_t at[MAXTEXT], k = 0;
  for (size_t i = 0; i < n; i++) {
    if (ws(t[i]) && k && f[k - 1] == ' ' && i && ws(t[i - 1])) continue;
    at[k] = i;
    f[k++] = fold(t[i]);
  }
  hs->n = 0;
  for (size_t p = 0; p < np; p++) {
    size_t len = strlen(pat[p]);
    for (size_t s = 0; s + len <= k; s++) {
      size_t j = 0;
      while (j < len && f[s + j] == fold(pat[p][j])) j++;
      if (j == len && hs->n < MAXHITS) hs->h[hs->n++] = (hit){p, at[s + len - 1] + 1};
    }
  }
}

static void random_pattern(char *out, unsigned *seed) {
  static const char alpha[] = "abcAB ";
  size_t len = 1 + (size_t)rand_r(seed) % 7, k = 0;
  while (k < len) {
    char c = alpha[rand_r(seed) % (sizeof alpha - 1)];
    if (c == ' ' && k && out[k - 1] == ' ') continue; /* no runs of white space in a pattern */
    out[k++] = c;
  }
  out[k] = '\0';
}

static void test_random_against_plain(void **state) {
  (void)state;
  /* pattern letters and others (which keep the scan at the root, where it skips) */
  static const char alpha[] = "abcABxyzxyz0123 \t\n\r";
  unsigned seed = 11;
  for (int round = 0; round < 20000; round++) {
    char store[MAXPAT][9];
    const char *pat[MAXPAT];
    size_t np = 1 + (size_t)rand_r(&seed) % MAXPAT;
    /* rounds with long patterns only: the skip by 2, 3 and 4 positions */
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
    static hits got, want;
    got.n = 0;
    smtpc__ac_scan sc;
    smtpc__ac_scan_init(&sc);
    size_t most = round % 2 ? 9 : 200;
    for (size_t i = 0; i < n;) { /* random pieces, empty ones included */
      size_t k = (size_t)rand_r(&seed) % most;
      if (k > n - i) k = n - i;
      smtpc__ac_feed(&ac, &sc, t + i, k, on_match, &got);
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
      cmocka_unit_test(test_random_against_plain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
