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
  size_t first = m->nrecords;
  const char *line, *rline = NULL;
  int rc, multi = 0, words = 0, found = 0;
  smtpc_bounce *r = NULL;
  while (smtpc__bline(m->body, end, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a;
    size_t al;
    if (n == 0) continue;
    int hdr = 0;
    for (const char *const *h = headerish; *h; h++) hdr |= smtpc__bstarts(t, n, *h);
    /* a line that ends in an address not yet named names the next recipient (IMail writes
     * one such paragraph per recipient: "Unknown user: a@b", then its reply) */
    if (!hdr && smtpc__baddr(t, n, &a, &al) && a + al == t + n &&
        !smtpc__bmta_find_from(m, first, a, al)) {
      if (r && !words && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, rline, rl)) != 0)
        return rc;
      if (r && (rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
      if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      rline = t, rl = n, words = 0, multi = 0, found++;
      continue;
    }
    if (r && (rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
    words += r != NULL;
  }
  if (!r) return 0;
  if (!words && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, rline, rl)) != 0)
    return rc;
  if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  return found;
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
      /* the server's words concern them all: each record reads the line from the state the
       * previous line left (one shared state would make the second record of a multi-line
       * reply read its first line as a continuation) */
      int after = multi;
      for (size_t i = first; i < m->nrecords; i++) {
        after = multi;
        if ((rc = smtpc__bmta_diag_line(m, smtpc__bounce_rec(m, i), t, n, &after)) != 0) return rc;
      }
      multi = after;
    } else if (section == 0 && smtpc__bmta_rcpt_line(t, n, 0, 0, &a, &al, &rest, &rlen) && !rlen) {
      smtpc_bounce *r = smtpc__bounce_add(m);
      if (!r) return smtpc__bounce_add_failed(m);
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

static int labelled(const char *text, size_t len, const char *section, const char *label,
                    const char **a, size_t *al);

/* The layout Exchange Online writes since about 2017, when the notice comes without its
 * delivery-status part (forwarded, or filed as text):
 *   Your message to kijitora@example.jp couldn't be delivered.
 *   ...
 *   Original Message Details
 *   Recipient Address:      kijitora@example.jp
 *   Error Details
 *   Reported error: 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient kijitora@example.jp
 *   not found by SMTP address lookup
 *   DSN generated by:       TY2PR01MB0000.jpnprd01.prod.outlook.com
 * The reply may wrap onto the lines below "Reported error:", up to "DSN generated by:". */
static int office365_details(smtpc__bmsg *m) {
  static smtpc__bmta_marks reported = {"Reported error:", NULL};
  static smtpc__bmta_marks your = {"Your message to ", NULL};
  const char *text = m->body, *line, *a, *rmta = NULL;
  size_t len = m->body_len, pos = smtpc__bmta_line_with(text, len, reported), n, al, rmtal = 0;
  int rc, multi = 0;
  if (pos >= len) return 0;
  if (!labelled(text, len, "Original Message Details", "Recipient Address:", &a, &al)) {
    size_t at = smtpc__bmta_line_with(text, len, your);
    if (at >= len || !smtpc__bline(text, len, &at, &line, &n) ||
        !smtpc__bfind(line, n, "couldn't be delivered") || !smtpc__baddr(line, n, &a, &al))
      return 0;
  }
  smtpc_bounce *r = smtpc__bounce_add(m);
  if (!r) return smtpc__bounce_add_failed(m);
  if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
  for (int first = 1; smtpc__bline(text, len, &pos, &line, &n); first = 0) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (!n) break;
    if (smtpc__bstarts(t, n, "DSN generated by:")) {
      rmta = smtpc__bmta_trim(t + 17, (rmtal = n - 17, &rmtal));
      break;
    }
    if (first) t += 15, n -= 15; /* "Reported error:" */
    t = smtpc__bmta_trim(t, &n);
    if ((rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
  }
  if (rmtal && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_REPORTING_MTA, rmta, rmtal)) != 0)
    return rc;
  if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  return 1;
}

/* Office 365 / Exchange Online without a delivery-status part:
 *   Diagnostic information for administrators:
 *   Generating server: FFFFFFFFFFFF.e0.prod.outlook.com
 *   kijitora@example.com
 *   Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'
 *   Original message headers:
 * (French: "Informations de diagnostic pour les administrateurs :", "Serveur de génération :",
 * "En-têtes de message d'origine :", as Microsoft's French documentation names them.) */
int smtpc__bmta_office365(smtpc__bmsg *m) {
  static smtpc__bmta_marks start = {"Diagnostic information for administrators:",
                                    "Informations de diagnostic pour les administrateurs", NULL};
  static smtpc__bmta_marks stop = {"Original message headers:", "En-t\xc3\xaates de message d'origine",
                                   NULL};
  if (m->nrecords > 0) return 0;
  size_t begin = smtpc__bmta_line_with(m->body, m->body_len, start);
  if (begin >= m->body_len) return office365_details(m);
  const char *text = m->body + begin, *line;
  size_t len = smtpc__bmta_cut(text, m->body_len - begin, stop), pos = 0, n;
  int rc, multi = 0, found = 0;
  smtpc_bounce *r = NULL;
  smtpc__bline(text, len, &pos, &line, &n);
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a, *rest;
    size_t al, rl;
    if (n == 0 || smtpc__bstarts(t, n, "Generating server:") ||
        smtpc__bstarts(t, n, "Receiving server:") || smtpc__bstarts(t, n, "Serveur "))
      continue;
    if (smtpc__bmta_rcpt_line(t, n, 0, 0, &a, &al, &rest, &rl) && !rl) {
      if (r && (rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
      if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
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
  if (!r) return smtpc__bounce_add_failed(m);
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
    if (!r) return smtpc__bounce_add_failed(m);
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

/* Mimecast's notices put each item on a "-- " line under a label ending in " :":
 *   An email that you attempted to send to the following address could not be delivered:
 *   -- kijitora@example.org
 *
 *   The problem appears to be :
 *   -- Recipient email address is possibly incorrect
 *
 *   Additional information follows :
 *   -- 5.4.1 Recipient address rejected: Access denied.
 * (or "This is a delivery failure notification message indicating that / an email you
 * addressed to email address : / -- x@y / could not be delivered. The problem appears to
 * be :"). An item that is an address alone is a recipient; the others are the words, shared
 * by the recipients listed before them. */
int smtpc__bmta_mimecast(smtpc__bmsg *m) {
  static smtpc__bmta_marks problem = {"The problem appears to be", NULL};
  if (m->nrecords > 0 || smtpc__bmta_line_with(m->body, m->body_len, problem) >= m->body_len)
    return 0;
  size_t pos = 0, first = m->nrecords, n, al;
  const char *line, *a;
  int rc, found = 0, multi = 0, worded = 0;
  while (smtpc__bline(m->body, m->body_len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (n < 4 || !smtpc__bstarts(t, n, "-- ")) continue;
    t += 3, n -= 3;
    t = smtpc__bmta_trim(t, &n);
    if (n && !memchr(t, ' ', n) && smtpc__baddr(t, n, &a, &al)) {
      if (worded) break; /* a second list after the words: not this layout */
      if (smtpc__bmta_find_from(m, first, a, al)) continue;
      smtpc_bounce *r = smtpc__bounce_add(m);
      if (!r) return smtpc__bounce_add_failed(m);
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      found++;
      continue;
    }
    if (!found || !n) continue;
    worded = 1;
    for (size_t i = first; i < m->nrecords; i++) {
      int each = multi;
      if ((rc = smtpc__bmta_diag_line(m, smtpc__bounce_rec(m, i), t, n, &each)) != 0) return rc;
      if (i + 1 == m->nrecords) multi = each;
    }
  }
  for (size_t i = first; found && i < m->nrecords; i++)
    if ((rc = smtpc__bmta_finish_rec(m, smtpc__bounce_rec(m, i))) != 0) return rc;
  return found;
}

/* MDaemon and Alt-N's SecurityGateway: the recipient in the session transcript's summary
 * ("*  To: x@y") or a "Failed address:" line; the failure is the last reply of 400 or more
 * ("<-- 550 ...", after "--> RCPT To:<x@y>"), else the transcript's last note ("*  Name server
 * reports domain name unknown").
 *   The attached message had PERMANENT fatal delivery errors.
 *   --- Session Transcript ---
 *    Wed 2013-09-11 12:22:04: *  To: kijitora@example.jp
 *    Wed 2013-09-11 12:22:05: --> RCPT To:<kijitora@example.jp>
 *    Wed 2013-09-11 12:22:05: <-- 550 5.1.1 User unknown
 *   --- End Transcript --- */
static const char *after_stamp(const char *t, size_t *n) {  /* " Wed 2013-09-11 12:22:04: " */
  const char *c = smtpc__bfind(t, *n, ": ");
  if (c && (size_t)(c - t) <= 32 && c - t >= 8 && t[c - t - 3] == ':') {
    *n -= (size_t)(c + 2 - t);
    return c + 2;
  }
  return t;
}

int smtpc__bmta_mdaemon(smtpc__bmsg *m) {
  static smtpc__bmta_marks body = {"had PERMANENT fatal delivery errors", NULL};
  static smtpc__bmta_marks start = {"--- Session Transcript ---", NULL};
  static smtpc__bmta_marks stop = {"--- End Transcript ---", NULL};
  if (m->nrecords > 0 || !smtpc__bmta_any(m->body, m->body_len, body)) return 0;
  const char *text = m->body, *line, *a = NULL, *reply = NULL, *note = NULL, *cmd = NULL;
  size_t len = m->body_len, pos = 0, n, al = 0, replyl = 0, notel = 0, cmdl = 0, sent = 0;
  while (smtpc__bline(text, len, &pos, &line, &n)) {  /* "Failed address: x@y" above it */
    const char *t = smtpc__bmta_trim(line, &n);
    if (smtpc__bstarts(t, n, "Failed address:") && smtpc__baddr(t + 15, n - 15, &a, &al)) break;
  }
  size_t begin = smtpc__bmta_line_with(text, len, start);
  if (begin >= len) return 0;
  size_t end = begin + smtpc__bmta_cut(text + begin, len - begin, stop);
  pos = begin;
  smtpc__bline(text, end, &pos, &line, &n);  /* the marker */
  while (smtpc__bline(text, end, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    t = after_stamp(t, &n);
    if (smtpc__bstarts(t, n, "*  To:") && !a) {
      if (!smtpc__baddr(t + 6, n - 6, &a, &al)) a = NULL;
    } else if (smtpc__bstarts(t, n, "--> ")) {
      cmd = t + 4, cmdl = smtpc__bmta_cmd_len(t + 4, n - 4), sent = 1;
    } else if (smtpc__bstarts(t, n, "<-- ") && smtpc__bmta_code_at(t + 4, n - 4) >= 400) {
      reply = t + 4, replyl = n - 4;
    } else if (smtpc__bstarts(t, n, "*  ") && (sent || !smtpc__bfind(t, n, ": "))) {
      note = t + 3, notel = n - 3;  /* not the summary's "*  Subject: ..." lines */
    } else if (smtpc__bstarts(t, n, "Attempting") || smtpc__bstarts(t, n, "Resolving")) {
      sent = 1;  /* "Attempting SMTP connection to ...": the summary is over */
    }
  }
  if (!a) return 0;
  smtpc_bounce *r = smtpc__bounce_add(m);
  int rc, multi = 0;
  if (!r) return smtpc__bounce_add_failed(m);
  if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
  if (reply && cmd && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, cmd, cmdl)) != 0)
    return rc;
  if (reply)
    rc = smtpc__bmta_diag_line(m, r, reply, replyl, &multi);
  else if (note)
    rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, note, notel);
  if (rc) return rc;
  /* MDaemon's own note when the recipient's domain does not resolve */
  if (!reply && note && smtpc__bfind(note, notel, "domain name unknown"))
    r->cls.reason = SMTPC_REASON_HOSTUNKNOWN;
  if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  return 1;
}

/* AOL's own notice ("Mail Delivery Problem" from MAILER-DAEMON@aol.com, its AIRmail mailer),
 * as real ones of 2006-2009 show it (Mail::DeliveryStatus::BounceParser's and flufl.bounce's
 * test bounces):
 *   Your mail to the following recipients could not be delivered because they are not
 *   accepting mail from list@example.com:
 *   <TAB>screenname
 * The recipients are AOL screen names, without a domain: each is a mailbox at the domain of the
 * notice's own From address. The sentence is the diagnostic. */
int smtpc__bmta_aol(smtpc__bmsg *m) {
  static smtpc__bmta_marks start = {
      "Your mail to the following recipients could not be delivered", NULL};
  if (m->nrecords > 0) return 0;
  size_t fl, al, n, pos = smtpc__bmta_line_with(m->body, m->body_len, start);
  const char *from = smtpc__bmta_hdr(m, "From", &fl), *a, *line;
  if (pos >= m->body_len || !smtpc__baddr(from, fl, &a, &al) ||
      !smtpc__bstarts(a, al, "MAILER-DAEMON@"))
    return 0;
  const char *domain = a + 14;
  size_t dl = al - 14;
  const char *diag = smtpc__bfind(m->body + pos, m->body_len - pos, start[0]), *diag_end = NULL;
  int rc, found = 0;
  while (smtpc__bline(m->body, m->body_len, &pos, &line, &n)) {
    size_t tl = n;
    const char *t = smtpc__bmta_trim(line, &tl);
    if (!diag_end) { /* the sentence runs to the line that ends in a colon */
      if (tl && t[tl - 1] == ':') diag_end = t + tl - 1;
      else if (tl == 0) return 0; /* a paragraph without the list */
      continue;
    }
    if (tl == 0) {
      if (found) break;
      continue;
    }
    /* a screen name: one word, indented, no address syntax around it */
    if (line == t || tl > 64 || memchr(t, ' ', tl) || memchr(t, '<', tl) || memchr(t, ':', tl))
      break;
    char buf[64 + 1 + 256];
    size_t bl = tl;
    memcpy(buf, t, tl);
    if (!memchr(t, '@', tl)) { /* the screen name at the notice's domain */
      if (dl > 256) return 0;
      buf[bl++] = '@';
      memcpy(buf + bl, domain, dl);
      bl += dl;
    }
    smtpc_bounce *r = smtpc__bounce_add(m);
    if (!r) return smtpc__bounce_add_failed(m);
    found++;
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, buf, bl)) != 0 ||
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, diag,
                                (size_t)(diag_end - diag))) != 0 ||
        (rc = smtpc__bmta_finish_rec(m, r)) != 0)
      return rc;
  }
  return found;
}
