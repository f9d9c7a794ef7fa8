/*
 * result.c -- a probe result that outlives its callback.
 *
 * The engine hands results out as views into its own memory, valid during the callback only.
 * Bindings turn results into Lua tables or Python objects later, outside uv_run (and, in
 * Python, only once the GIL is held again), so they keep copies. One allocation holds the
 * header, the reply's line views and every string, so a copy is freed with one free() and a
 * queue of copies costs one malloc per result.
 *
 *   [ smtpc_result | smtpc_span lines[nlines] | address\0 line0\0 line1\0 ... mx\0 ... ]
 */
#include "smtpcode.h"

#include <stdlib.h>
#include <string.h>

static size_t cstr_size(const char *s) { return s ? strlen(s) + 1 : 0; }

/* Copy n octets of s to *w, NUL-terminate, advance *w; NULL stays NULL. */
static const char *pack(char **w, const char *s, size_t n) {
  char *p = *w;
  if (s == NULL) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  *w += n + 1;
  return p;
}

static const char *pack_cstr(char **w, const char *s) {
  return s ? pack(w, s, strlen(s)) : NULL;
}

smtpc_result *smtpc_result_dup(const smtpc_result *r) {
  size_t i, nl, size;
  smtpc_result *c;
  smtpc_span *lines;
  char *w;
  if (r == NULL) return NULL;
  /* a reply without a code (none was read) has no lines worth keeping */
  nl = r->reply.code && r->reply.lines ? r->reply.nlines : 0;
  size = sizeof *c + nl * sizeof *lines + (r->address ? r->address_len + 1 : 0) +
         cstr_size(r->mx) + cstr_size(r->mx_addr) + cstr_size(r->detail) +
         cstr_size(r->cls.provider) + (r->transcript ? r->transcript_len + 1 : 0);
  for (i = 0; i < nl; i++) size += r->reply.lines[i].len + 1;
  if ((c = malloc(size)) == NULL) return NULL;
  *c = *r;
  lines = (smtpc_span *)(void *)(c + 1);
  w = (char *)(lines + nl);
  c->address = pack(&w, r->address, r->address_len);
  if (c->address == NULL) c->address_len = 0;
  for (i = 0; i < nl; i++) {
    lines[i].len = r->reply.lines[i].len;
    lines[i].ptr = pack(&w, r->reply.lines[i].ptr, r->reply.lines[i].len);
  }
  c->reply.nlines = nl;
  c->reply.lines = nl ? lines : NULL;
  c->reply.status[SMTPC_STATUS_SIZE - 1] = '\0';
  c->mx = pack_cstr(&w, r->mx);
  c->mx_addr = pack_cstr(&w, r->mx_addr);
  c->detail = pack_cstr(&w, r->detail);
  c->cls.provider = pack_cstr(&w, r->cls.provider);
  c->transcript = pack(&w, r->transcript, r->transcript_len);
  if (c->transcript == NULL) c->transcript_len = 0;
  return c;
}

void smtpc_result_free(smtpc_result *r) { free(r); }
