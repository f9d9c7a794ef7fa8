/*
 * engine_route.c -- the probe's records looked up by name: hosts (one per MX address),
 * domains (resolved once per run) and groups (domains that share an MX set).
 */
#include "engine_internal.h"

#include <stdio.h>

/* ---------------------------------------------------------------------------------------- */
/* string-keyed hash table (open chaining through each record's first field) */

typedef struct hrec {
  struct hrec *hnext;
} hrec;

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
  return h;
}

static void *t_get(table *t, const char *key, const char *(*key_of)(void *)) {
  hrec *r;
  if (t->cap == 0) return NULL;
  for (r = t->slots[fnv(key) & (t->cap - 1)]; r; r = r->hnext)
    if (strcmp(key_of(r), key) == 0) return r;
  return NULL;
}

static int t_put(table *t, void *rec, const char *(*key_of)(void *)) {
  size_t i;
  hrec *r = rec;
  if ((t->n + 1) * 4 > t->cap * 3) { /* keep the load under 3/4 */
    size_t ncap = t->cap ? t->cap * 2 : 64;
    void **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL) return SMTPC_ENOMEM;
    for (i = 0; i < t->cap; i++) {
      hrec *x = t->slots[i];
      while (x) {
        hrec *nx = x->hnext;
        size_t b = fnv(key_of(x)) & (ncap - 1);
        x->hnext = ns[b];
        ns[b] = x;
        x = nx;
      }
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
  }
  i = fnv(key_of(rec)) & (t->cap - 1);
  r->hnext = t->slots[i];
  t->slots[i] = r;
  t->n++;
  return 0;
}

static const char *domain_key(void *p) { return ((domain *)p)->name; }
static const char *group_key(void *p) { return ((group *)p)->key; }
static const char *host_key(void *p) { return ((host *)p)->text; }

/* ---------------------------------------------------------------------------------------- */
/* hosts */

host *smtpc__host_for(smtpc_verifier *v, const smtpc_sockaddr *sa) {
  char text[64];
  host *h;
  if (sa->sa.sa_family == AF_INET6) uv_ip6_name(&sa->in6, text, sizeof text);
  else uv_ip4_name(&sa->in, text, sizeof text);
  h = t_get(&v->hosts, text, host_key);
  if (h) return h;
  h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->sa = *sa;
  memcpy(h->text, text, sizeof text);
  if (t_put(&v->hosts, h, host_key) != 0) {
    free(h);
    return NULL;
  }
  return h;
}

/* ---------------------------------------------------------------------------------------- */
/* domains, routes, groups */

/* The route to an address literal: one "MX", the address itself. One allocation. */
typedef struct literal_route {
  smtpc_route r;
  smtpc_mx m;
  smtpc_sockaddr a;
  char host[64];
} literal_route;

static smtpc_route *make_literal_route(const char *lit) {
  literal_route *b;
  size_t n = strlen(lit);
  const char *p = lit + 1;
  if (n < 3 || lit[0] != '[' || lit[n - 1] != ']') return NULL;
  n -= 2;
  if (n > 5 && (p[0] == 'I' || p[0] == 'i') && (p[1] == 'P' || p[1] == 'p') &&
      (p[2] == 'v' || p[2] == 'V') && p[3] == '6' && p[4] == ':') {
    p += 5;
    n -= 5;
  }
  b = calloc(1, sizeof *b);
  if (b == NULL || n >= sizeof b->host) {
    free(b);
    return NULL;
  }
  memcpy(b->host, p, n);
  b->host[n] = '\0';
  if (uv_ip4_addr(b->host, 0, &b->a.in) != 0 && uv_ip6_addr(b->host, 0, &b->a.in6) != 0) {
    free(b);
    return NULL;
  }
  b->m.host = b->host;
  b->m.naddrs = 1;
  b->m.addrs = &b->a;
  b->r.domain = b->host;
  b->r.implicit = 1;
  b->r.nmx = 1;
  b->r.mx = &b->m;
  return &b->r;
}

/* Domains with the same MX set (hosts and preferences) share a group, hence sessions. The
 * whole set is the key, not only the best host: a backup MX that takes mail for one domain may
 * refuse to relay for another. Hosts of equal preference are keyed in name order. */
static char *route_key(const smtpc_route *route, int own) {
  size_t i, j, len = 4, used;
  const smtpc_mx **order = malloc(route->nmx * sizeof *order);
  char *key;
  if (order == NULL) return NULL;
  for (i = 0; i < route->nmx; i++) {
    const smtpc_mx *x = &route->mx[i];
    for (j = i; j > 0 && (order[j - 1]->preference > x->preference ||
                          (order[j - 1]->preference == x->preference &&
                           strcmp(order[j - 1]->host, x->host) > 0)); j--)
      order[j] = order[j - 1];
    order[j] = x;
    len += strlen(x->host) + 14;
  }
  key = malloc(len);
  if (key != NULL) {
    memcpy(key, own ? "ip:" : "mx:", 4);
    used = 3;
    for (i = 0; i < route->nmx; i++)
      used += (size_t)snprintf(key + used, len - used, "%d %s,", order[i]->preference,
                               order[i]->host);
  }
  free(order);
  return key;
}

void smtpc__route_free(smtpc_route *route, int own) {
  if (own) free(route);
  else smtpc_route_free(route);
}

/* Takes ownership of route: it becomes the group's, or is freed. */
static group *group_for(smtpc_verifier *v, smtpc_route *route, int own) {
  char *key = route_key(route, own);
  group *g = key ? t_get(&v->groups_t, key, group_key) : NULL;
  if (g || key == NULL) {
    free(key);
    smtpc__route_free(route, own);
    return g;
  }
  g = calloc(1, sizeof *g);
  if (g) g->key = key;
  if (g == NULL || t_put(&v->groups_t, g, group_key) != 0) {
    free(g);
    free(key);
    smtpc__route_free(route, own);
    return NULL;
  }
  g->route = route;
  g->own_route = own;
  l_init(&g->queue);
  l_push(&v->groups, &g->node);
  return g;
}

void smtpc__push_immediate(smtpc_verifier *v, item *it, int verdict, int reason) {
  smtpc__item_detach(it);
  it->state = IT_IMMEDIATE;
  it->verdict = verdict;
  it->reason = reason;
  l_push(&v->immediate, &it->q);
  smtpc__kick(v);
}

/* The domain has no usable route: the contract's DNS verdicts. */
void smtpc__dns_fail(smtpc_verifier *v, domain *d, item *it) {
  if (d->null_mx) {
    it->detail = "the domain takes no mail (null MX, RFC 7505)";
    smtpc__push_immediate(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_NOTACCEPT);
  } else if (d->dns_error == SMTPC_DNS_NXDOMAIN || d->dns_error == SMTPC_DNS_NOADDRESS) {
    it->detail = smtpc_dns_error_message(d->dns_error);
    smtpc__push_immediate(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_HOSTUNKNOWN);
  } else {
    it->err = SMTPC_EDNS;
    it->detail = d->dns_error ? smtpc_dns_error_message(d->dns_error) : "DNS lookup failed";
    smtpc__push_immediate(v, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_NETWORKERROR);
  }
}

typedef struct domain_req { /* resolver callback data: the domain and its verifier */
  smtpc_verifier *v;
  domain *d;
} domain_req;

static void on_route(int status, const smtpc_route *route, void *data) {
  domain_req *rq = data;
  smtpc_verifier *v = rq->v;
  domain *d = rq->d;
  smtpc_route *copy = NULL;
  free(rq);
  d->state = D_FAILED;
  if (status == 0 && route->error == SMTPC_DNS_OK && !route->null_mx && route->nmx > 0 &&
      (copy = smtpc_route_dup(route)) != NULL && (d->grp = group_for(v, copy, 0)) != NULL)
    d->state = D_READY;
  else if (status == 0)
    d->dns_error = route->error, d->null_mx = route->null_mx;
  while (!l_empty(&d->waiting)) {
    item *it = CONTAINER(d->waiting.next, item, q);
    if (d->state == D_READY) smtpc__enqueue(v, it, 0);
    else smtpc__dns_fail(v, d, it);
  }
}

domain *smtpc__domain_for(smtpc_verifier *v, const char *name, int literal) {
  domain *d = t_get(&v->domains, name, domain_key);
  domain_req *rq;
  if (d) return d;
  d = calloc(1, sizeof *d);
  if (d == NULL || (d->name = dupstr(name)) == NULL || t_put(&v->domains, d, domain_key) != 0) {
    if (d) free(d->name);
    free(d);
    return NULL;
  }
  l_init(&d->waiting);
  l_init(&d->held);
  d->catch_all = -1;
  /* seam: cache -- a remembered catch-all answer saves the domain's probe */
  if (v->cache && v->o.catch_all && !v->o.cache_refresh &&
      (d->catch_all = smtpc__rcache_catch_all(v->cache, name)) != -1)
    d->probe_state = PROBE_DONE;
  if (literal) {
    smtpc_route *r = make_literal_route(name);
    d->state = D_FAILED;
    d->dns_error = SMTPC_DNS_NOADDRESS;
    if (r && (d->grp = group_for(v, r, 1)) != NULL) d->state = D_READY;
    return d;
  }
  d->state = D_RESOLVING;
  rq = malloc(sizeof *rq);
  if (rq) {
    rq->v = v;
    rq->d = d;
  }
  if (rq == NULL || smtpc_resolve_mx(v->resolver, name, on_route, rq) != 0) {
    free(rq);
    d->state = D_FAILED;
  }
  return d;
}
