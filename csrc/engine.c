/*
 * engine.c -- the libuv driver of the probe: resolve, group by MX, schedule sessions politely,
 * run one dialog (dialog.c) per connection, retry, and report exactly one result per address.
 * The shapes it works with are in engine_internal.h; this file holds the names and options,
 * the scheduling and the public API.
 * One timer ("tick") does all the scheduling, so nothing is reported re-entrantly from
 * smtpc_verifier_add. Memory is freed only from close callbacks.
 */
#include "engine_internal.h"

static void on_tick(uv_timer_t *t);

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
/* scheduling */

static void wake_at(uint64_t *next, uint64_t t) {
  if (*next == 0 || t < *next) *next = t;
}

/* Start what can start for g now; note when it can next start something in *next. */
static void schedule_group(smtpc_verifier *v, group *g, uint64_t now, uint64_t *next) {
  while (g->nqueued > 0 && v->active < (size_t)v->o.concurrency) {
    size_t m, a;
    host *pick = NULL;
    const char *mx = NULL;
    int any_up = 0;
    for (m = 0; m < g->route->nmx && !any_up; m++) {
      const smtpc_mx *x = &g->route->mx[m];
      for (a = 0; a < x->naddrs; a++) {
        host *h = smtpc__host_for(v, &x->addrs[a]);
        if (h == NULL || h->down_until > now) continue;
        any_up = 1;
        if (h->active >= v->o.per_host) continue;
        if (h->next_ms > now) {
          wake_at(next, h->next_ms);
          continue;
        }
        if (pick == NULL || h->active < pick->active) {
          pick = h;
          mx = x->host;
        }
      }
    }
    if (!any_up) { /* every MX refused us: the addresses get what we last learnt */
      while (!l_empty(&g->queue)) {
        item *it = CONTAINER(g->queue.next, item, q);
        if (it->probe) { /* nobody to ask: the held addresses go as they are */
          smtpc__item_detach(it);
          it->dom->probe_state = PROBE_DONE;
          smtpc__flush_held(v, it->dom);
          smtpc__item_free(it);
          continue;
        }
        smtpc__adopt_host_failure(v, it, g->route);
        if (it->reason == SMTPC_REASON_UNDEFINED) it->reason = SMTPC_REASON_NETWORKERROR;
        smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
      }
      return;
    }
    if (pick == NULL) return; /* a session end or the pause will wake us */
    if (smtpc__start_session(v, g, pick, mx) != 0) return;
  }
}

static void expire(smtpc_verifier *v, uint64_t now, uint64_t *next) {
  while (!l_empty(&v->all)) {
    item *it = CONTAINER(v->all.next, item, all);
    if (it->deadline_ms > now) {
      wake_at(next, it->deadline_ms);
      return;
    }
    if (it->err == 0 && it->reply == NULL) it->err = SMTPC_ETIMEOUT;
    it->detail = "deadline reached";
    smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_EXPIRED);
  }
}

static void schedule(smtpc_verifier *v) {
  uint64_t now = uv_now(v->loop), next = 0;
  link *p, *n;
  size_t rounds = 0;
  while (!l_empty(&v->immediate) && !v->canceled) {
    item *it = CONTAINER(v->immediate.next, item, q);
    smtpc__report(v, it, it->verdict, it->reason);
  }
  if (!v->canceled) expire(v, now, &next);
  for (p = v->delayed.next; p != &v->delayed && !v->canceled; p = n) {
    item *it = CONTAINER(p, item, q);
    n = p->next;
    if (it->ready_ms <= now) smtpc__enqueue(v, it, 0);
    else wake_at(&next, it->ready_ms);
  }
  for (p = v->groups.next; p != &v->groups && !v->canceled; p = n) {
    n = p->next;
    if (v->active >= (size_t)v->o.concurrency) break;
    schedule_group(v, CONTAINER(p, group, node), now, &next);
    rounds++;
  }
  if (v->canceled) return;
  if (rounds > 1) { /* round robin: the next pass starts with another group */
    link *first = v->groups.next;
    l_del(first);
    l_push(&v->groups, first);
  }
  if (next && !(v->tick_armed && v->tick_at <= next)) {
    v->tick_armed = 1;
    v->tick_at = next;
    uv_timer_start(&v->tick, on_tick, next > now ? next - now : 0, 0);
  }
}

static void on_tick(uv_timer_t *t) {
  smtpc_verifier *v = t->data;
  v->tick_armed = 0;
  schedule(v);
}

void smtpc__kick(smtpc_verifier *v) {
  if (!v->tick_open || v->canceled) return;
  if (v->tick_armed && v->tick_at <= uv_now(v->loop)) return;
  v->tick_armed = 1;
  v->tick_at = uv_now(v->loop);
  uv_timer_start(&v->tick, on_tick, 0, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* public API */

int smtpc_verifier_add(smtpc_verifier *v, const char *address, size_t len, uint64_t tag) {
  smtpc_address a;
  item *it;
  domain *d;
  int kind = 0, rc;
  if (v == NULL || v->ended || v->canceled || v->closing || (address == NULL && len > 0))
    return SMTPC_EINVAL;
  it = calloc(1, sizeof *it);
  if (it == NULL || (it->input = malloc(len + 1)) == NULL) {
    free(it);
    return SMTPC_ENOMEM;
  }
  if (len) memcpy(it->input, address, len);
  it->input[len] = '\0';
  it->input_len = len;
  it->tag = tag;
  it->added_hr = uv_hrtime();
  /* bindings add between uv_run calls, maybe long after the loop last looked at the clock */
  uv_update_time(v->loop);
  it->deadline_ms = uv_now(v->loop) + secs_ms(v->o.deadline);
  it->reason = SMTPC_REASON_UNDEFINED;
  it->cls.reason = SMTPC_REASON_UNDEFINED;
  l_init(&it->q);
  l_push(&v->all, &it->all);
  v->pending++;

  rc = len ? smtpc_parse_address(address, len, &a, &kind) : SMTPC_EBADADDRESS;
  if (rc == SMTPC_ENOMEM) {
    l_del(&it->all);
    v->pending--;
    smtpc__item_free(it);
    return SMTPC_ENOMEM;
  }
  if (rc != 0) {
    it->detail = len ? smtpc_address_kind_message(kind) : "the address is empty";
    smtpc__push_immediate(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_SYNTAXERROR);
    return 0;
  }
  it->rcpt_len = strlen(a.ascii_address);
  it->rcpt = dupstr(a.ascii_address);
  it->utf8 = a.utf8_local ? 1 : 0;
  if (it->rcpt && v->cache && !v->o.cache_refresh &&
      (it->cached = smtpc__rcache_get(v->cache, it->rcpt)) != NULL) { /* seam: cache */
    smtpc__push_immediate(v, it, it->cached->verdict, it->cached->reason);
    return 0;
  }
  d = it->rcpt ? smtpc__domain_for(v, a.ascii_domain, a.literal) : NULL;
  if (d == NULL) {
    l_del(&it->all);
    v->pending--;
    smtpc__item_free(it);
    return SMTPC_ENOMEM;
  }
  it->dom = d;
  if (d->state == D_READY) {
    smtpc__enqueue(v, it, 0);
  } else if (d->state == D_RESOLVING) {
    it->state = IT_RESOLVING;
    l_push(&d->waiting, &it->q);
  } else {
    smtpc__dns_fail(v, d, it);
  }
  return 0;
}

void smtpc_verifier_end(smtpc_verifier *v) {
  v->ended = 1;
  smtpc__kick(v);
}

size_t smtpc_verifier_pending(const smtpc_verifier *v) { return v->pending; }
int smtpc_verifier_done(const smtpc_verifier *v) { return v->ended && v->pending == 0; }
void *smtpc_verifier_data(const smtpc_verifier *v) { return v->data; }

void smtpc_verifier_cancel(smtpc_verifier *v) {
  link *p;
  if (v->canceled) return;
  v->ended = 1;
  v->canceled = 1;
  if (v->tick_open) uv_timer_stop(&v->tick);
  v->tick_armed = 0;
  for (p = v->sessions.next; p != &v->sessions; p = p->next)
    smtpc__sess_close(CONTAINER(p, session, node));
  while (!l_empty(&v->all)) {
    item *it = CONTAINER(v->all.next, item, all);
    it->err = SMTPC_ECANCELED;
    it->detail = "canceled";
    smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_EXPIRED);
  }
}

static void free_all(smtpc_verifier *v) {
  size_t i;
  for (i = 0; i < v->domains.cap; i++) {
    domain *d = v->domains.slots[i];
    while (d) {
      domain *n = d->hnext;
      free(d->name);
      free(d->probe_rcpt);
      free(d);
      d = n;
    }
  }
  for (i = 0; i < v->groups_t.cap; i++) {
    group *g = v->groups_t.slots[i];
    while (g) {
      group *n = g->hnext;
      while (!l_empty(&g->queue)) { /* only probes can be left (see smtpc__probe_lost) */
        item *it = CONTAINER(g->queue.next, item, q);
        l_del(&it->q);
        smtpc__item_free(it);
      }
      smtpc__route_free(g->route, g->own_route);
      free(g->key);
      free(g);
      g = n;
    }
  }
  for (i = 0; i < v->hosts.cap; i++) {
    host *h = v->hosts.slots[i];
    while (h) {
      host *n = h->hnext;
      free(h->fail_reply);
      free(h);
      h = n;
    }
  }
  free(v->domains.slots);
  free(v->groups_t.slots);
  free(v->hosts.slots);
  smtpc__tls_ctx_free(v->tls_ctx);
  smtpc__rcache_close(v->cache);
  free(v->proxy_url);
  free(v->cache_path);
  free(v->mail_from);
  free(v->helo);
  free(v->bind);
  free(v->dns);
  free(v->ca);
}

void smtpc__maybe_finish_close(smtpc_verifier *v) {
  if (!v->closing || v->tick_open || v->resolver_open || !l_empty(&v->sessions)) return;
  free_all(v);
  if (v->close_cb) v->close_cb(v);
  free(v);
}

static void on_tick_closed(uv_handle_t *h) {
  smtpc_verifier *v = h->data;
  v->tick_open = 0;
  smtpc__maybe_finish_close(v);
}

static void on_resolver_closed(void *data) {
  smtpc_verifier *v = data;
  v->resolver_open = 0;
  smtpc__maybe_finish_close(v);
}

void smtpc_verifier_close(smtpc_verifier *v, smtpc_verifier_close_cb close_cb) {
  if (v->closing) return;
  v->close_cb = close_cb;
  smtpc_verifier_cancel(v);
  v->closing = 1;
  uv_close((uv_handle_t *)&v->tick, on_tick_closed);
  smtpc_resolver_close(v->resolver, on_resolver_closed, v);
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

static int has_8bit(const char *s) {
  for (; s && *s; s++)
    if ((unsigned char)*s >= 0x80) return 1;
  return 0;
}

smtpc_verifier *smtpc_verifier_new(uv_loop_t *loop, const smtpc_verify_opts *opts,
                                   smtpc_result_cb cb, void *data, int *err) {
  smtpc_verifier *v;
  smtpc_verify_opts o;
  smtpc_resolver_opts ro;
  smtpc_dialog_opts dc;
  smtpc_dialog *probe;
  smtpc_proxy proxy;
  int e = SMTPC_EINVAL;
  if (err == NULL) err = &e;
  *err = SMTPC_EINVAL;
  if (loop == NULL || cb == NULL) return NULL;
  if (opts) o = *opts;
  else smtpc_verify_opts_init(&o);
  /* zeros mean "the default", so a memset struct works too */
  if (o.port == 0) o.port = 25;
  if (o.concurrency == 0) o.concurrency = 100;
  if (o.per_host == 0) o.per_host = 2;
  if (o.rcpt_per_session == 0) o.rcpt_per_session = 50;
  if (o.max_rejections == 0) o.max_rejections = 8;
  if (o.deadline == 0) o.deadline = 300;
  if (o.timeout == 0) o.timeout = 30;
  if (o.connect_timeout == 0) o.connect_timeout = 10;
  if (o.port < 1 || o.port > 65535 || o.concurrency < 1 || o.per_host < 1 ||
      o.rcpt_per_session < 1 || o.rcpt_per_session > 100000 || o.max_rejections < 1 ||
      o.starttls < 0 || o.starttls > 2 || !(o.deadline > 0) || !(o.timeout > 0) ||
      !(o.connect_timeout > 0) || o.host_pause < 0 || o.greylist_delay != o.greylist_delay ||
      o.disposable < SMTPC_DISPOSABLE_RISKY || o.disposable > SMTPC_DISPOSABLE_UNDELIVERABLE)
    return NULL;
  if (o.bind_address && parse_sources(o.bind_address, NULL, NULL) < 0) return NULL;
  if (o.proxy && smtpc_proxy_parse(o.proxy, strlen(o.proxy), &proxy) != 0) return NULL;
  if (o.cache && !*o.cache) return NULL;
  if (!(o.cache_positive_ttl >= 0) || !(o.cache_negative_ttl >= 0) || !(o.cache_unknown_ttl >= 0))
    return NULL;
  /* the dialog is the judge of what may go on the wire */
  memset(&dc, 0, sizeof dc);
  dc.helo = o.helo;
  dc.mail_from = o.mail_from;
  probe = smtpc_dialog_new(&dc, smtpc__on_event, (void *)&dc, err);
  if (probe == NULL) return NULL;
  smtpc_dialog_free(probe);

  *err = SMTPC_ENOMEM;
  v = calloc(1, sizeof *v);
  if (v == NULL) return NULL;
  v->loop = loop;
  v->o = o;
  v->cb = cb;
  v->data = data;
  v->mail_from = dupstr(o.mail_from ? o.mail_from : "");
  v->helo = dupstr(o.helo ? o.helo : "localhost");
  v->bind = dupstr(o.bind_address);
  v->dns = dupstr(o.dns_servers);
  v->ca = dupstr(o.tls_ca_file);
  v->proxy_url = dupstr(o.proxy);
  v->cache_path = dupstr(o.cache);
  v->o.proxy = v->proxy_url;
  v->o.cache = v->cache_path;
  v->o.mail_from = v->mail_from;
  v->o.helo = v->helo;
  v->o.bind_address = v->bind;
  v->o.dns_servers = v->dns;
  v->o.tls_ca_file = v->ca;
  v->mail_from_utf8 = has_8bit(v->mail_from);
  if (v->bind) (void)parse_sources(v->bind, v->srcs, &v->nsrcs); /* seam: source */
  l_init(&v->immediate);
  l_init(&v->delayed);
  l_init(&v->all);
  l_init(&v->groups);
  l_init(&v->sessions);
  if (v->mail_from == NULL || v->helo == NULL || (o.bind_address && !v->bind) ||
      (o.dns_servers && !v->dns) || (o.tls_ca_file && !v->ca) || (o.proxy && !v->proxy_url) ||
      (o.cache && !v->cache_path))
    goto fail;
  if (o.proxy) { /* seam: socks */
    v->proxy = proxy;
    v->use_proxy = 1;
    if ((*err = proxy_address(loop, &v->proxy, &v->proxy_sa)) != 0) goto fail;
  }
  if (o.cache) { /* seam: cache */
    smtpc__rcache_ttl ttl;
    char msg[256];
    ttl.positive = o.cache_positive_ttl;
    ttl.negative = o.cache_negative_ttl;
    ttl.unknown = o.cache_unknown_ttl;
    if ((v->cache = smtpc__rcache_open(v->cache_path, &ttl, err, msg, sizeof msg)) == NULL)
      goto fail;
  }
  if (o.starttls != SMTPC_STARTTLS_OFF &&
      (v->tls_ctx = smtpc__tls_ctx_new(o.tls_verify, v->ca, err)) == NULL)
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
