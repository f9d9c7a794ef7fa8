/*
 * engine.c -- the libuv driver of the probe: it performs the planner's actions (plan.c) with
 * libuv handles, c-ares (dns.c) and OpenSSL memory BIOs (tls.c), and feeds back what happened.
 * It decides nothing about the batch: grouping, politeness, retries and results are the
 * planner's, so every driver behaves the same. Calls go one way: engine -> planner -> dialog.
 *
 * One timer serves the planner's WAKE; each session is one uv_tcp_t. Actions are performed
 * from the loop only (a 0 ms WAKE after smtpc_verifier_add), so nothing is reported
 * re-entrantly from smtpc_verifier_add. Memory is freed only from close callbacks.
 */
#include "smtpcode.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cache.h"
#include "tls.h"

#define READ_BUF 65536
#define SEEN_BUCKETS 1024

typedef struct xsess { /* one connection the planner asked for */
  uv_tcp_t tcp;
  uv_connect_t creq;
  struct smtpc_verifier *v;
  unsigned sid;
  smtpc__tls *tls;
  smtpc_socks *socks; /* seam: socks -- the proxy handshake, until the tunnel is open */
  int tls_state; /* 0 clear, 1 handshaking, 2 up */
  int closing, eof, connected;
} xsess;

/* seam: source, cache -- small string-keyed records the driver keeps per run: the source
 * address chosen for each MX address, the domains whose catch-all answer is stored */
typedef struct seen {
  struct seen *next;
  int value;
  char key[1];
} seen;

/* seam: cache -- a stored answer waiting to be reported from the loop */
typedef struct cached_item {
  struct cached_item *next;
  uint64_t tag;
  smtpc__cached *row;
  size_t len;
  char input[1];
} cached_item;

struct smtpc_verifier {
  uv_loop_t *loop;
  smtpc_plan *plan;
  smtpc_verify_opts o;
  char *bind, *dns, *ca, *proxy_url, *cache_path;
  smtpc_sockaddr srcs[16];  /* seam: source -- parsed bind_address list (port 0)         */
  size_t nsrcs, next_src;
  seen *src_of[SEEN_BUCKETS]; /* MX address text -> 1 + index in srcs, or -1             */
  smtpc_proxy proxy;        /* seam: socks -- parsed opts.proxy; proxy_sa is its address  */
  smtpc_sockaddr proxy_sa;
  int use_proxy;
  smtpc__rcache *cache;     /* seam: cache -- opts.cache opened, or NULL                   */
  seen *ca_stored[SEEN_BUCKETS];
  cached_item *cached_head, **cached_tail;
  size_t ncached;
  smtpc_result_cb cb;
  void *data;
  smtpc_resolver *resolver;
  smtpc__tls_ctx *tls_ctx;
  uv_timer_t tick;
  uint64_t wake_at; /* the planner's last WAKE (0 = none outstanding) */
  xsess **sess;     /* indexed by sid */
  size_t nsess;     /* connections not yet closed */
  int ended, canceled, closing, resolver_open, tick_open, draining;
  size_t resolving; /* resolver callbacks outstanding */
  smtpc_verifier_close_cb close_cb;
  char readbuf[READ_BUF];
  char plainbuf[16384];
};

typedef struct resolve_req {
  smtpc_verifier *v;
  uint64_t token;
} resolve_req;

/* The planner's clock, in microseconds: uv_hrtime rather than the loop's cached millisecond
 * clock, so that durations of fast local answers are not 0. */
static uint64_t now_us(smtpc_verifier *v) {
  (void)v;
  return uv_hrtime() / 1000;
}

static void drain(smtpc_verifier *v);
static void on_tick(uv_timer_t *t);
static void maybe_finish_close(smtpc_verifier *v);

/* ---------------------------------------------------------------------------------------- */
/* names and options */

static const char *const verdict_names[] = {
#define SMTPC__XX(id, name) name,
  SMTPC_VERDICT_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_verdict_name(int verdict) {
  return verdict >= 0 && verdict < SMTPC_VERDICT_COUNT ? verdict_names[verdict] : NULL;
}

int smtpc_starttls_from_name(const char *name, size_t len) {
  static const char *const names[] = {"opportunistic", "required", "off"};
  int i;
  if (name == NULL) return -1;
  for (i = 0; i < 3; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
  return -1;
}

void smtpc_verify_opts_init(smtpc_verify_opts *o) {
  memset(o, 0, sizeof *o);
  o->port = 25;
  o->concurrency = 100;
  o->per_host = 2;
  o->rcpt_per_session = 50;
  o->max_rejections = 8;
  o->starttls = SMTPC_STARTTLS_OPPORTUNISTIC;
  o->catch_all = 1;
  o->greylist_delay = 60.0;
  o->deadline = 300.0;
  o->timeout = 30.0;
  o->connect_timeout = 10.0;
  o->host_pause = 0.1;
  o->cache_positive_ttl = 31 * 86400.0; /* Postfix's address_verify_positive_expire_time */
  o->cache_negative_ttl = 3 * 86400.0;  /* and address_verify_negative_expire_time       */
}

/* ---------------------------------------------------------------------------------------- */
/* sessions: bytes in and out, TLS over memory BIOs */

typedef struct wreq {
  uv_write_t req;
  char data[1];
} wreq;

static void on_written(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error or EOF */
  free((char *)req - offsetof(wreq, req));
}

/* The connection is gone or going: tell the planner once. */
static void sess_eof(xsess *x, int err, const char *detail) {
  if (x->eof || x->closing) return;
  x->eof = 1;
  (void)smtpc_plan_eof(x->v->plan, now_us(x->v), x->sid, err, detail);
}

static void raw_send(xsess *x, const char *p, size_t n) {
  wreq *w;
  uv_buf_t b;
  if (n == 0 || x->closing || x->eof) return;
  w = malloc(offsetof(wreq, data) + n);
  if (w == NULL) {
    sess_eof(x, SMTPC_ENOMEM, "out of memory");
    return;
  }
  memcpy(w->data, p, n);
  b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&x->tcp, &b, 1, on_written) != 0) {
    free(w);
    sess_eof(x, SMTPC_ECLOSED, "write failed");
  }
}

static void tls_flush(xsess *x) {
  while (x->tls && smtpc__tls_pending(x->tls) > 0) {
    size_t n = smtpc__tls_take(x->tls, x->v->plainbuf, sizeof x->v->plainbuf);
    if (n == 0) break;
    raw_send(x, x->v->plainbuf, n);
  }
}

static void sess_write(xsess *x, const char *p, size_t n) {
  if (x->tls_state == 2) {
    if (smtpc__tls_write(x->tls, p, n) != 0) {
      sess_eof(x, SMTPC_ETLS, "TLS write failed");
      return;
    }
    tls_flush(x);
  } else {
    raw_send(x, p, n);
  }
}

static void start_tls(xsess *x, const char *sni) {
  smtpc_verifier *v = x->v;
  x->tls = v->tls_ctx ? smtpc__tls_new(v->tls_ctx, sni) : NULL;
  if (x->tls == NULL || smtpc__tls_handshake(x->tls) < 0) {
    (void)smtpc_plan_tls(v->plan, now_us(v), x->sid, 0);
    return;
  }
  x->tls_state = 1;
  tls_flush(x);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  xsess *x = h->data;
  (void)hint;
  *buf = uv_buf_init(x->v->readbuf, sizeof x->v->readbuf);
}

static void feed_tls(xsess *x, const char *p, size_t n) {
  smtpc_verifier *v = x->v;
  if (smtpc__tls_feed(x->tls, p, n) != 0) {
    sess_eof(x, SMTPC_ENOMEM, "out of memory");
    return;
  }
  if (x->tls_state == 1) {
    int rc = smtpc__tls_handshake(x->tls);
    tls_flush(x);
    if (rc < 0) {
      x->tls_state = 3;
      (void)smtpc_plan_tls(v->plan, now_us(v), x->sid, 0);
      return;
    }
    if (rc == 0) return;
    x->tls_state = 2;
    (void)smtpc_plan_tls(v->plan, now_us(v), x->sid, 1);
  }
  while (!x->closing && !x->eof) {
    long got = smtpc__tls_read(x->tls, v->plainbuf, sizeof v->plainbuf);
    if (got == 0) break;
    if (got < 0) {
      sess_eof(x, got == SMTPC_ECLOSED ? SMTPC_ECLOSED : SMTPC_ETLS, NULL);
      break;
    }
    (void)smtpc_plan_read(v->plan, now_us(v), x->sid, v->plainbuf, (size_t)got);
    drain(v); /* the dialog's answer goes out before more is decrypted */
  }
  tls_flush(x);
}

/* seam: socks -- proxy bytes go to the handshake until the tunnel is open; what follows (a
 * banner in the same packet) is the dialog's. Returns how many octets were the proxy's, or -1
 * when the session is over. */
static ssize_t socks_read(xsess *x, ssize_t nread, const uv_buf_t *buf) {
  smtpc_verifier *v = x->v;
  size_t used = 0, n;
  const char *out;
  int rc = nread < 0 ? smtpc_socks_eof(x->socks)
                     : smtpc_socks_feed(x->socks, buf->base, (size_t)nread, &used);
  if (rc < 0) {
    sess_eof(x, rc, smtpc_socks_detail(x->socks));
    return -1;
  }
  out = smtpc_socks_output(x->socks, &n);
  if (n) raw_send(x, out, n);
  smtpc_socks_consume(x->socks);
  if (rc == 1) { /* the tunnel is open: from here on it is an SMTP connection */
    smtpc_socks_free(x->socks);
    x->socks = NULL;
    x->connected = 1;
    (void)smtpc_plan_connected(v->plan, now_us(v), x->sid);
  }
  return (ssize_t)used;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  xsess *x = st->data;
  smtpc_verifier *v = x->v;
  uv_buf_t rest = *buf;
  if (x->closing || x->eof) return;
  if (x->socks) {
    ssize_t used = socks_read(x, nread, buf);
    if (used < 0 || x->socks || nread <= used) {
      drain(v);
      return;
    }
    rest.base += used;
    nread -= used;
  }
  /* through a proxy, the proxy is the one we see hang up */
  if (nread < 0) sess_eof(x, v->use_proxy ? SMTPC_EPROXYCLOSED : SMTPC_ECLOSED, NULL);
  else if (nread > 0 && x->tls_state == 0)
    (void)smtpc_plan_read(v->plan, now_us(v), x->sid, rest.base, (size_t)nread);
  else if (nread > 0 && (x->tls_state == 1 || x->tls_state == 2))
    feed_tls(x, rest.base, (size_t)nread);
  drain(v);
}

static void on_connect(uv_connect_t *req, int status) {
  xsess *x = req->data;
  smtpc_verifier *v = x->v;
  if (x->closing || x->eof) return;
  if (status < 0) {
    sess_eof(x, x->socks ? SMTPC_EPROXYCONNECT : SMTPC_ECLOSED, uv_strerror(status));
  } else if (uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read) != 0) {
    sess_eof(x, SMTPC_ECLOSED, "read failed");
  } else if (x->socks) { /* seam: socks -- the greeting; connected once the tunnel is open */
    size_t n;
    const char *out = smtpc_socks_output(x->socks, &n);
    raw_send(x, out, n);
    smtpc_socks_consume(x->socks);
  } else {
    x->connected = 1;
    (void)smtpc_plan_connected(v->plan, now_us(v), x->sid);
  }
  drain(v);
}

static void on_sess_closed(uv_handle_t *h) {
  xsess *x = h->data;
  smtpc_verifier *v = x->v;
  v->sess[x->sid] = NULL;
  v->nsess--;
  smtpc__tls_free(x->tls);
  smtpc_socks_free(x->socks);
  (void)smtpc_plan_released(v->plan, now_us(v), x->sid);
  free(x);
  if (v->cache) smtpc__rcache_store_answers(v->cache, v->plan); /* seam: cache */
  drain(v);
  maybe_finish_close(v);
}

static seen **seen_slot(seen **tab, const char *key) {
  uint64_t h = 1469598103934665603ULL;
  const char *k;
  seen **pp;
  for (k = key; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211ULL;
  for (pp = &tab[h % SEEN_BUCKETS]; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->key, key) == 0) break;
  return pp;
}

/* The value kept for key, or 0 (and remember value, when it can). */
static int seen_get_or_put(seen **tab, const char *key, int value) {
  seen **pp = seen_slot(tab, key), *n;
  size_t len;
  if (*pp) return (*pp)->value;
  len = strlen(key);
  if ((n = malloc(offsetof(seen, key) + len + 1)) == NULL) return 0;
  n->next = NULL;
  n->value = value;
  memcpy(n->key, key, len + 1);
  *pp = n;
  return 0;
}

static void seen_free(seen **tab) {
  size_t i;
  for (i = 0; i < SEEN_BUCKETS; i++)
    while (tab[i]) {
      seen *n = tab[i]->next;
      free(tab[i]);
      tab[i] = n;
    }
}

/* seam: source -- one source address per MX address for the run, round-robin over those of
 * the connection's family. */
static const smtpc_sockaddr *source_for(smtpc_verifier *v, const smtpc_sockaddr *mx,
                                        int family) {
  char text[64];
  int src;
  size_t k;
  if (v->nsrcs == 0) return NULL;
  text[0] = '\0';
  if (mx->sa.sa_family == AF_INET6) uv_ip6_name(&mx->in6, text, sizeof text);
  else uv_ip4_name(&mx->in, text, sizeof text);
  if ((src = seen_get_or_put(v->src_of, text, 0)) == 0) {
    src = -1; /* none of its family: the system chooses */
    for (k = 0; k < v->nsrcs; k++) {
      size_t i = (v->next_src + k) % v->nsrcs;
      if (v->srcs[i].sa.sa_family == family) {
        src = (int)i + 1;
        v->next_src = i + 1;
        break;
      }
    }
    (*seen_slot(v->src_of, text))->value = src;
  }
  return src > 0 ? &v->srcs[src - 1] : NULL;
}

static void sess_connect(smtpc_verifier *v, unsigned sid, const smtpc_sockaddr *sa,
                         const char *mx) {
  xsess *x = calloc(1, sizeof *x);
  const smtpc_sockaddr *to = sa, *src;
  int err;
  if (x == NULL) {
    (void)smtpc_plan_eof(v->plan, now_us(v), sid, SMTPC_ENOMEM, "out of memory");
    return;
  }
  x->v = v;
  x->sid = sid;
  v->sess[sid] = x;
  v->nsess++;
  uv_tcp_init(v->loop, &x->tcp);
  x->tcp.data = x->creq.data = x;
  err = 0;
  if (v->use_proxy) { /* seam: socks -- connect to the proxy; it connects to the MX */
    char text[64];
    if (sa->sa.sa_family == AF_INET6) uv_ip6_name(&sa->in6, text, sizeof text);
    else uv_ip4_name(&sa->in, text, sizeof text);
    x->socks = smtpc_socks_new(&v->proxy, v->proxy.remote_dns ? mx : text, v->o.port, &err);
    if (x->socks == NULL) {
      sess_eof(x, SMTPC_EPROXY, "cannot start the SOCKS5 handshake (MX name too long?)");
      return;
    }
    to = &v->proxy_sa;
  }
  src = source_for(v, sa, to->sa.sa_family);
  if (src) err = uv_tcp_bind(&x->tcp, &src->sa, 0);
  if (err == 0) err = uv_tcp_connect(&x->creq, &x->tcp, &to->sa, on_connect);
  if (err != 0) sess_eof(x, SMTPC_ECLOSED, uv_strerror(err));
}

static void sess_close(smtpc_verifier *v, unsigned sid) {
  xsess *x = sid < (unsigned)v->o.concurrency ? v->sess[sid] : NULL;
  if (x == NULL) { /* never connected (out of memory): nothing to wait for */
    (void)smtpc_plan_released(v->plan, now_us(v), sid);
    return;
  }
  if (x->closing) return;
  x->closing = 1;
  uv_close((uv_handle_t *)&x->tcp, on_sess_closed);
}

/* ---------------------------------------------------------------------------------------- */
/* performing the planner's actions */

/* The one timer: at the planner's last WAKE time, or at once after a kick. */
static void arm(smtpc_verifier *v) {
  uint64_t now = now_us(v), at = v->wake_at;
  if (!v->tick_open || v->closing) return;
  if (at == 0) {
    uv_timer_stop(&v->tick);
    return;
  }
  /* round up: waking a little late is fine; early (libuv counts from its cached time) only
   * costs a pass that finds nothing to do, then the timer is armed again */
  uv_timer_start(&v->tick, on_tick, at > now ? (at - now + 999) / 1000 : 0, 0);
}

static void on_tick(uv_timer_t *t) {
  smtpc_verifier *v = t->data;
  /* a tick makes the planner hand out its WAKE again (early timers are fine) */
  v->wake_at = 0;
  smtpc_plan_tick(v->plan, now_us(v));
  drain(v);
}

/* Come back from the loop soon (not from inside the caller's call). */
static void kick(smtpc_verifier *v) {
  if (!v->tick_open || v->closing || v->draining) return;
  uv_timer_start(&v->tick, on_tick, 0, 0);
}

static void on_route(int status, const smtpc_route *route, void *data) {
  resolve_req *rq = data;
  smtpc_verifier *v = rq->v;
  uint64_t token = rq->token;
  free(rq);
  v->resolving--;
  (void)smtpc_plan_resolved(v->plan, now_us(v), token, status, status == 0 ? route : NULL);
  drain(v);
}

static void resolve(smtpc_verifier *v, const char *name, uint64_t token) {
  resolve_req *rq = malloc(sizeof *rq);
  int rc = rq ? 0 : SMTPC_ENOMEM;
  if (rq) {
    rq->v = v;
    rq->token = token;
    rc = v->closing ? SMTPC_ECANCELED : smtpc_resolve_mx(v->resolver, name, on_route, rq);
  }
  if (rc != 0) {
    free(rq);
    (void)smtpc_plan_resolved(v->plan, now_us(v), token, rc == SMTPC_EINVAL ? SMTPC_EDNS : rc,
                              NULL);
    return;
  }
  v->resolving++;
}

/* seam: cache -- every new answer is stored (the cache decides by verdict whether it has a
 * lifetime), and each domain's catch-all answer once. */
static void store(smtpc_verifier *v, const smtpc_result *r) {
  smtpc_address a;
  int kind = 0;
  if (r->cached || r->address_len == 0 ||
      smtpc_parse_address(r->address, r->address_len, &a, &kind) != 0)
    return;
  (void)smtpc__rcache_put(v->cache, a.ascii_address, r);
  if (r->catch_all != -1 && seen_get_or_put(v->ca_stored, a.ascii_domain, 1) == 0)
    smtpc__rcache_put_catch_all(v->cache, a.ascii_domain, r->catch_all);
}

/* seam: cache -- stored answers go out from the loop, as stored (no traffic). */
static void report_cached(smtpc_verifier *v) {
  while (v->cached_head) {
    cached_item *c = v->cached_head;
    smtpc_result r;
    int fact;
    v->cached_head = c->next;
    if (v->cached_head == NULL) v->cached_tail = &v->cached_head;
    v->ncached--;
    memset(&r, 0, sizeof r);
    r.tag = c->tag;
    r.address = c->input;
    r.address_len = c->len;
    r.verdict = c->row->verdict;
    r.reason = c->row->reason;
    r.catch_all = -1;
    smtpc__rcached_result(c->row, &r);
    if (!v->o.catch_all) r.catch_all = -1;
    /* as a live result (plan.c): a suggestion only where DNS said the domain takes no mail */
    fact = smtpc__rcached_route_fact(c->row);
    if (smtpc_inspect(c->input, c->len, fact, &r.inspect) == 0)
      r.verdict = smtpc_verdict_with_inspection(r.verdict, &r.inspect, v->o.disposable);
    if (fact != SMTPC_ROUTE_NONE) r.inspect.suggestion[0] = '\0';
    v->cb(v, &r, v->data);
    free(c->row);
    free(c);
  }
}

static void perform(smtpc_verifier *v, const smtpc_plan_action *a) {
  xsess *x = a->sid < (unsigned)v->o.concurrency ? v->sess[a->sid] : NULL;
  switch (a->type) {
  case SMTPC_PLAN_RESOLVE:
    /* seam: cache -- a remembered catch-all answer saves the domain's probe */
    if (v->cache && v->o.catch_all) {
      int ca = v->o.cache_refresh ? -1 : smtpc__rcache_catch_all(v->cache, a->name);
      if (ca != -1) (void)smtpc_plan_catch_all(v->plan, a->token, ca);
      else smtpc__rcache_await(v->cache, a->token, a->name);
    }
    resolve(v, a->name, a->token);
    break;
  case SMTPC_PLAN_CONNECT:
    sess_connect(v, a->sid, a->addr, a->name);
    break;
  case SMTPC_PLAN_WRITE:
    if (x) sess_write(x, a->data, a->len);
    break;
  case SMTPC_PLAN_START_TLS:
    if (x) start_tls(x, a->name);
    break;
  case SMTPC_PLAN_CLOSE:
    sess_close(v, a->sid);
    break;
  case SMTPC_PLAN_WAKE:
    v->wake_at = a->time;
    break;
  case SMTPC_PLAN_RESULT:
    if (v->cache) store(v, a->result);
    v->cb(v, a->result, v->data);
    break;
  }
}

/* Perform every action the planner has now. Events given meanwhile (a connect that fails at
 * once, a callback that adds addresses) only queue more for this same loop. */
static void drain(smtpc_verifier *v) {
  smtpc_plan_action a;
  if (v->draining || v->plan == NULL) return;
  v->draining = 1;
  report_cached(v);
  while (smtpc_plan_next(v->plan, now_us(v), &a)) perform(v, &a);
  report_cached(v); /* added from a result callback */
  v->draining = 0;
  arm(v);
}

/* ---------------------------------------------------------------------------------------- */
/* public API */

int smtpc_verifier_add(smtpc_verifier *v, const char *address, size_t len, uint64_t tag) {
  int rc;
  if (v == NULL || v->ended || v->canceled || v->closing) return SMTPC_EINVAL;
  /* bindings add between uv_run calls, maybe long after the loop last looked at the clock */
  uv_update_time(v->loop);
  if (v->cache && !v->o.cache_refresh && address && len) { /* seam: cache */
    smtpc_address a;
    int kind = 0;
    smtpc__cached *row;
    if (smtpc_parse_address(address, len, &a, &kind) == 0 &&
        (row = smtpc__rcache_get(v->cache, a.ascii_address)) != NULL) {
      cached_item *c = malloc(offsetof(cached_item, input) + len + 1);
      if (c == NULL) {
        free(row);
        return SMTPC_ENOMEM;
      }
      c->next = NULL;
      c->tag = tag;
      c->row = row;
      c->len = len;
      memcpy(c->input, address, len);
      c->input[len] = '\0';
      *v->cached_tail = c;
      v->cached_tail = &c->next;
      v->ncached++;
      kick(v);
      return 0;
    }
  }
  rc = smtpc_plan_add(v->plan, now_us(v), address, len, tag);
  if (rc == 0) kick(v);
  return rc;
}

void smtpc_verifier_end(smtpc_verifier *v) {
  v->ended = 1;
  smtpc_plan_end(v->plan);
  kick(v);
}

size_t smtpc_verifier_pending(const smtpc_verifier *v) {
  smtpc_plan_stats st;
  smtpc_plan_stats_get(v->plan, &st);
  return st.pending + v->ncached;
}

/* seam: cache -- with a cache, an open session may still bring a probe answer to store */
int smtpc_verifier_done(const smtpc_verifier *v) {
  return v->ended && v->ncached == 0 && smtpc_plan_done(v->plan) &&
         !(v->cache && v->nsess && smtpc__rcache_awaiting(v->cache, v->plan));
}
void *smtpc_verifier_data(const smtpc_verifier *v) { return v->data; }

void smtpc_verifier_cancel(smtpc_verifier *v) {
  if (v->canceled) return;
  v->ended = 1;
  v->canceled = 1;
  smtpc_plan_cancel(v->plan, now_us(v));
  drain(v); /* every result from this call (or the drain that is running it) */
}

static void free_all(smtpc_verifier *v) {
  while (v->cached_head) {
    cached_item *c = v->cached_head;
    v->cached_head = c->next;
    free(c->row);
    free(c);
  }
  seen_free(v->src_of);
  seen_free(v->ca_stored);
  smtpc__rcache_close(v->cache);
  free(v->proxy_url);
  free(v->cache_path);
  smtpc_plan_free(v->plan);
  smtpc__tls_ctx_free(v->tls_ctx);
  free(v->sess);
  free(v->bind);
  free(v->dns);
  free(v->ca);
}

static void maybe_finish_close(smtpc_verifier *v) {
  if (!v->closing || v->tick_open || v->resolver_open || v->nsess || v->draining) return;
  free_all(v);
  if (v->close_cb) v->close_cb(v);
  free(v);
}

static void on_tick_closed(uv_handle_t *h) {
  smtpc_verifier *v = h->data;
  v->tick_open = 0;
  maybe_finish_close(v);
}

static void on_resolver_closed(void *data) {
  smtpc_verifier *v = data;
  v->resolver_open = 0;
  maybe_finish_close(v);
}

void smtpc_verifier_close(smtpc_verifier *v, smtpc_verifier_close_cb close_cb) {
  if (v->closing) return;
  v->close_cb = close_cb;
  smtpc_verifier_cancel(v);
  v->closing = 1;
  uv_timer_stop(&v->tick);
  uv_close((uv_handle_t *)&v->tick, on_tick_closed);
  /* pending resolutions come back canceled, from inside this call */
  smtpc_resolver_close(v->resolver, on_resolver_closed, v);
  drain(v);
}

/* seam: source -- "192.0.2.10" or "192.0.2.10,192.0.2.11,2001:db8::1" (at most 16). Fills
 * out (when not NULL) and returns the count, or -1 when an entry is not an IP address. */
static int parse_sources(const char *list, smtpc_sockaddr *out, size_t *n) {
  size_t count = 0;
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    char one[64];
    smtpc_sockaddr sa;
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len && *p == ' ') p++, len--;
    while (len && p[len - 1] == ' ') len--;
    if (len == 0 || len >= sizeof one || count == 16) return -1;
    memcpy(one, p, len);
    one[len] = '\0';
    memset(&sa, 0, sizeof sa);
    if (uv_ip4_addr(one, 0, &sa.in) != 0 && uv_ip6_addr(one, 0, &sa.in6) != 0) return -1;
    if (out) out[count] = sa;
    count++;
    p = e ? e + 1 : p + len;
  }
  if (count == 0) return -1;
  if (n) *n = count;
  return (int)count;
}

/* seam: socks -- the proxy's own address: a literal, or its name looked up once, now (it is
 * the user's configuration, not an MX: the system resolver is the right one). */
static int proxy_address(uv_loop_t *loop, const smtpc_proxy *p, smtpc_sockaddr *out) {
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  memset(out, 0, sizeof *out);
  if (uv_ip4_addr(p->host, p->port, &out->in) == 0 || uv_ip6_addr(p->host, p->port, &out->in6) == 0)
    return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (uv_getaddrinfo(loop, &req, NULL, p->host, NULL, &hints) != 0 || req.addrinfo == NULL)
    return SMTPC_EINVAL;
  memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen < sizeof *out ? req.addrinfo->ai_addrlen : sizeof *out);
  uv_freeaddrinfo(req.addrinfo);
  if (out->sa.sa_family == AF_INET6) out->in6.sin6_port = htons((uint16_t)p->port);
  else out->in.sin_port = htons((uint16_t)p->port);
  return 0;
}

smtpc_verifier *smtpc_verifier_new(uv_loop_t *loop, const smtpc_verify_opts *opts,
                                   smtpc_result_cb cb, void *data, int *err) {
  smtpc_verifier *v;
  smtpc_plan_opts po;
  smtpc_resolver_opts ro;
  smtpc_proxy proxy;
  int e = SMTPC_EINVAL;
  if (err == NULL) err = &e;
  *err = SMTPC_EINVAL;
  if (loop == NULL || cb == NULL) return NULL;
  memset(&po, 0, sizeof po);
  if (opts) po.verify = *opts;
  else smtpc_verify_opts_init(&po.verify);
  if (po.verify.bind_address && parse_sources(po.verify.bind_address, NULL, NULL) < 0)
    return NULL;
  if (po.verify.proxy && smtpc_proxy_parse(po.verify.proxy, strlen(po.verify.proxy), &proxy) != 0)
    return NULL;
  if (po.verify.cache && !*po.verify.cache) return NULL;
  if (!(po.verify.cache_positive_ttl >= 0) || !(po.verify.cache_negative_ttl >= 0) ||
      !(po.verify.cache_unknown_ttl >= 0))
    return NULL;
  if (uv_random(NULL, NULL, &po.seed, sizeof po.seed, 0, NULL) != 0) po.seed = uv_hrtime();

  *err = SMTPC_ENOMEM;
  v = calloc(1, sizeof *v);
  if (v == NULL) return NULL;
  v->plan = smtpc_plan_new(&po, err); /* checks the options */
  if (v->plan == NULL) {
    free(v);
    return NULL;
  }
  *err = SMTPC_ENOMEM;
  v->loop = loop;
  v->o = po.verify;
  if (v->o.concurrency == 0) v->o.concurrency = 100;
  v->cb = cb;
  v->data = data;
  v->bind = po.verify.bind_address ? strdup(po.verify.bind_address) : NULL;
  v->dns = po.verify.dns_servers ? strdup(po.verify.dns_servers) : NULL;
  v->ca = po.verify.tls_ca_file ? strdup(po.verify.tls_ca_file) : NULL;
  v->o.bind_address = v->bind;
  v->o.dns_servers = v->dns;
  v->o.tls_ca_file = v->ca;
  v->proxy_url = po.verify.proxy ? strdup(po.verify.proxy) : NULL;
  v->cache_path = po.verify.cache ? strdup(po.verify.cache) : NULL;
  v->o.proxy = v->proxy_url;
  v->o.cache = v->cache_path;
  v->cached_tail = &v->cached_head;
  v->o.mail_from = v->o.helo = NULL; /* the planner keeps its own copies */
  v->sess = calloc((size_t)v->o.concurrency, sizeof *v->sess);
  if (v->sess == NULL || (po.verify.bind_address && !v->bind) ||
      (po.verify.dns_servers && !v->dns) || (po.verify.tls_ca_file && !v->ca) ||
      (po.verify.proxy && !v->proxy_url) || (po.verify.cache && !v->cache_path))
    goto fail;
  if (v->bind) (void)parse_sources(v->bind, v->srcs, &v->nsrcs); /* seam: source */
  if (v->proxy_url) { /* seam: socks */
    v->proxy = proxy;
    v->use_proxy = 1;
    if ((*err = proxy_address(loop, &v->proxy, &v->proxy_sa)) != 0) goto fail;
  }
  if (v->cache_path) { /* seam: cache */
    smtpc__rcache_ttl ttl;
    char msg[256];
    ttl.positive = v->o.cache_positive_ttl;
    ttl.negative = v->o.cache_negative_ttl;
    ttl.unknown = v->o.cache_unknown_ttl;
    if ((v->cache = smtpc__rcache_open(v->cache_path, &ttl, err, msg, sizeof msg)) == NULL)
      goto fail;
  }
  if (v->o.starttls != SMTPC_STARTTLS_OFF &&
      (v->tls_ctx = smtpc__tls_ctx_new(v->o.tls_verify, v->ca, err)) == NULL)
    goto fail;
  memset(&ro, 0, sizeof ro);
  ro.servers = v->dns;
  v->resolver = smtpc_resolver_new(loop, &ro, err);
  if (v->resolver == NULL) goto fail;
  v->resolver_open = 1;
  uv_timer_init(loop, &v->tick);
  v->tick.data = v;
  v->tick_open = 1;
  *err = 0;
  return v;
fail:
  free_all(v);
  free(v);
  return NULL;
}
