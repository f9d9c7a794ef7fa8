/*
 * cache.h -- the result cache across runs (cache.c), internal to the core. Like Postfix's
 * verify(8) database: a real file (SQLite), keyed by the normalised address (what RCPT TO
 * carries), with separate lifetimes for good, bad and undecided answers, and the catch-all
 * answer of each domain. Safe for several processes on one file (WAL, busy timeout); every
 * row is its own transaction, so a killed run keeps what it wrote.
 */
#ifndef SMTPC_CACHE_H
#define SMTPC_CACHE_H

#include "smtpcode.h"

typedef struct smtpc__rcache smtpc__rcache;

/* One stored result, with its reply lines and strings in the same allocation. */
typedef struct smtpc__cached {
  int verdict, reason, catch_all, tls, err;
  double age;             /* seconds since it was learnt                                    */
  smtpc_reply reply;      /* lines point into this allocation                              */
  const char *mx, *mx_addr, *detail;
} smtpc__cached;

typedef struct smtpc__rcache_ttl {
  double positive, negative, unknown; /* seconds; 0 = never kept (see smtpc_verify_opts)  */
} smtpc__rcache_ttl;

/* Open or create path. NULL with *err = SMTPC_ECACHE (msg gets SQLite's words, with the
 * path) or SMTPC_ENOMEM. */
smtpc__rcache *smtpc__rcache_open(const char *path, const smtpc__rcache_ttl *ttl, int *err,
                                char *msg, size_t msgsize);
void smtpc__rcache_close(smtpc__rcache *c);

/* A fresh stored result for key (malloc'd: free() it), or NULL when none or expired. */
smtpc__cached *smtpc__rcache_get(smtpc__rcache *c, const char *key);
/* Keep r under key when its kind of verdict has a lifetime. Returns 0 or SMTPC_ECACHE. */
int smtpc__rcache_put(smtpc__rcache *c, const char *key, const smtpc_result *r);

/* Fill the parts of *r a stored result decides (reply and its classification, mx, catch-all,
 * tls, error, detail, cached, age); r's pointers then point into row. */
void smtpc__rcached_result(const smtpc__cached *row, smtpc_result *r);
/* What the row tells of its domain's mail route (smtpc_route_fact), for the typo check: the
 * inspection (disposable, role, free provider, suggestion) is made again on reading, as a
 * live result's is, rather than stored. */
int smtpc__rcached_route_fact(const smtpc__cached *row);

/* A domain's catch-all answer (0/1) while the positive lifetime lasts, else -1. */
int smtpc__rcache_catch_all(smtpc__rcache *c, const char *domain);
void smtpc__rcache_put_catch_all(smtpc__rcache *c, const char *domain, int catch_all);

/* A domain's probe answer can come after the last of its results has gone out (a rejected
 * address is reported at once; the probe RCPT follows it), so no result carries it. The
 * driver names each probed domain here (its RESOLVE token) and, when a session ends, has the
 * answers that came stored; while a session is open and an answer may still come, the run
 * waits for it (smtpc__rcache_awaiting). */
void smtpc__rcache_await(smtpc__rcache *c, uint64_t token, const char *domain);
void smtpc__rcache_store_answers(smtpc__rcache *c, const smtpc_plan *p);
int smtpc__rcache_awaiting(const smtpc__rcache *c, const smtpc_plan *p);

#endif
