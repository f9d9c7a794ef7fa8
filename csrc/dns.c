/* dns.c -- the MX resolver: c-ares driven by a libuv loop.
 *
 * c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB): one uv_poll_t per
 * socket. Its retransmission clock is a uv_timer_t re-armed from ares_timeout() after every
 * ares_process_fd() and every new query -- c-ares has no clock of its own, so a timer left
 * unarmed means a lost packet is never retried and the lookup hangs.
 *
 * One "job" per domain in flight: c-ares carries the queries of the route machine
 * (dns_route.c: which queries, and what their answers make of the route). Requests for a
 * domain already in flight join its job.
 * Callbacks never run inside c-ares: finished work goes to a ready queue that a zero timer
 * drains, so a callback may close the resolver (which c-ares forbids inside its callbacks).
 */
#include "dns_internal.h"

#include <ares.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_TRIES 2
#define DEFAULT_CACHE 4096
#define DEFAULT_MAX_TTL 3600
#define DEFAULT_NEG_TTL 60
/* Domains resolved at once; the rest wait their turn (their deadline starts with them). A burst
 * of hundreds of queries overflows a server's socket buffer (dnsmasq drops them, and the lost
 * ones cost a whole retransmission timeout) and looks like abuse to public resolvers. */
#define MAX_ACTIVE_JOBS 32

typedef struct ready { /* a callback waiting to run */
  smtpc_resolve_cb cb;
  void *data;
  int status;
  smtpc__rblock *block; /* a reference, or NULL when status < 0 */
  struct ready *next;
} ready;

typedef struct job job;

typedef struct qctx { /* what a c-ares callback needs to find its place */
  job *j;
  unsigned id; /* the route machine's query id */
} qctx;

struct job {
  smtpc_resolver *r;
  job *next;              /* in-flight list */
  ready *waiters;
  uint64_t deadline;      /* uv_now() ms */
  int outstanding;        /* c-ares queries not yet called back (+1 while starting some) */
  int done;               /* answered; kept only until the outstanding queries return */
  int nomem;
  qctx q[2 * SMTPC__DNS_MAX_MX + 1];
  smtpc__mxq m;           /* m.domain: the key joiners look for */
};

typedef struct spoll {
  uv_poll_t h;
  smtpc_resolver *r;
  ares_socket_t fd;
  struct spoll *next;
} spoll;

struct smtpc_resolver {
  uv_loop_t *loop;
  ares_channel channel;
  uv_timer_t ares_timer, deadline_timer, ready_timer;
  spoll *polls;
  job *jobs;              /* resolving now                                             */
  job *queued, **queued_tail; /* waiting for a free slot, oldest first                 */
  int nactive, starting;
  ready *ready_head, **ready_tail;
  int handles;            /* open uv handles: freed when the last one has closed */
  int closing;
  smtpc_resolver_close_cb close_cb;
  void *close_data;
  int timeout_ms, family;
  uint32_t max_ttl, neg_ttl;
  uint64_t rng;
  smtpc__cache routes, hosts;
  smtpc_resolver_stats stats;
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status;
static void ares_global_init(void) { ares_init_status = ares_library_init(ARES_LIB_INIT_ALL); }

/* ---------------------------------------------------------------------------------------- */
/* Caches: routes by domain (what callers get) and addresses by host (what many domains share:
 * hosted mail puts thousands of domains behind the same few MX hosts).                      */

typedef struct hentry {
  smtpc__centry ce;
  char name[256];
  int fail;               /* as host.fail */
  size_t n4, n6;
  smtpc_sockaddr addrs[]; /* n4 IPv4, then n6 IPv6 */
} hentry;

static void drop_route(smtpc__centry *e) { smtpc__rblock_unref((smtpc__rblock *)(void *)e); }
static void drop_host(smtpc__centry *e) { free(e); }

void smtpc_resolver_flush(smtpc_resolver *r) {
  smtpc__cache_clear(&r->routes);
  smtpc__cache_clear(&r->hosts);
}

void smtpc_resolver_stats_get(const smtpc_resolver *r, smtpc_resolver_stats *out) {
  *out = r->stats;
  out->cached = r->routes.count;
}

/* ---------------------------------------------------------------------------------------- */
/* Delivery                                                                                 */

static void on_ready(uv_timer_t *t);

static void ready_push(smtpc_resolver *r, ready *w) {
  w->next = NULL;
  *r->ready_tail = w;
  r->ready_tail = &w->next;
  if (!uv_is_active((uv_handle_t *)&r->ready_timer))
    uv_timer_start(&r->ready_timer, on_ready, 0, 0);
}

static ready *ready_pop(smtpc_resolver *r) {
  ready *w = r->ready_head;
  if (w && (r->ready_head = w->next) == NULL) r->ready_tail = &r->ready_head;
  return w;
}

static void on_ready(uv_timer_t *t) {
  smtpc_resolver *r = t->data;
  ready *w;
  /* one at a time: a callback may close the resolver, which drains the queue itself */
  while (!r->closing && (w = ready_pop(r)) != NULL) {
    if (w->block) {
      smtpc_route *route = &w->block->route;
      uint64_t now = uv_now(r->loop);
      if (w->block->ce.expires > now)
        route->ttl = (uint32_t)((w->block->ce.expires - now + 999) / 1000);
      smtpc__route_shuffle(route, &r->rng); /* afresh for every caller */
      w->cb(0, route, w->data);
    } else {
      w->cb(w->status, NULL, w->data);
    }
    smtpc__rblock_unref(w->block);
    free(w);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* c-ares on libuv                                                                          */

static void on_handle_closed(uv_handle_t *h);
static void on_ares_timer(uv_timer_t *t);

static void arm_ares_timer(smtpc_resolver *r) {
  struct timeval tv, *t;
  if (r->closing) return;
  t = ares_timeout(r->channel, NULL, &tv);
  if (t == NULL) {
    uv_timer_stop(&r->ares_timer);
  } else {
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    uv_timer_start(&r->ares_timer, on_ares_timer, ms, 0);
  }
}

static void on_ares_timer(uv_timer_t *t) {
  smtpc_resolver *r = t->data;
  ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  arm_ares_timer(r);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  spoll *p = h->data;
  smtpc_resolver *r = p->r;
  ares_socket_t fd = p->fd;
  /* on a poll error let c-ares read and write: it then sees the socket's error itself */
  ares_process_fd(r->channel, status < 0 || (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                  status < 0 || (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
  arm_ares_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  smtpc_resolver *r = data;
  spoll **pp = &r->polls, *p;
  while (*pp && (*pp)->fd != fd) pp = &(*pp)->next;
  p = *pp;
  if (!readable && !writable) {
    if (p == NULL) return;
    *pp = p->next; /* unlinked now: c-ares may reuse the fd before the close completes */
    uv_close((uv_handle_t *)&p->h, on_handle_closed);
    return;
  }
  if (p == NULL) {
    if ((p = calloc(1, sizeof(*p))) == NULL) return; /* the query then times out */
    if (uv_poll_init_socket(r->loop, &p->h, fd) != 0) {
      free(p);
      return;
    }
    p->r = r;
    p->fd = fd;
    p->h.data = p;
    p->next = r->polls;
    r->polls = p;
    r->handles++;
  }
  uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

/* ---------------------------------------------------------------------------------------- */
/* Jobs                                                                                     */

static void job_pump(job *j);
static void job_check(job *j);
static void start_queued(smtpc_resolver *r);
static void arm_deadline(smtpc_resolver *r);
static void on_deadline(uv_timer_t *t);

static int map_status(int status) {
  switch (status) {
  case ARES_ENOTFOUND: return SMTPC_DNS_NXDOMAIN;
  case ARES_EREFUSED: case ARES_ECONNREFUSED: return SMTPC_DNS_REFUSED;
  case ARES_ETIMEOUT: return SMTPC_DNS_TIMEOUT;
  default: return SMTPC_DNS_SERVFAIL; /* SERVFAIL, FORMERR, NOTIMP, a bad response ... */
  }
}

/* The route machine's view of the host cache. */
static int host_known(void *ud, smtpc__dns_host *h) {
  smtpc_resolver *r = ud;
  uint64_t now = uv_now(r->loop);
  hentry *e = (hentry *)(void *)smtpc__cache_get(&r->hosts, h->name, now);
  uint32_t left;
  if (e == NULL) return 0;
  left = (uint32_t)((e->ce.expires - now + 999) / 1000);
  h->fail = e->fail;
  h->n4 = e->n4;
  h->n6 = e->n6;
  memcpy(h->v4, e->addrs, e->n4 * sizeof(*e->addrs));
  memcpy(h->v6, e->addrs + e->n4, e->n6 * sizeof(*e->addrs));
  if (e->n4 + e->n6) h->ttl = left;
  else h->nttl = left;
  return 1;
}

/* Remember a host whose lookups have all come back, for as long as its answers hold. */
static void host_learned(void *ud, const smtpc__dns_host *h) {
  smtpc_resolver *r = ud;
  size_t n = h->n4 + h->n6;
  uint32_t ttl = n ? h->ttl : h->nttl;
  hentry *e;
  int temporary = h->fail == SMTPC_DNS_TIMEOUT || h->fail == SMTPC_DNS_SERVFAIL ||
                  h->fail == SMTPC_DNS_REFUSED;
  if (temporary && ttl > SMTPC__DNS_FAILURE_TTL) ttl = SMTPC__DNS_FAILURE_TTL; /* AAAA timed out */
  if (ttl > r->max_ttl) ttl = r->max_ttl;
  if (ttl == 0 || r->hosts.max == 0) return;
  if ((e = malloc(sizeof(*e) + n * sizeof(smtpc_sockaddr))) == NULL) return;
  memset(e, 0, sizeof(*e));
  strcpy(e->name, h->name);
  e->ce.key = e->name;
  e->fail = h->fail;
  e->n4 = h->n4;
  e->n6 = h->n6;
  memcpy(e->addrs, h->v4, h->n4 * sizeof(*e->addrs));
  memcpy(e->addrs + h->n4, h->v6, h->n6 * sizeof(*e->addrs));
  smtpc__cache_put(&r->hosts, &e->ce, uv_now(r->loop) + (uint64_t)ttl * 1000);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
  qctx *q = arg;
  job *j = q->j;
  (void)timeouts;
  j->outstanding--;
  if (j->done || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
    job_check(j);
    return;
  }
  if (status == ARES_ENOMEM) {
    j->nomem = 1;
    smtpc__mxq_fail(&j->m, q->id, SMTPC_DNS_SERVFAIL);
  } else if (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) {
    smtpc__mxq_answer(&j->m, q->id, abuf, alen); /* the machine reads the rcode itself */
  } else {
    smtpc__mxq_fail(&j->m, q->id, map_status(status));
  }
  job_pump(j);
  job_check(j);
}

/* Hand c-ares the machine's queries. Held by one count meanwhile: c-ares may answer inside
 * ares_query (out of memory), and that answer must not free the job under us. */
static void job_pump(job *j) {
  unsigned id;
  const char *name;
  int type;
  j->outstanding++;
  while (!j->done && smtpc__mxq_next(&j->m, &id, &name, &type)) {
    qctx *q = &j->q[id];
    q->j = j;
    q->id = id;
    j->outstanding++;
    j->r->stats.queries++;
    ares_query(j->r->channel, name, 1 /* class IN */, type, on_answer, q);
  }
  j->outstanding--;
}

static void job_free(job *j) {
  while (j->waiters) {
    ready *w = j->waiters;
    j->waiters = w->next;
    free(w);
  }
  free(j);
}

static void unlink_job(job *j) {
  job **pp = &j->r->jobs;
  while (*pp && *pp != j) pp = &(*pp)->next;
  if (*pp) {
    *pp = j->next;
    j->r->nactive--;
  }
}

static void job_start(job *j) {
  smtpc_resolver *r = j->r;
  j->deadline = uv_now(r->loop) + (uint64_t)r->timeout_ms;
  j->next = r->jobs;
  r->jobs = j;
  r->nactive++;
  arm_deadline(r);
  job_pump(j);
  job_check(j);
}

/* Start queued jobs while there is room. Not re-entered: a job that finishes while starting
 * (a synchronous c-ares failure) makes room that this same loop then uses. */
static void start_queued(smtpc_resolver *r) {
  if (r->starting || r->closing) return;
  r->starting = 1;
  while (r->queued && r->nactive < MAX_ACTIVE_JOBS) {
    job *j = r->queued;
    if ((r->queued = j->next) == NULL) r->queued_tail = &r->queued;
    job_start(j);
  }
  r->starting = 0;
  arm_ares_timer(r);
}

static void arm_deadline(smtpc_resolver *r) {
  uint64_t first = UINT64_MAX, now = uv_now(r->loop);
  job *j;
  if (r->closing) return;
  for (j = r->jobs; j; j = j->next)
    if (j->deadline < first) first = j->deadline;
  if (first == UINT64_MAX) uv_timer_stop(&r->deadline_timer);
  else uv_timer_start(&r->deadline_timer, on_deadline, first > now ? first - now : 0, 0);
}

/* Build the route, cache it, queue the waiters. */
static void job_finish(job *j) {
  smtpc_resolver *r = j->r;
  smtpc__mxq_route_buf *rb = malloc(sizeof(*rb));
  smtpc__rblock *b = NULL;
  uint32_t ttl = 0;
  if (rb != NULL) {
    smtpc__mxq_route(&j->m, rb);
    ttl = rb->route.ttl;
    if (!j->nomem) b = smtpc__rblock_new(&rb->route);
    free(rb);
  }
  if (b && ttl > 0) {
    b->refs++;
    smtpc__cache_put(&r->routes, &b->ce, uv_now(r->loop) + (uint64_t)ttl * 1000);
  }
  while (j->waiters) {
    ready *w = j->waiters;
    j->waiters = w->next;
    w->block = b;
    w->status = b ? 0 : SMTPC_ENOMEM;
    if (b) b->refs++;
    ready_push(r, w);
  }
  smtpc__rblock_unref(b);
  j->done = 1;
  unlink_job(j);
  arm_deadline(r);
  start_queued(r);
}

static void job_check(job *j) {
  if (j->outstanding > 0) return;
  if (!j->done) {
    /* nothing in flight: every query is back (out of memory may have left one unanswered) */
    if (!smtpc__mxq_done(&j->m)) smtpc__mxq_expire(&j->m);
    job_finish(j);
  }
  job_free(j);
}

static void on_deadline(uv_timer_t *t) {
  smtpc_resolver *r = t->data;
  uint64_t now = uv_now(r->loop);
  job *j, *next;
  for (j = r->jobs; j; j = next) {
    next = j->next;
    if (j->deadline > now) continue;
    smtpc__mxq_expire(&j->m);
    job_finish(j); /* freed when its queries come back (or at ares_destroy) */
  }
  arm_deadline(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Public API                                                                               */

smtpc_resolver *smtpc_resolver_new(uv_loop_t *loop, const smtpc_resolver_opts *opts, int *err) {
  static const smtpc_resolver_opts defaults;
  struct ares_options ao;
  smtpc_resolver *r;
  int e = SMTPC_ENOMEM, tries, size;

  if (opts == NULL) opts = &defaults;
  if (err) *err = 0;
  if (loop == NULL || opts->timeout_ms < 0 || opts->tries < 0 ||
      opts->family < SMTPC_DNS_PREFER_IPV4 || opts->family > SMTPC_DNS_IPV6_ONLY) {
    e = SMTPC_EINVAL;
    goto fail0;
  }
  pthread_once(&ares_once, ares_global_init);
  if (ares_init_status != ARES_SUCCESS) {
    e = SMTPC_EDNS;
    goto fail0;
  }
  if ((r = calloc(1, sizeof(*r))) == NULL) goto fail0;
  r->loop = loop;
  r->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
  r->family = opts->family;
  r->max_ttl = opts->max_ttl ? opts->max_ttl : DEFAULT_MAX_TTL;
  r->neg_ttl = opts->negative_ttl ? opts->negative_ttl : DEFAULT_NEG_TTL;
  r->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)r ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
  r->ready_tail = &r->ready_head;
  r->queued_tail = &r->queued;
  size = opts->cache_size == 0 ? DEFAULT_CACHE : opts->cache_size < 0 ? 0 : opts->cache_size;
  if (smtpc__cache_init(&r->routes, (size_t)size, drop_route) != 0 ||
      smtpc__cache_init(&r->hosts, (size_t)size, drop_host) != 0)
    goto fail1;

  /* c-ares: our sockets, our clock; SERVFAIL/REFUSED reach us (NOCHECKRESP) instead of being
   * turned into a retry and then ECONNREFUSED. Each try gets a share of the deadline. */
  tries = opts->tries ? opts->tries : DEFAULT_TRIES;
  memset(&ao, 0, sizeof(ao));
  ao.flags = ARES_FLAG_NOCHECKRESP;
  ao.sock_state_cb = on_sock_state;
  ao.sock_state_cb_data = r;
  ao.timeout = r->timeout_ms / tries > 50 ? r->timeout_ms / tries : 50;
  ao.tries = tries;
  if (ares_init_options(&r->channel, &ao,
                        ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
                            ARES_OPT_TRIES) != ARES_SUCCESS) {
    e = SMTPC_EDNS;
    goto fail1;
  }
  if (opts->servers && opts->servers[0] &&
      ares_set_servers_ports_csv(r->channel, opts->servers) != ARES_SUCCESS) {
    e = SMTPC_EINVAL;
    goto fail2;
  }
  uv_timer_init(loop, &r->ares_timer);
  uv_timer_init(loop, &r->deadline_timer);
  uv_timer_init(loop, &r->ready_timer);
  r->ares_timer.data = r->deadline_timer.data = r->ready_timer.data = r;
  r->handles = 3;
  return r;
fail2:
  ares_destroy(r->channel);
fail1:
  smtpc__cache_free(&r->routes);
  smtpc__cache_free(&r->hosts);
  free(r);
fail0:
  if (err) *err = e;
  return NULL;
}

int smtpc_resolve_mx(smtpc_resolver *r, const char *domain, smtpc_resolve_cb cb, void *data) {
  char name[256];
  smtpc__rblock *b;
  ready *w;
  job *j;

  if (r == NULL || cb == NULL || domain == NULL) return SMTPC_EINVAL;
  if (r->closing) return SMTPC_ECANCELED;
  if (smtpc__dns_name_user(domain, strlen(domain), name) != 0) return SMTPC_EINVAL;
  if ((w = calloc(1, sizeof(*w))) == NULL) return SMTPC_ENOMEM;
  w->cb = cb;
  w->data = data;
  r->stats.resolutions++;

  if ((b = (smtpc__rblock *)(void *)smtpc__cache_get(&r->routes, name, uv_now(r->loop))) != NULL) {
    r->stats.cache_hits++;
    b->refs++;
    w->block = b;
    ready_push(r, w);
    return 0;
  }
  for (int pass = 0; pass < 2; pass++) {
    for (j = pass ? r->queued : r->jobs; j; j = j->next) {
      if (strcmp(j->m.domain, name) == 0) {
        r->stats.joined++;
        w->next = j->waiters;
        j->waiters = w;
        return 0;
      }
    }
  }
  if ((j = calloc(1, sizeof(*j))) == NULL) {
    free(w);
    r->stats.resolutions--;
    return SMTPC_ENOMEM;
  }
  j->r = r;
  smtpc__mxq_init(&j->m, name, r->family, r->neg_ttl, r->max_ttl);
  j->m.known = host_known;
  j->m.learned = host_learned;
  j->m.ud = r;
  j->waiters = w;
  *r->queued_tail = j;
  r->queued_tail = &j->next;
  start_queued(r);
  return 0;
}

static void on_handle_closed(uv_handle_t *h) {
  smtpc_resolver *r;
  if (h->type == UV_POLL) {
    spoll *p = h->data;
    r = p->r;
    free(p);
  } else {
    r = h->data;
  }
  if (--r->handles > 0 || !r->closing) return;
  /* the last handle: nothing can reach r any more */
  {
    smtpc_resolver_close_cb cb = r->close_cb;
    void *data = r->close_data;
    smtpc__cache_free(&r->routes);
    smtpc__cache_free(&r->hosts);
    free(r);
    if (cb) cb(data);
  }
}

void smtpc_resolver_close(smtpc_resolver *r, smtpc_resolver_close_cb close_cb, void *data) {
  ready *w;
  job *j;
  if (r == NULL || r->closing) return;
  r->closing = 1;
  r->close_cb = close_cb;
  r->close_data = data;
  /* every waiter hears about it now, in order: the ready ones first */
  while ((w = ready_pop(r)) != NULL) {
    smtpc__rblock_unref(w->block);
    w->cb(SMTPC_ECANCELED, NULL, w->data);
    free(w);
  }
  while ((j = r->jobs) != NULL || (j = r->queued) != NULL) {
    int queued = j == r->queued;
    if (queued) r->queued = j->next;
    else r->jobs = j->next;
    j->done = 1;
    while ((w = j->waiters) != NULL) {
      j->waiters = w->next;
      w->cb(SMTPC_ECANCELED, NULL, w->data);
      free(w);
    }
    if (queued) job_free(j); /* no query out: nobody else will free it */
  }
  r->queued_tail = &r->queued;
  /* c-ares calls back every query still out (ARES_EDESTRUCTION: their jobs are freed then)
   * and reports its sockets closed, which closes their polls */
  ares_destroy(r->channel);
  while (r->polls) {
    spoll *p = r->polls;
    r->polls = p->next;
    uv_close((uv_handle_t *)&p->h, on_handle_closed);
  }
  uv_close((uv_handle_t *)&r->ares_timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->deadline_timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->ready_timer, on_handle_closed);
}

/* ---------------------------------------------------------------------------------------- */
/* Blocking convenience: a private loop, one resolution, everything closed before returning. */

typedef struct blocking {
  smtpc_resolver *r;
  int status;
  smtpc_route *route;
} blocking;

static void on_blocking(int status, const smtpc_route *route, void *data) {
  blocking *b = data;
  b->status = status;
  if (status == 0 && (b->route = smtpc_route_dup(route)) == NULL) b->status = SMTPC_ENOMEM;
  smtpc_resolver_close(b->r, NULL, NULL);
}

int smtpc_resolve_blocking(const char *domain, const smtpc_resolver_opts *opts,
                           smtpc_route **out) {
  uv_loop_t loop;
  blocking b;
  int rc;

  if (out == NULL) return SMTPC_EINVAL;
  *out = NULL;
  if (uv_loop_init(&loop) != 0) return SMTPC_ENOMEM;
  memset(&b, 0, sizeof(b));
  if ((b.r = smtpc_resolver_new(&loop, opts, &rc)) != NULL) {
    rc = smtpc_resolve_mx(b.r, domain, on_blocking, &b);
    if (rc != 0) smtpc_resolver_close(b.r, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (rc == 0) rc = b.status;
  }
  uv_loop_close(&loop);
  if (rc == 0) *out = b.route;
  else smtpc_route_free(b.route);
  return rc;
}
