/*
 * bench.c -- decode+classify throughput of the C core over a corpus of real diagnostics,
 * beside a baseline in the same run.
 *
 * Input: a TSV with the corpus columns (reply_code status command rhost diagnostic ...; the
 * header names them). Each row is replayed through smtpc_classify(code, status, text, ctx),
 * the call the bindings make, for at least --seconds of CPU time.
 * Rates are printed per CPU second of this process and per wall second (see measure()).
 * Baseline: the obvious implementation: lower-case a copy of the text, then strstr() it once
 * per phrase of the same rule tables (rules/phrases.def), keeping the first hit.
 */
#define _POSIX_C_SOURCE 200809L
#include "smtpcode.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct row {
  int code;
  char *status, *command, *host, *text;
  size_t len;
} row;

static const char *const phrases[] = {
#define PHRASE(reason, prio, text) text,
#define PAIR(reason, prio, head, tail)
#include "rules/phrases.def"
#undef PHRASE
#undef PAIR
};

/* Wall time, and CPU time of this process: on a shared machine the second is the figure to
 * hold against a per-core goal (the wall rate falls with every other busy process). */
static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *dupfield(const char *s) { return *s ? strdup(s) : NULL; }

static int load(const char *path, row **out) {
  FILE *f = fopen(path, "r");
  char line[65536];
  int col[8] = {-1, -1, -1, -1, -1}, n = 0, cap = 0, first = 1;
  row *rows = NULL;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    char *field[32];
    int k = 0;
    char *p = line;
    if (line[0] == '#') continue;
    line[strcspn(line, "\r\n")] = 0;
    for (;;) {
      char *tab = strchr(p, '\t');
      if (k < 32) field[k++] = p;
      if (!tab) break;
      *tab = 0;
      p = tab + 1;
    }
    if (first) {
      const char *names[5] = {"reply_code", "status", "command", "rhost", "diagnostic"};
      int i, j;
      for (i = 0; i < 5; i++)
        for (j = 0; j < k; j++)
          if (strcmp(field[j], names[i]) == 0) col[i] = j;
      for (i = 0; i < 5; i++)
        if (col[i] < 0) { fprintf(stderr, "%s: no column %s\n", path, names[i]); exit(2); }
      first = 0;
      continue;
    }
    if (n == cap) rows = realloc(rows, sizeof *rows * (size_t)(cap = cap ? cap * 2 : 1024));
    rows[n].code = atoi(field[col[0]]);
    rows[n].status = dupfield(field[col[1]]);
    rows[n].command = dupfield(field[col[2]]);
    rows[n].host = dupfield(field[col[3]]);
    rows[n].text = strdup(field[col[4]]);
    rows[n].len = strlen(rows[n].text);
    n++;
  }
  fclose(f);
  *out = rows;
  return n;
}

static volatile long sink;

static long run_core(const row *rows, int n) {
  long calls = 0;
  int i;
  for (i = 0; i < n; i++) {
    smtpc_context ctx = {rows[i].command, rows[i].host};
    smtpc_decoded d;
    if (smtpc_classify(rows[i].code, rows[i].status, rows[i].text, rows[i].len, &ctx, &d) == 0)
      sink += d.cls.reason;
    calls++;
  }
  return calls;
}

static long run_baseline(const row *rows, int n) {
  static char low[65536];
  long calls = 0;
  int i;
  size_t j, k;
  for (i = 0; i < n; i++) {
    for (j = 0; j < rows[i].len && j < sizeof low - 1; j++)
      low[j] = (char)tolower((unsigned char)rows[i].text[j]);
    low[j] = 0;
    for (k = 0; k < sizeof phrases / sizeof phrases[0]; k++)
      if (strstr(low, phrases[k])) { sink += (long)k; break; }
    calls++;
  }
  return calls;
}

static void measure(const char *name, long (*fn)(const row *, int), const row *rows, int n,
                    double seconds) {
  double w0, c0, w, c;
  long calls = 0;
  fn(rows, n); /* warm up (builds the matcher once) */
  w0 = clock_s(CLOCK_MONOTONIC);
  c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  do {
    calls += fn(rows, n);
    c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  } while (c < seconds);
  w = clock_s(CLOCK_MONOTONIC) - w0;
  printf("%-34s %10.0f calls/CPU-s %10.0f calls/s wall %8.1f ns/call (CPU)\n", name, calls / c,
         calls / w, c * 1e9 / calls);
}

int main(int argc, char **argv) {
  row *rows;
  double seconds = argc > 2 ? atof(argv[2]) : 1.0;
  int n;
  if (argc < 2) { fprintf(stderr, "usage: bench corpus.tsv [seconds]\n"); return 2; }
  n = load(argv[1], &rows);
  if (n <= 0) { fprintf(stderr, "cannot read %s\n", argv[1]); return 2; }
  printf("C core, %d rows replayed for %.1f CPU-s each (%zu phrases)\n", n, seconds,
         sizeof phrases / sizeof phrases[0]);
  measure("  smtpc_classify (decode+classify)", run_core, rows, n, seconds);
  measure("  baseline: strstr per phrase", run_baseline, rows, n, seconds);
  return 0;
}
