/* dns_route.c -- the MX lookup of one domain as a machine without I/O: it hands out queries
 * (the MX, then A/AAAA of every MX host, or of the domain itself for the implicit MX), takes
 * the answer messages or a transport failure, and builds the smtpc_route. Both transports use
 * it: dns.c (c-ares on libuv) and the cosocket driver in Lua (smtpcode.resty, through
 * lua/l_dns.c). What a route means -- sorting, null MX, implicit MX, dangling hosts skipped,
 * which error wins, how long it may be kept -- is decided here and nowhere else.
 */
#include "dns_internal.h"

#include <string.h>

#define Q_NONE 0
#define Q_TO_SEND 1
#define Q_SENT 2
#define Q_DONE 3

/* How an answer came out, before it is folded into the job. */
enum { ST_OK = 100, ST_NODATA, ST_NXDOMAIN }; /* or a failure: SMTPC_DNS_SERVFAIL ... */

int smtpc__dns_family_of(const char *name) {
  static const char *const names[] = {"prefer_ipv4", "prefer_ipv6", "ipv4_only", "ipv6_only"};
  int i;
  for (i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

int smtpc__dns_failure_of(const char *name) {
  return strcmp(name, "timeout") == 0    ? SMTPC_DNS_TIMEOUT
         : strcmp(name, "refused") == 0  ? SMTPC_DNS_REFUSED
         : strcmp(name, "servfail") == 0 ? SMTPC_DNS_SERVFAIL
                                         : 0;
}

void smtpc__mxq_init(smtpc__mxq *q, const char *domain, int family, uint32_t neg_ttl,
                     uint32_t max_ttl) {
  memset(q, 0, sizeof(*q));
  strncpy(q->domain, domain, sizeof(q->domain) - 1);
  q->family = family;
  q->neg_ttl = neg_ttl;
  q->max_ttl = max_ttl;
  q->ttl = UINT32_MAX;
  q->qmx = Q_TO_SEND;
}

/* Which failure to report when no host has an address: a temporary one if any host had one
 * (the route may work later), otherwise "no-address". */
static int fail_rank(int e) {
  return e == SMTPC_DNS_TIMEOUT ? 3 : e == SMTPC_DNS_SERVFAIL ? 2 : e == SMTPC_DNS_REFUSED ? 1 : 0;
}

static uint32_t neg_ttl(const smtpc__mxq *q, uint32_t soa) {
  return soa < q->neg_ttl ? soa : q->neg_ttl;
}

static void on_mx_rr(void *ctx, const unsigned char *m, int len, const unsigned char *rd,
                     int rdlen, uint32_t ttl) {
  smtpc__mxq *q = ctx;
  char name[256], s[256];
  long enclen;
  size_t i, n;
  int pref, rc;
  (void)ttl;
  if (rdlen < 3 || (rc = smtpc__dns_expand(rd + 2, m, len, s, &enclen)) < 0) return;
  if (rc == 1) { /* longer than any host name: not the null MX, and skipped */
    q->nother++;
    return;
  }
  pref = (int)((unsigned)rd[0] << 8 | rd[1]);
  n = strlen(s);
  if (n == 0 && pref == 0) { /* "." : the null MX, meaningful only alone (checked later) */
    q->nroot++;
    return;
  }
  q->nother++;
  if (smtpc__dns_name_norm(s, n, name) != 0) return; /* not a host name: skipped */
  for (i = 0; i < q->nhosts; i++) { /* one entry per host, at its best preference */
    if (strcmp(q->hosts[i].name, name) == 0) {
      if (pref < q->hosts[i].pref) q->hosts[i].pref = pref;
      return;
    }
  }
  if (q->nhosts == SMTPC__DNS_MAX_MX) { /* full: keep the lowest preferences */
    size_t worst = 0;
    for (i = 1; i < q->nhosts; i++)
      if (q->hosts[i].pref > q->hosts[worst].pref) worst = i;
    if (q->hosts[worst].pref <= pref) return;
    i = worst;
  } else {
    i = q->nhosts++;
  }
  strcpy(q->hosts[i].name, name);
  q->hosts[i].pref = pref;
}

static void on_addr_rr(void *ctx, const unsigned char *m, int len, const unsigned char *rd,
                       int rdlen, uint32_t ttl) {
  smtpc__dns_host *h = ctx;
  (void)m, (void)len, (void)ttl;
  if (rdlen == 4 && h->n4 < SMTPC__DNS_MAX_ADDRS) {
    smtpc_sockaddr *a = &h->v4[h->n4++];
    memset(a, 0, sizeof(*a));
    a->in.sin_family = AF_INET;
    memcpy(&a->in.sin_addr, rd, 4);
  } else if (rdlen == 16 && h->n6 < SMTPC__DNS_MAX_ADDRS) {
    smtpc_sockaddr *a = &h->v6[h->n6++];
    memset(a, 0, sizeof(*a));
    a->in6.sin6_family = AF_INET6;
    memcpy(&a->in6.sin6_addr, rd, 16);
  }
}

/* Sort the hosts, take what the caller's host cache knows, queue lookups for the rest. */
static void start_hosts(smtpc__mxq *q) {
  size_t i, k;
  /* stable insertion sort by preference (at most SMTPC__DNS_MAX_MX entries) */
  for (i = 1; i < q->nhosts; i++) {
    smtpc__dns_host t = q->hosts[i];
    for (k = i; k > 0 && q->hosts[k - 1].pref > t.pref; k--) q->hosts[k] = q->hosts[k - 1];
    q->hosts[k] = t;
  }
  for (i = 0; i < q->nhosts; i++) {
    smtpc__dns_host *h = &q->hosts[i];
    h->fail = SMTPC_DNS_NXDOMAIN;
    h->ttl = h->nttl = UINT32_MAX;
    if (q->known && q->known(q->ud, h)) continue; /* known host: no query */
    if (q->family != SMTPC_DNS_IPV6_ONLY) h->qa = Q_TO_SEND, h->pending++;
    if (q->family != SMTPC_DNS_IPV4_ONLY) h->qaaaa = Q_TO_SEND, h->pending++;
  }
}

int smtpc__mxq_next(smtpc__mxq *q, unsigned *id, const char **name, int *type) {
  size_t i;
  if (q->qmx == Q_TO_SEND) {
    q->qmx = Q_SENT;
    *id = 0, *name = q->domain, *type = SMTPC__DNS_T_MX;
    return 1;
  }
  for (i = 0; i < q->nhosts; i++) {
    smtpc__dns_host *h = &q->hosts[i];
    if (h->qa == Q_TO_SEND) {
      h->qa = Q_SENT;
      *id = 1 + 2 * (unsigned)i, *name = h->name, *type = SMTPC__DNS_T_A;
      return 1;
    }
    if (h->qaaaa == Q_TO_SEND) {
      h->qaaaa = Q_SENT;
      *id = 2 + 2 * (unsigned)i, *name = h->name, *type = SMTPC__DNS_T_AAAA;
      return 1;
    }
  }
  return 0;
}

/* The query slot of id, if it is waiting for an answer. */
static unsigned char *slot(smtpc__mxq *q, unsigned id) {
  unsigned char *s;
  if (id == 0) s = &q->qmx;
  else if ((id - 1) / 2 < q->nhosts) s = id % 2 ? &q->hosts[(id - 1) / 2].qa : &q->hosts[(id - 1) / 2].qaaaa;
  else return NULL;
  return *s == Q_SENT ? s : NULL;
}

static void fold(smtpc__mxq *q, unsigned id, int st, uint32_t ttl, uint32_t soa) {
  if (id == 0) {
    q->mx_answered = 1;
    if (st == ST_OK && q->nroot == 1 && q->nother == 0) {
      q->ttl = ttl; /* null MX */
    } else if (st == ST_OK && q->nhosts > 0) {
      q->ttl = ttl;
      start_hosts(q);
    } else if (st == ST_OK) { /* MX records, but none of them a usable host name */
      q->ttl = ttl;
      q->error = SMTPC_DNS_NOADDRESS;
    } else if (st == ST_NODATA) { /* no MX: RFC 5321 5.1 implicit MX, the domain's addresses */
      q->ttl = neg_ttl(q, soa);
      q->implicit = 1;
      q->nhosts = 1;
      strcpy(q->hosts[0].name, q->domain);
      q->hosts[0].pref = 0;
      start_hosts(q);
    } else if (st == ST_NXDOMAIN) {
      q->error = SMTPC_DNS_NXDOMAIN;
      q->ttl = neg_ttl(q, soa);
    } else {
      q->error = st;
      q->ttl = SMTPC__DNS_FAILURE_TTL;
    }
  } else {
    smtpc__dns_host *h = &q->hosts[(id - 1) / 2];
    h->pending--;
    if (st == ST_OK) {
      if (ttl < h->ttl) h->ttl = ttl;
    } else if (st == ST_NODATA || st == ST_NXDOMAIN) {
      if (neg_ttl(q, soa) < h->nttl) h->nttl = neg_ttl(q, soa);
    } else {
      if (fail_rank(st) > fail_rank(h->fail)) h->fail = st;
      if (SMTPC__DNS_FAILURE_TTL < h->nttl) h->nttl = SMTPC__DNS_FAILURE_TTL;
    }
    if (h->pending == 0 && q->learned) q->learned(q->ud, h);
  }
}

int smtpc__mxq_answer(smtpc__mxq *q, unsigned id, const unsigned char *m, int len) {
  unsigned char *s = slot(q, id);
  uint32_t ttl = UINT32_MAX, soa = UINT32_MAX;
  int st, rcode, n;
  if (s == NULL) return SMTPC_EINVAL;
  *s = Q_DONE;
  rcode = m != NULL && len >= 12 ? m[3] & 0x0F : -1;
  if (rcode == 0 || rcode == 3) {
    const char *name = id == 0 ? q->domain : q->hosts[(id - 1) / 2].name;
    void *ctx = id == 0 ? (void *)q : (void *)&q->hosts[(id - 1) / 2];
    n = smtpc__dns_walk(m, len, name, id == 0 ? SMTPC__DNS_T_MX : id % 2 ? SMTPC__DNS_T_A
                                                                        : SMTPC__DNS_T_AAAA,
                        id == 0 ? on_mx_rr : on_addr_rr, ctx, &ttl, &soa);
    if (n < 0) st = SMTPC_DNS_SERVFAIL; /* a malformed answer */
    else if (rcode == 3) st = ST_NXDOMAIN;
    else st = n > 0 ? ST_OK : ST_NODATA; /* a CNAME without data is no data */
  } else {
    st = rcode == 5 ? SMTPC_DNS_REFUSED : SMTPC_DNS_SERVFAIL; /* SERVFAIL, FORMERR, NOTIMP */
  }
  fold(q, id, st, ttl, soa);
  return 0;
}

int smtpc__mxq_fail(smtpc__mxq *q, unsigned id, int kind) {
  unsigned char *s = slot(q, id);
  if (s == NULL) return SMTPC_EINVAL;
  *s = Q_DONE;
  if (kind != SMTPC_DNS_TIMEOUT && kind != SMTPC_DNS_REFUSED) kind = SMTPC_DNS_SERVFAIL;
  fold(q, id, kind, UINT32_MAX, UINT32_MAX);
  return 0;
}

int smtpc__mxq_done(const smtpc__mxq *q) {
  size_t i;
  if (!q->mx_answered) return 0;
  for (i = 0; i < q->nhosts; i++)
    if (q->hosts[i].pending > 0) return 0;
  return 1;
}

void smtpc__mxq_expire(smtpc__mxq *q) {
  size_t i;
  if (!q->mx_answered) {
    q->error = SMTPC_DNS_TIMEOUT; /* the MX answer itself never came */
    q->ttl = SMTPC__DNS_FAILURE_TTL;
  }
  for (i = 0; i < q->nhosts; i++) /* lookups still running count as timed out */
    if (q->hosts[i].pending > 0) {
      q->hosts[i].fail = SMTPC_DNS_TIMEOUT;
      if (q->hosts[i].nttl > SMTPC__DNS_FAILURE_TTL) q->hosts[i].nttl = SMTPC__DNS_FAILURE_TTL;
    }
}

/* Hosts still being looked up count as timed out (this runs at the deadline too). */
void smtpc__mxq_route(const smtpc__mxq *q, smtpc__mxq_route_buf *out) {
  smtpc_route *t = &out->route;
  size_t i, n = 0;
  int worst = SMTPC_DNS_NXDOMAIN;
  uint32_t ttl = q->ttl;

  memset(t, 0, sizeof(*t));
  t->domain = q->domain;
  t->implicit = q->implicit;
  t->null_mx = q->nroot == 1 && q->nother == 0;
  t->error = q->error;
  if (q->error == 0 && !t->null_mx) {
    for (i = 0; i < q->nhosts; i++) {
      const smtpc__dns_host *h = &q->hosts[i];
      const smtpc_sockaddr *first = h->v4, *second = h->v6;
      size_t nf = h->n4, ns = h->n6;
      if (q->family == SMTPC_DNS_PREFER_IPV6 || q->family == SMTPC_DNS_IPV6_ONLY) {
        first = h->v6, nf = h->n6, second = h->v4, ns = h->n4;
      }
      if (nf + ns == 0) { /* skipped: the route holds only as long as its absence */
        if (h->nttl < ttl) ttl = h->nttl;
        if (fail_rank(h->fail) > fail_rank(worst)) worst = h->fail;
        continue;
      }
      if (h->ttl < ttl) ttl = h->ttl; /* a missing AAAA next to an A does not shorten it */
      memcpy(out->addrs[n], first, nf * sizeof(*first));
      memcpy(out->addrs[n] + nf, second, ns * sizeof(*second));
      out->mx[n].preference = h->pref;
      out->mx[n].host = h->name;
      out->mx[n].naddrs = nf + ns;
      out->mx[n].addrs = out->addrs[n];
      n++;
    }
    if (n == 0) {
      t->error = worst == SMTPC_DNS_NXDOMAIN ? SMTPC_DNS_NOADDRESS : worst;
      if (worst != SMTPC_DNS_NXDOMAIN && ttl > SMTPC__DNS_FAILURE_TTL) ttl = SMTPC__DNS_FAILURE_TTL;
      if (worst == SMTPC_DNS_NXDOMAIN && ttl > q->neg_ttl) ttl = q->neg_ttl;
    }
    t->nmx = n;
    t->mx = out->mx;
  }
  if (ttl > q->max_ttl) ttl = q->max_ttl;
  t->ttl = ttl;
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64*: shuffling, not secrets */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717u;
}

/* RFC 5321 5.1: hosts of equal preference in random order, afresh for every caller, so that
 * load spreads even when the route comes from a cache. */
void smtpc__route_shuffle(smtpc_route *route, uint64_t *rng) {
  smtpc_mx *mx = (smtpc_mx *)(uintptr_t)route->mx;
  size_t i = 0, j, k;
  if (*rng == 0) *rng = 0x9e3779b97f4a7c15u; /* xorshift stays at zero */
  while (i < route->nmx) {
    for (j = i + 1; j < route->nmx && mx[j].preference == mx[i].preference; j++) {}
    for (k = j - 1; k > i; k--) {
      size_t o = i + (size_t)(rng_next(rng) % (k - i + 1));
      smtpc_mx t = mx[k];
      mx[k] = mx[o];
      mx[o] = t;
    }
    i = j;
  }
}
