/*
 * bench/plan -- the planner (csrc/plan.c) at scale, by simulation: N addresses over D domains
 * on H simulated MX hosts (each with its own latency), with greylisting and 421s, driven
 * through the public smtpc_plan_* API by a simulated clock and network (no sockets).
 *
 *   bench/plan/run [--addresses N] [--domains D] [--hosts H] [--concurrency C] [--replays R]
 *
 * Prints: simulated wall time, connections per address, planner CPU per address, the
 * planner's memory (its own allocations, through its allocator hook, at peak and per pending
 * address) and the process's peak RSS.
 *
 * How the planner's CPU is told apart from the simulator's: the simulation records every call
 * it makes into the planner (the event, its time and arguments) while it runs. Then the same
 * calls are replayed, alone, into a fresh planner (same options, same seed: it is
 * deterministic, so it hands out the very same actions, which is checked), and the replay is
 * timed with the thread's CPU clock: that is the planner's CPU (all of smtpc_plan_add, _read,
 * _next ... including the dialogs, the classifier, the address parser and the allocator), plus
 * a loop that reads the record (an array walk, measured alone and subtracted). The simulator's
 * own CPU is the simulation run's CPU less the planner's: the baseline of the same run.
 * Replayed R times (default 3); the median is printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/resource.h>

#include "smtpcode.h"

static long n_addr = 1000000, n_dom = 50000, n_host = 2000, conc = 1000;

static uint64_t rs = 0x1234567;
static uint64_t rnd(void) {
  uint64_t z = (rs += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* ---------------------------------------------------------------------------------------- */
/* CPU accounting: the record of the planner calls, and clocks */

static double tcpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { R_ADD, R_END, R_RESOLVED, R_CONNECTED, R_READ, R_EOF, R_RELEASED, R_TICK, R_DRAIN };

typedef struct rec {
  uint64_t now;
  uint32_t type, sid;
  uint64_t arg;      /* ADD: address number; RESOLVED: token << 32 | domain; READ: length */
  const char *text;  /* READ: the static reply text                                      */
} rec;

static rec *trace;
static size_t ntrace, captrace;
static uint64_t actions_sum; /* a checksum of the actions handed out, to check the replay */

static void record(uint32_t type, uint64_t t, uint32_t sid, uint64_t arg, const char *text) {
  rec *r;
  if (ntrace == captrace) {
    captrace = captrace ? captrace * 2 : 1 << 20;
    trace = realloc(trace, captrace * sizeof *trace);
    if (trace == NULL) {
      fprintf(stderr, "bench/plan: out of memory for the record\n");
      exit(1);
    }
  }
  r = &trace[ntrace++];
  r->now = t;
  r->type = type;
  r->sid = sid;
  r->arg = arg;
  r->text = text;
}

static uint64_t action_sum(uint64_t sum, const smtpc_plan_action *a) {
  return sum * 1000003u + (uint64_t)a->type * 65537u + a->sid + a->len + a->token + a->time;
}

/* ---------------------------------------------------------------------------------------- */
/* events: a binary heap on (time, seq) */

enum { E_RESOLVED, E_CONNECTED, E_BYTES, E_EOF, E_RELEASED };

typedef struct ev {
  uint64_t at, seq;
  int type;
  unsigned sid;
  uint32_t gen;
  uint64_t arg;
  const char *text; /* static reply text */
} ev;

static ev *heap;
static size_t nheap, capheap;
static uint64_t seq;

static void push(ev e) {
  size_t i;
  if (nheap == capheap) {
    capheap = capheap ? capheap * 2 : 4096;
    heap = realloc(heap, capheap * sizeof *heap);
  }
  e.seq = seq++;
  i = nheap++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (heap[up].at < e.at || (heap[up].at == e.at && heap[up].seq < e.seq)) break;
    heap[i] = heap[up];
    i = up;
  }
  heap[i] = e;
}

static ev pop(void) {
  ev top = heap[0], last = heap[--nheap];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= nheap) break;
    if (c + 1 < nheap && (heap[c + 1].at < heap[c].at ||
                          (heap[c + 1].at == heap[c].at && heap[c + 1].seq < heap[c].seq)))
      c++;
    if (last.at < heap[c].at || (last.at == heap[c].at && last.seq < heap[c].seq)) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = last;
  return top;
}

/* ---------------------------------------------------------------------------------------- */
/* the world: domain d -> host d % H; address i -> domain i % D, user exists unless i % 10 == 9;
 * 2% of addresses are greylisted once, 1% of sessions get 421 and a hang-up at some RCPT */

typedef struct sess {
  int used, host, quit, rcpts, fail_at;
  uint32_t gen;
  uint64_t reply_at;
  char line[600];
  size_t len;
} sess;

static sess *S;
static uint64_t *host_latency;
static unsigned char *grey_seen;
static uint64_t now, wake, connections;
static smtpc_plan *P;

static void reply(unsigned sid, const char *text, int close) {
  sess *s = &S[sid];
  uint64_t at = now + host_latency[s->host];
  ev e;
  if (at < s->reply_at) at = s->reply_at;
  s->reply_at = at;
  memset(&e, 0, sizeof e);
  e.at = at;
  e.type = E_BYTES;
  e.sid = sid;
  e.gen = s->gen;
  e.text = text;
  push(e);
  if (close) {
    e.type = E_EOF;
    push(e);
    s->quit = 1;
  }
}

static void line(unsigned sid, const char *l, size_t n) {
  if (S[sid].quit) return;
  if (n >= 4 && memcmp(l, "EHLO", 4) == 0) {
    reply(sid, "250-mx.sim\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n", 0);
  } else if (n >= 4 && memcmp(l, "MAIL", 4) == 0) {
    reply(sid, "250 2.1.0 ok\r\n", 0);
  } else if (n >= 9 && memcmp(l, "RCPT TO:<", 9) == 0) {
    const char *a = l + 9;
    long i = a[0] == 'u' ? strtol(a + 1, NULL, 10) : -1; /* u<i>@d<j>.sim, or a probe */
    if (++S[sid].rcpts == S[sid].fail_at)
      reply(sid, "421 4.7.0 too many connections, try later\r\n", 1);
    else if (i >= 0 && mix((uint64_t)i) % 50 == 0 && !grey_seen[i]) {
      grey_seen[i] = 1;
      reply(sid, "450 4.2.0 greylisted, try again later\r\n", 0);
    } else if (i >= 0 && i % 10 != 9)
      reply(sid, "250 2.1.5 ok\r\n", 0);
    else
      reply(sid, "550 5.1.1 user unknown\r\n", 0);
  } else if (n >= 4 && memcmp(l, "RSET", 4) == 0) {
    reply(sid, "250 2.0.0 ok\r\n", 0);
  } else if (n >= 4 && memcmp(l, "QUIT", 4) == 0) {
    reply(sid, "221 2.0.0 bye\r\n", 1);
  } else {
    reply(sid, "500 5.5.2 what\r\n", 0);
  }
}

static void perform(const smtpc_plan_action *a) {
  ev e;
  memset(&e, 0, sizeof e);
  switch (a->type) {
  case SMTPC_PLAN_RESOLVE: {
    e.at = now + 20000 + rnd() % 80000;
    e.type = E_RESOLVED;
    e.arg = a->token;
    e.text = a->name;
    /* the name is only valid now: the domain number is what the answer needs */
    e.sid = (unsigned)strtoul(a->name + 1, NULL, 10);
    push(e);
    break;
  }
  case SMTPC_PLAN_CONNECT: {
    sess *s = &S[a->sid];
    uint32_t gen = s->gen;
    memset(s, 0, sizeof *s);
    s->gen = gen;
    s->used = 1;
    s->host = (int)(ntohl(a->addr->in.sin_addr.s_addr) - 0x0a000000u);
    s->fail_at = rnd() % 100 == 0 ? 1 + (int)(rnd() % 50) : 0; /* 1% of sessions get a 421 */
    connections++;
    e.at = now + host_latency[s->host];
    e.type = E_CONNECTED;
    e.sid = a->sid;
    e.gen = s->gen;
    push(e);
    break;
  }
  case SMTPC_PLAN_WRITE: {
    sess *s = &S[a->sid];
    size_t i;
    for (i = 0; i < a->len; i++) {
      char c = a->data[i];
      if (c == '\n' && s->len > 0 && s->line[s->len - 1] == '\r') {
        line(a->sid, s->line, s->len - 1);
        s->len = 0;
      } else if (s->len < sizeof s->line) {
        s->line[s->len++] = c;
      }
    }
    break;
  }
  case SMTPC_PLAN_CLOSE: {
    sess *s = &S[a->sid];
    s->used = 0;
    s->gen++;
    e.at = now;
    e.type = E_RELEASED;
    e.sid = a->sid;
    e.gen = s->gen;
    push(e);
    break;
  }
  case SMTPC_PLAN_WAKE:
    wake = a->time;
    break;
  default: /* START_TLS is never asked (no STARTTLS offered); RESULT: counted by the planner */
    break;
  }
}

/* What each RESULT said (not only that it came): two builds of the core that should behave
 * alike must agree on this too. Summed in the simulation run only (not timed). */
static uint64_t results_sum;

static uint64_t str_sum(uint64_t h, const char *s, size_t n) {
  size_t i;
  if (s == NULL) return mix(h + 1);
  for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return mix(h);
}

static void result_sum(const smtpc_result *r) {
  uint64_t h = r->tag;
  size_t i;
  h = mix(h * 31 + (uint64_t)(r->verdict * 1000 + r->reason));
  h = mix(h * 31 + (uint64_t)r->reply.code);
  h = str_sum(h, r->reply.status, strlen(r->reply.status));
  for (i = 0; i < r->reply.nlines; i++) h = str_sum(h, r->reply.lines[i].ptr, r->reply.lines[i].len);
  h = mix(h * 31 + (uint64_t)(r->cls.reason * 64 + r->cls.temporary * 32 + r->cls.hard_bounce * 16 +
                             r->cls.retry * 8 + r->cls.greylisted * 4) + (uint64_t)r->cls.retry_after);
  h = str_sum(h, r->mx, r->mx ? strlen(r->mx) : 0);
  h = str_sum(h, r->mx_addr, r->mx_addr ? strlen(r->mx_addr) : 0);
  h = str_sum(h, r->detail, r->detail ? strlen(r->detail) : 0);
  h = mix(h * 31 + (uint64_t)((r->catch_all + 1) * 1000 + r->tls * 100 + r->greylisted * 10) +
          (uint64_t)(r->error + 1000) * 100000);
  h = mix(h * 31 + (uint64_t)(r->inspect.disposable * 4 + r->inspect.role * 2 +
                             r->inspect.free_provider));
  h = str_sum(h, r->inspect.suggestion, strlen(r->inspect.suggestion));
  h = mix(h * 31 + (uint64_t)(r->duration * 1e6 + 0.5));
  results_sum += h; /* in any order */
}

static void drain(void) {
  smtpc_plan_action a;
  record(R_DRAIN, now, 0, 0, NULL);
  while (smtpc_plan_next(P, now, &a)) {
    actions_sum = action_sum(actions_sum, &a);
    if (a.type == SMTPC_PLAN_RESULT) result_sum(a.result);
    perform(&a);
  }
}

/* Domain d's answer: MX host d % H, 10.0.0.0 + (d % H). */
static void resolved(smtpc_plan *p, uint64_t t, uint64_t token, long d) {
  long h = d % n_host;
  char host[32];
  smtpc_sockaddr sa;
  smtpc_mx mx;
  smtpc_route r;
  snprintf(host, sizeof host, "mx%ld.sim", h);
  memset(&sa, 0, sizeof sa);
  sa.in.sin_family = AF_INET;
  sa.in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)h);
  memset(&mx, 0, sizeof mx);
  mx.host = host;
  mx.naddrs = 1;
  mx.addrs = &sa;
  memset(&r, 0, sizeof r);
  r.domain = "";
  r.nmx = 1;
  r.mx = &mx;
  smtpc_plan_resolved(p, t, token, 0, &r);
}

static void deliver(const ev *e) {
  sess *s = e->type == E_RESOLVED ? NULL : &S[e->sid];
  if (s && e->gen != s->gen) return; /* the session was closed since */
  switch (e->type) {
  case E_RESOLVED:
    record(R_RESOLVED, now, 0, e->arg << 32 | e->sid, NULL);
    resolved(P, now, e->arg, (long)e->sid);
    break;
  case E_CONNECTED:
    record(R_CONNECTED, now, e->sid, 0, NULL);
    smtpc_plan_connected(P, now, e->sid);
    reply(e->sid, "220 mx.sim ESMTP\r\n", 0);
    break;
  case E_BYTES:
    record(R_READ, now, e->sid, strlen(e->text), e->text);
    smtpc_plan_read(P, now, e->sid, e->text, strlen(e->text));
    break;
  case E_EOF:
    record(R_EOF, now, e->sid, 0, NULL);
    smtpc_plan_eof(P, now, e->sid, SMTPC_ECLOSED, NULL);
    break;
  case E_RELEASED:
    record(R_RELEASED, now, e->sid, 0, NULL);
    smtpc_plan_released(P, now, e->sid);
    break;
  }
}

/* The addresses, made once: u<i>@d<i mod D>.sim */
static char *abuf;
static size_t *aoff;

static void make_addresses(void) {
  size_t used = 0, cap = (size_t)n_addr * 24 + 64;
  long i;
  abuf = malloc(cap);
  aoff = malloc(((size_t)n_addr + 1) * sizeof *aoff);
  for (i = 0; i < n_addr; i++) {
    aoff[i] = used;
    used += (size_t)snprintf(abuf + used, cap - used, "u%ld@d%ld.sim", i, i % n_dom);
  }
  aoff[n_addr] = used;
}

static smtpc_plan *new_plan(const smtpc_plan_opts *po) {
  int err;
  smtpc_plan *p = smtpc_plan_new(po, &err);
  if (p == NULL) {
    fprintf(stderr, "smtpc_plan_new: %s\n", smtpc_strerror(err));
    exit(1);
  }
  return p;
}

/* The recorded calls into a fresh planner; with plan == 0 only the walk over the record (the
 * replay's own cost, subtracted). Returns the thread CPU seconds; *sum: the actions' checksum. */
static double replay(const smtpc_plan_opts *po, int plan, uint64_t *sum) {
  smtpc_plan *p = plan ? new_plan(po) : NULL;
  smtpc_plan_action a;
  uint64_t s = 0, junk = 0;
  size_t k;
  double t0 = tcpu(), t;
  for (k = 0; k < ntrace; k++) {
    const rec *r = &trace[k];
    if (!plan) {
      junk += r->now ^ r->arg ^ r->type;
      continue;
    }
    switch (r->type) {
    case R_ADD:
      smtpc_plan_add(p, r->now, abuf + aoff[r->arg], aoff[r->arg + 1] - aoff[r->arg], r->arg);
      break;
    case R_END:
      smtpc_plan_end(p);
      break;
    case R_RESOLVED:
      resolved(p, r->now, r->arg >> 32, (long)(r->arg & 0xffffffffu));
      break;
    case R_CONNECTED:
      smtpc_plan_connected(p, r->now, r->sid);
      break;
    case R_READ:
      smtpc_plan_read(p, r->now, r->sid, r->text, (size_t)r->arg);
      break;
    case R_EOF:
      smtpc_plan_eof(p, r->now, r->sid, SMTPC_ECLOSED, NULL);
      break;
    case R_RELEASED:
      smtpc_plan_released(p, r->now, r->sid);
      break;
    case R_TICK:
      smtpc_plan_tick(p, r->now);
      break;
    case R_DRAIN:
      while (smtpc_plan_next(p, r->now, &a)) s = action_sum(s, &a);
      break;
    }
  }
  if (p) smtpc_plan_free(p);
  t = tcpu() - t0;
  *sum = plan ? s : junk;
  return t;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  smtpc_plan_opts po;
  smtpc_plan_stats st;
  size_t peak_pending = 0, mem_at_peak_pending = 0;
  double t_start, sim_cpu, walk, runs[16], plan_cpu;
  long i, nrep = 3;
  uint64_t sum;
  int ok = 1;
  struct rusage ru;
  for (i = 1; i + 1 < argc; i += 2) {
    long v = strtol(argv[i + 1], NULL, 10);
    if (strcmp(argv[i], "--addresses") == 0) n_addr = v;
    else if (strcmp(argv[i], "--domains") == 0) n_dom = v;
    else if (strcmp(argv[i], "--hosts") == 0) n_host = v;
    else if (strcmp(argv[i], "--concurrency") == 0) conc = v;
    else if (strcmp(argv[i], "--replays") == 0) nrep = v < 1 ? 1 : v > 16 ? 16 : v;
  }
  S = calloc((size_t)conc, sizeof *S);
  host_latency = malloc((size_t)n_host * sizeof *host_latency);
  grey_seen = calloc((size_t)n_addr, 1);
  for (i = 0; i < n_host; i++) host_latency[i] = 50000 + rnd() % 250001; /* 50-300 ms */
  make_addresses();

  memset(&po, 0, sizeof po);
  smtpc_verify_opts_init(&po.verify);
  po.verify.concurrency = (int)conc;
  po.verify.per_host = 2;
  po.verify.rcpt_per_session = 50;
  po.verify.starttls = SMTPC_STARTTLS_OFF;
  po.verify.mail_from = "bench@plan.test";
  po.verify.helo = "bench.test";
  po.verify.deadline = 7200;
  po.verify.greylist_delay = 60;
  po.seed = 42;

  /* 1. the simulation, recording the planner calls */
  t_start = tcpu();
  P = new_plan(&po);
  for (i = 0; i < n_addr; i++) {
    record(R_ADD, 0, 0, (uint64_t)i, NULL);
    smtpc_plan_add(P, 0, abuf + aoff[i], aoff[i + 1] - aoff[i], (uint64_t)i);
  }
  record(R_END, 0, 0, 0, NULL);
  smtpc_plan_end(P);
  drain();
  for (;;) {
    if (nheap > 0 && (wake == 0 || heap[0].at <= wake)) {
      ev e = pop();
      if (e.at > now) now = e.at;
      deliver(&e);
    } else if (wake) {
      now = wake > now ? wake : now;
      wake = 0;
      record(R_TICK, now, 0, 0, NULL);
      smtpc_plan_tick(P, now);
    } else {
      break;
    }
    drain();
    smtpc_plan_stats_get(P, &st);
    if (st.pending > peak_pending) {
      peak_pending = st.pending;
      mem_at_peak_pending = st.memory;
    }
  }
  sim_cpu = tcpu() - t_start;
  smtpc_plan_stats_get(P, &st);
  smtpc_plan_free(P);
  P = NULL;

  /* 2. the planner alone: the record replayed */
  walk = replay(&po, 0, &sum);
  for (i = 0; i < nrep; i++) {
    runs[i] = replay(&po, 1, &sum) - walk;
    if (sum != actions_sum) ok = 0;
  }
  qsort(runs, (size_t)nrep, sizeof *runs, cmp_double);
  plan_cpu = runs[nrep / 2];

  getrusage(RUSAGE_SELF, &ru);
  printf("bench/plan: %ld addresses, %ld domains, %ld MX hosts (latency 50-300 ms, 2%% "
         "greylisted once, 1%% of sessions 421 + hang-up), concurrency %ld, per_host 2, 50 "
         "RCPTs/session\n", n_addr, n_dom, n_host, conc);
  printf("  results                 %llu of %ld%s\n", (unsigned long long)st.results, n_addr,
         st.results == (uint64_t)n_addr ? " (one each)" : "  MISSING");
  printf("  simulated wall time     %.1f s (%.0f addresses/s)\n", (double)now / 1e6,
         (double)n_addr / ((double)now / 1e6));
  printf("  connections per address %.4f (%llu sessions)\n",
         (double)st.sessions_opened / (double)n_addr, (unsigned long long)st.sessions_opened);
  printf("  planner CPU per address %.2f us (goal <= 2 us; thread CPU of %zu recorded calls "
         "replayed alone, median of %ld: %.2f..%.2f us; replay %s)\n",
         plan_cpu * 1e6 / (double)n_addr, ntrace, nrep, runs[0] * 1e6 / (double)n_addr,
         runs[nrep - 1] * 1e6 / (double)n_addr, ok ? "identical" : "DIFFERED");
  /* the same figure from two builds of the core: they handed out the very same actions */
  printf("  checksums               actions %016llx, results %016llx\n",
         (unsigned long long)actions_sum, (unsigned long long)results_sum);
  printf("  the simulator's own CPU %.2f us per address (the simulation run's %.2f us less "
         "the planner's)\n", (sim_cpu - plan_cpu) * 1e6 / (double)n_addr,
         sim_cpu * 1e6 / (double)n_addr);
  printf("  planner memory          peak %.1f MiB with %zu pending: %.0f octets per pending "
         "address (goal <= 1024); %.1f KiB left after the run\n",
         (double)st.memory_peak / 1048576.0, peak_pending,
         (double)mem_at_peak_pending / (double)(peak_pending ? peak_pending : 1),
         (double)st.memory / 1024.0);
  printf("  process peak RSS        %.1f MiB (dialogs' buffers and the record included)\n",
         (double)ru.ru_maxrss / 1024.0);
  free(S);
  free(host_latency);
  free(grey_seen);
  free(heap);
  free(trace);
  free(abuf);
  free(aoff);
  return st.results == (uint64_t)n_addr && ok ? 0 : 1;
}
