/* dns_internal.h -- shared by dns.c (the c-ares/libuv driver) and dns_msg.c (DNS messages,
 * names and route blocks); not installed. */
#ifndef SMTPC_DNS_INTERNAL_H
#define SMTPC_DNS_INTERNAL_H

#include "internal.h"

/* Bounds on what a hostile or broken zone can make us hold. Real domains publish a handful of
 * MX hosts with a few addresses each; Postfix tries 5 addresses by default. */
#define SMTPC__DNS_MAX_MX 16    /* MX hosts kept per domain (the lowest preferences)      */
#define SMTPC__DNS_MAX_ADDRS 16 /* addresses kept per host and family                     */
#define SMTPC__DNS_MAX_RR 64    /* answer records looked at per message                   */
#define SMTPC__DNS_MAX_CNAME 8  /* CNAME hops followed                                    */

#define SMTPC__DNS_T_A 1
#define SMTPC__DNS_T_CNAME 5
#define SMTPC__DNS_T_SOA 6
#define SMTPC__DNS_T_MX 15
#define SMTPC__DNS_T_AAAA 28

/* A host name as the resolver accepts it, in ASCII (A-labels): labels of 1..63 letters, digits,
 * '-' or '_' (no '-' at either end), 253 octets at most, one trailing dot allowed.
 * Writes it lower-cased without the trailing dot into out (NUL-terminated).
 * Returns 0, or SMTPC_EINVAL. */
int smtpc__dns_name_norm(const char *in, size_t len, char out[256]);
/* The same for a domain from a caller, which may hold U-labels (converted to A-labels). */
int smtpc__dns_name_user(const char *in, size_t len, char out[256]);

/* The option names of enum smtpc_dns_family, in its order, as every binding takes them: the
 * enum value for name, or -1 (then SMTPC__DNS_FAMILY_ERR says what is allowed). */
int smtpc__dns_family_of(const char *name);
#define SMTPC__DNS_FAMILY_ERR "family must be prefer_ipv4, prefer_ipv6, ipv4_only or ipv6_only"
/* A transport failure as a driver names it to smtpc__mxq_fail ("timeout", "refused",
 * "servfail"): its SMTPC_DNS_* code, or 0 for another name. */
int smtpc__dns_failure_of(const char *name);

/* Called for every record of the asked type owned by the asked name (after CNAMEs). */
typedef void (*smtpc__dns_rr_fn)(void *ctx, const unsigned char *msg, int len,
                                 const unsigned char *rdata, int rdlen, uint32_t ttl);

/* Walk a DNS response to a query for qname/qtype: follow the CNAME chain from qname in the
 * answer section, call fn for each qtype record owned by the chain's last name.
 * *ttl gets the smallest TTL among the records used (CNAMEs included), UINT32_MAX when none;
 * *neg_ttl the negative-caching TTL from an SOA in the authority section (RFC 2308: the smaller
 * of its TTL and MINIMUM), UINT32_MAX when none. Returns the number of records passed to fn,
 * or -1 for a malformed message. */
int smtpc__dns_walk(const unsigned char *msg, int len, const char *qname, int qtype,
                    smtpc__dns_rr_fn fn, void *ctx, uint32_t *ttl, uint32_t *neg_ttl);

/* dns_cache.c: a bounded cache of entries that start with a smtpc__centry. */
typedef struct smtpc__centry {
  struct smtpc__centry *hnext;          /* hash chain                                */
  struct smtpc__centry *older, *newer;  /* insertion order, for eviction             */
  const char *key;                      /* points into the entry                     */
  uint64_t expires;                     /* uv_now() milliseconds                     */
} smtpc__centry;

typedef struct smtpc__cache {
  smtpc__centry **buckets;
  size_t nbuckets, count, max;          /* max 0: the cache is off                   */
  smtpc__centry *oldest, *newest;
  void (*drop)(smtpc__centry *e);       /* an entry leaves the cache                 */
} smtpc__cache;

int smtpc__cache_init(smtpc__cache *c, size_t max, void (*drop)(smtpc__centry *e));
/* The live entry for key, or NULL (an expired one is dropped on the way). */
smtpc__centry *smtpc__cache_get(smtpc__cache *c, const char *key, uint64_t now);
/* Hand e over to the cache (it replaces an entry of the same key; the oldest entry goes when
 * the cache is full; with the cache off, e is dropped at once). */
void smtpc__cache_put(smtpc__cache *c, smtpc__centry *e, uint64_t expires);
void smtpc__cache_clear(smtpc__cache *c);
void smtpc__cache_free(smtpc__cache *c);

/* A route in one allocation, reference-counted: the cache holds one reference and every
 * delivery waiting to run holds one. smtpc_route_dup hands out blocks too (refs == 1), which is
 * how smtpc_route_free finds the allocation from the route. */
typedef struct smtpc__rblock {
  smtpc__centry ce;                 /* first: the cache's view of it               */
  unsigned refs;
  smtpc_route route;                /* its arrays and strings follow this struct   */
} smtpc__rblock;

/* Deep copy of a route into a new block (refs = 1); NULL when out of memory. */
smtpc__rblock *smtpc__rblock_new(const smtpc_route *tmpl);
void smtpc__rblock_unref(smtpc__rblock *b);
smtpc__rblock *smtpc__rblock_of(const smtpc_route *route);

/* Expand the (possibly compressed) name at p in message m: 0, 1 for a valid encoding too long
 * to be a name (out ""), -1 for a broken one. *enclen: its length at p. */
int smtpc__dns_expand(const unsigned char *p, const unsigned char *m, int len, char out[256],
                      long *enclen);

/* A query message (RD set, one question of class IN) for name/type with transaction id id,
 * into buf: its length, or SMTPC_EINVAL when name is not a host name or buf is too small. */
int smtpc__dns_query(unsigned char *buf, size_t size, unsigned id, const char *name, int type);

/* ---- dns_route.c: the MX lookup of one domain without I/O ---------------------------------
 * The transport (dns.c's c-ares, the Lua cosocket driver) loops:
 *     while (smtpc__mxq_next(q, &id, &name, &type)) send the query (remember id);
 *     answer: smtpc__mxq_answer(q, id, msg, len)  (any rcode: the machine reads it)
 *     no answer (timeout, connection refused ...): smtpc__mxq_fail(q, id, SMTPC_DNS_*)
 * until smtpc__mxq_done(q) (or its deadline: smtpc__mxq_expire(q)), then smtpc__mxq_route. */
#define SMTPC__DNS_FAILURE_TTL 5 /* SERVFAIL, REFUSED, timeout: long enough to spare a server */

typedef struct smtpc__dns_host {
  char name[256];
  int pref;
  int fail;               /* worst failure of its lookups: SMTPC_DNS_* (NXDOMAIN = none) */
  int pending;            /* its lookups not yet answered                              */
  uint32_t ttl;           /* smallest TTL of its addresses                             */
  uint32_t nttl;          /* how long its absence may be believed (negative/failure)   */
  size_t n4, n6;
  smtpc_sockaddr v4[SMTPC__DNS_MAX_ADDRS], v6[SMTPC__DNS_MAX_ADDRS];
  unsigned char qa, qaaaa; /* query states (dns_route.c)                                */
} smtpc__dns_host;

typedef struct smtpc__mxq {
  char domain[256];       /* normalised (smtpc__dns_name_user)                          */
  int family;             /* enum smtpc_dns_family                                       */
  uint32_t neg_ttl, max_ttl;
  /* optional host cache of the transport: known() fills h (fail, n4/n6, v4/v6, ttl or
   * nttl) and returns 1 to skip its lookups; learned() sees a host whose lookups are back */
  int (*known)(void *ud, smtpc__dns_host *h);
  void (*learned)(void *ud, const smtpc__dns_host *h);
  void *ud;
  unsigned char qmx;
  int error, implicit, mx_answered;
  int nroot, nother;      /* MX records: 0 "." and anything else (RFC 7505 wants it alone) */
  uint32_t ttl;
  size_t nhosts;
  smtpc__dns_host hosts[SMTPC__DNS_MAX_MX];
} smtpc__mxq;

/* Where smtpc__mxq_route builds the route (it points into this and into the machine). */
typedef struct smtpc__mxq_route_buf {
  smtpc_route route;
  smtpc_mx mx[SMTPC__DNS_MAX_MX];
  smtpc_sockaddr addrs[SMTPC__DNS_MAX_MX][2 * SMTPC__DNS_MAX_ADDRS];
} smtpc__mxq_route_buf;

void smtpc__mxq_init(smtpc__mxq *q, const char *domain, int family, uint32_t neg_ttl,
                     uint32_t max_ttl);
/* The next query to send: 1 with its id (small, < 2 * SMTPC__DNS_MAX_MX + 1), name, type. */
int smtpc__mxq_next(smtpc__mxq *q, unsigned *id, const char **name, int *type);
/* 0, or SMTPC_EINVAL for an id that is not waiting (never sent, already answered). */
int smtpc__mxq_answer(smtpc__mxq *q, unsigned id, const unsigned char *msg, int len);
int smtpc__mxq_fail(smtpc__mxq *q, unsigned id, int kind);
int smtpc__mxq_done(const smtpc__mxq *q);
void smtpc__mxq_expire(smtpc__mxq *q);
void smtpc__mxq_route(const smtpc__mxq *q, smtpc__mxq_route_buf *out);
/* Equal preferences in a random order (RFC 5321 5.1); *rng: xorshift state. */
void smtpc__route_shuffle(smtpc_route *route, uint64_t *rng);

#endif
