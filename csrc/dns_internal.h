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

/* A route in one allocation, reference-counted: the cache holds one reference and every
 * delivery waiting to run holds one. smtpc_route_dup hands out blocks too (refs == 1), which is
 * how smtpc_route_free finds the allocation from the route. */
typedef struct smtpc__rblock {
  unsigned refs;
  uint64_t expires;                 /* uv_now() milliseconds                       */
  struct smtpc__rblock *hnext;      /* cache: hash chain                           */
  struct smtpc__rblock *older, *newer; /* cache: insertion order, for eviction     */
  smtpc_route route;                /* its arrays and strings follow this struct   */
} smtpc__rblock;

/* Deep copy of a route into a new block (refs = 1); NULL when out of memory. */
smtpc__rblock *smtpc__rblock_new(const smtpc_route *tmpl);
void smtpc__rblock_unref(smtpc__rblock *b);
smtpc__rblock *smtpc__rblock_of(const smtpc_route *route);

#endif
