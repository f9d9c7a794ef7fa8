/* bounce_mta_misc.c -- formats with a shape of their own: IMail Server, m-FILTER and the
 * Office 365 / Exchange Online text without a delivery-status part. */
#include <string.h>

#include "bounce_mta.h"

/* IMail Server (X-Mailer: <SMTP32 v...>): the reason and the recipient on one line, then
 * possibly the remote server's words:
 *   Unknown user: kijitora@example.com
 *   undeliverable to kijitora@example.jp
 *   Body of message generated response:
 *   550-REJECTED - Blacklisted URL in message. ...
 *   Original message follows. */
int smtpc__bmta_imailserver(smtpc__bmsg *m) {
  static smtpc__bmta_marks mailer = {"<SMTP32 v", NULL};
  static smtpc__bmta_marks stop = {"Original message follows", NULL};
  static smtpc__bmta_marks headerish = {"To:", "CC:", "From:", "Date:", "Subject:", NULL};
  if (m->nrecords > 0 || !smtpc__bmta_hdr_has(m, "X-Mailer", mailer)) return 0;
  size_t end = smtpc__bmta_cut(m->body, m->body_len, stop), pos = 0, n, rl = 0;
  const char *line, *rline = NULL;
  int rc, multi = 0, words = 0;
  smtpc_bounce *r = NULL;
  while (smtpc__bline(m->body, end, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a;
    size_t al;
    if (n == 0) continue;
    int hdr = 0;
    for (const char *const *h = headerish; *h; h++) hdr |= smtpc__bstarts(t, n, *h);
    /* a line that ends in the recipient's address names it */
    if (!r && !hdr && smtpc__baddr(t, n, &a, &al) && a + al == t + n) {
      if (!(r = smtpc__bounce_add(m))) return SMTPC_ENOMEM;
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      rline = t, rl = n;
      continue;
    }
    if (r && (rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
    words += r != NULL;
  }
  if (!r) return 0;
  if (!words && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, rline, rl)) != 0)
    return rc;
  if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  return 1;
}

/* m-FILTER: addresses alone on their lines, then "-------server message" and
 * "-------SMTP command" sections; "-------original message" ends it. */
int smtpc__bmta_mfilter(smtpc__bmsg *m) {
  static smtpc__bmta_marks mailer = {"m-FILTER", NULL};
  static smtpc__bmta_marks stop = {"-------original message", "-------original mail info", NULL};
  if (m->nrecords > 0 || !smtpc__bmta_hdr_has(m, "X-Mailer", mailer)) return 0;
  size_t end = smtpc__bmta_cut(m->body, m->body_len, stop), pos = 0, n, first = m->nrecords;
  const char *line, *cmd = NULL;
  size_t cmdl = 0;
  int rc, multi = 0, section = 0; /* 1 = server message, 2 = SMTP command */
  while (smtpc__bline(m->body, end, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a, *rest;
    size_t al, rlen;
    if (n == 0) continue;
    if (smtpc__bstarts(t, n, "-------server message")) {
      section = 1;
      continue;
    }
    if (smtpc__bstarts(t, n, "-------SMTP command")) {
      section = 2;
      continue;
    }
    if (section == 2 && !cmd) {
      cmd = t, cmdl = n;
    } else if (section == 1) {
      for (size_t i = first; i < m->nrecords; i++) /* the server's words concern them all */
        if ((rc = smtpc__bmta_diag_line(m, smtpc__bounce_rec(m, i), t, n, &multi)) != 0) return rc;
    } else if (section == 0 && smtpc__bmta_rcpt_line(t, n, 0, 0, &a, &al, &rest, &rlen) && !rlen) {
      smtpc_bounce *r = smtpc__bounce_add(m);
      if (!r) return SMTPC_ENOMEM;
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
    }
  }
  for (size_t i = first; i < m->nrecords; i++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    if (cmd && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, cmd, cmdl)) != 0) return rc;
    if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  }
  return (int)(m->nrecords - first);
}

/* Office 365 / Exchange Online without a delivery-status part:
 *   Diagnostic information for administrators:
 *   Generating server: FFFFFFFFFFFF.e0.prod.outlook.com
 *   kijitora@example.com
 *   Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'
 *   Original message headers: */
int smtpc__bmta_office365(smtpc__bmsg *m) {
  static smtpc__bmta_marks start = {"Diagnostic information for administrators:", NULL};
  static smtpc__bmta_marks stop = {"Original message headers:", NULL};
  if (m->nrecords > 0) return 0;
  size_t begin = smtpc__bmta_line_with(m->body, m->body_len, start);
  if (begin >= m->body_len) return 0;
  const char *text = m->body + begin, *line;
  size_t len = smtpc__bmta_cut(text, m->body_len - begin, stop), pos = 0, n;
  int rc, multi = 0, found = 0;
  smtpc_bounce *r = NULL;
  smtpc__bline(text, len, &pos, &line, &n);
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a, *rest;
    size_t al, rl;
    if (n == 0 || smtpc__bstarts(t, n, "Generating server:") ||
        smtpc__bstarts(t, n, "Receiving server:"))
      continue;
    if (smtpc__bmta_rcpt_line(t, n, 0, 0, &a, &al, &rest, &rl) && !rl) {
      if (r && (rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
      if (!(r = smtpc__bounce_add(m))) return SMTPC_ENOMEM;
      found++;
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      continue;
    }
    if (!r) continue;
    /* "Remote Server returned '550 5.1.10 ...'" and "#550 5.1.1 RESOLVER... ##": the reply */
    const char *q = smtpc__bfind(t, n, "returned '");
    if (q) n -= (size_t)(q + 10 - t), t = q + 10;
    while (n && (t[0] == '#')) t++, n--;
    while (n && (t[n - 1] == '\'' || t[n - 1] == '#' || t[n - 1] == ' ')) n--;
    if ((rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
  }
  if (r && (rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  return found;
}

/* The address on the first line starting with `label` after the line containing `section`. */
static int labelled(const char *text, size_t len, const char *section, const char *label,
                    const char **a, size_t *al) {
  size_t pos = smtpc__bmta_line_with(text, len, (const char *const[]){section, NULL}), n;
  const char *line;
  while (pos < len && smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (smtpc__bstarts(t, n, label)) return smtpc__baddr(t, n, a, al);
  }
  return 0;
}

/* One recipient named by a label, the words after a heading: a notice for a single message. */
static int summary(smtpc__bmsg *m, const char *section, const char *label, const char *heading,
                   int same_line) {
  const char *a, *line;
  size_t al, n;
  int rc, multi = 0;
  if (m->nrecords > 0 || !labelled(m->body, m->body_len, section, label, &a, &al)) return 0;
  size_t pos = smtpc__bmta_line_with(m->body, m->body_len, (const char *const[]){heading, NULL});
  if (pos >= m->body_len) return 0;
  smtpc_bounce *r = smtpc__bounce_add(m);
  if (!r) return SMTPC_ENOMEM;
  if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
  smtpc__bline(m->body, m->body_len, &pos, &line, &n);
  if (same_line) { /* "Error: No valid recipients for this MM" */
    const char *t = smtpc__bmta_trim(line, &n);
    size_t k = strlen(heading);
    if ((rc = smtpc__bmta_diag_line(m, r, t + k, n - k, &multi)) != 0) return rc;
  } else { /* "Error message below:" and the lines up to a blank one */
    while (smtpc__bline(m->body, m->body_len, &pos, &line, &n)) {
      size_t tn = n;
      smtpc__bmta_trim(line, &tn);
      if (!tn) break;
      if ((rc = smtpc__bmta_diag_line(m, r, line, n, &multi)) != 0) return rc;
    }
  }
  if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  return 1;
}

/* Apache James:
 *   Error message below:
 *   550 - Requested action not taken: no such user here
 *   Message details:
 *     RCPT TO: kijitora@example.com */
int smtpc__bmta_apachejames(smtpc__bmsg *m) {
  return summary(m, "Message details:", "RCPT TO:", "Error message below:", 0);
}

/* Verizon's MMS gateway:
 *   Message could not be delivered to mobile.
 *   Error: No valid recipients for this MM
 *   Original Message:
 *   To: 0000000000@vzwpix.com */
int smtpc__bmta_verizon(smtpc__bmsg *m) {
  if (!smtpc__bfind(m->body, m->body_len, "Message could not be delivered to mobile")) return 0;
  return summary(m, "Original Message:", "To:", "Error:", 1);
}

/* The "X6" notice: recipients and reason on one line.
 *   The following recipients returned permanent errors: kijitora@example.org. Reason: SMTP
 *   Server <192.0.2.1> refused to accept your message (DATA), with the following error
 *   message: [554 5.4.6 Hop count exceeded - possible mail loop] */
int smtpc__bmta_x6(smtpc__bmsg *m) {
  static smtpc__bmta_marks start = {"The following recipients returned permanent errors:", NULL};
  if (m->nrecords > 0) return 0;
  size_t at = smtpc__bmta_line_with(m->body, m->body_len, start), pos = at, n;
  const char *line, *a;
  size_t al;
  int rc, found = 0;
  if (at >= m->body_len || !smtpc__bline(m->body, m->body_len, &pos, &line, &n)) return 0;
  const char *list = smtpc__bfind(line, n, "errors:"), *reason = smtpc__bfind(line, n, "Reason:");
  if (!list || (reason && reason < list)) return 0;
  list += 7;
  size_t ll = reason ? (size_t)(reason - list) : n - (size_t)(list - line);
  while (smtpc__baddr(list, ll, &a, &al)) {
    smtpc_bounce *r = smtpc__bounce_add(m);
    if (!r) return SMTPC_ENOMEM;
    found++;
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0 ||
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, line, n)) != 0)
      return rc;
    const char *b = reason ? smtpc__bfind(reason, n - (size_t)(reason - line), "[") : NULL;
    if (b) r->reply_code = smtpc__bmta_code_at(b + 1, n - (size_t)(b + 1 - line));
    static const char *const cmds[] = {"(RCPT)", "(MAIL)", "(DATA)", "(EHLO)", "(HELO)"};
    for (size_t c = 0; reason && c < sizeof cmds / sizeof cmds[0]; c++)
      if (smtpc__bfind(reason, n - (size_t)(reason - line), cmds[c]) &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, cmds[c] + 1, 4)) != 0)
        return rc;
    if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
    size_t used = (size_t)(a - list) + al;
    list += used, ll -= used;
  }
  return found;
}
