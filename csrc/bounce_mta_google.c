/* bounce_mta_google.c -- Gmail's own bounce text and Google Groups' refusals.
 *
 * Gmail (From: mailer-daemon@googlemail.com):
 *   Delivery to the following recipient failed permanently:
 *        kijitora@example.jp
 *   Technical details of permanent failure:
 *   Google tried to deliver your message, but it was rejected by the server for the recipient
 *   domain example.jp by mx.example.jp. [192.0.2.153].
 *   The error that the other server returned was:
 *   550 5.1.1 <kijitora@example.jp>... User Unknown (state 14).
 *   ----- Original message -----
 *
 * Older Gmail replies end in "(state N)": N names the SMTP step that failed.
 * Google Groups writes a letter in the sender's language saying the group does not exist or
 * does not take the sender's posts; only X-Failed-Recipients names the group. */
#include <string.h>

#include "bounce_mta.h"

static smtpc__bmta_marks google_from = {"mailer-daemon@googlemail.com",
                                        "mailer-daemon@google.com", NULL};
static smtpc__bmta_marks gmail_start = {"Delivery to the following recipient", NULL};
static smtpc__bmta_marks gmail_stop = {"----- Original message -----",
                                       "----- Message header follows -----", NULL};

/* Gmail's "(state N)": the SMTP step that failed, and what it means when the reply is vague. */
static const struct {
  const char *state, *command;
  int reason;
} gmail_states[] = {
    {"(state 6)", "MAIL", SMTPC_REASON_FAILEDSTARTTLS},
    {"(state 8)", "AUTH", SMTPC_REASON_SYSTEMERROR},
    {"(state 9)", "AUTH", SMTPC_REASON_FAILEDSTARTTLS},
    {"(state 12)", "AUTH", SMTPC_REASON_NORELAYING},
    {"(state 13)", "EHLO", SMTPC_REASON_BLOCKED},
    {"(state 14)", "RCPT", SMTPC_REASON_USERUNKNOWN},
    {"(state 15)", "DATA", SMTPC_REASON_FILTERED},
    {"(state 17)", "DATA", SMTPC_REASON_FILTERED},
    {"(state 18)", "DATA", SMTPC_REASON_FILTERED},
};

/* Gmail's own sentences when there was no SMTP reply at all. */
static smtpc__bmta_marks gmail_expired = {
    "DNS Error: Could not contact DNS servers",
    "Delivery to the following recipient has been delayed",
    "The recipient server did not accept our requests to connect", NULL};
static smtpc__bmta_marks gmail_hostunknown = {
    "DNS Error: Domain name not found", "DNS Error: DNS server returned answer with no data", NULL};

static int gmail_finish(smtpc__bmsg *m, smtpc_bounce *r) {
  const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
  int rc;
  if (!d) return 0;
  size_t n = strlen(d);
  /* every state is "(state N)": a diagnostic without that is searched once, not nine times */
  int stated = smtpc__bfind(d, n, "(state ") != NULL;
  for (size_t i = 0; stated && i < sizeof gmail_states / sizeof gmail_states[0]; i++) {
    if (!smtpc__bfind(d, n, gmail_states[i].state)) continue;
    rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, gmail_states[i].command,
                           strlen(gmail_states[i].command));
    if (rc) return rc;
    r->cls.reason = gmail_states[i].reason;
    break;
  }
  /* a specific status ("4.2.2 Mailbox Full (state 14)") says more than the state does */
  char st[SMTPC_STATUS_SIZE];
  if (r->cls.reason && smtpc__status_find(d, n, 0, st) > 0 && !strstr(st, ".0")) {
    r->cls.reason = 0;
  }
  if (!r->cls.reason && !smtpc__bmta_code_find(d, n)) {
    if (smtpc__bmta_any(d, n, gmail_hostunknown)) r->cls.reason = SMTPC_REASON_HOSTUNKNOWN;
    else if (smtpc__bmta_any(d, n, gmail_expired)) r->cls.reason = SMTPC_REASON_EXPIRED;
  }
  if (smtpc__bfind(d, n, "has been delayed") &&
      (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ACTION, "delayed", 7)) != 0)
    return rc;
  return smtpc__bmta_finish_rec(m, r);
}

int smtpc__bmta_gmail(smtpc__bmsg *m) {
  if (m->nrecords > 0 || !smtpc__bmta_hdr_has(m, "From", google_from)) return 0;
  const char *text = m->body;
  size_t len = m->body_len;
  size_t begin = smtpc__bmta_line_with(text, len, gmail_start);
  if (begin >= len) return 0;
  size_t end = begin + smtpc__bmta_cut(text + begin, len - begin, gmail_stop);
  size_t pos = begin, pre_end = begin;
  const char *line;
  size_t n;
  int multi = 0, rc, found = 0;
  smtpc_bounce *r = NULL;
  while (smtpc__bline(text, end, &pos, &line, &n)) {
    const char *a, *rest;
    size_t al, rl;
    int indented = n > 0 && (line[0] == ' ' || line[0] == '\t');
    if (indented && smtpc__bmta_rcpt_line(line, n, 0, 0, &a, &al, &rest, &rl) && rl == 0) {
      if (r && (rc = gmail_finish(m, r)) != 0) return rc;
      if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      if (!found++) {  /* the sentences above the first recipient belong to it */
        size_t p2 = begin;
        const char *l2;
        size_t n2;
        while (p2 < pre_end && smtpc__bline(text, pre_end, &p2, &l2, &n2))
          if ((rc = smtpc__bmta_diag_line(m, r, l2, n2, &multi)) != 0) return rc;
      }
      continue;
    }
    if (!found) {
      pre_end = pos;
      continue;
    }
    if ((rc = smtpc__bmta_diag_line(m, r, line, n, &multi)) != 0) return rc;
  }
  if (r && (rc = gmail_finish(m, r)) != 0) return rc;
  return found;
}

int smtpc__bmta_googlegroups(smtpc__bmsg *m) {
  size_t fl;
  const char *failed = smtpc__bmta_hdr(m, "X-Failed-Recipients", &fl);
  /* A group on its own domain (a Workspace group: kernel-team@android.com) is named by the
   * notice's sentence, in English: "the group you tried to contact (kernel-team) may not
   * exist, or you may not have permission to post messages to the group". */
  int sentence = smtpc__bfind(m->body, m->body_len, "the group you tried to contact") != NULL;
  if (m->nrecords > 0 || !fl || (!sentence && !smtpc__bfind(failed, fl, "googlegroups.com")))
    return 0;
  if (!sentence && !smtpc__bfind(m->body, m->body_len, "Google Groups") &&
      !smtpc__bfind(m->body, m->body_len, "groups.google.com"))
    return 0;
  size_t end = smtpc__bmta_cut(m->body, m->body_len, gmail_stop);
  const char *a;
  size_t al;
  int found = 0, rc;
  while (smtpc__baddr(failed, fl, &a, &al)) {
    smtpc_bounce *r = smtpc__bounce_add(m);
    if (!r) return smtpc__bounce_add_failed(m);
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0 ||
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, m->body, end)) != 0)
      return rc;
    /* whatever the language: the group refused the post (it may not exist, or the sender
     * may not post to it) */
    r->cls.reason = SMTPC_REASON_REJECTED;
    found++;
    size_t used = (size_t)(a - failed) + al;
    failed += used, fl -= used;
  }
  return found;
}
