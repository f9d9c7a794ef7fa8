/*
 * decode.c -- one reply or bounce diagnostic as text -> code, status, lines, classification.
 *
 * Accepts what people paste and what logs hold, not only what a server sends:
 *   "250-a\r\n250 b"                         a multi-line reply (CRLF, LF or CR line ends)
 *   "smtp; 550 5.1.1 <a@b>: ... unknown"     an RFC 3464 Diagnostic-Code with its type
 *   "550-5.1.1 The email ... 550 5.1.1 ..."  a multi-line reply folded onto one line by a log
 *   "Mailbox full"                           text with no code at all
 * Line views point into the caller's text; nothing is allocated.
 */
#include <string.h>

#include "smtpcode.h"
#include "internal.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t'; }

/* "550" followed by ' ', '-' or the end: the code (100..599), else 0. *sep gets the
 * separator (' ', '-' or 0 at the end). */
static int code_at(const char *p, size_t len, char *sep) {
  if (len < 3 || p[0] < '1' || p[0] > '5' || !is_digit(p[1]) || !is_digit(p[2])) return 0;
  if (len > 3 && p[3] != ' ' && p[3] != '-') return 0;
  *sep = len > 3 ? p[3] : 0;
  return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* Skip an RFC 3464 diagnostic type such as "smtp;" or "X-Postfix;" at the start. */
static size_t skip_diag_type(const char *p, size_t len) {
  size_t i = 0;
  while (i < len && i < 32 && (is_digit(p[i]) || p[i] == '-' || (p[i] >= 'a' && p[i] <= 'z') ||
                               (p[i] >= 'A' && p[i] <= 'Z')))
    i++;
  if (i == 0 || i >= len || p[i] != ';') return 0;
  i++;
  while (i < len && is_space(p[i])) i++;
  return i;
}

/* Take an enhanced status code off the start of a line's text (RFC 2034: its class matches the
 * reply code's); remember the first one seen. */
static void take_status(smtpc_span *t, int code, char *status) {
  char st[SMTPC_STATUS_SIZE];
  int used = smtpc_status_parse(t->ptr, t->len, st);
  if (used <= 0) return;
  if (code && st[0] != (char)('0' + code / 100)) return;
  if ((size_t)used < t->len && !is_space(t->ptr[used])) return;
  if (status[0] == '\0') memcpy(status, st, sizeof st);
  t->ptr += used;
  t->len -= (size_t)used;
  while (t->len && is_space(*t->ptr)) t->ptr++, t->len--;
}

static void trim_right(smtpc_span *t) {
  while (t->len && (is_space(t->ptr[t->len - 1]))) t->len--;
}

/* Add one text line, splitting a log-folded reply ("550-5.1.1 a 550-5.1.1 b 550 5.1.1 c") at
 * each repeated "<code>-" / "<code> " when the line itself began with "<code>-". */
static int add_line(smtpc_decoded *out, smtpc_span t, int code, int folded) {
  for (;;) {
    size_t i, cut = t.len;
    smtpc_span rest = {NULL, 0};
    if (folded && code) {
      for (i = 1; i + 4 <= t.len; i++) {
        char sep;
        if (!is_space(t.ptr[i - 1])) continue;
        if (code_at(t.ptr + i, t.len - i, &sep) == code && sep) {
          cut = i;
          rest.ptr = t.ptr + i + 4;
          rest.len = t.len - i - 4;
          break;
        }
      }
    }
    {
      smtpc_span head = {t.ptr, cut};
      trim_right(&head);
      if (out->nlines >= SMTPC_DECODE_MAX_LINES) return SMTPC_ETOOMANYLINES;
      if (code) take_status(&head, code, out->status);
      out->lines[out->nlines++] = head;
    }
    if (rest.ptr == NULL) return 0;
    t = rest;
    if (code) take_status(&t, code, out->status);
  }
}

static int decode_text(const char *text, size_t len, smtpc_decoded *out) {
  size_t off = 0, skip;
  int code = 0, continuing = 0, first = 1;

  memset(out, 0, offsetof(smtpc_decoded, lines));
  if (text == NULL) {
    text = "";
    len = 0;
  }
  while (off < len && (is_space(text[off]) || text[off] == '\r' || text[off] == '\n')) off++;
  skip = skip_diag_type(text + off, len - off);
  off += skip;

  while (off < len) {
    const char *p = text + off;
    size_t avail = len - off, l = 0, eol = 0;
    smtpc_span t;
    char sep = 0;
    int c, rc;
    while (l < avail && p[l] != '\r' && p[l] != '\n') l++;
    if (l < avail) eol = (p[l] == '\r' && l + 1 < avail && p[l + 1] == '\n') ? 2 : 1;
    off += l + eol;

    c = code_at(p, l, &sep);
    t.ptr = p;
    t.len = l;
    if (c && (first || (continuing && c == code) || (!continuing && c == code))) {
      code = c;
      continuing = (sep == '-');
      t.ptr = p + (l > 3 ? 4 : 3);
      t.len = l - (l > 3 ? 4 : 3);
      take_status(&t, code, out->status);
      rc = add_line(out, t, code, first && sep == '-');
    } else if (c && continuing && c != code) {
      return SMTPC_ECODECHANGE;
    } else {
      /* text without a code of its own: a continuation of a diagnostic, or plain text */
      if (code == 0 && first && out->status[0] == '\0') take_status(&t, 0, out->status);
      rc = add_line(out, t, 0, 0);
    }
    if (rc < 0) return rc;
    first = 0;
  }
  /* blank lines at the end carry nothing */
  while (out->nlines > (code ? 1u : 0u) && out->lines[out->nlines - 1].len == 0) out->nlines--;
  out->code = code;
  return 0;
}

/* When the text carries no status at a line start, bounce texts often still hold one
 * ("... (#5.1.1 - chkusr)"): take it when its class agrees with the code. */
static void status_from_text(smtpc_decoded *out) {
  size_t i;
  char cls = out->code ? (char)('0' + out->code / 100) : 0;
  if (out->status[0] || (cls && cls != '4' && cls != '5' && cls != '2')) return;
  for (i = 0; i < out->nlines; i++) {
    if (smtpc__status_find(out->lines[i].ptr, out->lines[i].len, cls, out->status)) return;
  }
}

static void finish(smtpc_decoded *out, const smtpc_context *ctx) {
  out->kind = smtpc_kind(out->code, out->status);
  smtpc_classify_lines(out->code, out->status, out->lines, out->nlines, ctx, &out->cls);
}

int smtpc_decode(const char *text, size_t len, const smtpc_context *ctx, smtpc_decoded *out) {
  int rc = decode_text(text, len, out);
  if (rc < 0) return rc;
  if (out->nlines == 0 && out->code == 0) return SMTPC_EEMPTY;
  status_from_text(out);
  finish(out, ctx);
  return 0;
}

int smtpc_classify(int code, const char *status, const char *text, size_t len, const smtpc_context *ctx,
                   smtpc_decoded *out) {
  char st[SMTPC_STATUS_SIZE] = "";
  int rc;
  if (code != 0 && (code < 100 || code > 599)) return SMTPC_EINVAL;
  if (status && status[0]) {
    size_t sl = strlen(status);
    if (smtpc_status_parse(status, sl, st) != (int)sl) return SMTPC_EBADSTATUS;
  }
  rc = decode_text(text, len, out);
  if (rc < 0) return rc;
  if (out->nlines == 0 && out->code == 0 && code == 0 && st[0] == '\0') return SMTPC_EEMPTY;
  if (code) out->code = code;
  if (st[0]) memcpy(out->status, st, sizeof st);
  status_from_text(out);
  finish(out, ctx);
  return 0;
}
