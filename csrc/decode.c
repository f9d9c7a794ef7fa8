/*
 * decode.c -- one reply or bounce diagnostic as text -> code, status, lines, classification.
 *
 * Accepts what people paste and what logs hold, not only what a server sends:
 *   "250-a\r\n250 b"                         a multi-line reply (CRLF, LF or CR line ends)
 *   "smtp; 550 5.1.1 <a@b>: ... unknown"     an RFC 3464 Diagnostic-Code with its type
 *   "550-5.1.1 The email ... 550 5.1.1 ..."  a multi-line reply folded onto one line by a log
 *   "Mailbox full"                           text with no code at all
 *   "host mx.example.jp[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO command)"
 *                                            a reply inside a relaying MTA's framing
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

static int is_host_char(char c) {
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '.' || c == '-' || c == '_';
}

/* Characters after which a reply starts inside framing: "said: 550", "returned '550",
 * "#550 5.1.1", "[550 5.1.1 ...]", "<<< 550", "ERROR_CODE :550". */
static int is_frame_left(char c) {
  return c == ':' || c == '\'' || c == '#' || c == '[' || c == '<' || c == '"' || c == '(';
}

/* The offset of a failure reply code (4xx/5xx) inside a line that does not start with one, or
 * len when there is none. Relaying MTAs and bounce writers put their own words first:
 *   Postfix   "host mx.example.jp[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO command)"
 *   Exim      "SMTP error from remote mail server after RCPT TO:<a@b>: 550 ..."
 *   dma       "mx.example.jp [192.0.2.1] did not like our RCPT TO: 550 ..."
 *   Sendmail  "... while talking to mx.example.jp.: >>> RCPT To:<a@b> <<< 550 ..."
 *   Exchange  "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'"
 * A code counts when one of is_frame_left() precedes it (spaces between allowed), or when a
 * plain space precedes it and an enhanced status of its class follows ("because of 550 5.1.1");
 * it must stand alone (not inside an address, a number, "id=222-22" or a URL's "#554") and be
 * followed by a space, '-', ',' or '\'' and more text. Bare numbers in prose ("in 840 minutes") do not count. */
/* The next '4' or '5' at or after i (memchr finds each quickly), or len. */
static size_t next_45(const char *p, size_t len, size_t i, const char **n4, const char **n5) {
  if (*n4 && *n4 < p + i) *n4 = i < len ? memchr(p + i, '4', len - i) : NULL;
  if (*n5 && *n5 < p + i) *n5 = i < len ? memchr(p + i, '5', len - i) : NULL;
  if (*n4 && (!*n5 || *n4 < *n5)) return (size_t)(*n4 - p);
  return *n5 ? (size_t)(*n5 - p) : len;
}

/* A frame that labels the reply code in words: Zoho's delay notice "[Status: Error, Address:
 * <a@b>, ResponseCode 421, , 4.7.0 [TS02] ...]", "reply code 550", "error code: 554". The word
 * ends at j (spaces already skipped). */
static int after_code_word(const char *p, size_t j) {
  return j >= 4 && (p[j - 4] | 0x20) == 'c' && (p[j - 3] | 0x20) == 'o' && (p[j - 2] | 0x20) == 'd' &&
         (p[j - 1] | 0x20) == 'e';
}

static size_t framed_code(const char *p, size_t len, char *sep) {
  const char *n4 = p, *n5 = p; /* "before p + 1": searched on first use */
  size_t i;
  for (i = 1; (i = next_45(p, len, i, &n4, &n5)) + 3 <= len; i++) {
    char b, a;
    size_t j;
    if (!is_digit(p[i + 1]) || !is_digit(p[i + 2])) continue;
    b = p[i - 1];
    if (b != ' ' && !is_frame_left(b) && !smtpc__quote_before(p, i)) continue;
    /* "#550 5.1.1" starts a reply, "DOC-1369#554" in a URL does not */
    if (b == '#' && i > 1 && p[i - 2] != ' ') continue;
    /* a code with nothing after it ends a sentence or a URL; a reply has text */
    if (i + 4 >= len) continue;
    a = p[i + 3];
    if (a != ' ' && a != '-' && a != ',' && a != '\'') continue;
    j = i;
    while (j > 0 && p[j - 1] == ' ') j--;
    if (j > 0 && !is_frame_left(p[j - 1]) && !smtpc__quote_before(p, j) && !after_code_word(p, j)) {
      char st[SMTPC_STATUS_SIZE];
      if ((a != ' ' && a != '-') || i + 4 >= len ||
          smtpc_status_parse(p + i + 4, len - i - 4, st) <= 0 || st[0] != p[i])
        continue;
    }
    *sep = a == '-' ? '-' : ' ';
    return i;
  }
  return len;
}

/* The remote host a frame names: "name[192.0.2.1]" / "name [192.0.2.1]" (Postfix, Exim, dma),
 * else "talking to name.:" (Sendmail). Empty when none. */
static smtpc_span frame_host(const char *p, size_t len) {
  smtpc_span h = {NULL, 0};
  const char *q;
  size_t i;
  /* memchr finds each '[' and each 't' quickly: most of a frame is neither */
  for (q = p + (len > 0); (q = memchr(q, '[', len - (size_t)(q - p))) != NULL; q++) {
    size_t e, b;
    i = (size_t)(q - p);
    e = i;
    if (p[e - 1] == ' ') e--;
    b = e;
    while (b > 0 && is_host_char(p[b - 1])) b--;
    if (e > b && memchr(p + b, '.', e - b) != NULL && !is_digit(p[b])) {
      h.ptr = p + b;
      h.len = e - b;
      while (h.len && h.ptr[h.len - 1] == '.') h.len--;
      return h;
    }
  }
  for (q = p; (q = memchr(q, 't', len - (size_t)(q - p))) != NULL; q++) {
    i = (size_t)(q - p);
    if (i + 11 >= len) break;
    if (memcmp(p + i, "talking to ", 11) == 0) {
      size_t b = i + 11, e = b;
      while (e < len && is_host_char(p[e])) e++;
      while (e > b && p[e - 1] == '.') e--;
      if (e > b) {
        h.ptr = p + b;
        h.len = e - b;
      }
      break;
    }
  }
  return h;
}

/* Postfix ends its framing with " (in reply to X command)": cut it off the reply text (the
 * classifier still reads it, for the command). */
static void cut_tail(smtpc_span *t, smtpc_span *tail) {
  static const char mark[] = "(in reply to ";
  size_t i, from;
  if (t->len < sizeof mark + 8 || memcmp(t->ptr + t->len - 9, " command)", 9) != 0) return;
  from = t->len > 48 ? t->len - 48 : 0;
  /* the marker ends before " command)": it starts at most that far from the end */
  for (i = t->len - 9 - (sizeof mark - 1) + 1; i-- > from;) {
    if (memcmp(t->ptr + i, mark, sizeof mark - 1) == 0) {
      tail->ptr = t->ptr + i;
      tail->len = t->len - i;
      t->len = i;
      return;
    }
  }
}

/* "returned '550 5.1.1 not found'", "[550 5.1.1 User unknown]": the framing quoted the reply;
 * its closing quote or bracket at the end of the line is not part of the reply text. */
static void close_quote(const char *p, size_t k, smtpc_span *t) {
  char open = 0, close;
  while (k > 0 && p[k - 1] == ' ') k--;
  if (k > 0) open = p[k - 1];
  close = open == '\'' ? '\'' : open == '"' ? '"' : open == '[' ? ']' : open == '(' ? ')' : 0;
  if (close && t->len && t->ptr[t->len - 1] == close) {
    t->len--;
    while (t->len && is_space(t->ptr[t->len - 1])) t->len--;
  } else if (!close && smtpc__quote_before(p, k)) {
    size_t q = smtpc__quote_before(t->ptr, t->len); /* a typographic or escaped one closing it */
    t->len -= q;
    while (q && t->len && is_space(t->ptr[t->len - 1])) t->len--;
  }
}

/* A frame that opened a bracket around the whole reply ("[Status: Error, Address: <a@b>,
 * ResponseCode 421, , 4.7.0 [TS02] ... .html]"): the bracket left open in the frame closes at
 * the end of the line, after the reply text. Brackets the reply opens itself ("[TS02]") pair up
 * inside it and stay. */
static int bracket_depth(const char *p, size_t n) {
  int d = 0;
  size_t i;
  for (i = 0; i < n; i++) d += p[i] == '[' ? 1 : p[i] == ']' ? -1 : 0;
  return d;
}

static void close_bracket(smtpc_span frame, smtpc_span *t) {
  /* the cheap test first: most replies do not end in ']' */
  if (!t->len || t->ptr[t->len - 1] != ']' || bracket_depth(frame.ptr, frame.len) <= 0) return;
  if (bracket_depth(t->ptr, t->len) >= 0) return;
  t->len--;
  while (t->len && is_space(t->ptr[t->len - 1])) t->len--;
}

/* The characters of a diagnostic type name (A-Z a-z 0-9 '-'), one flag a byte: a load a
 * byte instead of up to seven comparisons. */
static const char type_char[129] =
  "0000000000000000000000000000000000000000000001001111111111000000"
  "0111111111111111111111111110000001111111111111111111111111100000";

/* Skip an RFC 3464 diagnostic type such as "smtp;" or "X-Postfix;" at the start. */
static size_t skip_diag_type(const char *p, size_t len) {
  size_t i = 0, n = len < 32 ? len : 32;
  while (i < n && (unsigned char)p[i] < 128 && type_char[(unsigned char)p[i]] == '1') i++;
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
    if (folded && code && t.len >= 5) {
      /* the code's first digit, found by memchr (a byte loop over the whole line cost more) */
      const char *d = t.ptr + 1, *end = t.ptr + t.len - 3;
      char first = (char)('0' + code / 100);
      for (; d < end && (d = memchr(d, first, (size_t)(end - d))) != NULL; d++) {
        char sep;
        i = (size_t)(d - t.ptr);
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
  size_t off = 0, skip, start;
  int code = 0, continuing = 0, first = 1, framed = 0;

  memset(out, 0, offsetof(smtpc_decoded, lines));
  if (text == NULL) {
    text = "";
    len = 0;
  }
  while (off < len && (is_space(text[off]) || text[off] == '\r' || text[off] == '\n')) off++;
  skip = skip_diag_type(text + off, len - off);
  off += skip;
  start = off;

  while (off < len) {
    const char *p = text + off;
    size_t avail = len - off, l = 0, eol = 0;
    smtpc_span t;
    char sep = 0;
    int c, rc;
    size_t k;
    {
      /* the line ends at the first CR or LF (memchr finds them quickly) */
      const char *lf = memchr(p, '\n', avail), *cr;
      l = lf ? (size_t)(lf - p) : avail;
      cr = memchr(p, '\r', l);
      if (cr) l = (size_t)(cr - p);
    }
    if (l < avail) eol = (p[l] == '\r' && l + 1 < avail && p[l + 1] == '\n') ? 2 : 1;
    off += l + eol;

    c = code_at(p, l, &sep);
    t.ptr = p;
    t.len = l;
    if (!c && first && l > 4 && p[3] == ':' && (c = code_at(p, 3, &sep)) != 0) {
      /* "550: 5.2.2 <a@b>... Mailbox Full", as some bounce writers log it */
      t.ptr = p + 4;
      t.len = l - 4;
      while (t.len && (is_space(*t.ptr) || *t.ptr == ':')) t.ptr++, t.len--;
      code = c;
      take_status(&t, code, out->status);
      rc = add_line(out, t, code, 0);
    } else if (code == 0 && !(c && first) && (k = c ? 0 : framed_code(p, l, &sep)) < l) {
      /* the reply starts inside framing, or on a later line of a pasted bounce ("The
       * following address failed:\n  a@b\n550 5.1.1 ..."): what came before is the frame */
      framed = 1;
      code = (p[k] - '0') * 100 + (p[k + 1] - '0') * 10 + (p[k + 2] - '0');
      continuing = (sep == '-');
      out->frame.ptr = text + start;
      out->frame.len = (size_t)(p + k - (text + start));
      out->frame_host = frame_host(out->frame.ptr, out->frame.len);
      out->nlines = 0;
      out->status[0] = '\0';
      t.ptr = p + k + 3;
      t.len = l - k - 3;
      if (t.len) t.ptr++, t.len--; /* the separator: ' ', '-', ',' or a closing quote */
      /* spaces, and the empty fields of a comma-separated frame ("421, , 4.7.0 ...") */
      while (t.len && (is_space(*t.ptr) || (sep != '-' && *t.ptr == ','))) t.ptr++, t.len--;
      cut_tail(&t, &out->frame_tail);
      close_quote(p, k, &t);
      close_bracket(out->frame, &t);
      take_status(&t, code, out->status);
      rc = add_line(out, t, code, sep == '-');
    } else if (c && (first || (continuing && c == code) || (!continuing && c == code))) {
      code = c;
      continuing = (sep == '-');
      t.ptr = p + (l > 3 ? 4 : 3);
      t.len = l - (l > 3 ? 4 : 3);
      if (framed) cut_tail(&t, &out->frame_tail);
      take_status(&t, code, out->status);
      rc = add_line(out, t, code, first && sep == '-');
    } else if (c && continuing && c != code) {
      return SMTPC_ECODECHANGE;
    } else {
      /* text without a code of its own: a continuation of a diagnostic, or plain text */
      if (code == 0 && first && out->status[0] == '\0') take_status(&t, 0, out->status);
      if (framed) cut_tail(&t, &out->frame_tail);
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

/* Where the code came from. With none in the text, the recognised provider may document one
 * code for these words (classify.c, rules/provider_codes.def): reported apart, `code` stays 0.
 * Nothing is guessed from a status alone: the registry pairs most enhanced codes with several
 * replies (5.2.2 arrives as 552 and as 550), so a status names a class, not a code. */
static void code_source(smtpc_decoded *out, int given) {
  out->code_inferred = 0;
  out->code_source = NULL;
  if (out->code) {
    out->code_source = given ? "given" : "text";
  } else if (out->cls.documented_code) {
    out->code_inferred = out->cls.documented_code;
    out->code_source = "provider";
  }
}

static void finish(smtpc_decoded *out, const smtpc_context *ctx) {
  out->kind = smtpc_kind(out->code, out->status);
  smtpc__classify_framed(out->code, out->status, out->frame, out->lines, out->nlines, out->frame_tail,
                         ctx, out->frame_host, &out->cls);
}

int smtpc_decode(const char *text, size_t len, const smtpc_context *ctx, smtpc_decoded *out) {
  int rc = decode_text(text, len, out);
  if (rc < 0) return rc;
  if (out->nlines == 0 && out->code == 0) return SMTPC_EEMPTY;
  status_from_text(out);
  finish(out, ctx);
  code_source(out, 0);
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
  code_source(out, code != 0);
  return 0;
}
