/* bounce_mta_microsoft.c -- Microsoft Exchange Server 2003 (and its Internet Mail Service):
 *
 *   Your message
 *     To:      shironeko@example.com
 *     Subject: Kijitora Cat
 *   did not reach the following recipient(s):
 *   kijitora@example.jp on Thu, 29 Apr 2010 00:00:00 -0000
 *       The recipient name is not recognized
 *       MSEXCH:IMS:NNN:KIJITORACAT:NEKO 0 (000C05A6) Unknown Recipient
 *
 * The hexadecimal code in parentheses is Exchange's own reason for the failure. */
#include <string.h>

#include "bounce_mta.h"

static smtpc__bmta_marks ex_start = {"did not reach the following recipient(s)",
                                     "following recipient(s) could not be reached", NULL};
static smtpc__bmta_marks ex_stop = {"Content-Type: message/rfc822", NULL};

/* Exchange 2003 error codes (after "MSEXCH:... (") and what they mean. */
static const struct {
  const char *code;
  int reason;
} ex_codes[] = {
    {"000C05A6", SMTPC_REASON_USERUNKNOWN},   /* Unknown Recipient                 */
    {"000C0595", SMTPC_REASON_FILTERED},      /* Ambiguous Recipient               */
    {"00010256", SMTPC_REASON_SYSTEMERROR},   /* Too many recipients               */
    {"000D06B5", SMTPC_REASON_SYSTEMERROR},   /* No proxy for recipient            */
    {"00120270", SMTPC_REASON_NETWORKERROR},  /* Too many hops                     */
    {"00050311", SMTPC_REASON_CONTENTERROR},  /* Conversion to Internet format     */
    {"000502CC", SMTPC_REASON_CONTENTERROR},  /* Conversion to Internet format     */
    {"000B0981", SMTPC_REASON_SECURITYERROR}, /* remote server does not offer AUTH */
    {"000B099C", SMTPC_REASON_ONHOLD},        /* host unknown, size limit ...      */
    {"000B09AA", SMTPC_REASON_ONHOLD},        /* unable to relay, size limit ...   */
    {"000B09B6", SMTPC_REASON_ONHOLD},        /* remote MTA's error                */
};

static int ex_finish(smtpc__bmsg *m, smtpc_bounce *r) {
  const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
  if (!d) return 0;
  size_t n = strlen(d);
  const char *ms = smtpc__bfind(d, n, "MSEXCH:");
  const char *open = ms ? strchr(ms, '(') : NULL;
  if (open && strlen(open) >= 10 && open[9] == ')') {
    for (size_t i = 0; i < sizeof ex_codes / sizeof ex_codes[0]; i++)
      if (smtpc__bstarts(open + 1, 8, ex_codes[i].code)) r->cls.reason = ex_codes[i].reason;
    /* "... (000C05A6) Unknown Recipient": the words after the code say it plainly */
    size_t wl = strlen(open + 10);
    const char *w = smtpc__bmta_trim(open + 10, &wl);
    if (wl && r->cls.reason) {
      char keep[256];
      if (wl >= sizeof keep) wl = sizeof keep - 1;
      memcpy(keep, w, wl);  /* the field is replaced below: copy first */
      int rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, keep, wl);
      if (rc) return rc;
    }
  }
  return smtpc__bmta_finish_rec(m, r);
}

int smtpc__bmta_exchange2003(smtpc__bmsg *m) {
  if (m->nrecords > 0) return 0;
  const char *text = m->body;
  size_t len = m->body_len;
  size_t begin = smtpc__bmta_line_with(text, len, ex_start);
  if (begin >= len || !smtpc__bfind(text, begin, "Your message")) return 0;
  size_t end = begin + smtpc__bmta_cut(text + begin, len - begin, ex_stop);
  size_t pos = begin;
  const char *line;
  size_t n;
  int rc, found = 0, multi = 0;
  smtpc_bounce *r = NULL;
  smtpc__bline(text, end, &pos, &line, &n);  /* the start line */
  while (smtpc__bline(text, end, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n), *a, *on = smtpc__bfind(t, n, " on ");
    size_t al;
    if (n == 0) continue;
    if (on && smtpc__baddr(t, (size_t)(on - t), &a, &al)) {
      if (r && (rc = ex_finish(m, r)) != 0) return rc;
      if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
      found++;
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      continue;
    }
    if (r && t[0] != ';' && (rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
  }
  if (r && (rc = ex_finish(m, r)) != 0) return rc;
  return found;
}
