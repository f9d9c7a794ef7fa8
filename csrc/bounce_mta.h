/*
 * bounce_mta.h -- helpers shared by the MTA-specific bounce modules (bounce_mta_*.c); not
 * installed. The modules read the text a non-RFC 3464 bounce was written in: a run of lines
 * between a start marker ("The following address(es) failed:") and a boundary ("------ This is
 * a copy of the message"), with recipient lines and the remote server's words between them.
 */
#ifndef SMTPC_BOUNCE_MTA_H
#define SMTPC_BOUNCE_MTA_H

#include "bounce_internal.h"

/* A diagnostic longer than this is not an SMTP reply any more (real ones are a few hundred
 * octets): further lines are dropped, which also keeps appending linear on hostile input. */
#define SMTPC__BMTA_DIAG_MAX 4096
/* Records compared when looking a recipient up: lists longer than this are not deduplicated or
 * matched beyond it (bounded work for a message naming thousands of recipients). */
#define SMTPC__BMTA_FIND_MAX 1024

/* smtpc__bounce_append, up to SMTPC__BMTA_DIAG_MAX octets per field. */
int smtpc__bmta_append(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *s, size_t n);

/* NULL-terminated lists of markers. */
typedef const char *const smtpc__bmta_marks[];

/* Does any marker occur in s[0..n) (ASCII case-insensitive)? */
int smtpc__bmta_any(const char *s, size_t n, const char *const *marks);
/* Value of a top-level header of the bounce, "" when absent. The dispatcher's gate reads only
 * the fields listed in bounce_mta.c (gate_fields): a marker in another field must be added. */
const char *smtpc__bmta_hdr(const smtpc__bmsg *m, const char *name, size_t *len);
/* Does header `name` of the bounce contain any of marks? */
int smtpc__bmta_hdr_has(const smtpc__bmsg *m, const char *name, const char *const *marks);
/* Does the list of addresses v[0..n) (a header's value) name a[0..al) (any case), among its
 * first `max` addresses? */
int smtpc__bmta_names(const char *v, size_t n, const char *a, size_t al, size_t max);

/* Offset of the start of the first line of text[0..len) containing any of `marks`, or len. */
size_t smtpc__bmta_line_with(const char *text, size_t len, const char *const *marks);
/* Offset of the first line of text[0..len) that starts (after white space) with any of
 * `marks`; len when none. Where the bounce's own words end and the returned message begins. */
size_t smtpc__bmta_cut(const char *text, size_t len, const char *const *marks);

/* Trim ASCII white space at both ends of s[0..*n); returns the new start. */
const char *smtpc__bmta_trim(const char *s, size_t *n);

/* The command word at the start of a session transcript's command line s[0..n) ("RCPT" of
 * "RCPT TO:<a@b>", "DATA"): its length, up to a space or a colon. */
size_t smtpc__bmta_cmd_len(const char *s, size_t n);

/* An SMTP reply code (2xx-5xx) at the start of s[0..n) followed by a space, '-' or the end;
 * 0 when none. */
int smtpc__bmta_code_at(const char *s, size_t n);
/* The length of an enhanced status code ("5.7.1", "4.2.2") at the start of s[0..n), followed
 * by white space or the end; 0 when none. */
size_t smtpc__bmta_status_at(const char *s, size_t n);
/* The first reply code in s[0..n) that stands as one: at the start, or after ": ", "said: ",
 * "was: " ... and followed by a space, '-' or the end; 0 when none. */
int smtpc__bmta_code_find(const char *s, size_t n);
/* The SMTP command a bounce text says the reply answered ("after RCPT TO:", "in reply to end
 * of DATA command", "does not like recipient" ...): "RCPT", "MAIL", "DATA", "HELO"/"EHLO",
 * "CONN" or NULL. */
const char *smtpc__bmta_command(const char *s, size_t n);
void smtpc__bmta_text_prepare(void); /* builds the tables smtpc__bmta_command reads */
/* The host name in "host mx.example.jp [192.0.2.1]" / "mx.example.jp [192.0.2.1]" within
 * s[0..n) (the word before the first "[" that follows a word with a dot); 0 when none. */
int smtpc__bmta_host(const char *s, size_t n, const char **host, size_t *host_len);

/* Append one line of the remote server's text to the diagnostic of r. Continuation lines of a
 * multi-line reply ("550-5.7.1 text") lose their code and status after the first line, so that
 * the diagnostic reads as one sentence; *multi carries the state between lines (start at 0).
 * The first reply code and status seen are kept in r (reply_code, STATUS) when unset. */
int smtpc__bmta_diag_line(smtpc__bmsg *m, smtpc_bounce *r, const char *s, size_t n, int *multi);

/* Set recipient, and record the command and remote host the diagnostic names when unset. */
int smtpc__bmta_finish_rec(smtpc__bmsg *m, smtpc_bounce *r);

/* The generic reader: many bounces list "<recipient>:" (or "recipient: text") lines followed by
 * the server's words, between a start marker and a boundary. */
typedef struct smtpc__bmta_layout {
  const char *const *start;   /* reading begins at the line containing one of these       */
  const char *const *stop;    /* ... and ends at a line starting with one of these        */
  int rcpt_in_start;          /* the start line itself names the recipient               */
  int need_angle;             /* recipient lines are "<addr>" (bare addresses are text)   */
  int preamble;               /* lines before the first recipient explain it too          */
  int rcpt_space;             /* "addr words": the words after a space are the diagnostic */
  int start_is_words;         /* with rcpt_in_start: that line is the diagnostic too       */
  int stop_at_boundary;       /* a MIME boundary line ("--token") ends the words too      */
  int to_prefix;              /* "To: <addr>:" names a recipient too (qmail's clones)     */
} smtpc__bmta_layout;

/* Records for every recipient of the layout in text[0..len); returns how many (0 = not this
 * layout), or a negative SMTPC_E* error. When records exist already (read from a DSN part),
 * the text's words replace their diagnostics instead (recipients matched), nothing is added. */
int smtpc__bmta_read(smtpc__bmsg *m, const char *text, size_t len, const smtpc__bmta_layout *l);

/* Is s[0..n) (trimmed) a recipient line: "<addr>", "addr", "<addr>:", "addr: text", "\"addr\":",
 * "addr <addr>", also after "Recipient:", "* ", ">>> " or "Could not be delivered to:"? On yes,
 * addr and alen get the address, rest and rlen the text after the colon (may be empty).
 * With `space`, "addr text" is one too (the text after the space). */
int smtpc__bmta_rcpt_line(const char *s, size_t n, int need_angle, int space, const char **addr,
                          size_t *alen, const char **rest, size_t *rlen);

/* DSN fields written into a text part ("Final-Recipient: rfc822; x@y", "Action:", "Status:",
 * "Remote-MTA:", "Diagnostic-Code:" with folded lines): one record per Final-Recipient.
 * Returns how many, or a negative SMTPC_E* error. */
int smtpc__bmta_dsn_text(smtpc__bmsg *m, const char *text, size_t len);

/* Is the NUL-terminated x equal to a[0..al) (ASCII case-insensitive)? */
int smtpc__bmta_eq(const char *x, const char *a, size_t al);
/* The record whose recipient is a[0..al) (ASCII case-insensitive), among records from..;
 * NULL when none. */
smtpc_bounce *smtpc__bmta_find_from(smtpc__bmsg *m, size_t from, const char *a, size_t al);
smtpc_bounce *smtpc__bmta_find(smtpc__bmsg *m, const char *a, size_t al);
/* A status such as "5.0.0" (from a DSN) only says "failed": when the diagnostic carries a more
 * specific one of the same class, the record takes it. */
int smtpc__bmta_better_status(smtpc__bmsg *m, smtpc_bounce *r);

/* What a delay notice says of itself (the DELAYNOTICE row's markers, confirmed in the notice's
 * head by smtpc__bmta_delay_notice): Postfix and Sendmail "THIS IS A WARNING", Exim "has not
 * yet been delivered", OpenSMTPD "temporary failure report", Gmail and Stalwart "temporary
 * problem delivering", Symantec's gateway "Delivery attempts will continue to be made for 5
 * day(s)", a site's "has been postponed ... We will continue to try to deliver". */
#define SMTPC__DELAY_MARKS                                                                        \
  "THIS IS A WARNING", "has not yet been delivered", "temporary failure report",                \
      "temporary problem delivering", "has been delayed", "has been postponed",                  \
      "attempts will continue", "will continue to try"

/* The formats (bounce_mta_formats.def rows), each: > 0 claimed, 0 not its format, < 0 error. */
#define SMTPC__FMT(id, name, fn, ...) int fn(smtpc__bmsg *m);
#include "bounce_mta_formats.def"
#undef SMTPC__FMT

#endif
