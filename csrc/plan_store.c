/*
 * plan_store.c -- the planner's memory and records: allocation through opts.alloc (counted,
 * so a run's memory is a figure), the string-keyed table, hosts (one per MX address), domains
 * (resolved once per run), groups (domains that share an MX set) and the back of the action
 * queue. Calls nothing above it.
 */
#include "plan_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------- */
/* memory: every block carries its size so that the count stays exact */

typedef union hdr { /* C99 has no max_align_t: the widest of the usual suspects */
  size_t n;
  long double ld;
  void *ptr;
  uint64_t u;
} hdr;

void *smtpc__pmalloc(smtpc_plan *p, size_t n) {
  hdr *h;
  if (n > (size_t)-1 - sizeof *h) return NULL;
  h = p->alloc(p->alloc_ud, NULL, n + sizeof *h);
  if (h == NULL) return NULL;
  h->n = n;
  p->mem += n + sizeof *h;
  if (p->mem > p->mem_peak) p->mem_peak = p->mem;
  return h + 1;
}

void *smtpc__pcalloc(smtpc_plan *p, size_t n) {
  void *r = smtpc__pmalloc(p, n);
  if (r) memset(r, 0, n);
  return r;
}

void smtpc__pfree(smtpc_plan *p, void *ptr) {
  hdr *h;
  if (ptr == NULL) return;
  h = (hdr *)ptr - 1;
  p->mem -= h->n + sizeof *h;
  p->alloc(p->alloc_ud, h, 0);
}

/* arr (n elements of size octets, capacity *cap) moved into a block of twice the capacity, or
 * first when it has none; *cap follows. NULL when out of memory: arr and *cap are left as they
 * were, so the caller keeps a working array. */
void *smtpc__pgrow(smtpc_plan *p, void *arr, size_t n, size_t size, size_t *cap, size_t first) {
  size_t ncap = *cap ? *cap * 2 : first;
  void *na = smtpc__pmalloc(p, ncap * size);
  if (na == NULL) return NULL;
  if (n) memcpy(na, arr, n * size);
  smtpc__pfree(p, arr);
  *cap = ncap;
  return na;
}

/* ---------------------------------------------------------------------------------------- */
/* the items' slab: an item's block is freed with one store (malloc's free merged it with its
 * neighbours, reading their cold headers), and blocks come out of chunks in add order */

void *smtpc__item_mem(smtpc_plan *p, size_t n, unsigned char *cls) {
  size_t k = (n + SLAB_GRAIN - 1) / SLAB_GRAIN, size = k * SLAB_GRAIN;
  void *b;
  if (k > SLAB_CLASSES) { /* a long input: a block of its own */
    *cls = 0;
    return smtpc__pmalloc(p, n);
  }
  if ((b = p->slab_free[k]) != NULL) {
    p->slab_free[k] = *(void **)b;
  } else {
    if (p->slab_left < size) { /* a new chunk: its first grain links the chunks */
      size_t csize = p->slab_next ? p->slab_next : 4096;
      char *c = smtpc__pmalloc(p, csize), *start;
      if (c == NULL) return NULL;
      *(void **)c = p->slab_chunks;
      p->slab_chunks = c;
      start = c + sizeof(void *);
      start += (SLAB_GRAIN - (size_t)((uintptr_t)start % SLAB_GRAIN)) % SLAB_GRAIN;
      p->slab_cur = start;
      p->slab_left = csize - (size_t)(start - c);
      if (csize < 262144) p->slab_next = csize * 2; /* 4 KiB for a few items, then more */
    }
    b = p->slab_cur;
    p->slab_cur += size;
    p->slab_left -= size;
  }
  p->slab_live++;
  *cls = (unsigned char)k;
  return b;
}

void smtpc__item_mem_free(smtpc_plan *p, void *ptr, unsigned cls) {
  if (cls == 0) {
    smtpc__pfree(p, ptr);
    return;
  }
  *(void **)ptr = p->slab_free[cls];
  p->slab_free[cls] = ptr;
  if (--p->slab_live > 0) return;
  /* no item left: the chunks go (a run's end gives its memory back) */
  while (p->slab_chunks) {
    void *c = p->slab_chunks;
    p->slab_chunks = *(void **)c;
    smtpc__pfree(p, c);
  }
  memset(p->slab_free, 0, sizeof p->slab_free);
  p->slab_cur = NULL;
  p->slab_left = p->slab_next = 0; /* chunks grow with the run again, from 4 KiB */
}

/* ---------------------------------------------------------------------------------------- */
/* the unreported inputs in add order (p->all, a ring indexed by the items' seq) */

int smtpc__all_push(smtpc_plan *p, item *it) {
  if ((size_t)(uint32_t)(p->all_tail - p->all_head) == p->all_cap) {
    size_t ncap = p->all_cap ? p->all_cap * 2 : 64;
    item **na;
    uint32_t k;
    if (ncap > ((size_t)1 << 31) || (na = smtpc__pmalloc(p, ncap * sizeof *na)) == NULL)
      return SMTPC_ENOMEM;
    for (k = p->all_head; k != p->all_tail; k++) na[k & (ncap - 1)] = p->all[k & (p->all_cap - 1)];
    smtpc__pfree(p, p->all);
    p->all = na;
    p->all_cap = ncap;
  }
  it->seq = p->all_tail++;
  p->all[it->seq & (p->all_cap - 1)] = it;
  return 0;
}

void smtpc__all_del(smtpc_plan *p, item *it) {
  size_t mask = p->all_cap - 1;
  p->all[it->seq & mask] = NULL;
  while (p->all_head != p->all_tail && p->all[p->all_head & mask] == NULL) p->all_head++;
  if (p->all_head == p->all_tail && p->all_cap > 4096) { /* a big batch is over */
    smtpc__pfree(p, p->all);
    p->all = NULL;
    p->all_cap = 0;
  }
}

char *smtpc__pstrdup(smtpc_plan *p, const char *s) {
  size_t n = strlen(s);
  char *r = smtpc__pmalloc(p, n + 1);
  if (r) memcpy(r, s, n + 1);
  return r;
}

/* ---------------------------------------------------------------------------------------- */
/* the action queue (a ring; the front is in plan.c) */

int smtpc__push_action(smtpc_plan *p, int type, unsigned sid, item *it) {
  qent *e;
  if (p->qlen == p->qcap) {
    size_t ncap = p->qcap ? p->qcap * 2 : 64, i;
    qent *nq = smtpc__pmalloc(p, ncap * sizeof *nq);
    if (nq == NULL) return SMTPC_ENOMEM;
    for (i = 0; i < p->qlen; i++) nq[i] = p->q[(p->qhead + i) % p->qcap];
    smtpc__pfree(p, p->q);
    p->q = nq;
    p->qcap = ncap;
    p->qhead = 0;
  }
  e = &p->q[(p->qhead + p->qlen++) % p->qcap];
  e->type = type;
  e->sid = sid;
  e->it = it;
  e->token = 0;
  if (it) it->in_queue = 1;
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* which groups the scheduling pass looks at */

void smtpc__group_ready(smtpc_plan *p, group *g) {
  if (g->in_ready || g->nqueued == 0) return;
  g->in_ready = 1;
  l_push(&p->ready, &g->rnode);
}

void smtpc__host_freed(smtpc_plan *p, host *h) {
  size_t i;
  for (i = 0; i < h->ngrps; i++) smtpc__group_ready(p, h->grps[i]);
}

static int sleeper_before(const sleeper *a, const sleeper *b) { return a->at < b->at; }

/* Out of memory, the group is made ready instead: the pass looks at it once more, no harm. */
void smtpc__group_sleep(smtpc_plan *p, group *g, uint64_t at) {
  size_t i;
  sleeper e;
  if (g->sleep_until && g->sleep_until <= at) return; /* it wakes sooner already */
  if (p->nsleepers == p->capsleepers) {
    sleeper *n = smtpc__pgrow(p, p->sleepers, p->nsleepers, sizeof *n, &p->capsleepers, 64);
    if (n == NULL) {
      smtpc__group_ready(p, g);
      return;
    }
    p->sleepers = n;
  }
  g->sleep_until = at; /* an older, later entry for g is stale: skipped when it comes up */
  e.at = at;
  e.g = g;
  for (i = p->nsleepers++; i > 0 && sleeper_before(&e, &p->sleepers[(i - 1) / 2]); i = (i - 1) / 2)
    p->sleepers[i] = p->sleepers[(i - 1) / 2];
  p->sleepers[i] = e;
}

/* Groups whose wait is over go to p->ready; *next learns when the next one is due. */
void smtpc__wake_sleepers(smtpc_plan *p, uint64_t now, uint64_t *next) {
  while (p->nsleepers > 0) {
    sleeper top = p->sleepers[0], last;
    size_t i = 0;
    if (top.at > now) {
      wake_at(next, top.at);
      return;
    }
    last = p->sleepers[--p->nsleepers];
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= p->nsleepers) break;
      if (c + 1 < p->nsleepers && sleeper_before(&p->sleepers[c + 1], &p->sleepers[c])) c++;
      if (!sleeper_before(&p->sleepers[c], &last)) break;
      p->sleepers[i] = p->sleepers[c];
      i = c;
    }
    if (p->nsleepers > 0) p->sleepers[i] = last;
    if (top.g->sleep_until != top.at) continue; /* stale */
    top.g->sleep_until = 0;
    smtpc__group_ready(p, top.g);
  }
}

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

static int t_put(smtpc_plan *p, table *t, void *rec, const char *(*key_of)(void *)) {
  size_t i;
  hrec *r = rec;
  if ((t->n + 1) * 4 > t->cap * 3) { /* keep the load under 3/4 */
    size_t ncap = t->cap ? t->cap * 2 : 64;
    void **ns = smtpc__pcalloc(p, ncap * sizeof *ns);
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
    smtpc__pfree(p, t->slots);
    t->slots = ns;
    t->cap = ncap;
  }
  i = fnv(key_of(rec)) & (t->cap - 1);
  r->hnext = t->slots[i];
  t->slots[i] = r;
  t->n++;
  return 0;
}

static const char *domain_key(void *x) { return ((domain *)x)->name; }
static const char *group_key(void *x) { return ((group *)x)->key; }
static const char *host_key(void *x) { return ((host *)x)->text; }

/* ---------------------------------------------------------------------------------------- */
/* hosts */

host *smtpc__host_for(smtpc_plan *p, const smtpc_sockaddr *sa) {
  char text[64];
  host *h;
  text[0] = '\0';
  if (sa->sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &sa->in6.sin6_addr, text, sizeof text);
  else if (sa->sa.sa_family == AF_INET) inet_ntop(AF_INET, &sa->in.sin_addr, text, sizeof text);
  if (text[0] == '\0') return NULL; /* a route from a driver with a bad family */
  h = t_get(&p->hosts, text, host_key);
  if (h) return h;
  h = smtpc__pcalloc(p, sizeof *h);
  if (h == NULL) return NULL;
  h->sa = *sa;
  if (sa->sa.sa_family == AF_INET6) h->sa.in6.sin6_port = htons((uint16_t)p->o.port);
  else h->sa.in.sin_port = htons((uint16_t)p->o.port);
  memcpy(h->text, text, sizeof text);
  if (t_put(p, &p->hosts, h, host_key) != 0) {
    smtpc__pfree(p, h);
    return NULL;
  }
  return h;
}

/* ---------------------------------------------------------------------------------------- */
/* routes and groups */

/* A copy of a route in one planner block (smtpc_route_dup's layout, our allocator). */
static smtpc_route *route_copy(smtpc_plan *p, const smtpc_route *r) {
  size_t i, naddr = 0, text = strlen(r->domain ? r->domain : "") + 1;
  smtpc_route *c;
  smtpc_mx *mx;
  smtpc_sockaddr *sa;
  char *s;
  for (i = 0; i < r->nmx; i++) {
    naddr += r->mx[i].naddrs;
    text += strlen(r->mx[i].host ? r->mx[i].host : "") + 1;
  }
  c = smtpc__pmalloc(p, sizeof *c + r->nmx * sizeof *mx + naddr * sizeof *sa + text);
  if (c == NULL) return NULL;
  *c = *r;
  mx = (smtpc_mx *)(c + 1);
  sa = (smtpc_sockaddr *)(mx + r->nmx);
  s = (char *)(sa + naddr);
  c->mx = mx;
  strcpy(s, r->domain ? r->domain : "");
  c->domain = s;
  s += strlen(s) + 1;
  for (i = 0; i < r->nmx; i++) {
    mx[i] = r->mx[i];
    memcpy(sa, r->mx[i].addrs, r->mx[i].naddrs * sizeof *sa);
    mx[i].addrs = sa;
    sa += r->mx[i].naddrs;
    strcpy(s, r->mx[i].host ? r->mx[i].host : "");
    mx[i].host = s;
    s += strlen(s) + 1;
  }
  return c;
}

/* Domains with the same MX set (hosts and preferences) share a group, hence sessions. The
 * whole set is the key, not only the best host: a backup MX that takes mail for one domain may
 * refuse to relay for another. Hosts of equal preference are keyed in name order. */
static char *route_key(smtpc_plan *p, const smtpc_route *route, int literal) {
  size_t i, j, len = 4, used;
  const smtpc_mx **order = smtpc__pmalloc(p, route->nmx * sizeof *order + 1);
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
  key = smtpc__pmalloc(p, len);
  if (key != NULL) {
    memcpy(key, literal ? "ip:" : "mx:", 4);
    used = 3;
    for (i = 0; i < route->nmx; i++)
      used += (size_t)snprintf(key + used, len - used, "%d %s,", order[i]->preference,
                               order[i]->host);
  }
  smtpc__pfree(p, order);
  return key;
}

static group *group_for(smtpc_plan *p, const smtpc_route *route, int literal) {
  char *key = route_key(p, route, literal);
  group *g = key ? t_get(&p->groups_t, key, group_key) : NULL;
  size_t m, a, n = 0;
  if (g || key == NULL) {
    smtpc__pfree(p, key);
    return g;
  }
  g = smtpc__pcalloc(p, sizeof *g);
  if (g == NULL || (g->route = route_copy(p, route)) == NULL) goto fail;
  g->key = key;
  for (m = 0; m < route->nmx; m++) n += route->mx[m].naddrs;
  if ((g->hosts = smtpc__pcalloc(p, (n + 1) * sizeof *g->hosts)) == NULL) goto fail;
  n = 0;
  for (m = 0; m < route->nmx; m++)
    for (a = 0; a < route->mx[m].naddrs; a++) {
      host *h = smtpc__host_for(p, &g->route->mx[m].addrs[a]);
      g->hosts[n++] = h;
      if (h && h->ngrps == h->capgrps) { /* (a host listed twice in g: g twice, harmless) */
        group **ng = smtpc__pgrow(p, h->grps, h->ngrps, sizeof *ng, &h->capgrps, 2);
        if (ng == NULL) goto fail;
        h->grps = ng;
      }
      if (h) h->grps[h->ngrps++] = g;
    }
  if (t_put(p, &p->groups_t, g, group_key) != 0) goto fail;
  l_init(&g->queue);
  l_push(&p->groups, &g->node);
  return g;
fail:
  if (g) {
    for (a = g->hosts ? n : 0; a-- > 0;) { /* the hosts that learnt of g forget it */
      host *h = g->hosts[a];
      if (h && h->ngrps && h->grps[h->ngrps - 1] == g) h->ngrps--;
    }
    smtpc__pfree(p, g->hosts);
    smtpc__pfree(p, g->route);
  }
  smtpc__pfree(p, g);
  smtpc__pfree(p, key);
  return NULL;
}

/* The route to an address literal: one "MX", the address itself. */
static int literal_route(smtpc_plan *p, domain *d) {
  const char *lit = d->name;
  size_t n = strlen(lit);
  const char *s = lit + 1;
  char host[64];
  smtpc_sockaddr sa;
  smtpc_mx m;
  smtpc_route r;
  if (n < 3 || lit[0] != '[' || lit[n - 1] != ']') return -1;
  n -= 2;
  if (n > 5 && (s[0] == 'I' || s[0] == 'i') && (s[1] == 'P' || s[1] == 'p') &&
      (s[2] == 'v' || s[2] == 'V') && s[3] == '6' && s[4] == ':') {
    s += 5;
    n -= 5;
  }
  if (n >= sizeof host) return -1;
  memcpy(host, s, n);
  host[n] = '\0';
  memset(&sa, 0, sizeof sa);
  if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) sa.in.sin_family = AF_INET;
  else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) sa.in6.sin6_family = AF_INET6;
  else return -1;
  memset(&m, 0, sizeof m);
  m.host = host;
  m.naddrs = 1;
  m.addrs = &sa;
  memset(&r, 0, sizeof r);
  r.domain = host;
  r.implicit = 1;
  r.nmx = 1;
  r.mx = &m;
  d->grp = group_for(p, &r, 1);
  return d->grp ? 0 : -1;
}

/* The answer for d: a usable route makes it ready (its group found or made). */
int smtpc__domain_route(smtpc_plan *p, domain *d, const smtpc_route *route) {
  size_t m;
  d->state = D_FAILED;
  if (route == NULL) return -1;
  d->dns_error = route->error;
  d->null_mx = route->null_mx;
  if (route->error != SMTPC_DNS_OK || route->null_mx || route->nmx == 0 || route->mx == NULL)
    return -1;
  for (m = 0; m < route->nmx; m++) /* a driver's route: hold it to the header's promises */
    if (route->mx[m].naddrs == 0 || route->mx[m].addrs == NULL || route->mx[m].host == NULL)
      return -1;
  if ((d->grp = group_for(p, route, 0)) == NULL) return -1;
  d->state = D_READY;
  return 0;
}

/* The domain record for name, made (and its RESOLVE queued) on first sight. A look-up for
 * every address: the chain is walked on the records' hashes, the name (in the record's
 * block) compared only on a match. */
domain *smtpc__domain_for(smtpc_plan *p, const char *name, int literal) {
  uint64_t hash = fnv(name);
  size_t n;
  domain *d;
  if (p->domains.cap)
    for (d = p->domains.slots[hash & (p->domains.cap - 1)]; d; d = d->hnext)
      if (d->hash == hash && strcmp(d->name, name) == 0) return d;
  if (p->ndom == p->cap_dom) {
    domain **nb = smtpc__pgrow(p, p->dom_by_token, p->ndom, sizeof *nb, &p->cap_dom, 64);
    if (nb == NULL) return NULL;
    p->dom_by_token = nb;
  }
  n = strlen(name);
  d = smtpc__pcalloc(p, sizeof *d + n + 1);
  if (d == NULL) return NULL;
  d->name = (char *)(d + 1);
  memcpy(d->name, name, n + 1);
  d->hash = hash;
  if (t_put(p, &p->domains, d, domain_key) != 0) {
    smtpc__pfree(p, d);
    return NULL;
  }
  p->dom_by_token[p->ndom++] = d;
  d->token = p->ndom;
  l_init(&d->waiting);
  l_init(&d->held);
  d->catch_all = -1;
  d->literal = literal;
  if (literal) {
    d->state = D_FAILED;
    d->dns_error = SMTPC_DNS_NOADDRESS;
    if (literal_route(p, d) == 0) d->state = D_READY;
    return d;
  }
  d->state = D_RESOLVING;
  if (smtpc__push_action(p, SMTPC_PLAN_RESOLVE, 0, NULL) != 0) {
    d->state = D_FAILED;
    d->failed_status = SMTPC_ENOMEM;
    return d;
  }
  p->q[(p->qhead + p->qlen - 1) % p->qcap].token = d->token;
  return d;
}

void smtpc__store_free(smtpc_plan *p) {
  size_t i;
  for (i = 0; i < p->ndom; i++) {
    domain *d = p->dom_by_token[i];
    smtpc__pfree(p, d->probe_rcpt);
    smtpc__pfree(p, d);
  }
  for (i = 0; i < p->groups_t.cap; i++) {
    group *g = p->groups_t.slots[i];
    while (g) {
      group *n = g->hnext;
      smtpc__pfree(p, g->route);
      smtpc__pfree(p, g->hosts);
      smtpc__pfree(p, g->key);
      smtpc__pfree(p, g);
      g = n;
    }
  }
  for (i = 0; i < p->hosts.cap; i++) {
    host *h = p->hosts.slots[i];
    while (h) {
      host *n = h->hnext;
      smtpc__reply_unref(p, h->fail_reply);
      smtpc__pfree(p, h->grps);
      smtpc__pfree(p, h);
      h = n;
    }
  }
  smtpc__pfree(p, p->dom_by_token);
  smtpc__pfree(p, p->domains.slots);
  smtpc__pfree(p, p->groups_t.slots);
  smtpc__pfree(p, p->hosts.slots);
  smtpc__pfree(p, p->q);
  smtpc__pfree(p, p->sleepers);
  smtpc__pfree(p, p->all);
  p->dom_by_token = NULL;
  p->q = NULL;
}
