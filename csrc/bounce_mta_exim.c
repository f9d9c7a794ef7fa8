/* bounce_mta_exim.c -- Exim's own bounce text (and Mail.Ru's, which wraps it).
 *
 *   A message that you sent could not be delivered to one or more of its
 *   recipients. This is a permanent error. The following address(es) failed:
 *
 *     kijitora@example.jp                      <- two spaces: a recipient
 *       SMTP error from remote mail server after RCPT TO:<kijitora@example.jp>:
 *       host mx.example.jp [192.0.2.153]: 550 5.1.1 <kijitora@example.jp>... User Unknown
 *
 *   ------ This is a copy of the message, including all the headers. ------
 *
 * Recipients are indented less than their diagnostics; a recipient that is not an address
 * ("save to ~/mbox", "pipe to |prog") takes the address from X-Failed-Recipients. A site's own
 * intro in place of the first paragraph (any language) leaves the list as it is. */
#include <string.h>

#include "bounce_mta.h"

static smtpc__bmta_marks exim_body = {
    "This message was created automatically by mail delivery software",
    "could not be delivered to one or more of its",
    "has not yet been delivered to one or more of its",
    "could not be delivered to all of its recipients",
    "recipient addresses that were\nincorrectly constructed",
    NULL};
static smtpc__bmta_marks exim_start = {
    "address(es) failed:", "has not yet been delivered is:", "has not yet been delivered are:",
    "incorrectly constructed:", NULL};
static smtpc__bmta_marks exim_stop = {
    "------ This is a copy", "----- This is a copy", "------ This is a copy of your message",
    "The following text was generated", "No action is required", "*****", "--- The header of",
    "------ The body of the message", NULL};

/* Older Exim and its rewordings say "The following addresses failed:", and a notice wrapped at
 * 72 columns may break it as "... The following addresses\nfailed:". The list then starts at
 * the first line ending in "failed:" whose line, or the line above, names addresses. */
static size_t failed_line(const char *text, size_t len) {
  size_t pos = 0, at = 0, prevn = 0;
  const char *line, *prev = NULL;
  size_t n;
  for (; smtpc__bline(text, len, &pos, &line, &n); at = pos) {
    size_t tn = n;
    const char *t = smtpc__bmta_trim(line, &tn);
    if (tn >= 7 && smtpc__bstarts(t + tn - 7, 7, "failed:") &&
        (smtpc__bfind(t, tn, "address") || (prev && smtpc__bfind(prev, prevn, "address"))))
      return at;
    if (tn) prev = t, prevn = tn;
  }
  return len;
}

/* A line that is an address alone, "x@y", "<x@y>" or "x@y:": some Exim setups (1&1's) write
 * the list's recipients flush left, their words indented below them. */
static int bare_address(const char *t, size_t tn) {
  const char *a;
  size_t al;
  if (!smtpc__baddr(t, tn, &a, &al) || (a != t && !(a == t + 1 && t[0] == '<'))) return 0;
  size_t rest = tn - (size_t)(a + al - t);
  const char *r = a + al;
  if (rest && *r == '>') r++, rest--;
  return rest == 0 || (rest == 1 && *r == ':');
}

static size_t indent(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i += s[i] == '\t' ? 8 : 1;
  return i;
}

/* The k-th address (0-based) of X-Failed-Recipients, or its first one. */
static int failed_rcpt(const smtpc__bmsg *m, size_t k, const char **a, size_t *al) {
  size_t n;
  if (k > 64) k = 0; /* bounded work: lists that long name their recipients anyway */
  const char *v = smtpc__bmta_hdr(m, "X-Failed-Recipients", &n);
  const char *first = NULL;
  size_t firstl = 0;
  for (size_t i = 0; smtpc__baddr(v, n, a, al); i++) {
    if (i == 0) first = *a, firstl = *al;
    if (i == k) return 1;
    size_t used = (size_t)(*a - v) + *al;
    v += used, n -= used;
  }
  if (first) *a = first, *al = firstl;
  return first != NULL;
}

/* A site may replace Exim's English intro with its own words (deliver.c reads it from the
 * bounce_message_file's "intro" part), but the list keeps the layout deliver.c prints: each
 * failed address indented two spaces, its error lines four. Without the intro, the list starts
 * at the first such address that X-Failed-Recipients (which Exim adds to every bounce) names
 * and whose next line is indented deeper: where it starts, or len. */
static size_t listed_line(const smtpc__bmsg *m, const char *text, size_t len) {
  size_t pos = 0, at = 0, cand = len, fn;
  const char *line, *failed = smtpc__bmta_hdr(m, "X-Failed-Recipients", &fn);
  size_t n;
  for (; smtpc__bline(text, len, &pos, &line, &n); at = pos) {
    if (cand < len) {
      if (n == 0) continue;
      if (indent(line, n) > 2) return cand;
      cand = len;
    }
    const char *a;
    size_t al, tn = n;
    const char *t = smtpc__bmta_trim(line, &tn);
    if (n > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ' && line[2] != '\t' &&
        bare_address(t, tn) && smtpc__baddr(t, tn, &a, &al) &&
        smtpc__bmta_names(failed, fn, a, al, 64)) /* bounded: called per candidate line */
      cand = at;
  }
  return len;
}

/* The list ends: a record without words of its own takes its recipient line ("pipe to |prog",
 * "save to ~/mbox": a local delivery that failed, which is a mailer's error). */
static int exim_finish(smtpc__bmsg *m, smtpc_bounce *r, const char *rl, size_t rn, int local) {
  int rc;
  if (!r) return 0;
  if (!r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] && local) {
    if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, rl, rn)) != 0) return rc;
    if (smtpc__bstarts(rl, rn, "pipe to |")) r->cls.reason = SMTPC_REASON_MAILERERROR;
  }
  /* retry.c: "<last error>: retry timeout exceeded" -- Exim gave up because the message
   * outlived its retry rules; the error before the colon is only the last attempt's */
  const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
  if (d && !r->cls.reason && smtpc__bfind(d, strlen(d), "retry timeout exceeded"))
    r->cls.reason = SMTPC_REASON_EXPIRED;
  return smtpc__bmta_finish_rec(m, r);
}

static int exim_read(smtpc__bmsg *m, int loose) {
  const char *text = m->body;
  size_t len = m->body_len;
  size_t begin = smtpc__bmta_line_with(text, len, exim_start);
  int wrapped = 0, headless = 0;
  if (begin >= len) {
    size_t cut = smtpc__bmta_cut(text, len, exim_stop);
    if (loose && (begin = failed_line(text, cut)) < cut) wrapped = 1;
    else if (!loose && (begin = listed_line(m, text, cut)) < cut) headless = 1;
    else return 0;
  }
  size_t end = begin + smtpc__bmta_cut(text + begin, len - begin, exim_stop);
  int delayed = smtpc__bfind(text, begin, "has not yet been delivered") != NULL;
  /* records read from Exim's DSN part: the list fills what they lack, adds none */
  int amend = m->nrecords > 0;
  size_t pos = begin, first = m->nrecords, rcpt_indent = 0, k = 0, rn = 0;
  const char *line, *rl = NULL;
  size_t n;
  int multi = 0, rc = 0, found = 0, skipping = 0, local = 0;
  smtpc_bounce *r = NULL;
  /* the start line itself (none when a boundary cuts the text right there; none either
   * when the list was found without it) */
  if (!headless && !smtpc__bline(text, end, &pos, &line, &n)) return 0;
  if (!headless &&
      (!wrapped && !smtpc__bfind(line, n, "incorrectly constructed") &&
       !smtpc__bmta_any(line, n, exim_start)))
    return 0;
  while (smtpc__bline(text, end, &pos, &line, &n)) {
    size_t in = indent(line, n), tn = n;
    const char *t = smtpc__bmta_trim(line, &tn);
    if (tn == 0) continue;
    if (in == 0 && !(loose && (!found || rcpt_indent == 0) && bare_address(t, tn))) {
      if (found || amend) break;  /* the prose after the list */
      continue;
    }
    /* "host mx.example.jp [192.0.2.1]" may stand at the recipient's indent */
    int hostline = smtpc__bstarts(t, tn, "host ") && memchr(t, '[', tn);
    if (!hostline && (!(found || skipping || r) || in <= rcpt_indent)) {  /* a recipient line */
      const char *a;
      size_t al;
      if ((rc = exim_finish(m, r, rl, rn, local)) != 0) return rc;
      r = NULL;
      rcpt_indent = in;
      int is_addr = smtpc__baddr(t, tn, &a, &al);
      if (!is_addr && !failed_rcpt(m, k, &a, &al)) a = t, al = tn;
      local = !is_addr || a != t;  /* "pipe to |prog x@y", "save to ~/mbox" */
      rl = t, rn = tn;
      k++;
      multi = 0;
      if (amend) {
        r = smtpc__bmta_find(m, a, al);
        found += r != NULL;  /* Exim's list names it: the message is Exim's */
        if (r && r->field[SMTPC_BOUNCE_F_DIAGNOSTIC]) r = NULL;  /* the DSN said it */
        skipping = r == NULL;
        if (!r) continue;
      } else {
        skipping = smtpc__bmta_find_from(m, first, a, al) != NULL;  /* Mail.Ru repeats it */
        if (skipping) continue;
        if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
        found++;
        if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      }
      if (delayed && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ACTION, "delayed", 7)) != 0)
        return rc;
      /* "addr <x@y>: malformed address: ..." keeps its words after the address */
      const char *colon = is_addr ? memchr(a + al, ':', tn - (size_t)(a + al - t)) : NULL;
      if (colon && (size_t)(colon - t) + 1 < tn &&
          (rc = smtpc__bmta_diag_line(m, r, colon + 1, tn - (size_t)(colon + 1 - t), &multi)))
        return rc;
      continue;
    }
    if (skipping || !r) continue;
    if (smtpc__bstarts(t, tn, "generated by ")) continue;
    /* "(generated from x@y)": the address the sender wrote, which stands for a recipient Exim
     * would not name ("an undisclosed address") */
    if (smtpc__bstarts(t, tn, "(generated from ")) {
      const char *oa;
      size_t oal;
      if (smtpc__baddr(t, tn, &oa, &oal)) {
        int field = memchr(rl, '@', rn) ? SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT : SMTPC_BOUNCE_F_RECIPIENT;
        if ((rc = smtpc__bounce_set(m, r, field, oa, oal)) != 0) return rc;
        if (field == SMTPC_BOUNCE_F_RECIPIENT) local = 0;
      }
      continue;
    }
    if ((rc = smtpc__bmta_diag_line(m, r, t, tn, &multi)) != 0) return rc;
  }
  if ((rc = exim_finish(m, r, rl, rn, local)) != 0) return rc;
  return found;
}

int smtpc__bmta_exim(smtpc__bmsg *m) {
  if (!smtpc__bmta_any(m->body, m->body_len, exim_body) &&
      !smtpc__bmta_hdr(m, "X-Failed-Recipients", NULL)[0])
    return 0;
  return exim_read(m, 0);
}

/* Exim's template as other servers reword it (1&1's older notices: "The following addresses
 * failed:" wrapped onto two lines, the recipients flush left), tried after every format that
 * reuses the template in its own way (GMX, MX Logic) has declined. */
int smtpc__bmta_exim_loose(smtpc__bmsg *m) {
  if (m->nrecords > 0 || !smtpc__bmta_any(m->body, m->body_len, exim_body)) return 0;
  return exim_read(m, 1);
}

static smtpc__bmta_marks mailru_body = {"Mail.Ru", NULL}; /* any case: "mail.ru" too */

int smtpc__bmta_mailru(smtpc__bmsg *m) {
  if (m->nrecords > 0) return 0;
  if (!smtpc__bmta_any(m->body, m->body_len, mailru_body) &&
      !smtpc__bmta_hdr_has(m, "From", mailru_body))
    return 0;
  return exim_read(m, 0);
}
