/*
 * cache.c -- results kept across runs in an SQLite file (see cache.h).
 *
 * Names, not enum numbers, are stored (verdict, reason, error), so a file outlives a build
 * whose tables grew. Expiry is decided when reading, from the lifetimes of this run: a row is
 * stored once and a later run with shorter lifetimes sees it as stale and probes again.
 */
#include "cache.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct smtpc__rcache {
  sqlite3 *db;
  sqlite3_stmt *get, *put, *dget, *dput;
  smtpc__rcache_ttl ttl;
  struct awaited { uint64_t token; char *domain; } *await; /* see smtpc__rcache_await */
  size_t nawait, await_cap;
};

static const char SCHEMA[] =
  "CREATE TABLE IF NOT EXISTS results ("
  " address TEXT PRIMARY KEY, verdict TEXT NOT NULL, reason TEXT NOT NULL, code INTEGER,"
  " status TEXT, text TEXT, mx TEXT, mx_addr TEXT, catch_all INTEGER, tls INTEGER,"
  " error TEXT, detail TEXT, learnt REAL NOT NULL);"
  "CREATE TABLE IF NOT EXISTS domains ("
  " domain TEXT PRIMARY KEY, catch_all INTEGER NOT NULL, learnt REAL NOT NULL);";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void smtpc__rcache_close(smtpc__rcache *c) {
  if (c == NULL) return;
  sqlite3_finalize(c->get);
  sqlite3_finalize(c->put);
  sqlite3_finalize(c->dget);
  sqlite3_finalize(c->dput);
  sqlite3_close(c->db);
  while (c->nawait) free(c->await[--c->nawait].domain);
  free(c->await);
  free(c);
}

smtpc__rcache *smtpc__rcache_open(const char *path, const smtpc__rcache_ttl *ttl, int *err,
                                char *msg, size_t msgsize) {
  smtpc__rcache *c = calloc(1, sizeof *c);
  int rc, tries;
  *err = SMTPC_ENOMEM;
  if (c == NULL) return NULL;
  c->ttl = *ttl;
  *err = SMTPC_ECACHE;
  rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  /* a second process may hold the write lock for a moment: wait rather than fail */
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(c->db, 15000);
  /* the first statement reads the header: a file that is not a database fails here. Two
   * processes creating one file at once can see SQLITE_BUSY without the busy handler being
   * asked (switching to WAL takes an exclusive lock): try again for a while. */
  for (tries = 0; rc == SQLITE_OK && tries < 150; tries++) {
    rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(c->db, SCHEMA, NULL, NULL, NULL);
    if (rc == SQLITE_OK) break;
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
    rc = SQLITE_OK;
    sqlite3_sleep(100);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT verdict, reason, code, status, text, mx, mx_addr, catch_all,"
                            " tls, error, detail, learnt FROM results WHERE address = ?1",
                            -1, &c->get, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(c->db,
                            "INSERT OR REPLACE INTO results VALUES"
                            " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                            -1, &c->put, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(c->db, "SELECT catch_all, learnt FROM domains WHERE domain = ?1",
                            -1, &c->dget, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO domains VALUES (?1, ?2, ?3)", -1,
                            &c->dput, NULL);
  if (rc != SQLITE_OK) {
    if (msg && msgsize)
      snprintf(msg, msgsize, "%s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    smtpc__rcache_close(c);
    return NULL;
  }
  *err = 0;
  return c;
}

/* The lifetime of a verdict of this kind. */
static double ttl_of(const smtpc__rcache_ttl *t, int verdict, int code) {
  if (verdict == SMTPC_VERDICT_DELIVERABLE) return t->positive;
  if (verdict == SMTPC_VERDICT_RISKY && code >= 200 && code < 300) return t->positive;
  if (verdict == SMTPC_VERDICT_UNDELIVERABLE) return t->negative;
  return t->unknown;
}

static int verdict_from_name(const char *s) {
  int i;
  for (i = 0; s && i < SMTPC_VERDICT_COUNT; i++)
    if (strcmp(smtpc_verdict_name(i), s) == 0) return i;
  return -1;
}

static int err_from_name(const char *s) {
  int i;
  if (s == NULL) return 0;
  for (i = 1; i < SMTPC__EIDX_COUNT; i++)
    if (strcmp(smtpc_err_name(-i), s) == 0) return -i;
  return 0;
}

static size_t col_len(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : (size_t)sqlite3_column_bytes(st, i) + 1;
}

/* Copy column i into *w as a C string; NULL stays NULL. */
static const char *col_copy(sqlite3_stmt *st, int i, char **w) {
  const unsigned char *t;
  size_t n;
  char *p = *w;
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
  t = sqlite3_column_text(st, i);
  n = (size_t)sqlite3_column_bytes(st, i);
  if (n) memcpy(p, t, n);
  p[n] = '\0';
  *w += n + 1;
  return p;
}

smtpc__cached *smtpc__rcache_get(smtpc__rcache *c, const char *key) {
  sqlite3_stmt *st = c->get;
  smtpc__cached *row = NULL;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    int verdict = verdict_from_name((const char *)sqlite3_column_text(st, 0));
    int code = sqlite3_column_int(st, 2);
    double age = now_s() - sqlite3_column_double(st, 11);
    const char *reason = (const char *)sqlite3_column_text(st, 1);
    size_t nl = 0, size, i;
    const char *text = (const char *)sqlite3_column_text(st, 4);
    if (age < 0) age = 0;
    if (verdict < 0 || reason == NULL || !(age < ttl_of(&c->ttl, verdict, code))) goto out;
    if (code && text) {
      nl = 1;
      for (i = 0; text[i]; i++) nl += text[i] == '\n';
      if (nl > SMTPC_MAX_LINES_DEFAULT) nl = SMTPC_MAX_LINES_DEFAULT;
    }
    size = sizeof *row + nl * sizeof(smtpc_span) + col_len(st, 4) + col_len(st, 5) +
           col_len(st, 6) + col_len(st, 10) + 1;
    if ((row = calloc(1, size)) != NULL) {
      smtpc_span *lines = (smtpc_span *)(void *)(row + 1);
      char *w = (char *)(lines + nl);
      const char *t;
      row->verdict = verdict;
      row->reason = smtpc_reason_from_name(reason, strlen(reason));
      if (row->reason < 0) row->reason = SMTPC_REASON_UNDEFINED;
      row->catch_all = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 7);
      row->tls = sqlite3_column_int(st, 8);
      row->err = err_from_name((const char *)sqlite3_column_text(st, 9));
      row->age = age;
      row->reply.code = code;
      if (sqlite3_column_type(st, 3) != SQLITE_NULL)
        snprintf(row->reply.status, sizeof row->reply.status, "%s", sqlite3_column_text(st, 3));
      t = nl ? col_copy(st, 4, &w) : NULL;
      for (i = 0; i < nl; i++) { /* split the joined text back into lines */
        const char *e = strchr(t, '\n');
        if (e == NULL || i + 1 == nl) e = t + strlen(t);
        lines[i].ptr = t;
        lines[i].len = (size_t)(e - t);
        t = *e ? e + 1 : e;
      }
      row->reply.nlines = nl;
      row->reply.lines = nl ? lines : NULL;
      row->mx = col_copy(st, 5, &w);
      row->mx_addr = col_copy(st, 6, &w);
      row->detail = col_copy(st, 10, &w);
    }
  }
out:
  sqlite3_reset(st);
  return row;
}

int smtpc__rcache_put(smtpc__rcache *c, const char *key, const smtpc_result *r) {
  sqlite3_stmt *st = c->put;
  size_t i, n = 0;
  char *text = NULL;
  int rc;
  if (r->error == SMTPC_ECANCELED || !(ttl_of(&c->ttl, r->verdict, r->reply.code) > 0)) return 0;
  if (r->reply.code) {
    for (i = 0; i < r->reply.nlines; i++) n += r->reply.lines[i].len + 1;
    if ((text = malloc(n + 1)) == NULL) return SMTPC_ENOMEM;
    for (n = 0, i = 0; i < r->reply.nlines; i++) {
      if (i) text[n++] = '\n';
      memcpy(text + n, r->reply.lines[i].ptr, r->reply.lines[i].len);
      n += r->reply.lines[i].len;
    }
    text[n] = '\0';
  }
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, smtpc_verdict_name(r->verdict), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, smtpc_reason_name(r->reason), -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, r->reply.code);
  if (r->reply.code && r->reply.status[0]) sqlite3_bind_text(st, 5, r->reply.status, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 5);
  if (text) sqlite3_bind_text(st, 6, text, (int)n, SQLITE_STATIC);
  else sqlite3_bind_null(st, 6);
  if (r->mx) sqlite3_bind_text(st, 7, r->mx, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 7);
  if (r->mx_addr) sqlite3_bind_text(st, 8, r->mx_addr, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 8);
  if (r->catch_all >= 0) sqlite3_bind_int(st, 9, r->catch_all);
  else sqlite3_bind_null(st, 9);
  sqlite3_bind_int(st, 10, r->tls);
  if (r->error) sqlite3_bind_text(st, 11, smtpc_err_name(r->error), -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 11);
  if (r->detail) sqlite3_bind_text(st, 12, r->detail, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 12);
  sqlite3_bind_double(st, 13, now_s());
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  free(text);
  return rc == SQLITE_DONE ? 0 : SMTPC_ECACHE;
}

int smtpc__rcache_catch_all(smtpc__rcache *c, const char *domain) {
  sqlite3_stmt *st = c->dget;
  int ca = -1;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && now_s() - sqlite3_column_double(st, 1) < c->ttl.positive)
    ca = sqlite3_column_int(st, 0) ? 1 : 0;
  sqlite3_reset(st);
  return ca;
}

void smtpc__rcache_put_catch_all(smtpc__rcache *c, const char *domain, int catch_all) {
  sqlite3_stmt *st = c->dput;
  if (catch_all < 0 || !(c->ttl.positive > 0)) return;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, catch_all);
  sqlite3_bind_double(st, 3, now_s());
  (void)sqlite3_step(st); /* a lost catch-all answer only costs one probe next time */
  sqlite3_reset(st);
}

/* The facts the planner judges live (plan.c's route_fact), read back from the row: an answer
 * from an MX means a mail route; no route (NXDOMAIN, no address, null MX) is stored as
 * hostunknown or notaccept with neither a reply nor an error. */
int smtpc__rcached_route_fact(const smtpc__cached *row) {
  if (row->mx != NULL) return SMTPC_ROUTE_OK;
  if (row->reply.code == 0 && row->err == 0 &&
      (row->reason == SMTPC_REASON_HOSTUNKNOWN || row->reason == SMTPC_REASON_NOTACCEPT))
    return SMTPC_ROUTE_NONE;
  return SMTPC_ROUTE_UNKNOWN;
}

void smtpc__rcached_result(const smtpc__cached *row, smtpc_result *r) {
  smtpc_context ctx;
  r->reply = row->reply;
  memset(&r->cls, 0, sizeof r->cls);
  r->cls.reason = SMTPC_REASON_UNDEFINED;
  if (row->reply.code) { /* the same rules as when it was learnt (RCPT's reply, from its MX) */
    ctx.command = "RCPT";
    ctx.host = row->mx;
    smtpc_classify_lines(row->reply.code, row->reply.status, row->reply.lines,
                         row->reply.nlines, &ctx, &r->cls);
  }
  r->mx = row->mx;
  r->mx_addr = row->mx_addr;
  r->catch_all = row->catch_all;
  r->tls = row->tls;
  r->greylisted = r->cls.greylisted;
  r->error = row->err;
  r->detail = row->detail;
  r->cached = 1;
  r->age = row->age;
}

/* ---------------------------------------------------------------------------------------- */
/* catch-all answers that come after a domain's last result */

void smtpc__rcache_await(smtpc__rcache *c, uint64_t token, const char *domain) {
  if (c->nawait == c->await_cap) {
    size_t cap = c->await_cap ? 2 * c->await_cap : 16;
    struct awaited *t = realloc(c->await, cap * sizeof *t);
    if (t == NULL) return; /* a lost catch-all answer only costs one probe next time */
    c->await = t;
    c->await_cap = cap;
  }
  if ((c->await[c->nawait].domain = strdup(domain)) == NULL) return;
  c->await[c->nawait++].token = token;
}

void smtpc__rcache_store_answers(smtpc__rcache *c, const smtpc_plan *p) {
  size_t i = 0;
  while (i < c->nawait) {
    int ca = smtpc_plan_catch_all_of(p, c->await[i].token);
    if (ca == -1) { /* still to come */
      i++;
      continue;
    }
    /* the domain's results may have carried it already: write only what is not there */
    if (ca >= 0 && smtpc__rcache_catch_all(c, c->await[i].domain) != ca)
      smtpc__rcache_put_catch_all(c, c->await[i].domain, ca);
    free(c->await[i].domain);
    c->await[i] = c->await[--c->nawait];
  }
}

int smtpc__rcache_awaiting(const smtpc__rcache *c, const smtpc_plan *p) {
  size_t i;
  for (i = 0; i < c->nawait; i++)
    if (smtpc_plan_catch_all_of(p, c->await[i].token) == -1) return 1;
  return 0;
}
