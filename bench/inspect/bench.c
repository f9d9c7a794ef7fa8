/*
 * bench.c -- smtpc_inspect throughput over an address list, beside a baseline in the same run.
 *
 * usage: bench_inspect addresses.txt [seconds]
 * Each address (one a line) goes through smtpc_inspect(addr, len, SMTPC_ROUTE_UNKNOWN, &x):
 * the parse, three table look-ups and, for every domain that is not a known provider, the typo
 * search (the worst case: with a route fact of "has MX" the search is skipped), and then with
 * SMTPC_ROUTE_OK as verify() has it for most domains.
 * Baseline: smtpc_parse_address alone, the parse every inspection starts with.
 * Each figure is given per CPU second of this process (CLOCK_PROCESS_CPUTIME_ID: on a shared
 * machine the time others take is not ours) and per wall second beside it; the baseline
 * shares the run and its conditions all the same.
 */
#define _POSIX_C_SOURCE 200809L
#include "smtpcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_of(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct { char *s; size_t n; } addr;

static volatile long sink; /* keeps the results alive past the optimiser */

static void run(const char *name, addr *a, size_t n, double seconds, int mode) {
  double t0 = seconds_of(CLOCK_PROCESS_CPUTIME_ID), w0 = seconds_of(CLOCK_MONOTONIC), t, w;
  unsigned long calls = 0;
  long acc = 0;
  do {
    size_t i;
    for (i = 0; i < n; i++) {
      if (mode == 0) {
        smtpc_address p;
        acc += smtpc_parse_address(a[i].s, a[i].n, &p, NULL) == 0 ? p.domain[0] : 0;
      } else {
        smtpc_inspection x;
        smtpc_inspect(a[i].s, a[i].n, mode == 1 ? SMTPC_ROUTE_UNKNOWN : SMTPC_ROUTE_OK, &x);
        acc += x.disposable + x.role + x.free_provider + (x.suggestion[0] != 0);
      }
    }
    calls += n;
    t = seconds_of(CLOCK_PROCESS_CPUTIME_ID) - t0;
  } while (t < seconds);
  w = seconds_of(CLOCK_MONOTONIC) - w0;
  sink = acc;
  printf("  %-44s %10.0f /CPU-s %7.1f ns %10.0f /wall-s\n", name, calls / t, t * 1e9 / calls,
         calls / w);
}

int main(int argc, char **argv) {
  FILE *f;
  char line[1100];
  addr *a = NULL;
  size_t n = 0, cap = 0, i;
  double seconds = argc > 2 ? atof(argv[2]) : 1.0;
  long flagged[4] = {0, 0, 0, 0};
  if (argc < 2 || (f = fopen(argv[1], "r")) == NULL) {
    fprintf(stderr, "usage: %s addresses.txt [seconds]\n", argv[0]);
    return 2;
  }
  while (fgets(line, sizeof line, f)) {
    size_t l = strcspn(line, "\r\n");
    if (n == cap && (a = realloc(a, (cap = cap ? 2 * cap : 4096) * sizeof *a)) == NULL) return 1;
    a[n].s = malloc(l + 1);
    memcpy(a[n].s, line, l);
    a[n].s[l] = '\0';
    a[n++].n = l;
  }
  fclose(f);
  for (i = 0; i < n; i++) {
    smtpc_inspection x;
    if (smtpc_inspect(a[i].s, a[i].n, SMTPC_ROUTE_UNKNOWN, &x) != 0) continue;
    flagged[0] += x.disposable, flagged[1] += x.role, flagged[2] += x.free_provider;
    flagged[3] += x.suggestion[0] != 0;
  }
  printf("C: %zu addresses (disposable %ld, role %ld, free %ld, suggestion %ld), %.1f s each\n",
         n, flagged[0], flagged[1], flagged[2], flagged[3], seconds);
  run("smtpc_inspect, no DNS fact (typo search)", a, n, seconds, 1);
  run("smtpc_inspect, domain has MX", a, n, seconds, 2);
  run("baseline: smtpc_parse_address alone", a, n, seconds, 0);
  for (i = 0; i < n; i++) free(a[i].s);
  free(a);
  return 0;
}
