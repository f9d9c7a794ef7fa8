/* internal.h -- declarations shared between the core's files; not installed. */
#ifndef SMTPC_INTERNAL_H
#define SMTPC_INTERNAL_H

#include "smtpcode.h"

/* A hint that memory will be read soon (no effect on the result). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF): the code point
 * at p[0..n) into *cp; returns the octets used, 0 when p does not start a valid sequence.
 * address.c (SMTPUTF8 local parts), mojibake.c. */
static inline size_t smtpc__utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
  unsigned char b = p[0], lo = 0x80, hi = 0xBF;
  size_t need, i;
  uint32_t c;
  if (b < 0x80) { *cp = b; return 1; }
  if (b >= 0xC2 && b <= 0xDF) { need = 1; c = b & 0x1F; }
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 2; c = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;       /* overlong */
    else if (b == 0xED) hi = 0x9F;  /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3; c = b & 0x07;
    if (b == 0xF0) lo = 0x90;       /* overlong */
    else if (b == 0xF4) hi = 0x8F;  /* above U+10FFFF */
  } else return 0;
  if (n < need + 1) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (i = 1; i <= need; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  *cp = c;
  return need + 1;
}

/* Is p[0..n) strict UTF-8 throughout? bounce.c (Exim's octal escapes read back), bounce_mime.c
 * (a text mislabelled ISO-2022-JP). */
static inline int smtpc__utf8_valid(const unsigned char *p, size_t n) {
  size_t i = 0, u;
  uint32_t cp;
  while (i < n && (u = smtpc__utf8_decode(p + i, n - i, &cp)) != 0) i += u;
  return i == n;
}

/* Code point cp (at most U+10FFFF, no surrogate: the caller has checked) as UTF-8 into out[0..4);
 * returns the octets written. bounce_html.c (character references), bounce_mta_ses.c (JSON
 * \u escapes). */
static inline size_t smtpc__utf8_encode(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* status.c: find a status code anywhere in text (class cls, or any when 0). */
int smtpc__status_find(const char *text, size_t len, char cls, char out[SMTPC_STATUS_SIZE]);

/* classify.c: smtpc_classify_lines with the framing a relaying MTA put around the reply (only
 * its command and provider markers count, before the lines and in the tail after them) and
 * the remote host it names (used when ctx has none). */
void smtpc__classify_framed(int code, const char *status, smtpc_span frame, const smtpc_span *lines,
                            size_t nlines, smtpc_span tail, const smtpc_context *ctx,
                            smtpc_span frame_host, smtpc_class *out);

/* classify.c: reason set from outside the text rules (a bounce format that names it); hard_bounce
 * and retry follow from it and the class (2, 4, 5; 0 = unknown). out->temporary must be set. */
void smtpc__class_set_reason(smtpc_class *out, int reason, int klass);

/* dialog.c: smtpc_dialog_add_rcpt for a session under way, until its transaction begins (the
 * planner tops up a session that has room with addresses other sessions gave back); then
 * SMTPC_EINVAL. */
long smtpc__dialog_add_late(smtpc_dialog *d, const char *addr, size_t len, int smtputf8);

/* inspect.c: what inspection says of a domain, worked out once for all of its addresses (the
 * planner keeps one per domain). smtpc__inspect_domain fills it for an ASCII (A-label),
 * lower-case domain; smtpc__inspect_with then inspects local@domain as smtpc_inspect_address
 * would (the typo look-up is made on the first call that needs it, and kept). */
typedef struct smtpc__domain_facts {
  unsigned char known;                /* filled in                                       */
  unsigned char free_provider, disposable;
  short typo;                         /* the popular domain it mistypes: -1 none, -2 not
                                         looked for yet                                  */
} smtpc__domain_facts;
void smtpc__inspect_domain(const char *domain, size_t n, smtpc__domain_facts *f);
void smtpc__inspect_with(smtpc__domain_facts *f, const char *domain, size_t n, const char *local,
                         size_t ln, int route, smtpc_inspection *out);

/* The tables built on first use, built now (smtpc_library_init): 0, or SMTPC_ENOMEM when one
 * could not be (its calls then answer with less). classify.c; bounce_mta.c, which also builds
 * bounce_mta_text.c's. */
int smtpc__classify_prepare(void);
int smtpc__bmta_prepare(void);

/* UTF-8 text that a Latin-1 or Windows-1252 reader mangled ("ãƒ¦ãƒ¼" for "ユー"), repaired into
 * out[0..cap): its length, or 0 when in[0..n) is not such text (mojibake.c). */
size_t smtpc__unmojibake(const char *in, size_t n, char *out, size_t cap);

/* Typographic quotes (‘ ’ “ ” „ ‟ ‚ ‛ ′ ″ « ») or escaped ones (&#39; &quot; &rsquo; ... and JSON's
 * \u0027 \u0022 \u2019 ...) in in[0..n)? And each made its ASCII quote followed by spaces in
 * place, the length unchanged (mojibake.c). */
int smtpc__has_curly_quote(const char *in, size_t n);
void smtpc__plain_quotes(char *text, size_t n);
/* The length of a typographic or escaped quote ("\u2019" as UTF-8, "&#39;", "\\u0027" ...) that
 * ends right before in[i], or 0: decode's framing reads one around a reply as it reads an ASCII
 * quote ("Server response: &#39;554 sorry ...&#39;"). */
size_t smtpc__quote_before(const char *in, size_t i);

#endif
