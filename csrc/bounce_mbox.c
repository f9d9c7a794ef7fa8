/*
 * bounce_mbox.c -- splitting an mbox into messages, bytes in and messages out (no I/O), so the
 * bindings can stream a mailbox of any size through a buffer as large as its biggest message.
 *
 * A message starts at a "From " line at the start of the input or after an empty line (the
 * reading both mboxo and mboxrd writers agree on); ">From ", ">>From " ... lose one '>'
 * (mboxrd's quoting; for mboxo it is the best reading there is).
 */
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

struct smtpc_mbox {
  char *buf;
  size_t len, cap;
  size_t start;  /* first octet of the current message (its "From " line, if any) */
  size_t scan;   /* where the search for the next separator goes on */
  int eof, done;
  char *out;
  size_t outcap;
};

smtpc_mbox *smtpc_mbox_new(void) { return calloc(1, sizeof(smtpc_mbox)); }

void smtpc_mbox_free(smtpc_mbox *mb) {
  if (!mb) return;
  free(mb->buf);
  free(mb->out);
  free(mb);
}

int smtpc_mbox_feed(smtpc_mbox *mb, const char *buf, size_t len, int eof) {
  if (!mb || (!buf && len)) return SMTPC_EINVAL;
  if (mb->start) { /* drop what was already returned */
    memmove(mb->buf, mb->buf + mb->start, mb->len - mb->start);
    mb->len -= mb->start;
    mb->scan -= mb->start;
    mb->start = 0;
  }
  if (mb->len + len > mb->cap) {
    size_t cap = mb->cap ? mb->cap : 65536;
    while (cap < mb->len + len) cap *= 2;
    char *b = realloc(mb->buf, cap);
    if (!b) return SMTPC_ENOMEM;
    mb->buf = b;
    mb->cap = cap;
  }
  if (len) memcpy(mb->buf + mb->len, buf, len);
  mb->len += len;
  if (eof) mb->eof = 1;
  return 0;
}

static int is_from(const char *s, size_t n) { return n >= 5 && !memcmp(s, "From ", 5); }

/* Copy [a, b) to mb->out with the ">From " quoting undone. */
static int unquote(smtpc_mbox *mb, size_t a, size_t b, const char **msg, size_t *len) {
  if (b - a + 1 > mb->outcap) {
    size_t cap = mb->outcap ? mb->outcap : 65536;
    while (cap < b - a + 1) cap *= 2;
    char *o = realloc(mb->out, cap);
    if (!o) return SMTPC_ENOMEM;
    mb->out = o;
    mb->outcap = cap;
  }
  size_t k = 0;
  for (size_t i = a; i < b;) {
    size_t q = i;
    while (q < b && mb->buf[q] == '>') q++;
    if (q > i && is_from(mb->buf + q, b - q)) i++; /* drop one '>' */
    const char *nl = memchr(mb->buf + i, '\n', b - i);
    size_t e = nl ? (size_t)(nl - mb->buf) + 1 : b;
    memcpy(mb->out + k, mb->buf + i, e - i);
    k += e - i;
    i = e;
  }
  mb->out[k] = '\0';
  *msg = mb->out;
  *len = k;
  return 1;
}

int smtpc_mbox_next(smtpc_mbox *mb, const char **msg, size_t *len) {
  if (!mb || mb->done) return 0;
  if (!mb->buf) { /* nothing fed yet (or only empty chunks) */
    mb->done = mb->eof;
    return 0;
  }
  size_t body = mb->start;
  if (is_from(mb->buf + body, mb->len - body)) {
    const char *nl = memchr(mb->buf + body, '\n', mb->len - body);
    if (!nl) {
      if (!mb->eof) return 0;
      mb->done = 1;
      return 0;
    }
    body = (size_t)(nl - mb->buf) + 1;
  }
  size_t i = mb->scan > body ? mb->scan : body;
  while (i < mb->len) {
    const char *nl = memchr(mb->buf + i, '\n', mb->len - i);
    if (!nl) break; /* an incomplete line: wait for more */
    size_t next = (size_t)(nl - mb->buf) + 1;
    if (next < mb->len || mb->eof) {
      int blank = (next - i == 1) || (next - i == 2 && mb->buf[i] == '\r');
      if (blank && next + 5 <= mb->len && is_from(mb->buf + next, mb->len - next)) {
        int rc = unquote(mb, body, i, msg, len); /* the empty line belongs to the separator */
        mb->start = mb->scan = next;
        return rc;
      }
      if (blank && next + 5 > mb->len && !mb->eof) break; /* cannot tell yet */
    } else {
      break;
    }
    i = next;
  }
  mb->scan = i;
  if (!mb->eof) return 0;
  mb->done = 1;
  if (body >= mb->len) return 0;
  return unquote(mb, body, mb->len, msg, len);
}
