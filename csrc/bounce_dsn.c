/*
 * bounce_dsn.c -- the standard formats: RFC 3464 delivery-status parts (every per-recipient
 * block), RFC 5965 ARF feedback reports, RFC 3834 auto-replies, and the returned message's
 * header fields when a plain-text bounce quotes them inline.
 */
#include <string.h>

#include "bounce_core.h"
#include "bounce_mta.h"

static int is_wsp(char c) { return c == ' ' || c == '\t'; }

/* "dns; mx.example.com" -> "mx.example.com"; "rfc822; a@b" -> "a@b" (type prefix dropped). */
static void strip_type(const char **v, size_t *n) {
  const char *semi = smtpc__bchr(*v, *n, ';');
  if (!semi) return;
  size_t k = (size_t)(semi - *v) + 1;
  *v += k;
  *n -= k;
  while (*n && is_wsp(**v)) (*v)++, (*n)--;
}

/* A host name without "[192.0.2.1]" or "(comment)" decoration after it. */
static void host_only(const char **v, size_t *n) {
  strip_type(v, n);
  size_t k = 0;
  while (k < *n && !is_wsp((*v)[k]) && (*v)[k] != '(' && (*v)[k] != ';') k++;
  if (k && (*v)[0] == '[' && (*v)[k - 1] == ']') (*v)++, k -= 2;
  *n = k;
}

static int is(const char *name, size_t nl, const char *want);

/* Whether line (not indented) goes on with the reply in field value v: it starts with a reply
 * code and "-" or " ", and the last reply line in v with that code ended in "-" (more to come). */
static int continues_reply(const char *v, size_t vl, const char *line, size_t ll) {
  if (ll < 4 || !smtpc__bmta_code_at(line, ll) || (line[3] != '-' && line[3] != ' ')) return 0;
  for (size_t j = vl >= 4 ? vl - 4 + 1 : 0; j-- > 0;)
    if (!memcmp(v + j, line, 3) && (j == 0 || v[j - 1] == ' ' || v[j - 1] == ';') &&
        (v[j + 3] == '-' || v[j + 3] == ' '))
      return v[j + 3] == '-';
  return 0;
}

/* Field reader over a UTF-8, LF-ended text: calls back once per field (unfolded) and once per
 * empty line (name NULL). */
typedef int (*field_fn)(smtpc__bmsg *m, void *st, const char *name, size_t nl, const char *v,
                        size_t vl);

static int fields(smtpc__bmsg *m, const char *t, size_t n, field_fn fn, void *st) {
  size_t pos = 0;
  const char *line;
  size_t ll;
  const char *name = NULL, *v = NULL;
  size_t nl = 0, vl = 0;
  char *buf = NULL; /* the unfolded value, when its field was folded; capacity cap */
  size_t cap = 0;
  int rc;
  while (smtpc__bline(t, n, &pos, &line, &ll)) {
    while (ll && (line[ll - 1] == '\r' || is_wsp(line[ll - 1]))) ll--;
    size_t a = 0;
    /* a folded line; or, in Diagnostic-Code, a line nullmailer did not fold: the later lines
     * of a multi-line reply, flush left, where the reply said more would follow ("550-") */
    if (name && ((ll && is_wsp(line[0])) ||
                 (is(name, nl, "Diagnostic-Code") && continues_reply(v, vl, line, ll)))) {
      while (a < ll && is_wsp(line[a])) a++;
      size_t need = vl + 1 + ll - a + 1;
      /* The buffer doubles as it fills (the arena frees nothing before the message ends), so
       * a field folded over thousands of lines costs linear time and memory, not a copy of
       * all of it per line. A new field starts a buffer of its own (fn may keep the last
       * one's value) sized by its own length: doubling the last field's capacity for each
       * new field made 30 folded fields ask for a gigabyte (found by fuzz_bounce). */
      if (v != buf || need > cap) {
        size_t nc = v == buf && 2 * cap > need ? 2 * cap : 2 * need;
        char *nb = smtpc__balloc(m->p, nc);
        if (!nb) return SMTPC_ENOMEM;
        memcpy(nb, v, vl);
        buf = nb;
        cap = nc;
      }
      buf[vl] = ' ';
      memcpy(buf + vl + 1, line + a, ll - a);
      v = buf;
      vl += 1 + ll - a;
      continue;
    }
    if (name && (rc = fn(m, st, name, nl, v, vl))) return rc;
    name = NULL;
    if (ll == 0) {
      if ((rc = fn(m, st, NULL, 0, NULL, 0))) return rc;
      continue;
    }
    const char *colon = smtpc__bchr(line, ll, ':');
    if (!colon || colon == line) continue;
    size_t k = (size_t)(colon - line);
    while (k && is_wsp(line[k - 1])) k--;
    name = line;
    nl = k;
    v = colon + 1;
    vl = ll - (size_t)(colon + 1 - line);
    while (vl && is_wsp(*v)) v++, vl--;
  }
  if (name && (rc = fn(m, st, name, nl, v, vl))) return rc;
  return 0;
}

static int is(const char *name, size_t nl, const char *want) {
  return strlen(want) == nl && smtpc__bstarts(name, nl, want);
}

/* ---- RFC 3464 -------------------------------------------------------------------------------- */

#define DSN_COMMENTS 64 /* records of a part whose Status comment is kept */

typedef struct dsn_state {
  size_t first;          /* records of this part start here */
  long cur;              /* index of the record being filled, -1 = none */
  int cur_final, cur_orig;
  const char *reporting, *arrival;
  size_t reporting_len, arrival_len;
  /* "Status: 5.0.0 (recipient reached disk quota)": the comment, for a record whose block has
   * no Diagnostic-Code (Oracle Messaging Server writes them so) */
  const char *comment[DSN_COMMENTS];
  size_t comment_len[DSN_COMMENTS];
  /* "X-Supplementary-Info: <mx.example.org #5.1.1 smtp;550 5.1.1 User unknown>": the remote
   * server's reply as Exchange and Hotmail record it, beside a block without Diagnostic-Code */
  const char *supp[DSN_COMMENTS];
  size_t supp_len[DSN_COMMENTS];
} dsn_state;

/* The reply in an X-Supplementary-Info value: the angle brackets, the host and "#<status>" and
 * the "smtp;" type dropped ("< #2.0.0>", a delivery's, holds none). */
static void supplementary_reply(const char **v, size_t *n) {
  const char *s = *v;
  size_t k = *n;
  while (k && is_wsp(*s)) s++, k--;
  if (k && *s == '<') s++, k--;
  while (k && is_wsp(s[k - 1])) k--;
  if (k && s[k - 1] == '>') k--;
  const char *semi = smtpc__bchr(s, k, ';'), *hash = smtpc__bchr(s, k, '#');
  if (semi && hash && hash < semi) { /* "host #5.1.1 smtp;" */
    k -= (size_t)(semi + 1 - s);
    s = semi + 1;
  } else if (hash) {                 /* "#2.0.0" alone */
    k = 0;
  }
  while (k && is_wsp(*s)) s++, k--;
  while (k && is_wsp(s[k - 1])) k--;
  *v = s;
  *n = k;
}

static int dsn_field(smtpc__bmsg *m, void *vst, const char *name, size_t nl, const char *v,
                     size_t vl) {
  dsn_state *st = vst;
  if (!name) { /* an empty line ends a per-recipient block */
    st->cur = -1;
    return 0;
  }
  int final = is(name, nl, "Final-Recipient"), orig = is(name, nl, "Original-Recipient");
  if (final || orig) {
    if (st->cur < 0 || (final && st->cur_final) || (orig && st->cur_orig)) {
      if (!smtpc__bounce_add(m)) return 0;
      st->cur = (long)m->nrecords - 1;
      st->cur_final = st->cur_orig = 0;
    }
    smtpc_bounce *r = smtpc__bounce_rec(m, (size_t)st->cur);
    const char *a = v;
    size_t al = vl;
    strip_type(&a, &al);
    /* the final recipient wins; the original one only fills a gap, and is kept apart: the
     * address the sender wrote, which a mailing list knows its member by */
    if (orig && memchr(a, '@', al) && smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT, a, al))
      return SMTPC_ENOMEM;
    if (final || !r->field[SMTPC_BOUNCE_F_RECIPIENT])
      if (memchr(a, '@', al) || !r->field[SMTPC_BOUNCE_F_RECIPIENT])
        if (smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) return SMTPC_ENOMEM;
    if (final) st->cur_final = 1;
    else st->cur_orig = 1;
    return 0;
  }
  if (is(name, nl, "Reporting-MTA")) {
    host_only(&v, &vl);
    st->reporting = v;
    st->reporting_len = vl;
    return 0;
  }
  if (is(name, nl, "Arrival-Date")) {
    st->arrival = v;
    st->arrival_len = vl;
    return 0;
  }
  if (st->cur < 0) {
    /* a per-recipient field before the block's Final-Recipient (Exim writes "Action:" first):
     * the block's record starts here, and its Final-Recipient names it */
    if (!is(name, nl, "Action") && !is(name, nl, "Status") && !is(name, nl, "Diagnostic-Code") &&
        !is(name, nl, "Remote-MTA"))
      return 0;
    if (!smtpc__bounce_add(m)) return 0;
    st->cur = (long)m->nrecords - 1;
    st->cur_final = st->cur_orig = 0;
  }
  smtpc_bounce *r = smtpc__bounce_rec(m, (size_t)st->cur);
  int f = -1;
  if (is(name, nl, "Action")) {
    f = SMTPC_BOUNCE_F_ACTION;
    size_t k = 0; /* "failed (bad destination mailbox)" -> "failed" */
    while (k < vl && v[k] > ' ' && v[k] != '(') k++;
    char low[16];
    size_t i = 0;
    for (; i < k && i < sizeof low - 1; i++) low[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
    low[i] = '\0';
    return smtpc__bounce_set(m, r, f, low, i);
  } else if (is(name, nl, "Status")) {
    char st_[SMTPC_STATUS_SIZE];
    size_t a = 0;
    while (a < vl && is_wsp(v[a])) a++;
    if (smtpc_status_parse(v + a, vl - a, st_) <= 0) return 0;
    const char *open = smtpc__bchr(v + a, vl - a, '(');
    size_t k = (size_t)st->cur - st->first;
    if (open && k < DSN_COMMENTS) {
      size_t cl = vl - (size_t)(open + 1 - v);
      const char *c = open + 1;
      if (cl && c[cl - 1] == ')') cl--;
      while (cl && is_wsp(*c)) c++, cl--;
      while (cl && is_wsp(c[cl - 1])) cl--;
      st->comment[k] = c, st->comment_len[k] = cl;
    }
    return smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_STATUS, st_, strlen(st_));
  } else if (is(name, nl, "Remote-MTA")) {
    host_only(&v, &vl);
    f = SMTPC_BOUNCE_F_RHOST;
  } else if (is(name, nl, "Diagnostic-Code")) {
    const char *semi = smtpc__bchr(v, vl, ';');
    if (semi) {
      int rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC_TYPE, v, (size_t)(semi - v));
      if (rc) return rc;
      vl -= (size_t)(semi + 1 - v);
      v = semi + 1;
    }
    f = SMTPC_BOUNCE_F_DIAGNOSTIC;
  } else if (is(name, nl, "X-Supplementary-Info")) {
    size_t k = (size_t)st->cur - st->first;
    supplementary_reply(&v, &vl);
    if (k < DSN_COMMENTS && vl) st->supp[k] = v, st->supp_len[k] = vl;
    return 0;
  } else if (is(name, nl, "Last-Attempt-Date")) {
    f = SMTPC_BOUNCE_F_LAST_ATTEMPT;
  } else if (is(name, nl, "Reporting-MTA")) {
    f = SMTPC_BOUNCE_F_REPORTING_MTA;
  }
  if (f < 0 || r->field[f]) return 0;
  return smtpc__bounce_set(m, r, f, v, vl);
}

/* Whether t[0..n) is addresses alone, one a line ("x@y", "<x@y>", indented or not): a list of
 * who failed, not words about them. */
static int only_addresses(const char *t, size_t n) {
  size_t pos = 0;
  while (pos < n) {
    const char *e = memchr(t + pos, '\n', n - pos);
    size_t le = e ? (size_t)(e - t) : n, a = pos, z = le;
    while (a < z && (t[a] == ' ' || t[a] == '\t' || t[a] == '\r')) a++;
    while (z > a && (t[z - 1] == ' ' || t[z - 1] == '\t' || t[z - 1] == '\r')) z--;
    if (z > a && (memchr(t + a, ' ', z - a) || memchr(t + a, '\t', z - a) || !memchr(t + a, '@', z - a)))
      return 0;
    pos = le + 1;
  }
  return 1;
}

/* The lead-in above a list of bare addresses, which says why for every address under it: the
 * Windows SMTP service and Exchange 2000/2003 write their DSN's text as "Unable to deliver
 * message to the following recipients, because the message was forwarded more than the maximum
 * allowed times. This could indicate a mail loop." then the addresses alone, each indented.
 * para is where the address's paragraph starts; the paragraph above it counts when it speaks of
 * "the following recipients" (or addresses). */
static int lead_in(const smtpc__bmsg *m, size_t para, const char **s, size_t *n) {
  const char *b = m->body;
  size_t end = para, start;
  while (end && (b[end - 1] == '\n' || b[end - 1] == '\r' || b[end - 1] == ' ' || b[end - 1] == '\t'))
    end--;
  if (!end) return -1;
  start = end;
  while (start && !(b[start - 1] == '\n' && start >= 2 && b[start - 2] == '\n') && end - start < 2000)
    start--;
  if (!smtpc__bfind(b + start, end - start, "the following recipient") &&
      !smtpc__bfind(b + start, end - start, "the following address"))
    return -1;
  *s = b + start;
  *n = end - start;
  return 0;
}

/* The bounce's own words on the recipient (bounce_internal.h). With a reply in them (a code)
 * they are a DSN block's diagnostic at once, when it has no Diagnostic-Code: MTAs put the remote
 * server's words there. */
int smtpc__bwords_on(smtpc__bmsg *m, const char *rcpt, const char **s, size_t *n) {
  const char *at = smtpc__bfind_rcpt(m, 0, rcpt);
  if (!at) return -1;
  size_t start = (size_t)(at - m->body), end;
  while (start && m->body[start - 1] != '\n') start--;
  end = smtpc__bpara_end(m->body, m->body_len, (size_t)(at - m->body), start + 2000);
  *s = m->body + start;
  *n = end - start;
  if (smtpc__bcode_in(*s, *n, " ")) return 1;
  /* more than addresses (this one, and the others listed under it) */
  if (!only_addresses(*s, *n)) return 0;
  while (start >= 2 && !(m->body[start - 1] == '\n' && m->body[start - 2] == '\n')) start--;
  return lead_in(m, start, s, n);
}

/* Where RFC 3464 fields start in a text part, when an MTA wrote them into the text instead of a
 * message/delivery-status part (or its multipart lost the boundary): the paragraph holding a
 * "Final-Recipient:" line that an "Action:" or "Status:" line follows. */
static const char *inline_dsn(const smtpc__bpart *pt, size_t *len) {
  const char *t = pt->text, *fr;
  size_t n = pt->len;
  while ((fr = smtpc__bfind(t, n, "final-recipient:")) != NULL) {
    size_t at = (size_t)(fr - pt->text);
    if ((at == 0 || pt->text[at - 1] == '\n') &&
        (smtpc__bfind(fr, pt->len - at, "\naction:") || smtpc__bfind(fr, pt->len - at, "\nstatus:"))) {
      /* back to the start of the paragraph: per-message fields (Reporting-MTA) come first */
      size_t start = at;
      while (start >= 2 && !(pt->text[start - 1] == '\n' && pt->text[start - 2] == '\n')) start--;
      if (start < 2) start = 0;
      *len = pt->len - start;
      return pt->text + start;
    }
    n -= (size_t)(fr - t) + 1;
    t = fr + 1;
  }
  return NULL;
}

int smtpc__bdsn(smtpc__bmsg *m) {
  int have_part = 0;
  for (size_t i = 0; i < m->nparts; i++)
    if (!m->parts[i].in_rfc822 && (!strcmp(m->parts[i].type, "message/delivery-status") ||
                                   !strcmp(m->parts[i].type, "message/global-delivery-status")))
      have_part = 1;
  for (size_t i = 0; i < m->nparts; i++) {
    const smtpc__bpart *pt = &m->parts[i];
    const char *text = pt->text;
    size_t len = pt->len;
    if (pt->in_rfc822) continue;
    if (strcmp(pt->type, "message/delivery-status") &&
        strcmp(pt->type, "message/global-delivery-status")) {
      if (have_part || strcmp(pt->type, "text/plain") || !(text = inline_dsn(pt, &len))) continue;
    }
    dsn_state st;
    memset(&st, 0, sizeof st);
    st.first = m->nrecords;
    st.cur = -1;
    int rc = fields(m, text, len, dsn_field, &st);
    if (rc < 0) return rc;
    for (size_t k = st.first; k < m->nrecords; k++) {
      smtpc_bounce *r = smtpc__bounce_rec(m, k);
      if (st.reporting && !r->field[SMTPC_BOUNCE_F_REPORTING_MTA] &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_REPORTING_MTA, st.reporting, st.reporting_len)))
        return rc;
      if (st.arrival && !r->field[SMTPC_BOUNCE_F_ARRIVAL_DATE] &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ARRIVAL_DATE, st.arrival, st.arrival_len)))
        return rc;
      if (r->field[SMTPC_BOUNCE_F_DIAGNOSTIC]) continue;
      const char *w;
      size_t wl, j = k - st.first;
      if (j < DSN_COMMENTS && st.supp_len[j])
        rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, st.supp[j], st.supp_len[j]);
      else if (smtpc__bwords_on(m, r->field[SMTPC_BOUNCE_F_RECIPIENT], &w, &wl) == 1)
        rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, w, wl);
      else if (j < DSN_COMMENTS && st.comment_len[j])
        rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, st.comment[j], st.comment_len[j]);
      if (rc) return rc;
    }
  }
  return 0;
}

/* ---- RFC 5965 ARF ---------------------------------------------------------------------------- */

typedef struct arf_state {
  const char *type;
  size_t type_len;
  int nrcpt;
  const char *arrival, *reporting;
  size_t arrival_len, reporting_len;
} arf_state;

static int arf_field(smtpc__bmsg *m, void *vst, const char *name, size_t nl, const char *v,
                     size_t vl) {
  arf_state *st = vst;
  if (!name) return 0;
  if (is(name, nl, "Feedback-Type")) {
    st->type = v;
    st->type_len = vl;
  } else if (is(name, nl, "Original-Rcpt-To") || is(name, nl, "Removal-Recipient")) {
    smtpc_bounce *r = smtpc__bounce_add(m);
    if (!r) return 0;
    st->nrcpt++;
    return smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, v, vl);
  } else if (is(name, nl, "Arrival-Date") || is(name, nl, "Received-Date")) {
    st->arrival = v;
    st->arrival_len = vl;
  } else if (is(name, nl, "Reporting-MTA")) {
    host_only(&v, &vl);
    st->reporting = v;
    st->reporting_len = vl;
  }
  return 0;
}

int smtpc__barf(smtpc__bmsg *m) {
  const smtpc__bpart *report = NULL;
  for (size_t i = 0; i < m->nparts && !report; i++)
    if (!m->parts[i].in_rfc822 && !strcmp(m->parts[i].type, "message/feedback-report"))
      report = &m->parts[i];
  if (!report) return 0;
  arf_state st = {0};
  int rc = fields(m, report->text, report->len, arf_field, &st);
  if (rc < 0) return rc;
  if (st.nrcpt == 0) { /* no Original-Rcpt-To: the returned message's To is who complained */
    size_t n;
    const char *to = m->orig_headers ? smtpc__bheader_get(m->orig_headers, m->norig_headers, "To", &n) : NULL;
    smtpc_bounce *r = to ? smtpc__bounce_add(m) : NULL;
    if (r && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, to, n))) return rc;
  }
  for (size_t k = 0; k < m->nrecords; k++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, k);
    r->field[SMTPC_BOUNCE_F_KIND] = "feedback";
    r->field[SMTPC_BOUNCE_F_MTA] = "arf";
    if (st.type && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_FEEDBACK_TYPE, st.type, st.type_len))) return rc;
    if (st.arrival && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ARRIVAL_DATE, st.arrival, st.arrival_len))) return rc;
    if (st.reporting && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_REPORTING_MTA, st.reporting, st.reporting_len))) return rc;
  }
  return 1; /* an ARF report is never a bounce, even when no recipient could be named */
}

/* ---- RFC 3834 -------------------------------------------------------------------------------- */

int smtpc__bautoreply(smtpc__bmsg *m) {
  size_t n;
  const char *v;
  int auto_reply = 0;
  if ((v = smtpc__bheader_get(m->headers, m->nheaders, "Auto-Submitted", &n)) &&
      smtpc__bstarts(v, n, "auto-replied"))
    auto_reply = 1;
  if (smtpc__bheader_get(m->headers, m->nheaders, "X-Autoreply", NULL) ||
      smtpc__bheader_get(m->headers, m->nheaders, "X-Autorespond", NULL))
    auto_reply = 1;
  if ((v = smtpc__bheader_get(m->headers, m->nheaders, "Precedence", &n)) &&
      smtpc__bstarts(v, n, "auto_reply"))
    auto_reply = 1;
  if (!auto_reply) return 0;
  /* a report (DSN, MDN) carries Auto-Submitted too and is never an auto-reply */
  if ((v = smtpc__bheader_get(m->headers, m->nheaders, "Content-Type", &n)) &&
      smtpc__bfind(v, n, "multipart/report"))
    return 0;
  const char *from = smtpc__bheader_get(m->headers, m->nheaders, "From", &n);
  if (!from || !memchr(from, '@', n)) return 0; /* no one to name (a From cut short, or empty) */
  /* a mailer daemon's notice (Postfix marks its bounces auto-replied) is no one's vacation, even
   * when its layout was not recognised */
  if (smtpc__bfind(from, n, "MAILER-DAEMON")) return 0;
  smtpc_bounce *r = smtpc__bounce_add(m);
  if (!r) return 0;
  r->field[SMTPC_BOUNCE_F_KIND] = "autoreply";
  r->field[SMTPC_BOUNCE_F_MTA] = "rfc3834";
  int rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, from, n);
  if (rc) return rc;
  const char *subj = smtpc__bheader_get(m->headers, m->nheaders, "Subject", &n);
  if (subj && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, subj, n))) return rc;
  return 1;
}

/* ---- returned header fields quoted inline ---------------------------------------------------- */

static int starts_field(const char *s, size_t n) {
  static const char *const names[] = {"Return-Path:", "Received:", "From:", "To:", "Subject:",
                                      "Message-Id:", "Date:", "X-", "MIME-Version:"};
  int c = n && s[0] >= 'a' && s[0] <= 'z' ? s[0] - 32 : n ? s[0] : 0;
  if (!c || !strchr("RFTSMDX", c)) return 0; /* no name starts so: most lines stop here */
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (smtpc__bstarts(s, n, names[i])) return 1;
  return 0;
}

/* Does the line hold "original", "----", "copy of" or "headers" (ASCII case-insensitive)? One
 * pass: each phrase is compared only where its first letter stands. */
static int marker_line(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int c = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i];
    const char *mk = c == 'o' ? "original" : c == '-' ? "----" : c == 'c' ? "copy of"
                   : c == 'h' ? "headers" : NULL;
    if (mk && smtpc__bstarts(s + i, n - i, mk)) return 1;
  }
  return 0;
}

int smtpc__binline_orig(smtpc_bounce_parser *p, const char *body, size_t len) {
  size_t pos = 0, tries = 0;
  const char *line, *prev = NULL; /* a block starts after a blank or marker line */
  size_t ll, prev_len = 0;
  while (tries < 8) {
    size_t here = pos;
    if (!smtpc__bline(body, len, &pos, &line, &ll)) break;
    if (starts_field(line, ll) && prev && (prev_len == 0 || marker_line(prev, prev_len))) {
      tries++;
      size_t of = p->nhdr, hp = here;
      int rc = smtpc__bheaders(p, body, len, &hp, 0);
      if (rc < 0) {
        p->err = 0; /* an inline block is a guess: its bounds are not the message's */
        p->nhdr = of;
        return 0;
      }
      size_t hn = p->nhdr - of;
      const smtpc__bheader *h = hn ? p->hdr + of : NULL;
      if (hn >= 2 && (smtpc__bheader_get(h, hn, "Subject", NULL) ||
                      smtpc__bheader_get(h, hn, "Message-Id", NULL) ||
                      smtpc__bheader_get(h, hn, "From", NULL))) {
        p->orig_first = of;
        p->orig_n = hn;
        p->have_orig = 1;
        return 1;
      }
      p->nhdr = of;
    }
    prev = line;
    prev_len = ll;
  }
  return 0;
}
