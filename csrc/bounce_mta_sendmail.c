/* bounce_mta_sendmail.c -- Sendmail's transcript (V5 and later Sendmail sending without a DSN
 * part) and Postfix without DSN.
 *
 * Sendmail:
 *      ----- Transcript of session follows -----
 *   While talking to smtp.example.com:                   <- the remote host
 *   >>> RCPT To:<kijitora@example.org>                    <- the command
 *   <<< 550 <kijitora@example.org>, User Unknown          <- its reply
 *   550 <kijitora@example.org>... User unknown            <- one line per recipient
 *      ----- Unsent message follows -----
 *
 * Postfix (non-DSN notice, and the "Transcript of session follows." postmaster copy):
 *   This is the Postfix program at host e4.example.com.
 *   <kijitora@example.com>: Name service error for domain example.com: Host not
 *       found, try again
 */
#include <string.h>

#include "bounce_mta.h"

static smtpc__bmta_marks sm_start = {"----- Transcript of session follows -----", NULL};
static smtpc__bmta_marks sm_stop = {"----- Unsent message follows",
                                    "----- Original message follows",
                                    "----- Message header follows", "----- Returned message",
                                    "----- Original message",       "--- Below this line", NULL};

/* "550 <kijitora@example.org>... User unknown": code, address and text. */
/* Also Sendmail's status line without a code, "<x@y>... Deferred: Connection timed out with
 * mx.example.com." (a queued recipient in a warning): *code is 0 then. */
static int sm_rcpt_line(const char *s, size_t n, int *code, const char **a, size_t *al,
                        const char **text, size_t *tl) {
  *code = smtpc__bmta_code_at(s, n);
  size_t from = *code ? 4 : 0;
  if (!*code && (n < 5 || s[0] != '<')) return 0;
  if (n < 5) return 0;
  const char *dots = NULL;
  for (size_t i = from; i + 3 <= n; i++)
    if (s[i] == '.' && s[i + 1] == '.' && s[i + 2] == '.') {
      dots = s + i;
      break;
    }
  if (!dots || !smtpc__baddr(s + from, (size_t)(dots - s) - from, a, al)) return 0;
  *text = dots + 3;
  *tl = n - (size_t)(dots + 3 - s);
  *text = smtpc__bmta_trim(*text, tl);
  return 1;
}

static int sm_fatal_list(smtpc__bmsg *m);

int smtpc__bmta_sendmail(smtpc__bmsg *m) {
  if (m->nrecords > 0) return 0;
  const char *text = m->body;
  size_t len = m->body_len;
  size_t begin = smtpc__bmta_line_with(text, len, sm_start);
  if (begin >= len) return 0;
  size_t end = begin + smtpc__bmta_cut(text + begin, len - begin, sm_stop);
  size_t pos = begin, first = m->nrecords;
  const char *line, *host = NULL, *cmd = NULL, *reply = NULL, *lone = NULL;
  size_t n, hostl = 0, cmdl = 0, replyl = 0, lonel = 0;
  int rc, found = 0, lonecode = 0;
  smtpc__bline(text, end, &pos, &line, &n);  /* the marker */
  while (smtpc__bline(text, end, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a, *words;
    size_t al, wl;
    int code;
    if (n == 0) continue;
    /* V5 "While talking to host:", V8 "... while talking to host.:" (usersmtp.c reply()) */
    size_t wt = smtpc__bstarts(t, n, "... ") ? 4 : 0;
    if (smtpc__bstarts(t + wt, n - wt, "While talking to ")) {
      host = t + wt + 17, hostl = n - wt - 17;
      if (hostl && host[hostl - 1] == ':') hostl--;
      if (hostl && host[hostl - 1] == '.') hostl--;
      cmd = reply = NULL;
      continue;
    }
    if (smtpc__bstarts(t, n, ">>> ")) {
      cmd = t + 4, cmdl = smtpc__bmta_cmd_len(t + 4, n - 4);
      reply = NULL;
      continue;
    }
    if (smtpc__bstarts(t, n, "<<< ")) {
      if (!reply) reply = t + 4, replyl = n - 4;
      continue;
    }
    if (!sm_rcpt_line(t, n, &code, &a, &al, &words, &wl)) {
      /* "421 example.com (smtp)... Deferred: ..." names a host, not a recipient */
      const char *d = smtpc__bfind(t, n, "... ");
      if (smtpc__bmta_code_at(t, n) && d && !lone)
        lone = d + 4, lonel = n - (size_t)(d + 4 - t), lonecode = smtpc__bmta_code_at(t, n);
      continue;
    }
    smtpc_bounce *r = smtpc__bmta_find_from(m, first, a, al);
    if (r) continue;  /* "550 <x>... User unknown" repeats the "<<<" reply's recipient */
    if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
    found++;
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0 ||
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, words, wl)) != 0)
      return rc;
    if (reply && (rc = smtpc__bmta_append(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, reply, replyl)) != 0)
      return rc;
    if (cmd && cmdl && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, cmd, cmdl)) != 0)
      return rc;
    if (host && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RHOST, host, hostl)) != 0) return rc;
    r->reply_code = reply ? smtpc__bmta_code_at(reply, replyl) : 0;
    if (!r->reply_code) r->reply_code = smtpc__bmta_code_find(words, wl);
    if (!r->reply_code) r->reply_code = code;
    cmd = reply = NULL;
  }
  if (!found && (found = sm_fatal_list(m)) != 0) return found;
  if (!found && lone) {
    /* no recipient line: the returned message's To: is who it was for */
    const char *to = smtpc__bheader_get(m->orig_headers, m->norig_headers, "To", &n), *a;
    size_t al;
    if (!to || !smtpc__baddr(to, n, &a, &al)) return 0;
    smtpc_bounce *r = smtpc__bounce_add(m);
    if (!r) return smtpc__bounce_add_failed(m);
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0 ||
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, lone, lonel)) != 0)
      return rc;
    r->reply_code = lonecode;
    found = 1;
  }
  return found;
}

/* Postfix without a DSN part: "<rcpt>: text" lines after the notice. */
static const smtpc__bmta_layout postfix_layout = {
    .start = (const char *const[]){"This is the Postfix program", "This is the mail system at host",
                                   NULL},
    .stop = (const char *const[]){"--- Delivery report unavailable", "-- Undelivered Message",
                                  "--- Below this line", NULL},
    .need_angle = 1,
    /* Postfix's own parts (bounce_notify_util.c) are delimited by "--<queue id>.<time>/<host>" */
    .stop_at_boundary = 1};

/* Postfix's postmaster copy: "Transcript of session follows." then " In:" / " Out:" lines. */
static int postfix_transcript(smtpc__bmsg *m) {
  size_t begin = smtpc__bmta_line_with(m->body, m->body_len,
                                       (const char *const[]){"Transcript of session follows",
                                                             NULL});
  if (begin >= m->body_len) return 0;
  const char *text = m->body + begin, *line, *last_in = NULL, *host = NULL, *a;
  size_t len = m->body_len - begin, pos = 0, n, last_inl = 0, hostl = 0, al;
  size_t out_from = 0, out_to = 0;
  int rc, found = 0;
  smtpc__bline(text, len, &pos, &line, &n);  /* the marker */
  /* pass 1: the remote host, and the command whose reply failed (else the last one) */
  const char *fail_in = NULL;
  size_t fail_inl = 0, fail_from = 0, fail_to = 0;
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    size_t at = (size_t)(line - text);
    if (smtpc__bstarts(t, n, "Out: 220 ") && !host) {
      host = t + 9, hostl = 0;
      while (hostl < n - 9 && host[hostl] != ' ') hostl++;
    } else if (smtpc__bstarts(t, n, "In:")) {
      last_in = t + 3, last_inl = n - 3;
      last_in = smtpc__bmta_trim(last_in, &last_inl);
      out_from = out_to = 0;
    } else if (smtpc__bstarts(t, n, "Out:")) {
      size_t wl = n - 4;
      const char *w = smtpc__bmta_trim(t + 4, &wl);
      if (!out_from) out_from = at;
      out_to = pos;
      if (!fail_in && smtpc__bmta_code_at(w, wl) >= 400) fail_in = last_in, fail_inl = last_inl;
      if (fail_in && fail_in == last_in) fail_from = out_from, fail_to = out_to;
    } else if (n && line[0] != ' ') {
      break;
    }
  }
  if (fail_in) last_in = fail_in, last_inl = fail_inl, out_from = fail_from, out_to = fail_to;
  /* pass 2: every RCPT TO is a recipient */
  pos = 0;
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (!smtpc__bstarts(t, n, "In:")) continue;
    t += 3, n -= 3;
    t = smtpc__bmta_trim(t, &n);
    if (!smtpc__bstarts(t, n, "RCPT TO:") || !smtpc__baddr(t, n, &a, &al)) continue;
    smtpc_bounce *r = smtpc__bounce_add(m);
    if (!r) return smtpc__bounce_add_failed(m);
    found++;
    int multi = 0;
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
    if (host && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RHOST, host, hostl)) != 0) return rc;
    if (last_in && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, last_in,
                                           smtpc__bmta_cmd_len(last_in, last_inl))) != 0)
      return rc;
    size_t p2 = out_from;
    const char *l2;
    size_t n2;
    r->reply_code = 0;
    if (found > 1) {
      /* The failing reply is the same for every recipient: read once, for the first (a
       * transcript of thousands of RCPTs would otherwise cost their number squared). */
      const smtpc_bounce *r1 = smtpc__bounce_rec(m, m->nrecords - (size_t)found);
      r->reply_code = r1->reply_code;
      r->field[SMTPC_BOUNCE_F_STATUS] = r1->field[SMTPC_BOUNCE_F_STATUS];
      r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] = r1->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
      continue;
    }
    while (p2 < out_to && smtpc__bline(text, out_to, &p2, &l2, &n2)) {
      l2 = smtpc__bmta_trim(l2, &n2);
      if (smtpc__bstarts(l2, n2, "Out:")) l2 += 4, n2 -= 4;
      l2 = smtpc__bmta_trim(l2, &n2);
      int c = smtpc__bmta_code_at(l2, n2);
      if (c >= 400) r->reply_code = c, multi = 0;  /* the failing reply, not the 354 before */
      if ((rc = smtpc__bmta_diag_line(m, r, l2, n2, &multi)) != 0) return rc;
    }
  }
  return found;
}

/* A site's own template (bounce(5): the notice in its language, say ISO-2022-JP) keeps the
 * From: comment "(Mail Delivery System)" and the recipient paragraphs Postfix appends to it,
 * "<rcpt>: host mx[ip] said: ..." at the start of a line: read from the first of those. */
static const smtpc__bmta_layout postfix_any = {
    .start = (const char *const[]){"<", NULL},
    .stop = (const char *const[]){"--- Delivery report unavailable", "-- Undelivered Message",
                                  "--- Below this line", NULL},
    .need_angle = 1,
    /* Postfix's own parts (bounce_notify_util.c) are delimited by "--<queue id>.<time>/<host>" */
    .stop_at_boundary = 1};

static int postfix_own_template(smtpc__bmsg *m) {
  static smtpc__bmta_marks from = {"(Mail Delivery System)", NULL};
  if (!smtpc__bmta_hdr_has(m, "From", from)) return 0;
  const char *text = m->body, *line, *a, *rest;
  size_t len = m->body_len, pos = 0, at = 0, n, al, rl;
  for (; smtpc__bline(text, len, &pos, &line, &n); at = pos)
    if (n && line[0] == '<' && smtpc__bmta_rcpt_line(line, n, 1, 0, &a, &al, &rest, &rl) && rl)
      return smtpc__bmta_read(m, text + at, len - at, &postfix_any);
  return 0;
}

int smtpc__bmta_postfix(smtpc__bmsg *m) {
  if (m->nrecords > 0) return 0;
  int n = smtpc__bmta_read(m, m->body, m->body_len, &postfix_layout);
  if (n) return n;
  if ((n = postfix_transcript(m)) != 0) return n;
  return postfix_own_template(m);
}

/* Where a DSN written as text ends: the returned message or its headers. */
static smtpc__bmta_marks returned = {"Content-Type: message/rfc822",
                                     "Content-Type: text/rfc822-headers", "----- Original message",
                                     "----- Unsent message follows", NULL};

/* The words of a Sendmail transcript that explain a failure: its coded line ("554 5.3.0
 * unknown mailer error 255") or else its plain sentences (not the "addr... Deferred" lines). */
static int transcript_diag(smtpc__bmsg *m, smtpc_bounce *r, const char *text, size_t len) {
  size_t begin = smtpc__bmta_line_with(text, len, sm_start), pos, n;
  const char *line, *coded = NULL;
  size_t codedl = 0;
  int rc, plain = 0, multi = 0;
  if (begin >= len) return 0;
  pos = begin;
  smtpc__bline(text, len, &pos, &line, &n);
  size_t from = pos;
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (smtpc__bstarts(t, n, "--") || smtpc__bstarts(t, n, "Content-Type:")) break;
    if (!coded && smtpc__bmta_code_at(t, n) >= 400) coded = t, codedl = n;
  }
  if (coded) {
    const char *st = r->field[SMTPC_BOUNCE_F_STATUS];
    char found[SMTPC_STATUS_SIZE];
    r->reply_code = smtpc__bmta_code_at(coded, codedl);
    /* "5.0.0" says only "failed"; "554 5.3.0 ..." says how */
    if ((!st || strstr(st, ".0.0")) && smtpc__status_find(coded, codedl, coded[0], found) > 0 &&
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_STATUS, found, strlen(found))) != 0)
      return rc;
    return smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, coded, codedl);
  }
  for (pos = from; smtpc__bline(text, len, &pos, &line, &n);) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (smtpc__bstarts(t, n, "--") || smtpc__bstarts(t, n, "Content-Type:")) break;
    if (n == 0 || smtpc__bfind(t, n, "... ")) continue;  /* "x... Deferred", "... while" */
    if (!plain++) r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] = NULL, r->reply_code = 0;
    if ((rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
  }
  return 0;
}

/* Sendmail's own list of who failed, above its transcript:
 *      ----- The following addresses had permanent fatal errors -----
 *   <kijitora@example.org>
 *       (reason: 550 5.1.1 <kijitora@example.org>... User unknown)
 *       (expanded from: <alias@example.org>)
 * read when the transcript names no recipient of its own (a hop count exceeded, a local
 * mailer's failure, a notice without a transcript): each flush-left address is a recipient,
 * its "(reason: ...)" the words, else the transcript's coded line; "(expanded from: ...)" is
 * the address the sender wrote. The transient list of a warning gives "delayed" records. */
static smtpc__bmta_marks sm_lists = {"----- The following addresses had permanent fatal errors",
                                     "----- The following addresses had transient non-fatal errors",
                                     NULL};

static int sm_paren(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *t, size_t n, size_t k) {
  size_t vl = n - k;
  const char *v = t + k;
  if (vl && v[vl - 1] == ')') vl--;
  v = smtpc__bmta_trim(v, &vl);
  if (field == SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT) {
    const char *a;
    size_t al;
    if (!smtpc__baddr(v, vl, &a, &al)) return 0;
    v = a, vl = al;
  }
  return vl ? smtpc__bounce_set(m, r, field, v, vl) : 0;
}

static int sm_fatal_list(smtpc__bmsg *m) {
  const char *text = m->body, *line;
  size_t len = m->body_len, begin = smtpc__bmta_line_with(text, len, sm_lists), pos, n;
  size_t first = m->nrecords;
  int rc, found = 0, transient;
  smtpc_bounce *r = NULL;
  if (begin >= len) return 0;
  pos = begin;
  smtpc__bline(text, len, &pos, &line, &n); /* the heading */
  transient = smtpc__bfind(line, n, "transient") != NULL;
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    size_t tn = n;
    const char *t = smtpc__bmta_trim(line, &tn), *a;
    size_t al;
    if (tn == 0) continue;
    if (smtpc__bstarts(t, tn, "-----")) break; /* the next heading */
    if (t[0] == '(') {
      if (!r) continue;
      if (smtpc__bstarts(t, tn, "(reason:")) rc = sm_paren(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, t, tn, 8);
      else if (smtpc__bstarts(t, tn, "(expanded from:"))
        rc = sm_paren(m, r, SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT, t, tn, 15);
      else rc = 0;
      if (rc) return rc;
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t' || !smtpc__baddr(t, tn, &a, &al)) break;
    if (smtpc__bmta_find_from(m, first, a, al)) continue;
    if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
    found++;
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
    if (transient && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ACTION, "delayed", 7)) != 0)
      return rc;
  }
  /* the transcript is the same for every record without words of its own: read once, for the
   * first (a list of thousands would otherwise read it thousands of times) */
  const smtpc_bounce *read = NULL;
  for (size_t i = first; i < m->nrecords; i++) {
    r = smtpc__bounce_rec(m, i);
    if (!r->field[SMTPC_BOUNCE_F_DIAGNOSTIC]) {
      if (read) {
        r->reply_code = read->reply_code;
        r->field[SMTPC_BOUNCE_F_STATUS] = read->field[SMTPC_BOUNCE_F_STATUS];
        r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] = read->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
      } else {
        if ((rc = transcript_diag(m, r, text, len)) != 0) return rc;
        read = r;
      }
    }
    if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  }
  return found;
}

/* A DSN whose MIME structure was lost (no or broken Content-Type at the top) reads as text. */
static int text_dsn(smtpc__bmsg *m, int sendmail) {
  const char *b = m->body;
  size_t len = m->body_len, end = smtpc__bmta_line_with(b, len, returned);
  int n = smtpc__bmta_dsn_text(m, b, end), rc;
  for (int i = 0; i < n; i++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, (size_t)i);
    const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
    /* "X-Unix; 255" is an exit status, not a reply: the transcript says more */
    if (sendmail && !(d && smtpc__bmta_code_find(d, strlen(d)) >= 400) &&
        (rc = transcript_diag(m, r, b, end)) != 0)
      return rc;
    if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  }
  return n;
}

int smtpc__bmta_sendmail_text(smtpc__bmsg *m) {
  static smtpc__bmta_marks marks = {"----- Transcript of session follows -----",
                                    "----- The following addresses had permanent fatal errors",
                                    NULL};
  if (!smtpc__bmta_any(m->body, m->body_len, marks)) return 0;
  if (m->nrecords == 0) {
    int n = text_dsn(m, 1);
    return n ? n : sm_fatal_list(m);
  }
  /* Sendmail's own DSN was read; where its Diagnostic-Code is no SMTP reply ("X-Unix; 255"),
   * the transcript in the text part says what failed */
  int amended = 0, rc;
  for (size_t i = 0; i < m->nrecords; i++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
    if (d && smtpc__bmta_code_find(d, strlen(d)) >= 400) continue;
    const char *before = d;
    if ((rc = transcript_diag(m, r, m->body, m->body_len)) != 0) return rc;
    amended += r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] != before;
  }
  return amended;
}

int smtpc__bmta_textdsn(smtpc__bmsg *m) {
  if (m->nrecords > 0 || !smtpc__bfind(m->body, m->body_len, "\nFinal-Recipient:")) return 0;
  return text_dsn(m, 0);
}

/* Sendmail's own verdict on one recipient in its transcript, a line that is not a ">>>" command
 * or a "<<<" reply: "550 5.1.1 <rcpt>... User unknown", "<rcpt>... Deferred: 452 ...". Sendmail
 * writes one for a refused RCPT; with PIPELINING its transcript names the last command it wrote,
 * ">>> DATA", above the RCPT replies, and this line (as sm_rcpt_line reads it) says whose
 * refusal each reply was. */
int smtpc__bmta_sendmail_verdict(const char *t, size_t n, const char *rcpt) {
  size_t pos = 0, l, al, tl;
  const char *line, *a, *text;
  int code;
  while (smtpc__bline(t, n, &pos, &line, &l)) {
    line = smtpc__bmta_trim(line, &l);
    if (smtpc__bstarts(line, l, ">>>") || smtpc__bstarts(line, l, "<<")) continue;
    if (sm_rcpt_line(line, l, &code, &a, &al, &text, &tl) && smtpc__bmta_eq(rcpt, a, al)) return 1;
  }
  return 0;
}
