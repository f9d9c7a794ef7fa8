/*
 * engine_internal.h -- shared by the files of the probe engine; not installed.
 *   engine.c          names and options, scheduling (the tick), the public API
 *   engine_decide.c   items and results, deciding after a dialog event
 *   engine_session.c  sessions: connect, TLS, read/write, timers, close callbacks
 *   engine_route.c    the string-keyed table, hosts, domains, routes, groups
 *
 * Shapes:
 *   item     one input address (or a catch-all probe) and the last thing learnt about it;
 *   domain   a recipient domain: its route, and its catch-all state for the run;
 *   group    the addresses whose domains share a primary MX: they share sessions;
 *   host     one MX IP address: its session count, pause, backoff, "down" mark;
 *   session  one TCP connection and its dialog.
 */
#ifndef SMTPC_ENGINE_INTERNAL_H
#define SMTPC_ENGINE_INTERNAL_H

#include "smtpcode.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cache.h"
#include "tls.h"

#define MAX_ATTEMPTS 4      /* sessions an address may lose before it is reported        */
#define MAX_TEMP_RETRIES 2  /* retries of a 4xx (greylisting) RCPT reply                   */
#define PROBE_TRIES 3       /* catch-all probes a domain may lose or have deferred          */
#define HOST_DOWN_MS 60000  /* a host that refused us is skipped this long                  */
#define READ_BUF 65536

/* ---------------------------------------------------------------------------------------- */
/* intrusive lists */

typedef struct link {
  struct link *prev, *next;
} link;

#define CONTAINER(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

static inline void l_init(link *h) { h->prev = h->next = h; }
static inline int l_empty(const link *h) { return h->next == h; }
static inline void l_del(link *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}
static inline void l_push(link *h, link *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void l_push_front(link *h, link *n) {
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}

/* ---------------------------------------------------------------------------------------- */
/* types */

typedef struct saved { /* a reply kept past its read buffer */
  smtpc_reply r;
  smtpc_span lines[1];
} saved;

enum { IT_NEW, IT_IMMEDIATE, IT_RESOLVING, IT_QUEUED, IT_DELAYED, IT_SESSION, IT_HELD, IT_DONE };
/* A domain's catch-all probe: none sent yet, waiting at the head of its group's queue (accepted
 * addresses of the domain are held for it), sent, or answered (or given up on). */
enum { PROBE_NONE, PROBE_QUEUED, PROBE_INFLIGHT, PROBE_DONE };
enum { D_RESOLVING, D_READY, D_FAILED };

struct group;
struct domain;
struct host;

typedef struct item {
  link q;                 /* the list of its state                                    */
  link all;               /* every unreported input, in add order (deadline FIFO)     */
  struct domain *dom;
  uint64_t tag;
  char *input;
  size_t input_len;
  char *rcpt;             /* what RCPT TO carries: local part @ A-label domain          */
  size_t rcpt_len;
  unsigned utf8 : 1, probe : 1, reported : 1, in_dialog : 1;
  int state;
  int attempts, temp_retries;
  uint64_t deadline_ms, ready_ms;
  uint64_t added_hr;
  /* the last thing learnt */
  int reason, err, tls, greylisted, verdict, have_verdict;
  saved *reply;
  smtpc_class cls;
  const char *detail;
  const char *mx, *mx_addr;
  char *transcript;
  size_t transcript_len;
  smtpc__cached *cached;  /* seam: cache -- answered from the cache, reported as stored  */
} item;

typedef struct host {
  struct host *hnext;
  smtpc_sockaddr sa;
  char text[64];
  int active;
  int strikes;
  int no_tls;
  int src;                /* seam: source -- 1 + its index in v->srcs once chosen, 0 before */
  uint64_t next_ms;       /* no new session before (pause, backoff)                     */
  uint64_t down_until;    /* refused a connection or greeted with 4xx: skip until       */
  /* why it is down, for the addresses that never reached it */
  int fail_err, fail_reason;
  const char *fail_detail;
  saved *fail_reply;
  smtpc_class fail_cls;
} host;

typedef struct group {
  struct group *hnext;
  link node;
  char *key;
  smtpc_route *route;
  int own_route;          /* built here (address literal): free(), not smtpc_route_free */
  link queue;
  size_t nqueued;
  double reject_rate;     /* moving average of its RCPT replies >= 400 (see reject_odds) */
  unsigned long replies;  /* RCPT replies seen                                           */
} group;

typedef struct domain {
  struct domain *hnext;
  char *name;
  int state;
  int dns_error, null_mx;
  group *grp;
  link waiting;           /* items waiting for the route                               */
  link held;              /* accepted items waiting for the catch-all answer           */
  int catch_all;
  int probe_state;
  int probe_tries;
  char *probe_rcpt;       /* one random address per domain for the run: a greylisting
                             server must see the same one again on the retry            */
  void *batch_mark;
  unsigned long rcpt_ok, rcpt_rejected; /* RCPT replies to its addresses (see reject_odds) */
} domain;

typedef struct session {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  link node;
  struct smtpc_verifier *v;
  group *grp;
  host *h;
  const char *mx;
  smtpc_dialog *d;
  smtpc__tls *tls;
  smtpc_socks *socks;     /* seam: socks -- the proxy handshake, until the tunnel is open */
  int tls_state;          /* 0 clear, 1 handshaking, 2 up                               */
  int connected, closing, nclosing;
  unsigned long progress, armed_at; /* replies read + writes made; value when last armed */
  int backed_off;         /* one 421 or rate limit backs the host off once, not per address */
  item **items;
  size_t nitems;
} session;

typedef struct table {
  void **slots;
  size_t cap, n;
} table;

struct smtpc_verifier {
  uv_loop_t *loop;
  smtpc_verify_opts o;
  char *mail_from, *helo, *bind, *dns, *ca, *proxy_url, *cache_path;
  smtpc_sockaddr srcs[16];  /* seam: source -- parsed bind_address list (port 0)         */
  size_t nsrcs, next_src;
  smtpc_proxy proxy;        /* seam: socks -- parsed opts.proxy; proxy_sa is its address  */
  smtpc_sockaddr proxy_sa;
  int use_proxy;
  smtpc__rcache *cache;      /* seam: cache -- opts.cache opened, or NULL                    */
  int mail_from_utf8;
  smtpc_result_cb cb;
  void *data;
  smtpc_resolver *resolver;
  smtpc__tls_ctx *tls_ctx;
  uv_timer_t tick;
  int tick_armed;
  uint64_t tick_at;
  link immediate, delayed, all, groups, sessions;
  table domains, groups_t, hosts;
  size_t pending, active;
  int ended, canceled, closing, resolver_open, tick_open, in_tick;
  smtpc_verifier_close_cb close_cb;
  char readbuf[READ_BUF];
  char plainbuf[16384];
};

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

static inline char *dupstr(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s);
  p = malloc(n + 1);
  if (p) memcpy(p, s, n + 1);
  return p;
}

static inline uint64_t secs_ms(double s) { return s <= 0 ? 0 : (uint64_t)(s * 1000.0 + 0.5); }

/* ---------------------------------------------------------------------------------------- */
/* engine.c */

void smtpc__kick(smtpc_verifier *v);               /* schedule soon, from the tick      */
void smtpc__maybe_finish_close(smtpc_verifier *v); /* free v once every handle closed   */

/* ---------------------------------------------------------------------------------------- */
/* engine_decide.c */

void smtpc__item_free(item *it);
void smtpc__item_detach(item *it);
void smtpc__report(smtpc_verifier *v, item *it, int verdict, int reason);
void smtpc__learn(smtpc_verifier *v, item *it, session *s, int stage, const smtpc_reply *rep,
                  int err, int reason, const char *detail);
void smtpc__enqueue(smtpc_verifier *v, item *it, int front);
void smtpc__retry_or_report(smtpc_verifier *v, item *it, uint64_t after_ms);
void smtpc__flush_held(smtpc_verifier *v, domain *d);
void smtpc__host_down(session *s, const item *it);
void smtpc__adopt_host_failure(smtpc_verifier *v, item *it, const smtpc_route *route);
item *smtpc__probe_new(domain *d);
void smtpc__probe_lost(smtpc_verifier *v, domain *d, int count);
void smtpc__on_event(void *ud, const smtpc_dialog_event *ev); /* the dialog's callback */

/* ---------------------------------------------------------------------------------------- */
/* engine_session.c */

int smtpc__start_session(smtpc_verifier *v, group *g, host *h, const char *mx);
void smtpc__sess_close(session *s);

/* ---------------------------------------------------------------------------------------- */
/* engine_route.c */

host *smtpc__host_for(smtpc_verifier *v, const smtpc_sockaddr *sa);
void smtpc__route_free(smtpc_route *route, int own);
void smtpc__push_immediate(smtpc_verifier *v, item *it, int verdict, int reason);
void smtpc__dns_fail(smtpc_verifier *v, domain *d, item *it);
domain *smtpc__domain_for(smtpc_verifier *v, const char *name, int literal);

#endif
