/* bounce_core.h -- the parser's own state, shared by bounce.c, bounce_mime.c and bounce_dsn.c
 * only (MTA modules see bounce_internal.h). */
#ifndef SMTPC_BOUNCE_CORE_H
#define SMTPC_BOUNCE_CORE_H

#include <iconv.h>

#include "bounce_internal.h"

/* Strings live in chunks that never move, so record fields stay valid while more are added. */
typedef struct smtpc__chunk {
  struct smtpc__chunk *next;
  size_t size, used;
  char data[];
} smtpc__chunk;

#define SMTPC__ICONV_CACHE 4

struct smtpc_bounce_parser {
  smtpc_bounce_limits lim;
  char *msg;                 /* the current message as fed (original line ends)          */
  size_t len, cap;
  int truncated;             /* octets beyond max_message were dropped                   */
  const char *src;           /* the octets finish reads: msg, or smtpc_bounce_parse's
                                own argument read in place (no copy)                     */
  size_t srclen;
  int nocr;                  /* msg holds no CR: its lines end at LF alone (bounce_mime.c) */
  size_t mark_from, mark;     /* the first ESC or "=?" of src at or after mark_from is at
                                mark (srclen when none); a header field read from src
                                whose octets end before it needs no RFC 2047 or
                                ISO-2022-JP decoding (bounce_mime.c word_mark)            */
  int err;                   /* sticky error of feed/finish                              */
  uint64_t erroff;
  smtpc__chunk *arena;       /* head = the chunk in use; older ones follow               */
  /* vectors, reused across messages */
  smtpc__bheader *hdr;       /* every header field of every entity; entities keep ranges */
  size_t nhdr, caphdr;
  smtpc__bpart *part;
  size_t *part_hfirst;       /* where each part's fields start in hdr (hdr may move)     */
  size_t npart, cappart;
  smtpc_bounce *rec;
  size_t nrec, caprec;
  size_t top_nhdr;           /* top-level fields: hdr[0..top_nhdr)                       */
  size_t orig_first, orig_n; /* the returned message's fields: hdr[orig_first..+orig_n)  */
  int have_orig;
  size_t nparts_seen;        /* entities visited (bounded by max_parts)                  */
  /* the first text/html part of the bounce's own, not yet decoded: read (bounce_html.c)
   * only when the tree holds no text/plain of the bounce's own ((size_t)-1: none) */
  size_t html_part;
  const char *html_raw, *html_cte;
  size_t html_rawlen, html_ctel;
  char note[512];            /* what was skipped, copied onto every record               */
  size_t note_len;
  struct { char name[32]; iconv_t cd; } iconv[SMTPC__ICONV_CACHE];
  size_t iconv_next;
};

/* bounce.c */
void *smtpc__balloc_chunk(smtpc_bounce_parser *p, size_t n); /* smtpc__balloc, a new chunk  */
/* Arena memory; NULL = no memory. Inline: every header field and record field takes some, and
 * the call cost more than the bump. */
static inline void *smtpc__balloc(smtpc_bounce_parser *p, size_t n) {
  size_t r = (n + 7) & ~(size_t)7;
  smtpc__chunk *c = p->arena;
  if (c && r >= n && c->size - c->used >= r) {
    void *d = c->data + c->used;
    c->used += r;
    return d;
  }
  return smtpc__balloc_chunk(p, n);
}
char *smtpc__bstrdup(smtpc_bounce_parser *p, const char *s, size_t n);  /* NUL added      */
void smtpc__bnote(smtpc_bounce_parser *p, const char *fmt, ...);
int smtpc__bfail(smtpc_bounce_parser *p, int err, size_t offset);      /* sets, returns err */
/* Next line of msg[*pos..end): ends at LF, CRLF or a lone CR. Returns 0 at end. */
int smtpc__bnext_line(const char *msg, size_t end, size_t *pos, size_t *line, size_t *line_len);

/* bounce_util.c: memmem, which C99 and POSIX lack */
const char *smtpc__bmemmem(const char *hay, size_t n, const char *needle, size_t k);
/* The end of the paragraph of t[0..len) that goes on at `from`: the first LF at or after from
 * that another LF follows, else len; and no further than `cap`. */
size_t smtpc__bpara_end(const char *t, size_t len, size_t from, size_t cap);

/* bounce_mime.c: the MIME tree of p->msg into p->hdr / p->part. Returns 0 or an error. */
int smtpc__bmime(smtpc_bounce_parser *p);
/* Header block starting at msg[*pos] (stops after the empty line), appended to p->hdr.
 * Returns 0 or an error; *pos is left at the body. */
int smtpc__bheaders(smtpc_bounce_parser *p, const char *msg, size_t end, size_t *pos,
                    size_t base);
/* Convert s[0..n) in `charset` to UTF-8 (arena copy, LF line ends); NULL = no memory. */
char *smtpc__butf8(smtpc_bounce_parser *p, const char *charset, const char *s, size_t n,
                   size_t *out_len);

/* bounce_html.c: the text an HTML body shows (arena copy; line breaks where a browser breaks
 * lines, character references decoded); NULL = no memory. */
char *smtpc__bhtml_text(smtpc_bounce_parser *p, const char *s, size_t n, size_t *out_len);

/* bounce_dsn.c */
int smtpc__bdsn(smtpc__bmsg *m);        /* records from message/delivery-status parts       */
int smtpc__barf(smtpc__bmsg *m);        /* > 0 when an ARF report (records of kind feedback) */
int smtpc__bautoreply(smtpc__bmsg *m);  /* > 0 when an RFC 3834 auto-reply                  */
int smtpc__binline_orig(smtpc_bounce_parser *p, const char *body, size_t len);

#endif
