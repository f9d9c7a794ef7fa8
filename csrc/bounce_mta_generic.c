/* bounce_mta_generic.c -- the last resort: a bounce that no format claimed, read for what most
 * notices share whoever wrote them. Real bounces from servers no format here knows (Netscape
 * Messaging Server, LSMTP, Symantec's and Vade's gateways, phquery, MailEnable, site-made
 * notices) announce their failed recipients in a sentence and list them below it, each on a
 * line of its own, often with the server's words after it:
 *
 *   The following recipients did not receive your message:        <- an announcement
 *        <aaaaa@example.com>                                       <- a recipient line
 *   Delivery has failed to these recipients or distribution lists:
 *        * [bob@example.net]: 550 bob@example.net...User account is overquota
 *   Undeliverable Address: carol@example.com                       <- or the address in it
 *   Reason: ...
 *
 * Only a message that says it is a bounce (its sender, its make, or its Subject with a sentence
 * saying that delivery failed) is read, only the text before the returned message, and only
 * addresses on such lines, right after such a sentence, or after a reason the classifier
 * names ("User's mailbox is full: <x@y>"): the bounce's own From, To, Reply-To and Sender, and
 * the returned message's sender, are never recipients. */
#include <string.h>

#include "bounce_mta.h"

/* Who sends bounces, and what they call them. */
static smtpc__bmta_marks from_marks = {"mailer-daemon", "mailer_daemon", "postmaster",
                                       "mail delivery", "delivery subsystem",
                                       "mail administrator", "mdaemon", NULL};
static smtpc__bmta_marks subject_marks = {
    "undeliver", "delivery fail", "failure notice", "returned mail", "non-delivery",
    "nondelivery", "not delivered", "delivery problem", "mail delivery", "delivery status",
    "could not be delivered", "unable to deliver", "rejected mail", "automatically rejected",
    "delivery failure", "returning message to sender", "mail not delivered", "non remis",
    "delivery warning", "message not delivered", "returned to sender", NULL};

/* Sentences that announce the failed recipients: the list follows, or the address stands in
 * the sentence itself. The first ones say that something failed; the others only point at a
 * list, and count only in a notice that is a bounce by its sender or its make. */
static smtpc__bmta_marks announce_failed = {
    "did not receive", "could not be delivered to", "not delivered to", "failed recipient",
    "undeliverable address", "delivery has failed to", "did not reach", "undeliverable to",
    "unable to deliver your message to", "failed to deliver to", "could not deliver to",
    "wasn't able to deliver", "was not able to deliver", "wasn't delivered to",
    "couldn't be delivered to", "cannot be delivered", "can't be delivered", NULL};
static smtpc__bmta_marks announce_list = {
    "following recipient", "following address", "following user", "following destination",
    "your message to", "addressed to", "delivery of email to", "error-for:", "recipient address:",
    "delivery to the following", "affected recipient", NULL};

/* Where the notice's own words end: the returned message, or a header block of it. The first
 * words count at a line's start only, past its dashes ("------ Original message ------",
 * "Original message follows."): "The original message was received at ..." is the notice's. */
static smtpc__bmta_marks returned_start = {
    "original message", "returned message", "unsent message", "message headers follow",
    "message header follows", "message headers:", "returned mail", "below this line",
    "attachment is a copy", "your message reads", NULL};
static smtpc__bmta_marks returned_in = {
    "copy of the original", "copy of the message follows", "copy of your message follows",
    "is a copy of the message", "is a copy of your message", "lines of your original", NULL};

/* Offset of the line where the returned message starts, or len. */
static size_t returned_at(const char *text, size_t len) {
  size_t pos = 0, at = 0, n;
  const char *line;
  for (; smtpc__bline(text, len, &pos, &line, &n); at = pos) {
    const char *t = line;
    size_t tn = n;
    while (tn && (*t == '-' || *t == '=' || *t == '*' || *t == ' ' || *t == '\t')) t++, tn--;
    for (const char *const *mk = returned_start; *mk; mk++)
      if (smtpc__bstarts(t, tn, *mk)) return at;
    if (smtpc__bmta_any(line, n, returned_in)) return at;
  }
  return len;
}

/* Leading decorations of a recipient line: bullets, quote marks, a label ending in a colon. */
static const char *strip_decor(const char *s, size_t *n) {
  s = smtpc__bmta_trim(s, n);
  while (*n && (s[0] == '*' || s[0] == '-' || s[0] == '>' || s[0] == '#' || s[0] == '\t' ||
                s[0] == ' '))
    s++, (*n)--;
  /* "Recipient:", "Undeliverable Address:", "Error-for:", "Recipient address:" ... (a label
   * that names a recipient: "System Contact: postmaster@..." is none) */
  static smtpc__bmta_marks labels = {"recipient", "address", "error-for", "user", "rcpt",
                                     "mailbox", "to", NULL};
  const char *colon = memchr(s, ':', *n), *at = memchr(s, '@', *n);
  if (colon && at && colon < at && colon - s <= 40 && !memchr(s, '<', (size_t)(colon - s)) &&
      !memchr(s, '[', (size_t)(colon - s)) && smtpc__bmta_any(s, (size_t)(colon - s), labels))
    *n -= (size_t)(colon + 1 - s), s = colon + 1;
  s = smtpc__bmta_trim(s, n);
  if (*n > 6 && smtpc__bstarts(s, *n, "[SMTP:")) s += 6, *n -= 6;
  return s;
}

/* A recipient line: an address alone, in <>, [], "" or [SMTP:...], maybe followed by the
 * server's words after ':', '...' or a space. *rest gets those words. */
static int rcpt_line(const char *s, size_t n, const char **a, size_t *al, const char **rest,
                     size_t *rl) {
  s = strip_decor(s, &n);
  if (n < 3) return 0;
  size_t open = (s[0] == '<' || s[0] == '[' || s[0] == '"' || s[0] == '(') ? 1 : 0;
  if (!smtpc__baddr(s, n, a, al) || *a != s + open) return 0;
  size_t i = (size_t)(*a - s) + *al;
  while (i < n && (s[i] == '>' || s[i] == ']' || s[i] == '"' || s[i] == ')')) i++;
  while (i < n && (s[i] == ':' || s[i] == '.' || s[i] == ',' || s[i] == ' ' || s[i] == '\t')) i++;
  /* '"x@y" <x@y>': the address again is no words */
  if (i + *al + 2 <= n && s[i] == '<' && s[i + 1 + *al] == '>' && smtpc__bsame(s + i + 1, *a, *al))
    i += *al + 2;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  *rest = s + i;
  *rl = n - i;
  return 1;
}

/* "words: <x@y>" (or "words: x@y") ending the line, the words (*hl octets) being a failure the
 * classifier names: 1 with the address. */
static int reason_then_address(const char *t, size_t tn, const char **a, size_t *al, size_t *hl) {
  if (tn < 8 || tn > 200 || !memchr(t, ':', tn)) return 0;
  size_t end = tn;
  if (t[end - 1] == '>') end--;
  if (!smtpc__baddr(t, end, a, al) || *a + *al != t + end) return 0;
  const char *p = *a;
  if (p > t && p[-1] == '<') p--;
  while (p > t && (p[-1] == ' ' || p[-1] == '\t')) p--;
  if (p == t || p[-1] != ':') return 0;
  size_t h = (size_t)(p - 1 - t);
  if (h < 4 || h > 100 || memchr(t, '@', h)) return 0;
  smtpc_decoded d;
  if (smtpc_classify(0, NULL, t, h, NULL, &d) != 0) return 0;
  *hl = h;
  return d.cls.reason != SMTPC_REASON_UNDEFINED && d.cls.reason != SMTPC_REASON_ONHOLD &&
         d.cls.reason != SMTPC_REASON_DELIVERED;
}

/* Is a[0..al) one of the addresses that are not recipients here (the bounce's From and To, the
 * returned message's From)? */
static int not_a_recipient(const smtpc__bmsg *m, const char *a, size_t al) {
  static const char *const fields[] = {"From", "To", "Reply-To", "Sender", NULL};
  for (const char *const *f = fields; *f; f++) {
    size_t n;
    const char *v = smtpc__bmta_hdr(m, *f, &n);
    if (smtpc__bmta_names(v, n, a, al, (size_t)-1)) return 1;
  }
  size_t n = 0;
  const char *v = m->orig_headers ? smtpc__bheader_get(m->orig_headers, m->norig_headers, "From", &n)
                                  : NULL;
  return smtpc__bmta_names(v, n, a, al, 1);
}

/* Where an address starts right after an announcement's words (past ':', white space and an
 * opening bracket or quote, at most a few octets), or NULL. */
static const char *right_after(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && i < 4 && (s[i] == ':' || s[i] == ' ' || s[i] == '\t' || s[i] == '<' ||
                            s[i] == '[' || s[i] == '"'))
    i++;
  const char *a;
  size_t al;
  return i < n && smtpc__baddr(s + i, n - i, &a, &al) && a == s + i ? a : NULL;
}

/* Add a record for a[0..al) unless it is known or not a recipient; NULL when not added. */
static smtpc_bounce *add(smtpc__bmsg *m, size_t first, const char *a, size_t al, int *rc) {
  smtpc_bounce *r;
  *rc = 0;
  if (not_a_recipient(m, a, al) || smtpc__bmta_find_from(m, first, a, al)) return NULL;
  if (!(r = smtpc__bounce_add(m))) {
    *rc = smtpc__bounce_add_failed(m);
    return NULL;
  }
  if ((*rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return NULL;
  return r;
}

/* The notice's words before its announcement ("Your message was not delivered because the
 * destination computer was not reachable ..."), for records whose list said nothing more: the
 * last 2000 octets before it, read once (later records share the first one's words). */
static int preamble(smtpc__bmsg *m, smtpc_bounce *r, const char *text, size_t to, size_t len) {
  size_t pos = to > 2000 ? to - 2000 : 0, n;
  const char *line;
  while (pos > 0 && pos < to && text[pos - 1] != '\n') pos++; /* from a line's start */
  int multi = 0, rc, past = 0;
  /* up to the announcement, and its own paragraph ("I'm afraid I wasn't able to deliver the
   * following message. This is a permanent error; I've given up.") */
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (pos > to && (past++ > 8 || n == 0)) break;
    if (n && (rc = smtpc__bmta_diag_line(m, r, t, n, &multi)) != 0) return rc;
  }
  return 0;
}

int smtpc__bmta_generic(smtpc__bmsg *m) {
  if (m->nrecords > 0 || m->body_len == 0) return 0;
  /* a bounce by its sender's name or its make (Auto-Submitted, a null Return-Path, a returned
   * message), else by its subject and a sentence saying that delivery failed: a person's mail
   * about a "delivery problem" that lists some addresses is no bounce */
  int strong_only = !smtpc__bmta_hdr_has(m, "From", from_marks) &&
                    !m->orig_headers && !smtpc__bmta_hdr(m, "Auto-Submitted", NULL)[0] &&
                    strcmp(smtpc__bmta_hdr(m, "Return-Path", NULL), "<>") != 0;
  if (strong_only && !smtpc__bmta_hdr_has(m, "Subject", subject_marks)) return 0;
  const char *text = m->body, *line;
  size_t len = returned_at(m->body, m->body_len), pos = 0, n;
  size_t first = m->nrecords, announced_at = len, window = 0;
  int rc, found = 0, multi = 0, words = 0, listed = 0;
  smtpc_bounce *r = NULL;
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    size_t tn = n, al, rl;
    const char *t = smtpc__bmta_trim(line, &tn), *a, *rest;
    if (tn == 0) {
      /* a blank line ends a recipient's words; a list's later paragraphs are the notice's,
       * not its last recipient's. A lone recipient without words yet keeps the paragraph
       * below it ("Your message to:\n\tx@y\n\nhas not yet been delivered because ...") */
      if (words || listed > 1) r = NULL;
      continue;
    }
    if (smtpc__bstarts(t, tn, "Received:") || smtpc__bstarts(t, tn, "Return-Path:")) break;
    const char *hit = NULL, *inl = NULL;
    for (int list = 0; list < 2 && !inl && !(list && strong_only); list++)
      for (const char *const *mk = list ? announce_list : announce_failed; *mk; mk++) {
        const char *h = smtpc__bfind(t, tn, *mk);
        if (!h) continue;
        if (!hit) hit = h;
        if ((inl = right_after(h + strlen(*mk), tn - (size_t)(h + strlen(*mk) - t))) != NULL) break;
      }
    if (hit) {
      if (announced_at == len) announced_at = (size_t)(line - text);
      window = 8;
      r = NULL;
      listed = 0;
      /* the address in the sentence itself, right after its words: "Did not reach the
       * following recipient: x@y", "Your message to <x@y> was automatically rejected:"
       * (not "... are not accepting mail from x@y:", the sender) */
      if (inl && smtpc__baddr(inl, tn - (size_t)(inl - t), &a, &al) && a == inl) {
        if ((r = add(m, first, a, al, &rc)) == NULL && rc) return rc;
        if (r) {
          found++, multi = 0, words = 0, listed++;
          const char *after = a + al;
          size_t left = tn - (size_t)(after - t);
          while (left && (*after == '>' || *after == ']' || *after == '"' || *after == ')'))
            after++, left--;
          if (left && *after == ':') {
            after++, left--;
            after = smtpc__bmta_trim(after, &left);
            if (left && (rc = smtpc__bmta_diag_line(m, r, after, left, &multi)) != 0) return rc;
            words += left > 0;
          }
        }
      }
      continue;
    }
    /* "<x@y>:" stands for a recipient anywhere (qmail's shape); other recipient lines only
     * within a few lines of an announcement */
    int qmail_shape = t[0] == '<' && t[tn - 1] == ':';
    if ((window || qmail_shape) && rcpt_line(t, tn, &a, &al, &rest, &rl)) {
      smtpc_bounce *nr = add(m, first, a, al, &rc);
      if (!nr && rc) return rc;
      if (nr) {
        r = nr, found++, multi = 0, words = 0, window = 8, listed++;
        if (rl && (rc = smtpc__bmta_diag_line(m, r, rest, rl, &multi)) != 0) return rc;
        words += rl > 0;
      }
      continue;
    }
    /* "User's mailbox is full: <x@y>", "No such user: x@y": the reason, then the address it
     * concerns, on one line -- when the classifier reads those words as a reason */
    if (reason_then_address(t, tn, &a, &al, &rl)) {
      smtpc_bounce *nr = add(m, first, a, al, &rc);
      if (!nr && rc) return rc;
      if (nr) {
        r = nr, found++, multi = 0, words = 1, listed++;
        if ((rc = smtpc__bmta_diag_line(m, r, t, rl, &multi)) != 0) return rc;
      }
      continue;
    }
    if (window) window--;
    /* a transcript below the list ("--- Session Transcript ---", MDaemon): its failing reply is
     * the words of the recipient it names, else of the last one; its greeting and 250s are
     * nobody's */
    int code = smtpc__bmta_code_at(t, tn);
    if (code >= 400 && found) {
      smtpc_bounce *to = NULL;
      if (smtpc__baddr(t, tn, &a, &al)) to = smtpc__bmta_find_from(m, first, a, al);
      if (!to) to = smtpc__bounce_rec(m, m->nrecords - 1);
      const char *d = to->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
      /* its head only: a transcript of thousands of coded lines must not read a long
       * diagnostic again for each */
      if (!d || smtpc__bmta_code_find(d, strnlen(d, 64)) < 400) {
        if ((rc = smtpc__bounce_set(m, to, SMTPC_BOUNCE_F_DIAGNOSTIC, t, tn)) != 0) return rc;
        if (to == r) words = 6;
      }
      continue;
    }
    if (!r || code || smtpc__bstarts(t, tn, "---")) continue;
    if (words < 6) {  /* the recipient's words, a few lines of them */
      if (smtpc__bstarts(t, tn, "Reason:")) t += 7, tn -= 7, t = smtpc__bmta_trim(t, &tn);
      if (tn && (rc = smtpc__bmta_diag_line(m, r, t, tn, &multi)) != 0) return rc;
      words++;
    }
  }
  const char *shared = NULL;
  for (size_t i = first; i < m->nrecords; i++) {
    r = smtpc__bounce_rec(m, i);
    if (!r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] && announced_at < len) {
      if (shared) {
        r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] = shared;
      } else {
        if ((rc = preamble(m, r, text, announced_at, len)) != 0) return rc;
        shared = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
      }
    }
    if ((rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  }
  return found;
}
