/*
 * bench.c -- bounce parser throughput of the C core, and its memory over a big mbox.
 *
 *   bench --seconds S FILE.eml...   messages/s: every file parsed in turn (one parser reused,
 *                                   as a mailbox reader does) for at least S seconds
 *   bench --mbox FILE               stream FILE through the mbox splitter and the parser in
 *                                   64 KiB reads; prints messages, records and peak RSS
 * One core: single-threaded, timed in CPU seconds of this process (a busy machine lowers the
 * figure less) and in wall seconds, both printed. The files are read into memory first: the
 * figure is the parser's.
 */
#define _POSIX_C_SOURCE 200809L
#include "smtpcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this process: the machine may be shared, and the figure is "on one core". */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* VmHWM: the peak of this process's own memory (ru_maxrss would carry over the memory of the
 * process that started it: Linux keeps it across fork and exec). */
static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kib = atol(line + 6);
  if (f) fclose(f);
  return kib;
}

static int mbox_mode(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  smtpc_mbox *mb = smtpc_mbox_new();
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  static char buf[65536];
  unsigned long msgs = 0, recs = 0, errors = 0;
  double t0 = now();
  for (;;) {
    size_t n = fread(buf, 1, sizeof buf, f);
    smtpc_mbox_feed(mb, buf, n, n == 0);
    const char *m;
    size_t ml;
    while (smtpc_mbox_next(mb, &m, &ml) == 1) {
      int rc = smtpc_bounce_parse(p, m, ml);
      msgs++;
      if (rc < 0) errors++;
      else recs += (unsigned long)rc;
    }
    if (n == 0) break;
  }
  double took = now() - t0;
  printf("mbox: %lu messages, %lu records, %lu errors in %.2f s (%.0f msg/s); peak RSS %.1f MiB\n",
         msgs, recs, errors, took, msgs / took, peak_rss_kib() / 1024.0);
  smtpc_bounce_free(p);
  smtpc_mbox_free(mb);
  fclose(f);
  return 0;
}

int main(int argc, char **argv) {
  double seconds = 3;
  int first = 1;
  if (argc > 2 && !strcmp(argv[1], "--mbox")) return mbox_mode(argv[2]);
  if (argc > 2 && !strcmp(argv[1], "--seconds")) {
    seconds = atof(argv[2]);
    first = 3;
  }
  int n = argc - first;
  if (n <= 0) {
    fprintf(stderr, "usage: bench [--seconds S] FILE... | bench --mbox FILE\n");
    return 2;
  }
  char **msg = calloc((size_t)n, sizeof *msg);
  size_t *len = calloc((size_t)n, sizeof *len), bytes = 0;
  for (int i = 0; i < n; i++) {
    if (!(msg[i] = slurp(argv[first + i], &len[i]))) {
      perror(argv[first + i]);
      return 1;
    }
    bytes += len[i];
  }
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  unsigned long done = 0, recs = 0;
  double w0 = wall(), t0 = now(), t;
  do {
    for (int i = 0; i < n; i++) {
      int rc = smtpc_bounce_parse(p, msg[i], len[i]);
      if (rc > 0) recs += (unsigned long)rc;
    }
    done += (unsigned long)n;
  } while ((t = now() - t0) < seconds);
  double w = wall() - w0;
  printf("C: %d messages (%.1f KiB average), %lu parsed in %.2f CPU s: %.0f msg/s, %.1f MB/s, "
         "%.2f records/message; wall %.2f s: %.0f msg/s\n",
         n, bytes / 1024.0 / n, done, t, done / t, bytes * (done / (double)n) / t / 1e6,
         recs / (double)done, w, done / w);
  smtpc_bounce_free(p);
  for (int i = 0; i < n; i++) free(msg[i]);
  free(msg);
  free(len);
  return 0;
}
