/*
 * bounce_internal.h -- what the bounce parser core (bounce*.c) gives an MTA module; not installed.
 *
 * The core (bounce.c, bounce_mime.c, bounce_dsn.c) frames one message, decodes its MIME tree
 * (quoted-printable, base64, RFC 2047 words, charsets through iconv) and reads RFC 3464
 * delivery-status parts. A bounce whose body is not RFC 3464 (qmail, Exim, old Sendmail,
 * Postfix without DSN, Exchange, Gmail, SES JSON, Japanese carriers ...) is left to the MTA
 * modules listed in bounce_mta.def: each is one function that looks at the decoded message and
 * either claims it (adds or amends records, returns > 0) or passes (returns 0).
 *
 * Order of work for one message (smtpc_bounce_finish):
 *   1. headers and MIME tree decoded; text parts converted to UTF-8 with LF line ends;
 *   2. ARF (RFC 5965) and RFC 3834 auto-replies recognised: one record of kind
 *      "feedback"/"autoreply", modules are not called;
 *   3. every message/delivery-status part read: one record per per-recipient block
 *      (mta "rfc3464");
 *   4. the modules in bounce_mta.def order, each called until one returns > 0; a module sees
 *      the records of step 3 (nrecords may be > 0: it may amend them, e.g. fill a diagnostic
 *      the DSN left out, or add its own when there are none) and its name becomes `mta`;
 *   5. the core completes every record: reply code and status taken from the diagnostic when
 *      not set, action defaulted to "failed", original message headers, classification by
 *      smtpc_classify with (command, rhost) as context.
 *
 * A module must be pure (no I/O, no globals written) and bounded: it reads only the views below
 * and writes only through smtpc__bounce_add / smtpc__bounce_set.
 */
#ifndef SMTPC_BOUNCE_INTERNAL_H
#define SMTPC_BOUNCE_INTERNAL_H

#include "internal.h"

/* ASCII lower case, and a hex digit's value (-1 when c is none): the MIME decoders, the MTA
 * modules and the HTML reader all read both. */
static inline int smtpc__blower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
/* Are x[0..n) and y[0..n) the same, ASCII case aside? (Addresses compared by the MTA modules.) */
static inline int smtpc__bsame(const char *x, const char *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (smtpc__blower((unsigned char)x[i]) != smtpc__blower((unsigned char)y[i])) return 0;
  return 1;
}
static inline int smtpc__bhexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = smtpc__blower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One header field: name as written (a view into the text it was read from, NOT NUL-terminated:
 * read name_len octets), value unfolded (CR/LF + WSP -> one space), RFC 2047 words decoded to
 * UTF-8, leading/trailing white space trimmed, NUL-terminated. */
typedef struct smtpc__bheader {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} smtpc__bheader;

/* One leaf part of the MIME tree (the whole body when the message is not MIME). */
typedef struct smtpc__bpart {
  const char *type;           /* lower-case "text/plain", "message/delivery-status" ...  */
  const char *charset;        /* lower-case declared charset, "" when none               */
  const smtpc__bheader *headers;  /* the part's own header fields                         */
  size_t nheaders;
  const char *text;           /* decoded content, converted to UTF-8 for text parts
                                 (undecodable octets kept as they are), LF line ends;
                                 NUL-terminated. Only for the parts the core reads: the
                                 text/plain, delivery-status and feedback-report parts
                                 outside a returned message (bounce_mime.c read_type), and
                                 the first text/html one when the bounce has no text/plain
                                 (its shown text: bounce_mime.c html_fallback);
                                 "" for the others, which are not decoded              */
  size_t len;
  int depth;                  /* 0 = top-level body, 1 = child of the top multipart ...  */
  int in_rfc822;              /* inside a returned message (message/rfc822): not the
                                 bounce's own text                                        */
} smtpc__bpart;

typedef struct smtpc__bmsg {
  /* the bounce's own top-level header fields */
  const smtpc__bheader *headers;
  size_t nheaders;
  /* every leaf part, in document order */
  const smtpc__bpart *parts;
  size_t nparts;
  /* the first text/plain part that is not inside a returned message (the whole decoded body
   * for a non-MIME message), else the text the first such text/html part shows; "" when none.
   * What most non-standard bounces are read from. */
  const char *body;
  size_t body_len;
  /* header fields of the returned original message (message/rfc822, text/rfc822-headers, or
   * the inline "----- Original message -----" block the core recognised); may be 0 */
  const smtpc__bheader *orig_headers;
  size_t norig_headers;
  /* records so far (step 3 or earlier calls in the same module) */
  size_t nrecords;
  /* the notice's own words say it is a warning (a delay), not a failure: records no DSN field
   * gave an Action are "delayed" (set by the format gate, bounce_mta.c) */
  int delay_notice;
  /* octets of the body searched so far for a record's recipient (smtpc__bfind_rcpt) */
  size_t para_scanned;
  struct smtpc_bounce_parser *p;  /* opaque to modules: pass m to the functions below */
} smtpc__bmsg;

/* Where the body names rcpt (ASCII case-insensitive), searching from body[from]; NULL when it
 * does not. The searches of one message read at most 16 times its body (and 1 MiB more); after
 * that every search answers NULL, so that thousands of records cost linear time (bounce.c). */
const char *smtpc__bfind_rcpt(smtpc__bmsg *m, size_t from, const char *rcpt);
/* The bounce's own words on rcpt: from the line of the body that names it to the end of that
 * paragraph (at most 2000 octets), in s[0..n); where that is a list of addresses alone, the
 * paragraph above it when it leads in to the list ("... to the following recipients, because
 * ..."). 1 = they hold a reply (a code), 0 = words without one, -1 = none (not named, or
 * nothing but addresses) (bounce_dsn.c). */
int smtpc__bwords_on(smtpc__bmsg *m, const char *rcpt, const char **s, size_t *n);

/* Value of the first header field called `name` (ASCII case-insensitive) in h[0..n); NULL when
 * absent; *len (may be NULL) gets its length. */
const char *smtpc__bheader_get(const smtpc__bheader *h, size_t n, const char *name, size_t *len);

/* Append a record (all fields absent, reply_code 0); NULL when the record limit is reached or
 * memory is out (the core reports it). The pointer is valid until the next add. */
smtpc_bounce *smtpc__bounce_add(smtpc__bmsg *m);
/* What a module returns when smtpc__bounce_add gave NULL: 1 when the record limit stopped it
 * (the message is recognised; the records past the limit were dropped with a note), else
 * SMTPC_ENOMEM. A bounce listing more recipients than the limit is not out of memory. */
int smtpc__bounce_add_failed(const smtpc__bmsg *m);
/* Record i (0 <= i < m->nrecords); valid until the next add. */
smtpc_bounce *smtpc__bounce_rec(smtpc__bmsg *m, size_t i);
/* Set field `field` (SMTPC_BOUNCE_F_*) of r to a copy of s[0..len): white space runs (CR, LF,
 * tab, space) become one space, ends trimmed; an empty result changes nothing (a field
 * already set by the RFC 3464 pass is kept).
 * For RECIPIENT, "<...>", "rfc822;" prefixes and quotes are stripped and the address lower-cased
 * in its domain. Returns 0 or SMTPC_ENOMEM. */
int smtpc__bounce_set(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *s, size_t len);
/* Append to a field with one space between (for diagnostics spread over several lines). */
int smtpc__bounce_append(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *s, size_t len);

/* Helpers every module needs (bounce_util.c). */
/* ASCII case-insensitive search of needle in hay[0..n); NULL when absent. */
const char *smtpc__bfind(const char *hay, size_t n, const char *needle);
/* Is there in t[0..n) a reply code standing as one: 4xx or 5xx at the start or after an octet of
 * `after` (" " for words, " ;:" also for "smtp;550" and "said:550"), followed by a space, '-' or
 * the end? */
int smtpc__bcode_in(const char *t, size_t n, const char *after);
/* An octet of a host name as bounces write them (letters, digits, '-', '.', '_'). */
static inline int smtpc__bhost_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}
/* memchr, for the short spans the bounce parser splits by the tens a message: lines, fields.
 * A call of the library's memchr costs its set-up and a mispredicted branch or two however
 * short the span; this one tests 16 octets a step inline (SSE2, on every x86-64), octet by
 * octet elsewhere, and never reads outside s[0..n). (smtpc__bfind filters its starts on two
 * octets at once instead: one octet a step, as here or by memchr, stopped too often.) */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
static inline const char *smtpc__bchr(const char *s, size_t n, char c) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i v = _mm_set1_epi8(c);
  for (; i + 16 <= n; i += 16) {
    int m = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(s + i)), v));
    if (m) return s + i + (size_t)__builtin_ctz((unsigned)m);
  }
#endif
  for (; i < n; i++)
    if (s[i] == c) return s + i;
  return NULL;
}

/* Next line of text[*pos..len) (without its LF); returns 0 at the end. */
int smtpc__bline(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len);
/* Does s[0..n) start with prefix (ASCII case-insensitive)? */
int smtpc__bstarts(const char *s, size_t n, const char *prefix);
/* An address "local@domain" in s[0..n) (the first one; <> stripped); 0 when none. */
int smtpc__baddr(const char *s, size_t n, const char **addr, size_t *addr_len);

/* Is there, in t[0..n), Sendmail's own transcript line refusing rcpt, "550 5.1.1 <rcpt>... User
 * unknown" or "<rcpt>... Deferred: ..." (bounce_mta_sendmail.c)? Sendmail writes one for a
 * refused RCPT, also when its transcript shows ">>> DATA" above the (pipelined) RCPT replies. */
int smtpc__bmta_sendmail_verdict(const char *t, size_t n, const char *rcpt);

/* A module: returns > 0 when it recognised the message (its records added or amended), 0 when
 * the message is not its format, or a negative SMTPC_E* error. */
typedef int (*smtpc__bmta_fn)(smtpc__bmsg *m);

/* bounce_mta.def rows: XX(id, "mta name", function). */
#define SMTPC__XX(id, name, fn) int fn(smtpc__bmsg *m);
#include "bounce_mta.def"
#undef SMTPC__XX

#endif
