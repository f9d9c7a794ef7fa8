/* dns_msg.c -- the parts of the resolver that do no I/O: host name checks, walking DNS
 * responses (c-ares' own parsers drop the TTLs we cache by, and the SOA of negative answers),
 * route blocks, error names. */
#include "dns_internal.h"

#include <ares.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
  const char *name, *msg;
} dns_errors[] = {
  {NULL, ""},
#define SMTPC__XX(id, name, msg) {name, msg},
  SMTPC_DNS_ERROR_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_dns_error_name(int error) {
  return error >= 0 && error < SMTPC_DNS_ERROR_COUNT ? dns_errors[error].name : NULL;
}

const char *smtpc_dns_error_message(int error) {
  return error >= 0 && error < SMTPC_DNS_ERROR_COUNT ? dns_errors[error].msg : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Names. Only host-name characters pass (underscore too: it is common in real zones), so that
 * nothing a zone publishes -- control characters, spaces, escapes -- reaches a caller that may
 * print it or use it as a TLS server name. */

int smtpc__dns_name_norm(const char *in, size_t len, char out[256]) {
  size_t i, label = 0;
  if (in == NULL) return SMTPC_EINVAL;
  if (len > 0 && in[len - 1] == '.') len--; /* one trailing dot: fully qualified */
  if (len == 0 || len > 253) return SMTPC_EINVAL;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (c == '.') {
      if (label == 0 || in[i - 1] == '-') return SMTPC_EINVAL; /* empty label, "x-." */
      label = 0;
    } else if (c == '-' && label == 0) {
      return SMTPC_EINVAL; /* a label starts with a letter, digit or '_' (RFC 952/1123) */
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      label++;
    } else if (c >= 'A' && c <= 'Z') {
      c = (unsigned char)(c - 'A' + 'a');
      label++;
    } else {
      return SMTPC_EINVAL;
    }
    if (label > 63) return SMTPC_EINVAL;
    out[i] = (char)c;
  }
  if (label == 0 || in[len - 1] == '-') return SMTPC_EINVAL;
  out[len] = '\0';
  return 0;
}

/* A domain as a caller gives it: an ASCII host name, or one with U-labels ("bücher.example"),
 * looked up by its A-labels as verify does. The IDNA2008 rules live in the address parser
 * (libidn2), so a non-ASCII domain goes through it as the domain of a mailbox. */
int smtpc__dns_name_user(const char *in, size_t len, char out[256]) {
  char mailbox[11 + 256];
  smtpc_address a;
  size_t i;
  int nonascii = 0;
  if (in == NULL) return SMTPC_EINVAL;
  for (i = 0; i < len; i++) nonascii |= (unsigned char)in[i] >= 0x80;
  if (!nonascii) return smtpc__dns_name_norm(in, len, out);
  if (len > 0 && in[len - 1] == '.') len--;
  if (len == 0 || len > 255) return SMTPC_EINVAL;
  memcpy(mailbox, "postmaster@", 11);
  memcpy(mailbox + 11, in, len);
  if (smtpc_parse_address(mailbox, 11 + len, &a, NULL) != 0 || a.literal) return SMTPC_EINVAL;
  return smtpc__dns_name_norm(a.ascii_domain, strlen(a.ascii_domain), out);
}

/* ---------------------------------------------------------------------------------------- */
/* Messages. Every read is bounds-checked against len; names are expanded by c-ares, which
 * follows compression pointers safely. */

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int skip_name(const unsigned char *m, int len, int off) {
  while (off < len) {
    unsigned c = m[off];
    if (c == 0) return off + 1;
    if ((c & 0xC0) == 0xC0) return off + 2 <= len ? off + 2 : -1;
    if (c & 0xC0) return -1;
    off += 1 + (int)c;
  }
  return -1;
}

/* Expand the name at p into out; an over-long or broken name becomes "" plus an error. */
int smtpc__dns_expand(const unsigned char *p, const unsigned char *m, int len, char out[256],
                      long *enclen) {
  char *s = NULL;
  if (ares_expand_name(p, m, len, &s, enclen) != ARES_SUCCESS) return -1;
  size_t n = strlen(s);
  if (n > 255) {
    ares_free_string(s);
    out[0] = '\0';
    return 1; /* valid encoding, but not a name we could ever match */
  }
  memcpy(out, s, n + 1);
  ares_free_string(s);
  return 0;
}

/* TTLs with the top bit set are treated as zero (RFC 2181 8). */
static uint32_t ttl_of(uint32_t t) { return t > 0x7fffffffu ? 0 : t; }
static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

typedef struct rr {
  char owner[256];
  unsigned type;
  uint32_t ttl;
  int rdoff, rdlen;
} rr;

int smtpc__dns_walk(const unsigned char *m, int len, const char *qname, int qtype,
                    smtpc__dns_rr_fn fn, void *ctx, uint32_t *ttl, uint32_t *neg_ttl) {
  rr *rrs;
  int n = 0, off = 12, found = 0;
  unsigned i, qd, an, ns, cls;
  char cur[256];
  uint32_t tmin = UINT32_MAX;

  *ttl = UINT32_MAX;
  *neg_ttl = UINT32_MAX;
  if (m == NULL || len < 12) return -1;
  qd = get16(m + 4), an = get16(m + 6), ns = get16(m + 8);
  for (i = 0; i < qd; i++) {
    if ((off = skip_name(m, len, off)) < 0 || off + 4 > len) return -1;
    off += 4;
  }
  rrs = malloc(sizeof(rr) * SMTPC__DNS_MAX_RR);
  if (rrs == NULL) return -1;
  for (i = 0; i < an + ns; i++) {
    long enclen;
    rr tmp, *r = i < an && n < SMTPC__DNS_MAX_RR ? &rrs[n] : &tmp;
    if (off >= len || smtpc__dns_expand(m + off, m, len, r->owner, &enclen) < 0) goto bad;
    off += (int)enclen;
    if (off + 10 > len) goto bad;
    r->type = get16(m + off);
    cls = get16(m + off + 2);
    r->ttl = ttl_of(get32(m + off + 4));
    r->rdlen = (int)get16(m + off + 8);
    r->rdoff = off + 10;
    if (r->rdoff + r->rdlen > len) goto bad;
    off = r->rdoff + r->rdlen;
    if (cls != 1) continue; /* class IN only */
    if (i < an) {
      if (r == &rrs[n]) n++;
    } else if (r->type == SMTPC__DNS_T_SOA && r->rdlen >= 22) {
      /* MNAME and RNAME (compressible) come first: MINIMUM is the last 4 octets */
      *neg_ttl = min32(r->ttl, ttl_of(get32(m + r->rdoff + r->rdlen - 4)));
    }
  }

  /* follow CNAMEs from the asked name: each hop's owner must be the previous target */
  if (strlen(qname) > 255) goto bad;
  strcpy(cur, qname);
  for (int hop = 0; hop < SMTPC__DNS_MAX_CNAME; hop++) {
    int j, moved = 0;
    for (j = 0; j < n && !moved; j++) {
      long enclen;
      if (rrs[j].type != SMTPC__DNS_T_CNAME || strcasecmp(rrs[j].owner, cur) != 0) continue;
      if (smtpc__dns_expand(m + rrs[j].rdoff, m, len, cur, &enclen) != 0) goto bad;
      tmin = min32(tmin, rrs[j].ttl);
      moved = 1;
    }
    if (!moved) break;
  }
  for (int j = 0; j < n; j++) {
    if ((int)rrs[j].type != qtype || strcasecmp(rrs[j].owner, cur) != 0) continue;
    tmin = min32(tmin, rrs[j].ttl);
    fn(ctx, m, len, m + rrs[j].rdoff, rrs[j].rdlen, rrs[j].ttl);
    found++;
  }
  free(rrs);
  *ttl = found ? tmin : UINT32_MAX;
  return found;
bad:
  free(rrs);
  return -1;
}

int smtpc__dns_query(unsigned char *buf, size_t size, unsigned id, const char *name, int type) {
  char norm[256];
  size_t off = 12, n;
  const char *p;
  if (smtpc__dns_name_norm(name, strlen(name), norm) != 0) return SMTPC_EINVAL;
  if (size < 12 + strlen(norm) + 2 + 4) return SMTPC_EINVAL;
  memset(buf, 0, 12);
  buf[0] = (unsigned char)(id >> 8), buf[1] = (unsigned char)id;
  buf[2] = 0x01; /* RD: the server we ask is a recursive resolver */
  buf[5] = 1;    /* QDCOUNT */
  for (p = norm; *p; p += n + (p[n] == '.')) {
    n = strcspn(p, ".");
    buf[off++] = (unsigned char)n;
    memcpy(buf + off, p, n);
    off += n;
  }
  buf[off++] = 0;
  buf[off++] = (unsigned char)(type >> 8), buf[off++] = (unsigned char)type;
  buf[off++] = 0, buf[off++] = 1; /* class IN */
  return (int)off;
}

/* ---------------------------------------------------------------------------------------- */
/* Route blocks: [smtpc__rblock][smtpc_mx x nmx][smtpc_sockaddr x naddrs][strings]. The mx
 * array starts at a multiple of the header's alignment and sockaddrs need only 4. */

smtpc__rblock *smtpc__rblock_new(const smtpc_route *t) {
  size_t i, naddrs = 0, strs = strlen(t->domain) + 1, size;
  smtpc__rblock *b;
  smtpc_mx *mx;
  smtpc_sockaddr *sa;
  char *s;

  for (i = 0; i < t->nmx; i++) {
    naddrs += t->mx[i].naddrs;
    strs += strlen(t->mx[i].host) + 1;
  }
  size = sizeof(*b) + t->nmx * sizeof(smtpc_mx) + naddrs * sizeof(smtpc_sockaddr) + strs;
  if ((b = malloc(size)) == NULL) return NULL;
  memset(b, 0, sizeof(*b));
  b->refs = 1;
  b->route = *t;
  mx = (smtpc_mx *)(b + 1);
  sa = (smtpc_sockaddr *)(mx + t->nmx);
  s = (char *)(sa + naddrs);
  b->route.mx = t->nmx ? mx : NULL;
  b->route.domain = b->ce.key = s;
  s = strcpy(s, t->domain) + strlen(t->domain) + 1;
  for (i = 0; i < t->nmx; i++) {
    mx[i] = t->mx[i];
    mx[i].host = strcpy(s, t->mx[i].host);
    s += strlen(s) + 1;
    mx[i].addrs = sa;
    if (mx[i].naddrs) memcpy(sa, t->mx[i].addrs, mx[i].naddrs * sizeof(*sa));
    sa += mx[i].naddrs;
  }
  return b;
}

void smtpc__rblock_unref(smtpc__rblock *b) {
  if (b != NULL && --b->refs == 0) free(b);
}

smtpc__rblock *smtpc__rblock_of(const smtpc_route *route) {
  return (smtpc__rblock *)(void *)((char *)(uintptr_t)route - offsetof(smtpc__rblock, route));
}

smtpc_route *smtpc_route_dup(const smtpc_route *route) {
  smtpc__rblock *b;
  if (route == NULL || (b = smtpc__rblock_new(route)) == NULL) return NULL;
  return &b->route;
}

void smtpc_route_free(smtpc_route *route) {
  if (route != NULL) smtpc__rblock_unref(smtpc__rblock_of(route));
}
