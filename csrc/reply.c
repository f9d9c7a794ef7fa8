/*
 * reply.c -- SMTP reply reader (RFC 5321 section 4.2) with RFC 2034 enhanced status codes.
 *
 * Two layers, as in picohttpparser and hiredis:
 *   smtpc_parse_reply()  parses one reply at the start of a buffer, zero-copy: line views point
 *                        into the caller's bytes; it keeps no state between calls.
 *   smtpc_reader         buffers a byte stream fed in any chunking and hands out complete
 *                        replies; errors are sticky and carry their offset in the stream.
 *
 * Line ends may be CRLF, LF or a bare CR. A CR at the very end of the available bytes is not
 * yet a line end (the LF may be in the next chunk), so every split point of a stream gives
 * the same replies.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

/* Cap on bytes a reader holds that no call to next() has taken yet: a generous multiple of
 * the reply bound, enough for a burst of pipelined replies. */
#define READER_HOLD_FACTOR 4

static void limits_resolve(const smtpc_limits *in, smtpc_limits *out) {
  out->max_line = (in && in->max_line) ? in->max_line : SMTPC_MAX_LINE_DEFAULT;
  out->max_lines = (in && in->max_lines) ? in->max_lines : SMTPC_MAX_LINES_DEFAULT;
  if (out->max_lines > SMTPC_MAX_LINES_DEFAULT) out->max_lines = SMTPC_MAX_LINES_DEFAULT;
  out->max_reply = (in && in->max_reply) ? in->max_reply : SMTPC_MAX_REPLY_DEFAULT;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Find the end of the line starting at p. Returns the length of the line content and sets
 * *eol_len (1 or 2), or returns -1 when the line is not complete within `avail` bytes. */
static long line_end(const char *p, size_t avail, size_t *eol_len) {
  const char *lf = memchr(p, '\n', avail);
  const char *cr = memchr(p, '\r', lf ? (size_t)(lf - p) : avail);
  if (cr) {
    size_t at = (size_t)(cr - p);
    if (at + 1 >= avail) return -1; /* CR is last: the LF may follow in the next chunk */
    *eol_len = (cr[1] == '\n') ? 2 : 1;
    return (long)at;
  }
  if (lf) {
    *eol_len = 1;
    return (long)(lf - p);
  }
  return -1;
}

long smtpc_parse_reply(const char *buf, size_t len, const smtpc_limits *limits, smtpc_reply *out,
                       smtpc_span *lines, size_t *errpos) {
  smtpc_limits lim;
  size_t off = 0, n = 0;
  int code = -1;
  limits_resolve(limits, &lim);
  out->status[0] = '\0';
  out->nlines = 0;
  out->lines = lines;
  out->code = 0;
  out->size = 0;

#define FAIL(err, at)                    \
  do {                                   \
    if (errpos) *errpos = (at);          \
    return (err);                        \
  } while (0)

  for (;;) {
    const char *p = buf + off;
    size_t avail = len - off, eol = 0, tlen;
    long llen;
    int this_code, last;
    const char *text;

    if (avail == 0) return 0;
    /* Check the code digits as soon as they arrive: garbage is reported without waiting for
     * a line end that may never come. */
    {
      size_t k, upto = avail < 3 ? avail : 3;
      for (k = 0; k < upto; k++) {
        if (!is_digit(p[k]) || (k == 0 && (p[0] < '1' || p[0] > '5'))) FAIL(SMTPC_EBADCODE, off + k);
      }
    }
    llen = line_end(p, avail < lim.max_line ? avail : lim.max_line, &eol);
    if (llen < 0) {
      if (avail >= lim.max_line) FAIL(SMTPC_ELINETOOLONG, off + lim.max_line);
      if (off + avail > lim.max_reply) FAIL(SMTPC_ETOOBIG, lim.max_reply);
      return 0;
    }
    if ((size_t)llen + eol > lim.max_line) FAIL(SMTPC_ELINETOOLONG, off + lim.max_line);
    if (llen < 3) FAIL(SMTPC_EBADCODE, off + (size_t)llen);
    if (llen > 3 && p[3] != ' ' && p[3] != '-') FAIL(SMTPC_EBADSEP, off + 3);
    this_code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (code >= 0 && this_code != code) FAIL(SMTPC_ECODECHANGE, off);
    code = this_code;
    last = (llen == 3 || p[3] == ' ');
    if (n >= lim.max_lines) FAIL(SMTPC_ETOOMANYLINES, off);
    if (off + (size_t)llen + eol > lim.max_reply) FAIL(SMTPC_ETOOBIG, lim.max_reply);

    text = p + (llen > 3 ? 4 : 3);
    tlen = (size_t)llen - (llen > 3 ? 4 : 3);
    {
      char st[SMTPC_STATUS_SIZE];
      int used = smtpc_status_parse(text, tlen, st);
      /* RFC 2034: the status follows the code and a space, and its class matches the code's */
      if (used > 0 && st[0] == p[0] && ((size_t)used == tlen || text[used] == ' ' || text[used] == '\t')) {
        if (out->status[0] == '\0') memcpy(out->status, st, sizeof st);
        text += used;
        tlen -= (size_t)used;
        while (tlen && (*text == ' ' || *text == '\t')) text++, tlen--;
      }
    }
    lines[n].ptr = text;
    lines[n].len = tlen;
    n++;
    off += (size_t)llen + eol;
    if (last) break;
  }
#undef FAIL
  out->code = code;
  out->nlines = n;
  out->size = off;
  return (long)off;
}

/* ---------------------------------------------------------------------------------------- */

struct smtpc_reader {
  smtpc_limits limits;
  char *buf;
  size_t start;       /* first byte not yet returned in a reply */
  size_t end;         /* one past the last byte fed */
  size_t cap;
  uint64_t consumed;  /* stream offset of buf[0] */
  int err;
  uint64_t err_offset;
  smtpc_span lines[SMTPC_MAX_LINES_DEFAULT];
};

smtpc_reader *smtpc_reader_new(const smtpc_limits *limits) {
  smtpc_reader *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  limits_resolve(limits, &r->limits);
  return r;
}

void smtpc_reader_free(smtpc_reader *r) {
  if (r == NULL) return;
  free(r->buf);
  free(r);
}

int smtpc_reader_feed(smtpc_reader *r, const char *buf, size_t len) {
  size_t pending, hold;
  if (r->err) return r->err;
  if (len == 0) return 0;
  pending = r->end - r->start;
  hold = r->limits.max_reply * READER_HOLD_FACTOR;
  if (pending + len > hold) {
    r->err = SMTPC_ETOOBIG;
    r->err_offset = r->consumed + r->start + hold;
    return r->err;
  }
  if (r->start > 0) { /* slide the unread bytes to the front; amortised by the hold cap */
    memmove(r->buf, r->buf + r->start, pending);
    r->consumed += r->start;
    r->start = 0;
    r->end = pending;
  }
  if (r->end + len > r->cap) {
    size_t ncap = r->cap ? r->cap : 512;
    char *nb;
    while (ncap < r->end + len) ncap *= 2;
    nb = realloc(r->buf, ncap);
    if (nb == NULL) return SMTPC_ENOMEM; /* not sticky: the caller may retry */
    r->buf = nb;
    r->cap = ncap;
  }
  memcpy(r->buf + r->end, buf, len);
  r->end += len;
  return 0;
}

int smtpc_reader_next(smtpc_reader *r, smtpc_reply *out) {
  size_t errpos = 0;
  long n;
  if (r->err) return r->err;
  if (r->end == r->start) return 0; /* nothing buffered (buf may still be NULL) */
  n = smtpc_parse_reply(r->buf + r->start, r->end - r->start, &r->limits, out, r->lines, &errpos);
  if (n < 0) {
    r->err = (int)n;
    r->err_offset = r->consumed + r->start + errpos;
    return r->err;
  }
  if (n == 0) return 0;
  r->start += (size_t)n;
  return 1;
}

int smtpc_reader_error(const smtpc_reader *r, uint64_t *offset) {
  if (offset) *offset = r->err ? r->err_offset : 0;
  return r->err;
}

size_t smtpc_reader_pending(const smtpc_reader *r) { return r->end - r->start; }
