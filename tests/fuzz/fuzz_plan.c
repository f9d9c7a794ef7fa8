/*
 * fuzz_plan.c -- random event sequences into the planner (plan.c): addresses, routes (good,
 * failed, odd), connects, server bytes (fragments of real replies and garbage), TLS outcomes,
 * hang-ups, releases (right and wrong sids), ticks and time jumps, cancel. The planner must
 * never crash, leak, hand out an action for a sid it does not own, nor report an address
 * twice. Each input byte picks the next event; following bytes give its arguments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "smtpcode.h"

#define NADDR 64
#define NSID 4

typedef struct in {
  const uint8_t *p;
  size_t n;
} in;

static unsigned take(in *x) {
  unsigned v;
  if (x->n == 0) return 0;
  v = *x->p++;
  x->n--;
  return v;
}

static const char *const addrs[] = {
  "a@x.test", "b@x.test", "c@y.test", "d@z.test", "bad address", "", "e@[127.0.0.1]",
  "f@[IPv6:::1]", "g@x.test", "\xc3\xa9@x.test", "h@y.test", "i@nx.test",
};

static const char *const replies[] = {
  "220 ok\r\n", "250-x\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n", "250 ok\r\n",
  "220 go\r\n", "550 5.1.1 no\r\n", "450 4.2.0 greylisted\r\n", "421 4.7.0 bye\r\n",
  "452 4.5.3 too many\r\n", "554 no\r\n", "250 2.1.5 ok\r\n", "221 bye\r\n", "garbage\r\n",
  "250-", "\r\n", "451 4.7.1 rate limited, retry in 30 seconds\r\n", "552 5.2.2 full\r\n",
};

typedef struct run {
  smtpc_plan *p;
  uint64_t now;
  int owned[NSID];   /* 0 free, 1 connect asked, 2 close asked */
  uint64_t tokens[8];
  size_t ntok;
  unsigned char seen[NADDR];
} run;

static void drain(run *r) {
  smtpc_plan_action a;
  size_t i;
  int guard = 0;
  while (smtpc_plan_next(r->p, r->now, &a) && ++guard < 100000) {
    switch (a.type) {
    case SMTPC_PLAN_RESOLVE:
      if (r->ntok < 8) r->tokens[r->ntok++] = a.token;
      break;
    case SMTPC_PLAN_CONNECT:
      if (a.sid >= NSID || r->owned[a.sid] != 0) abort();
      r->owned[a.sid] = 1;
      break;
    case SMTPC_PLAN_WRITE:
      if (a.sid >= NSID || r->owned[a.sid] != 1 || a.len == 0) abort();
      for (i = 0; i + 6 <= a.len; i++)
        if (memcmp(a.data + i, "DATA\r\n", 6) == 0) abort();
      break;
    case SMTPC_PLAN_START_TLS:
      if (a.sid >= NSID || r->owned[a.sid] != 1) abort();
      break;
    case SMTPC_PLAN_CLOSE:
      if (a.sid >= NSID || r->owned[a.sid] != 1) abort();
      r->owned[a.sid] = 2;
      break;
    case SMTPC_PLAN_RESULT:
      if (a.result->tag >= NADDR || r->seen[a.result->tag]++) abort();
      break;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in x = {data, size};
  run r;
  smtpc_plan_opts o;
  uint64_t ntag = 0;
  unsigned i;
  memset(&r, 0, sizeof r);
  memset(&o, 0, sizeof o);
  smtpc_verify_opts_init(&o.verify);
  o.verify.concurrency = NSID;
  o.verify.per_host = 1 + (int)(take(&x) % 3);
  o.verify.rcpt_per_session = 1 + (int)(take(&x) % 8);
  o.verify.max_rejections = 1 + (int)(take(&x) % 4);
  o.verify.catch_all = (int)(take(&x) & 1);
  o.verify.transcript = (int)(take(&x) & 1);
  o.verify.starttls = (int)(take(&x) % 3);
  o.seed = 1;
  r.p = smtpc_plan_new(&o, NULL);
  if (r.p == NULL) return 0;
  while (x.n > 0) {
    unsigned op = take(&x) % 12, a = take(&x), sid = a % (NSID + 1);
    switch (op) {
    case 0:
      if (ntag < NADDR) {
        const char *s = addrs[a % (sizeof addrs / sizeof *addrs)];
        if (smtpc_plan_add(r.p, r.now, s, strlen(s), ntag) == 0) ntag++;
      }
      break;
    case 1: { /* a route: one or two MX hosts, one of two addresses each, or a failure */
      smtpc_route rt;
      smtpc_mx mx[2];
      smtpc_sockaddr sa[2];
      unsigned b = take(&x);
      uint64_t tok = r.ntok ? r.tokens[a % r.ntok] : a;
      memset(&rt, 0, sizeof rt);
      memset(sa, 0, sizeof sa);
      for (i = 0; i < 2; i++) {
        sa[i].in.sin_family = (b >> i) & 4 ? AF_INET6 : AF_INET;
        sa[i].in.sin_addr.s_addr = htonl(0x0a000001u + ((b >> (i + 3)) & 1));
        mx[i].preference = (int)i;
        mx[i].host = i ? "mx2.test" : "mx1.test";
        mx[i].naddrs = 1;
        mx[i].addrs = &sa[i];
      }
      rt.domain = "x.test";
      rt.nmx = 1 + (b & 1);
      rt.mx = mx;
      if (b & 2) rt.error = SMTPC_DNS_SERVFAIL, rt.nmx = 0;
      if ((b & 0xc0) == 0xc0) rt.null_mx = 1, rt.nmx = 0;
      smtpc_plan_resolved(r.p, r.now, tok, (b & 0x20) ? SMTPC_EDNS : 0, &rt);
      break;
    }
    case 2:
      smtpc_plan_connected(r.p, r.now, sid);
      break;
    case 3: {
      const char *s = replies[take(&x) % (sizeof replies / sizeof *replies)];
      smtpc_plan_read(r.p, r.now, sid, s, strlen(s));
      break;
    }
    case 4: { /* raw bytes from the input */
      size_t n = a % 32 < x.n ? a % 32 : x.n;
      smtpc_plan_read(r.p, r.now, sid, (const char *)x.p, n);
      x.p += n;
      x.n -= n;
      break;
    }
    case 5:
      smtpc_plan_tls(r.p, r.now, sid, (int)(a & 1));
      break;
    case 6:
      smtpc_plan_eof(r.p, r.now, sid, (a & 1) ? SMTPC_ECLOSED : SMTPC_ETIMEOUT, NULL);
      break;
    case 7: /* released: only after CLOSE for the real driver, anywhen here */
      if (smtpc_plan_released(r.p, r.now, sid) == 0) {
        if (sid >= NSID || r.owned[sid] != 2) abort();
        r.owned[sid] = 0;
      }
      break;
    case 8:
      r.now += (uint64_t)a * (a & 0x80 ? 1000000 : 1000);
      smtpc_plan_tick(r.p, r.now);
      break;
    case 9:
      smtpc_plan_end(r.p);
      break;
    case 10:
      if (a == 0x7f) smtpc_plan_cancel(r.p, r.now);
      break;
    default:
      smtpc_plan_tick(r.p, r.now);
    }
    drain(&r);
  }
  /* a long wait at the end: deadlines and timers run out; every result must come */
  for (i = 0; i < 50; i++) {
    unsigned s;
    r.now += 400000000u;
    smtpc_plan_tick(r.p, r.now);
    drain(&r);
    for (s = 0; s < NSID; s++)
      if (r.owned[s] == 1) smtpc_plan_eof(r.p, r.now, s, SMTPC_ECLOSED, NULL);
    drain(&r);
    for (s = 0; s < NSID; s++)
      if (r.owned[s] == 2 && smtpc_plan_released(r.p, r.now, s) == 0) r.owned[s] = 0;
    drain(&r);
  }
  for (i = 0; i < ntag; i++) /* every address: exactly one result once its deadline passed */
    if (r.seen[i] != 1) abort();
  smtpc_plan_free(r.p);
  return 0;
}
