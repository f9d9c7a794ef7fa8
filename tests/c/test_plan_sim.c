/*
 * test_plan_sim.c -- deterministic simulation of the planner (plan.c), in the spirit of
 * FoundationDB's: a seeded random world (domains sharing MX hosts, latencies, greylisting,
 * 421s, resets mid-reply, catch-all servers, rate limits, refused and silent hosts, DNS
 * failures, TLS that fails) is driven through the planner's public API by a simulated network
 * and clock, and invariants are checked after every step:
 *   exactly one result per address; no result after its deadline; never more than per_host
 *   sessions on one host nor more than concurrency in all; pauses between new sessions to a
 *   host; never more RCPTs in flight than the window allows (2 x max_rejections); rejections
 *   per session within 2 x max_rejections; no DATA, nothing after QUIT; verdicts that agree
 *   with what the servers said; in calm worlds every address gets its true answer; the
 *   planner's memory bounded while running and back to its records at the end.
 * SIM_SEEDS=n runs seeds 1..n (default 3000); SIM_SEED=s replays one seed and prints its
 * whole trace. A failing seed prints its trace's tail and the line to replay it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "smtpcode.h"

#define MAXH 10
#define MAXD 24
#define MAXA 2000 /* room for the packing world; random worlds have up to RANDA */
#define RANDA 260
#define MAXS 32
#define RANDS 24
#define MAXEV 20000
#define US 1000000ull

/* ---------------------------------------------------------------------------------------- */
/* randomness and the trace */

static uint64_t rs;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rs += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static int pick(int n) { return n <= 0 ? 0 : (int)(rnd() % (uint64_t)n); }
static int chance(int pct) { return pick(100) < pct; }

static char *trace;
static size_t tlen, tcap;
static int trace_all;
static uint64_t now;

static void tr(const char *fmt, ...) {
  char line[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = snprintf(line, sizeof line, "%10.6f ", (double)now / 1e6);
  n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  if (trace_all) fwrite(line, 1, (size_t)n, stdout);
  if (tlen + (size_t)n > tcap) {
    tcap = (tlen + (size_t)n) * 2;
    trace = realloc(trace, tcap);
  }
  memcpy(trace + tlen, line, (size_t)n);
  tlen += (size_t)n;
}

static uint64_t seed_now;
static jmp_buf fail_jmp;
static char fail_msg[256];

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      snprintf(fail_msg, sizeof fail_msg, __VA_ARGS__);               \
      longjmp(fail_jmp, 1);                                           \
    }                                                                 \
  } while (0)

/* ---------------------------------------------------------------------------------------- */
/* the world */

typedef struct shost {
  int refuse, blackhole, banner421, catchall, greylist, starttls, tls_fail, rate_after;
  int reset_pct;
  uint64_t latency, jitter; /* each reply: latency + up to jitter (in order)      */
  int active;
  uint64_t last_connect;
  char seen[MAXA]; /* greylisting: addresses tried once */
} shost;

enum { DNS_OK, DNS_NX, DNS_SERVFAIL, DNS_NULL, DNS_GONE };

typedef struct sdomain {
  char name[24];
  int dns, nmx, naddr[2], host[2][2], users;
  uint64_t dns_latency;
  uint64_t token; /* its RESOLVE's */
} sdomain;

typedef struct saddr {
  char text[64];
  int dom, user, syntax, results, accepted, rejected5, greylisted;
  int verdict, reason;
  uint64_t added;
} saddr;

typedef struct ssess {
  int used, host, gen, tls_wait, in_tls, quit, inflight, rejections, rcpts, banner_sent;
  char in[8192];
  size_t inlen;
  uint64_t reply_at;
} ssess;

enum { E_RESOLVED, E_CONNECTED, E_REFUSED, E_BYTES, E_EOF, E_TLS, E_RELEASED, E_ADD };

typedef struct ev {
  uint64_t at, seq;
  int type, sid, gen, arg, rcpt_replies;
  char *data;
} ev;

static shost H[MAXH];
static sdomain D[MAXD];
static saddr A[MAXA];
static ssess S[MAXS];
static int nh, nd, na, calm;
static ev E[MAXEV];
static int ne;
static uint64_t seq, wake;
static smtpc_verify_opts O;
static smtpc_plan *P;
static int ended, nadded;

static void push_ev(uint64_t at, int type, int sid, int arg, const char *data, int rr) {
  ev *e;
  CHECK(ne < MAXEV, "event queue overflow");
  e = &E[ne++];
  e->at = at;
  e->seq = seq++;
  e->type = type;
  e->sid = sid;
  e->gen = sid >= 0 ? S[sid].gen : 0;
  e->arg = arg;
  e->rcpt_replies = rr;
  e->data = data ? strdup(data) : NULL;
}

static int next_ev(void) { /* index of the earliest event (ties: first queued) */
  int i, b = -1;
  for (i = 0; i < ne; i++)
    if (b < 0 || E[i].at < E[b].at || (E[i].at == E[b].at && E[i].seq < E[b].seq)) b = i;
  return b;
}

static void make_world(void) {
  int i, j, k;
  memset(H, 0, sizeof H);
  memset(D, 0, sizeof D);
  memset(A, 0, sizeof A);
  memset(S, 0, sizeof S);
  calm = chance(25);
  nh = 1 + pick(MAXH);
  nd = 1 + pick(MAXD);
  for (i = 0; i < nh; i++) {
    shost *h = &H[i];
    h->latency = (uint64_t)(1000 + pick(300000));
    if (calm) continue;
    h->refuse = chance(8);
    h->blackhole = !h->refuse && chance(5);
    h->banner421 = chance(6);
    h->catchall = chance(15);
    h->greylist = chance(20);
    h->starttls = chance(40);
    h->tls_fail = h->starttls && chance(25);
    h->rate_after = chance(15) ? 1 + pick(12) : 0;
    h->reset_pct = chance(15) ? 1 + pick(10) : 0;
  }
  for (i = 0; i < nd; i++) {
    sdomain *d = &D[i];
    snprintf(d->name, sizeof d->name, "d%d.sim", i);
    d->dns = calm ? DNS_OK : chance(80) ? DNS_OK : pick(4) + 1;
    d->dns_latency = (uint64_t)pick(200000);
    d->users = pick(12);
    d->nmx = 1 + pick(2);
    for (j = 0; j < d->nmx; j++) {
      d->naddr[j] = 1 + pick(2);
      for (k = 0; k < d->naddr[j]; k++) d->host[j][k] = pick(nh);
    }
  }
  na = 1 + pick(RANDA);
  for (i = 0; i < na; i++) {
    saddr *a = &A[i];
    if (i > 0 && chance(5)) { /* the same input twice: two results */
      *a = A[pick(i)];
      a->results = a->accepted = a->rejected5 = a->greylisted = 0;
      continue;
    }
    a->dom = pick(nd);
    a->user = pick(16);
    if (chance(4)) {
      a->syntax = 1;
      snprintf(a->text, sizeof a->text, "bad address %d@%.20s", i, D[a->dom].name);
    } else {
      snprintf(a->text, sizeof a->text, "u%d@%.20s", a->user, D[a->dom].name);
    }
  }
  memset(&O, 0, sizeof O);
  smtpc_verify_opts_init(&O);
  O.concurrency = 1 + pick(RANDS);
  O.per_host = 1 + pick(3);
  O.rcpt_per_session = 1 + pick(30);
  O.max_rejections = 1 + pick(8);
  O.catch_all = chance(70);
  O.greylist_delay = chance(20) ? -1 : (double)pick(120);
  O.deadline = 30 + pick(600);
  O.timeout = 2 + pick(30);
  O.connect_timeout = 1 + pick(10);
  O.host_pause = chance(50) ? 0 : (double)pick(1000) / 1000.0;
  O.starttls = pick(3);
  O.mail_from = "probe@sim.test";
  O.helo = "sim.test";
  if (calm) {
    O.deadline = 100000;
    O.starttls = SMTPC_STARTTLS_OPPORTUNISTIC;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* the servers */

static void reply(int sid, const char *text, int rcpt_reply, int then_close) {
  ssess *s = &S[sid];
  shost *h = &H[s->host];
  uint64_t at = now + h->latency + (h->jitter ? (uint64_t)pick((int)h->jitter + 1) : 0);
  if (at < s->reply_at) at = s->reply_at;
  s->reply_at = at;
  if (h->reset_pct && chance(h->reset_pct)) { /* half a reply, then a reset */
    char half[256];
    size_t n = strlen(text) / 2;
    memcpy(half, text, n);
    half[n] = '\0';
    if (n) push_ev(at, E_BYTES, sid, 0, half, 0);
    push_ev(at, E_EOF, sid, 0, NULL, 0);
    s->quit = 1;
    return;
  }
  push_ev(at, E_BYTES, sid, 0, text, rcpt_reply);
  if (then_close) {
    push_ev(at, E_EOF, sid, 0, NULL, 0);
    s->quit = 1;
  }
}

static int addr_index(const char *rcpt, size_t n) {
  int i;
  for (i = 0; i < na; i++)
    if (!A[i].syntax && strlen(A[i].text) == n && memcmp(A[i].text, rcpt, n) == 0) return i;
  return -1;
}

/* What the server said about an address, noted on every copy of it in the input. */
static void note(int ai, int accepted) {
  int i;
  for (i = 0; i < na; i++)
    if (strcmp(A[i].text, A[ai].text) == 0) {
      if (accepted) A[i].accepted = 1;
      else A[i].rejected5 = 1;
    }
}

static void server_line(int sid, const char *line) {
  ssess *s = &S[sid];
  shost *h = &H[s->host];
  char buf[256];
  CHECK(strncmp(line, "DATA", 4) != 0, "DATA sent on session %d", sid);
  CHECK(!s->quit, "command after QUIT or hang-up on session %d: %.64s", sid, line);
  CHECK(!s->tls_wait, "bytes in clear after 220 to STARTTLS on session %d", sid);
  if (strncmp(line, "EHLO", 4) == 0) {
    snprintf(buf, sizeof buf, "250-mx%d.sim\r\n250-PIPELINING\r\n%s250 ENHANCEDSTATUSCODES\r\n",
             s->host, h->starttls && !s->in_tls ? "250-STARTTLS\r\n" : "");
    reply(sid, buf, 0, 0);
  } else if (strncmp(line, "HELO", 4) == 0) {
    reply(sid, "250 mx.sim\r\n", 0, 0);
  } else if (strncmp(line, "STARTTLS", 8) == 0) {
    reply(sid, "220 2.0.0 go ahead\r\n", 0, 0);
    s->tls_wait = !s->quit;
  } else if (strncmp(line, "MAIL FROM:", 10) == 0) {
    reply(sid, "250 2.1.0 ok\r\n", 0, 0);
  } else if (strncmp(line, "RCPT TO:<", 9) == 0) {
    const char *r = line + 9, *e = strchr(r, '>');
    int ai = e ? addr_index(r, (size_t)(e - r)) : -1;
    int known = ai >= 0 && A[ai].user < D[A[ai].dom].users;
    s->inflight++;
    s->rcpts++;
    CHECK(s->inflight <= 2 * O.max_rejections && s->inflight <= 64,
          "%d RCPTs in flight on session %d (max_rejections %d)", s->inflight, sid,
          O.max_rejections);
    if (h->rate_after && s->rcpts > h->rate_after) {
      reply(sid, "421 4.7.0 too many recipients, slow down\r\n", 1, 1);
    } else if (h->greylist && ai >= 0 && !h->seen[ai]) {
      h->seen[ai] = 1;
      A[ai].greylisted = 1;
      reply(sid, "450 4.2.0 greylisted, try again later\r\n", 1, 0);
    } else if (h->catchall || known) {
      if (ai >= 0) note(ai, 1);
      reply(sid, "250 2.1.5 ok\r\n", 1, 0);
    } else {
      if (ai >= 0) note(ai, 0);
      reply(sid, "550 5.1.1 user unknown\r\n", 1, 0);
    }
  } else if (strncmp(line, "RSET", 4) == 0) {
    reply(sid, "250 2.0.0 ok\r\n", 0, 0);
  } else if (strncmp(line, "QUIT", 4) == 0) {
    reply(sid, "221 2.0.0 bye\r\n", 0, 1);
  } else {
    reply(sid, "500 5.5.2 what?\r\n", 0, 0);
  }
}

static void server_bytes(int sid, const char *p, size_t n) {
  ssess *s = &S[sid];
  char *nl;
  CHECK(s->inlen + n < sizeof s->in, "the client sent too much without a line end");
  memcpy(s->in + s->inlen, p, n);
  s->inlen += n;
  s->in[s->inlen] = '\0';
  while ((nl = strstr(s->in, "\r\n")) != NULL) {
    size_t len = (size_t)(nl - s->in);
    char line[1024];
    CHECK(len < sizeof line, "overlong command line");
    memcpy(line, s->in, len);
    line[len] = '\0';
    memmove(s->in, nl + 2, s->inlen - len - 2);
    s->inlen -= len + 2;
    s->in[s->inlen] = '\0';
    tr("S%d <- %s", sid, line);
    if (!s->quit) server_line(sid, line);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* the driver: actions out of the planner */

static void make_route(const sdomain *d, smtpc_route *r, smtpc_mx *mx, smtpc_sockaddr sa[2][2],
                       char names[2][16]) {
  int j, k;
  memset(r, 0, sizeof *r);
  r->domain = d->name;
  r->nmx = (size_t)d->nmx;
  r->mx = mx;
  r->error = d->dns == DNS_NX ? SMTPC_DNS_NXDOMAIN : d->dns == DNS_SERVFAIL ? SMTPC_DNS_SERVFAIL : 0;
  r->null_mx = d->dns == DNS_NULL;
  if (d->dns != DNS_OK) r->nmx = 0;
  for (j = 0; j < d->nmx; j++) {
    snprintf(names[j], 16, "mx%d.%.10s", j, d->name);
    mx[j].preference = 10 * j;
    mx[j].host = names[j];
    mx[j].naddrs = (size_t)d->naddr[j];
    mx[j].addrs = sa[j];
    for (k = 0; k < d->naddr[j]; k++) {
      memset(&sa[j][k], 0, sizeof sa[j][k]);
      sa[j][k].in.sin_family = AF_INET;
      sa[j][k].in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)d->host[j][k]);
    }
  }
}

static void check_invariants(void);

static void perform(const smtpc_plan_action *a) {
  switch (a->type) {
  case SMTPC_PLAN_RESOLVE: {
    int i;
    for (i = 0; i < nd && strcmp(D[i].name, a->name) != 0; i++) {}
    CHECK(i < nd, "RESOLVE of a domain nobody asked for: %.64s", a->name);
    tr("RESOLVE %s token %llu", a->name, (unsigned long long)a->token);
    D[i].token = a->token;
    push_ev(now + D[i].dns_latency, E_RESOLVED, -1, (int)a->token, D[i].name, 0);
    break;
  }
  case SMTPC_PLAN_CONNECT: {
    int hi = (int)(ntohl(a->addr->in.sin_addr.s_addr) - 0x0a000000u);
    ssess *s = &S[a->sid];
    shost *h;
    CHECK(a->sid < (unsigned)O.concurrency, "sid %u out of range", a->sid);
    CHECK(!s->used, "CONNECT on sid %u in use", a->sid);
    CHECK(hi >= 0 && hi < nh, "CONNECT to an unknown host");
    CHECK(ntohs(a->addr->in.sin_port) == (uint16_t)O.port, "CONNECT to the wrong port");
    h = &H[hi];
    CHECK(h->last_connect == 0 || now + 1 >= h->last_connect + (uint64_t)(O.host_pause * 1e6),
          "two sessions to host %d within host_pause", hi);
    {
      int gen = s->gen;
      memset(s, 0, offsetof(ssess, in));
      s->gen = gen;
    }
    s->used = 1;
    s->host = hi;
    s->inlen = 0;
    h->active++;
    h->last_connect = now;
    tr("CONNECT S%u -> host %d (%s)", a->sid, hi, a->name);
    if (h->refuse) push_ev(now + h->latency, E_REFUSED, (int)a->sid, 0, NULL, 0);
    else if (!h->blackhole) push_ev(now + h->latency / 2, E_CONNECTED, (int)a->sid, 0, NULL, 0);
    break;
  }
  case SMTPC_PLAN_WRITE:
    CHECK(S[a->sid].used, "WRITE on a closed sid %u", a->sid);
    tr("WRITE S%u %zu octets", a->sid, a->len);
    server_bytes((int)a->sid, a->data, a->len);
    break;
  case SMTPC_PLAN_START_TLS: {
    ssess *s = &S[a->sid];
    CHECK(s->used && s->tls_wait, "START_TLS without 220 to STARTTLS on S%u", a->sid);
    tr("START_TLS S%u", a->sid);
    s->tls_wait = 0;
    s->in_tls = !H[s->host].tls_fail;
    push_ev(now + H[s->host].latency, E_TLS, (int)a->sid, s->in_tls, NULL, 0);
    if (!s->in_tls) s->quit = 1;
    break;
  }
  case SMTPC_PLAN_CLOSE: {
    ssess *s = &S[a->sid];
    CHECK(s->used, "CLOSE on a free sid %u", a->sid);
    tr("CLOSE S%u", a->sid);
    s->used = 0;
    s->gen++; /* whatever the server still had on the wire is lost */
    H[s->host].active--;
    push_ev(now + 1, E_RELEASED, (int)a->sid, 0, NULL, 0);
    break;
  }
  case SMTPC_PLAN_WAKE:
    tr("WAKE %.6f", (double)a->time / 1e6);
    CHECK(a->time == 0 || a->time >= now, "WAKE in the past");
    wake = a->time;
    break;
  case SMTPC_PLAN_RESULT: {
    const smtpc_result *r = a->result;
    saddr *x;
    CHECK(r->tag < (uint64_t)na, "RESULT with an unknown tag");
    x = &A[r->tag];
    tr("RESULT %s -> %s/%s code %d", x->text, smtpc_verdict_name(r->verdict),
       smtpc_reason_name(r->reason), r->reply.code);
    CHECK(++x->results == 1, "two results for %.64s", x->text);
    CHECK(r->address_len == strlen(x->text) && memcmp(r->address, x->text, r->address_len) == 0,
          "RESULT for the wrong address");
    CHECK(now <= x->added + (uint64_t)(O.deadline * 1e6) + 1, "%.64s reported after its deadline",
          x->text);
    x->verdict = r->verdict;
    x->reason = r->reason;
    if (x->syntax)
      CHECK(r->verdict == SMTPC_VERDICT_UNDELIVERABLE && r->reason == SMTPC_REASON_SYNTAXERROR,
            "a syntax error not reported as one");
    if (r->verdict == SMTPC_VERDICT_DELIVERABLE || (r->verdict == SMTPC_VERDICT_RISKY &&
                                                    r->reason != SMTPC_REASON_MAILBOXFULL))
      CHECK(x->accepted, "%.64s reported %s but no server accepted it", x->text,
            smtpc_verdict_name(r->verdict));
    if (r->verdict == SMTPC_VERDICT_UNDELIVERABLE && r->reason == SMTPC_REASON_USERUNKNOWN)
      CHECK(x->rejected5, "%.64s reported unknown but no server said so", x->text);
    if (!x->syntax && D[x->dom].dns == DNS_NX)
      CHECK(r->reason == SMTPC_REASON_HOSTUNKNOWN, "NXDOMAIN not reported as hostunknown");
    break;
  }
  default:
    CHECK(0, "unknown action %d", a->type);
  }
}

static void drain(void) {
  smtpc_plan_action a;
  int n = 0;
  while (smtpc_plan_next(P, now, &a)) {
    CHECK(++n < 100000, "the planner hands out actions without end");
    perform(&a);
  }
  check_invariants();
}

static void check_invariants(void) {
  smtpc_plan_stats st;
  int i, open = 0;
  for (i = 0; i < nh; i++)
    CHECK(H[i].active <= O.per_host, "%d sessions on host %d (per_host %d)", H[i].active, i,
          O.per_host);
  for (i = 0; i < MAXS; i++) {
    open += S[i].used;
    CHECK(S[i].rejections <= 2 * O.max_rejections, "%d rejections on S%d (max_rejections %d)",
          S[i].rejections, i, O.max_rejections);
  }
  CHECK(open <= O.concurrency, "%d sessions open, concurrency %d", open, O.concurrency);
  smtpc_plan_stats_get(P, &st);
  CHECK(st.memory <= 65536 + 2048 * (size_t)na + 1024 * (size_t)(nd + nh) +
                         8192 * (size_t)O.concurrency * (size_t)O.rcpt_per_session / 8,
        "planner memory %zu octets", st.memory);
}

/* ---------------------------------------------------------------------------------------- */
/* events into the planner */

static void deliver(ev *e) {
  ssess *s = e->sid >= 0 ? &S[e->sid] : NULL;
  if (s && (e->gen != s->gen || (!s->used && e->type != E_RELEASED))) return; /* closed */
  switch (e->type) {
  case E_RESOLVED: {
    int i;
    smtpc_route r;
    smtpc_mx mx[2];
    smtpc_sockaddr sa[2][2];
    char names[2][16];
    for (i = 0; i < nd && strcmp(D[i].name, e->data) != 0; i++) {}
    tr("resolved %s (%d)", D[i].name, D[i].dns);
    make_route(&D[i], &r, mx, sa, names);
    if (D[i].dns == DNS_GONE) smtpc_plan_resolved(P, now, (uint64_t)e->arg, SMTPC_EDNS, NULL);
    else smtpc_plan_resolved(P, now, (uint64_t)e->arg, 0, &r);
    break;
  }
  case E_CONNECTED:
    tr("connected S%d", e->sid);
    CHECK(smtpc_plan_connected(P, now, (unsigned)e->sid) == 0, "connected refused");
    if (H[s->host].banner421) reply(e->sid, "421 4.3.2 busy, try later\r\n", 0, 1);
    else reply(e->sid, "220 mx.sim ESMTP\r\n", 0, 0);
    break;
  case E_REFUSED:
    tr("refused S%d", e->sid);
    smtpc_plan_eof(P, now, (unsigned)e->sid, SMTPC_ECLOSED, "connection refused");
    break;
  case E_BYTES:
    tr("S%d -> %.*s", e->sid, (int)strcspn(e->data, "\r\n"), e->data);
    if (e->rcpt_replies) {
      s->inflight--;
      if (e->data[0] >= '4') s->rejections++;
    }
    smtpc_plan_read(P, now, (unsigned)e->sid, e->data, strlen(e->data));
    break;
  case E_EOF:
    tr("eof S%d", e->sid);
    smtpc_plan_eof(P, now, (unsigned)e->sid, SMTPC_ECLOSED, NULL);
    break;
  case E_TLS:
    tr("tls S%d %s", e->sid, e->arg ? "up" : "failed");
    smtpc_plan_tls(P, now, (unsigned)e->sid, e->arg);
    break;
  case E_RELEASED:
    tr("released S%d", e->sid);
    CHECK(smtpc_plan_released(P, now, (unsigned)e->sid) == 0, "release refused");
    break;
  case E_ADD:
    A[e->arg].added = now;
    tr("add %s", A[e->arg].text);
    CHECK(smtpc_plan_add(P, now, A[e->arg].text, strlen(A[e->arg].text), (uint64_t)e->arg) == 0,
          "add failed");
    if (++nadded == na) {
      smtpc_plan_end(P);
      ended = 1;
    }
    break;
  }
}

static int run_world(uint64_t seed, void (*world)(void), uint64_t *sessions);

static int run_seed(uint64_t seed) { return run_world(seed, make_world, NULL); }

/* The world of bench/probe's "one domain" row: 2,000 addresses of one domain on one host,
 * every tenth user unknown, all at once; 100 RCPTs a session, max_rejections 8, more
 * session slots than it needs. Replies come 50 ms after their command, give or take 2 ms (so
 * sessions started together spend their rejection budgets at nearby moments, not at one). */
#define PACK_ADDRS 2000
#define PACK_REJ 8
static void packing_world(void) {
  int i;
  memset(H, 0, sizeof H);
  memset(D, 0, sizeof D);
  memset(A, 0, sizeof A);
  memset(S, 0, sizeof S);
  calm = 1;
  nh = nd = 1;
  H[0].latency = 50000;
  H[0].jitter = 2000;
  snprintf(D[0].name, sizeof D[0].name, "d0.sim");
  D[0].users = 1; /* user 0 exists, user 1 does not */
  D[0].dns_latency = 1000; /* (a WAKE at time 0 would read as none) */
  D[0].nmx = 1;
  D[0].naddr[0] = 1;
  na = PACK_ADDRS;
  for (i = 0; i < na; i++) {
    A[i].user = i % 10 == 9;
    snprintf(A[i].text, sizeof A[i].text, "u%d@d0.sim", i); /* (the text is not the user) */
  }
  memset(&O, 0, sizeof O);
  smtpc_verify_opts_init(&O);
  O.concurrency = MAXS;
  O.per_host = MAXS;
  O.rcpt_per_session = 100; /* more than a budget covers: each session gives some back */
  O.max_rejections = PACK_REJ;
  O.catch_all = 0;
  O.greylist_delay = 60;
  O.deadline = 100000;
  O.host_pause = 0;
  O.starttls = SMTPC_STARTTLS_OFF;
  O.mail_from = "probe@sim.test";
  O.helo = "sim.test";
}

static int run_world(uint64_t seed, void (*world)(void), uint64_t *sessions) {
  smtpc_plan_opts po;
  int err, i;
  static int steps;
  rs = seed * 0x2545F4914F6CDD1DULL + 1;
  seed_now = seed;
  tlen = 0;
  now = 0;
  ne = 0;
  wake = 0;
  ended = nadded = 0;
  P = NULL;
  steps = 0;
  if (setjmp(fail_jmp)) {
    size_t from = tlen > 6000 ? tlen - 6000 : 0;
    printf("--- trace tail of seed %llu ---\n%.*s", (unsigned long long)seed,
           (int)(tlen - from), trace + from);
    printf("FAIL seed %llu at %.6f s: %s\nreplay: SIM_SEED=%llu %s\n", (unsigned long long)seed,
           (double)now / 1e6, fail_msg, (unsigned long long)seed, "tests/c/test_plan_sim");
    for (i = 0; i < ne; i++) free(E[i].data);
    ne = 0;
    smtpc_plan_free(P);
    return 1;
  }
  world();
  tr("seed %llu: %d hosts, %d domains, %d addresses%s, concurrency %d per_host %d rcpt %d "
     "max_rej %d catch_all %d greylist %.0f deadline %.0f", (unsigned long long)seed, nh, nd, na,
     calm ? " (calm)" : "", O.concurrency, O.per_host, O.rcpt_per_session, O.max_rejections,
     O.catch_all, O.greylist_delay, O.deadline);
  memset(&po, 0, sizeof po);
  po.verify = O;
  po.seed = seed;
  P = smtpc_plan_new(&po, &err);
  CHECK(P != NULL, "smtpc_plan_new: %d", err);
  /* most addresses at once, the rest trickling in (all at once in the packing world) */
  for (i = 0; i < na; i++)
    push_ev(i < na / 2 || world == packing_world || chance(50) ? 0 : (uint64_t)pick(5000000),
            E_ADD, -1, i, NULL, 0);
  for (;;) {
    int k = next_ev();
    CHECK(++steps < 400000, "no end in sight");
    if (k < 0 && wake == 0) break;
    if (k >= 0 && (wake == 0 || E[k].at <= wake)) {
      ev e = E[k];
      E[k] = E[--ne];
      if (e.at > now) now = e.at;
      deliver(&e);
      free(e.data);
      drain();
    } else {
      now = wake > now ? wake : now;
      wake = 0;
      smtpc_plan_tick(P, now);
      drain();
    }
  }
  CHECK(ended && smtpc_plan_done(P), "the run stalled: pending addresses and nothing to wait for");
  for (i = 0; i < na; i++) {
    saddr *a = &A[i];
    int known = !a->syntax && a->user < D[a->dom].users;
    CHECK(a->results == 1, "%.64s got %d results", a->text, a->results);
    if (calm && !a->syntax && D[a->dom].dns == DNS_OK) /* the true answer, every time */
      CHECK(a->verdict == (known ? SMTPC_VERDICT_DELIVERABLE : SMTPC_VERDICT_UNDELIVERABLE),
            "calm world: %.64s got %s/%s", a->text, smtpc_verdict_name(a->verdict),
            smtpc_reason_name(a->reason));
  }
  for (i = 0; i < MAXS; i++) CHECK(!S[i].used, "S%d never closed", i);
  for (i = 0; i < nd; i++) { /* what the planner learnt of each domain agrees with its hosts */
    int ca, m, k, some = 0, all = 1;
    if (D[i].token == 0) continue;
    ca = smtpc_plan_catch_all_of(P, D[i].token);
    for (m = 0; m < D[i].nmx; m++)
      for (k = 0; k < D[i].naddr[m]; k++) {
        some |= H[D[i].host[m][k]].catchall;
        all &= H[D[i].host[m][k]].catchall;
      }
    CHECK(ca >= -2 && ca <= 1, "%s: catch-all answer %d", D[i].name, ca);
    CHECK(ca < 0 || O.catch_all, "%s: a catch-all answer without probes", D[i].name);
    CHECK(ca != 1 || some, "%s: catch-all, yet none of its hosts is", D[i].name);
    CHECK(ca != 0 || !all || D[i].nmx == 0, "%s: not catch-all, yet all its hosts are", D[i].name);
  }
  CHECK(smtpc_plan_catch_all_of(P, 0) == SMTPC_EINVAL, "token 0 is nobody's");
  {
    smtpc_plan_stats st;
    smtpc_plan_stats_get(P, &st);
    /* every item is gone: what is left is the records of domains, groups and hosts */
    CHECK(st.memory <= 65536 + 2048 * (size_t)(nd + nh) + 64 * (size_t)na,
          "%zu octets held after the run", st.memory);
    if (sessions) *sessions = st.sessions_opened;
  }
  smtpc_plan_free(P);
  P = NULL;
  return 0;
}

static void test_simulated_worlds(void **state) {
  const char *one = getenv("SIM_SEED"), *many = getenv("SIM_SEEDS");
  uint64_t n = many ? strtoull(many, NULL, 10) : 3000, s, failed = 0;
  (void)state;
  if (one) {
    trace_all = 1;
    assert_int_equal(run_seed(strtoull(one, NULL, 10)), 0);
    return;
  }
  for (s = 1; s <= n && failed < 3; s++) failed += (uint64_t)run_seed(s);
  printf("simulated %llu seeds, %llu failed\n", (unsigned long long)(s - 1),
         (unsigned long long)failed);
  assert_int_equal(failed, 0);
}

/* How many sessions a batch costs. A session spends at most its rejection budget on
 * rejections (about: RCPTs already in flight may add one or two), so the unknown users alone
 * need ceil(unknown / max_rejections) sessions, and that is the floor when each session but
 * the last spends its whole budget. The addresses a session gives back beyond its budget must
 * go where budget is left, not into one new session each: the count stays within 10% of the
 * floor (issue 15's bound for bench/probe's row; without that, 20 sessions give back 20
 * handfuls and 40 sessions go where 25 do). Twenty worlds that differ in their replies'
 * timing. */
static void test_sessions_pack(void **state) {
  uint64_t s, opened, unknown = 0, floor_n, most = 0;
  int i;
  (void)state;
  packing_world();
  for (i = 0; i < PACK_ADDRS; i++) unknown += (uint64_t)A[i].user;
  floor_n = (unknown + PACK_REJ - 1) / PACK_REJ;
  for (s = 1; s <= 20; s++) {
    opened = 0;
    trace_all = getenv("PACK_TRACE") && (uint64_t)atoi(getenv("PACK_TRACE")) == s;
    assert_int_equal(run_world(s, packing_world, &opened), 0);
    if (opened > most) most = opened;
  }
  trace_all = 0;
  printf("packing world: %llu unknown users, budget %d: at most %llu sessions (floor %llu)\n",
         (unsigned long long)unknown, PACK_REJ, (unsigned long long)most,
         (unsigned long long)floor_n);
  assert_true(most * 10 <= floor_n * 11);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_simulated_worlds),
    cmocka_unit_test(test_sessions_pack),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(trace);
  return rc;
}
