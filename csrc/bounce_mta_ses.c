/* bounce_mta_ses.c -- Amazon SES notifications in JSON (sent by SNS as mail, either the bare
 * notification or wrapped in an SNS envelope whose "Message" is the notification as a string):
 *
 *   {"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
 *    "bouncedRecipients":[{"emailAddress":"x@example.jp","action":"failed","status":"5.1.1",
 *    "diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"reportingMTA":"dsn; a27-23..."}, ...}
 *
 * "Bounce" gives one record per bounced recipient, "Complaint" one feedback record per
 * complaining recipient; "Delivery" is not a bounce and gives none.
 * Also Amazon WorkMail, whose text part quotes the DSN fields after "Technical report:". */
#include <stdlib.h>
#include <string.h>

#include "bounce_mta.h"

/* Case-sensitive search (JSON keys are). */
static const char *find_cs(const char *s, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0) return s + i;
  return NULL;
}

/* The JSON value of "key" in s[0..n) when it is a string: its raw (still escaped) contents. */
static int json_str(const char *s, size_t n, const char *key, const char **v, size_t *vl) {
  char pat[64];
  size_t kl = strlen(key);
  if (kl + 3 > sizeof pat) return 0;
  pat[0] = '"';
  memcpy(pat + 1, key, kl);
  pat[kl + 1] = '"';
  pat[kl + 2] = 0;
  const char *p = s, *end = s + n;
  while ((p = find_cs(p, (size_t)(end - p), pat)) != NULL) {
    const char *q = p + kl + 2;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\t')) q++;
    if (q >= end || *q != ':') {
      p = q;
      continue;
    }
    q++;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\t')) q++;
    if (q >= end || *q != '"') return 0;
    const char *b = ++q;
    while (q < end && *q != '"') q += (*q == '\\' && q + 1 < end) ? 2 : 1;
    if (q >= end) return 0;
    *v = b;
    *vl = (size_t)(q - b);
    return 1;
  }
  return 0;
}

/* Undo JSON string escapes of s[0..n) into out (room for n + 1: the result is never longer);
 * \uXXXX becomes UTF-8 (surrogates become '?'). Returns the length. */
static size_t json_unescape(const char *s, size_t n, char *out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\' || i + 1 >= n) {
      out[k++] = s[i];
      continue;
    }
    char c = s[++i];
    if (c == 'n') out[k++] = '\n';
    else if (c == 't') out[k++] = '\t';
    else if (c == 'r') out[k++] = '\r';
    else if (c == 'b' || c == 'f') out[k++] = ' ';
    else if (c == 'u' && i + 4 < n && smtpc__bhexval(s[i + 1]) >= 0 && smtpc__bhexval(s[i + 2]) >= 0 &&
             smtpc__bhexval(s[i + 3]) >= 0 && smtpc__bhexval(s[i + 4]) >= 0) {
      unsigned u = (unsigned)(smtpc__bhexval(s[i + 1]) << 12 | smtpc__bhexval(s[i + 2]) << 8 |
                              smtpc__bhexval(s[i + 3]) << 4 | smtpc__bhexval(s[i + 4]));
      i += 4;
      if (u >= 0xD800 && u <= 0xDFFF) out[k++] = '?';
      else k += smtpc__utf8_encode(u, out + k); /* at most 3 octets from 6 escaped characters */
    } else out[k++] = c;
  }
  out[k] = 0;
  return k;
}

/* Set a field from an escaped JSON string. */
static int set_json(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *v, size_t vl) {
  char small[512], *buf = vl < sizeof small ? small : malloc(vl + 1);
  if (!buf) return SMTPC_ENOMEM;
  size_t n = json_unescape(v, vl, buf);
  int rc = smtpc__bounce_set(m, r, field, buf, n);
  if (buf != small) free(buf);
  return rc;
}

/* The end of the JSON object or array opening at s[0] (one past its closing bracket). */
static size_t json_skip(const char *s, size_t n) {
  int depth = 0, in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') in_str = 1;
    else if (c == '{' || c == '[') depth++;
    else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
  }
  return n;
}

/* SES's bounceSubType, when it decides the reason by itself. */
static const struct {
  const char *subtype;
  int reason;
} ses_subtypes[] = {
    {"Suppressed", SMTPC_REASON_SUPPRESSED},
    {"OnAccountSuppressionList", SMTPC_REASON_SUPPRESSED},
    {"MailboxFull", SMTPC_REASON_MAILBOXFULL},
    {"MessageTooLarge", SMTPC_REASON_EMAILTOOLARGE},
    {"ContentRejected", SMTPC_REASON_CONTENTERROR},
    {"AttachmentRejected", SMTPC_REASON_SECURITYERROR},
    {"NoEmail", SMTPC_REASON_USERUNKNOWN},
};

static int ses_records(smtpc__bmsg *m, const char *js, size_t n, int *claimed) {
  const char *type, *v, *list;
  size_t tl, vl;
  if (!json_str(js, n, "notificationType", &type, &tl)) return 0;
  int bounce = tl == 6 && smtpc__bstarts(type, tl, "Bounce");
  int complaint = tl == 9 && smtpc__bstarts(type, tl, "Complaint");
  *claimed = 1;
  if (!bounce && !complaint) return 0;  /* "Delivery": recognised, nothing failed */
  const char *key = bounce ? "\"bouncedRecipients\"" : "\"complainedRecipients\"";
  if (!(list = find_cs(js, n, key)) || !(list = memchr(list, '[', n - (size_t)(list - js))))
    return 0;
  size_t lend = (size_t)(list - js) + json_skip(list, n - (size_t)(list - js)), found = 0;
  int reason = 0, rc;
  if (bounce && json_str(js, n, "bounceSubType", &v, &vl))
    for (size_t i = 0; i < sizeof ses_subtypes / sizeof ses_subtypes[0]; i++)
      if (vl == strlen(ses_subtypes[i].subtype) && smtpc__bstarts(v, vl, ses_subtypes[i].subtype))
        reason = ses_subtypes[i].reason;
  const char *fbt = NULL, *rep = NULL; /* message-wide values, looked up once */
  size_t fbtl = 0, repl = 0;
  if (!json_str(js, n, "complaintFeedbackType", &fbt, &fbtl)) fbt = NULL;
  if (!json_str(js, n, "reportingMTA", &rep, &repl)) rep = NULL;
  for (const char *o = list + 1; o < js + lend; ) {
    o = memchr(o, '{', (size_t)(js + lend - o));
    if (!o) break;
    size_t ol = json_skip(o, (size_t)(js + lend - o));
    if (json_str(o, ol, "emailAddress", &v, &vl)) {
      smtpc_bounce *r = smtpc__bounce_add(m);
      if (!r) return smtpc__bounce_add_failed(m);
      found++;
      if ((rc = set_json(m, r, SMTPC_BOUNCE_F_RECIPIENT, v, vl)) != 0) return rc;
      if (complaint) {
        if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_KIND, "feedback", 8)) != 0) return rc;
        if (fbt && (rc = set_json(m, r, SMTPC_BOUNCE_F_FEEDBACK_TYPE, fbt, fbtl)) != 0) return rc;
        r->cls.reason = SMTPC_REASON_FEEDBACK;
      } else {
        static const struct { const char *key; int field; } f[] = {
            {"action", SMTPC_BOUNCE_F_ACTION}, {"status", SMTPC_BOUNCE_F_STATUS},
            {"diagnosticCode", SMTPC_BOUNCE_F_DIAGNOSTIC}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
          if (json_str(o, ol, f[i].key, &v, &vl) && (rc = set_json(m, r, f[i].field, v, vl)) != 0)
            return rc;
        if (rep) {
          v = rep, vl = repl;
          if (smtpc__bstarts(v, vl, "dsn;")) v += 4, vl -= 4;
          if ((rc = set_json(m, r, SMTPC_BOUNCE_F_REPORTING_MTA, v, vl)) != 0) return rc;
        }
        r->cls.reason = reason;
        const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
        if (d) {  /* "smtp; 550 5.1.1 user unknown" */
          size_t dl = strlen(d);
          const char *semi = memchr(d, ';', dl);
          if (semi && semi - d < 8) {
            char tmp[1024];
            size_t k = dl - (size_t)(semi + 1 - d);
            if (k >= sizeof tmp) k = sizeof tmp - 1;
            memcpy(tmp, semi + 1, k);
            if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC_TYPE, d,
                                        (size_t)(semi - d))) != 0 ||
                (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, tmp, k)) != 0)
              return rc;
          }
        }
      }
    }
    o += ol;
  }
  return (int)found;
}

static int amend_nested(smtpc__bmsg *m, size_t from);

int smtpc__bmta_amazonses(smtpc__bmsg *m) {
  if (m->nrecords > 0) {  /* SES's own DSN: read as RFC 3464; the quoted reply decides */
    static smtpc__bmta_marks ses = {"amazonses.com", NULL};
    size_t n;
    const char *rep = smtpc__bounce_rec(m, 0)->field[SMTPC_BOUNCE_F_REPORTING_MTA];
    if (!rep || !smtpc__bmta_any(rep, strlen(rep), ses)) {
      const char *from = smtpc__bmta_hdr(m, "From", &n);
      if (!smtpc__bmta_any(from, n, ses)) return 0;
    }
    int rc = amend_nested(m, 0);
    return rc ? rc : 1;
  }
  const char *b = m->body;
  size_t n = m->body_len;
  if (!smtpc__bmta_hdr(m, "x-amz-sns-message-id", NULL)[0] &&
      !smtpc__bfind(b, n, "\"notificationType\""))
    return 0;
  const char *open = memchr(b, '{', n);
  if (!open) return 0;
  n -= (size_t)(open - b);
  /* SNS mail wraps long lines as "!" + LF + space: join them back */
  char *js = malloc(n + 1);
  if (!js) return SMTPC_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (open[i] == '!' && i + 2 < n && open[i + 1] == '\n' && open[i + 2] == ' ') {
      i += 2;
      continue;
    }
    js[k++] = open[i];
  }
  js[k] = 0;
  int rc, claimed = 0;
  const char *msg;
  size_t ml;
  if (!json_str(js, k, "Message", &msg, &ml)) {
    rc = ses_records(m, js, k, &claimed);
  } else {  /* the SNS envelope: the notification is a JSON string inside it */
    char *inner = malloc(ml + 1);
    if (!inner) {
      free(js);
      return SMTPC_ENOMEM;
    }
    size_t il = json_unescape(msg, ml, inner);
    rc = ses_records(m, inner, il, &claimed);
    free(inner);
  }
  free(js);
  return rc == 0 && claimed ? 1 : rc;
}

/* "554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed
 * out>": SES quotes the last reply it got inside its own; that reply is what failed. */
static int nested_reply(smtpc__bmsg *m, smtpc_bounce *r) {
  const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC], *lt;
  if (!d || !(lt = strrchr(d, '<'))) return 0;
  size_t n = strlen(lt + 1);
  int code = smtpc__bmta_code_at(lt + 1, n);
  if (!code || n < 10) return 0;
  char st[SMTPC_STATUS_SIZE];
  r->reply_code = code;
  if (smtpc__status_find(lt + 4, n - 3, 0, st) > 0 && lt[4] == ' ' && lt[5] == st[0])
    return smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_STATUS, st, strlen(st));
  return 0;
}

static int amend_nested(smtpc__bmsg *m, size_t from) {
  int rc;
  for (size_t i = from; i < m->nrecords; i++)
    if ((rc = nested_reply(m, smtpc__bounce_rec(m, i))) != 0) return rc;
  return 0;
}

/* Amazon WorkMail: "An error occurred while trying to deliver the mail to the following
 * recipients:" ... "Technical report:" and DSN fields in the text. */
int smtpc__bmta_amazonworkmail(smtpc__bmsg *m) {
  if (m->nrecords > 0) return 0;
  static smtpc__bmta_marks mailer = {"Amazon WorkMail", NULL};
  if (!smtpc__bmta_hdr_has(m, "X-Mailer", mailer) &&
      !smtpc__bmta_hdr_has(m, "X-Original-Mailer", mailer))
    return 0;
  const char *t = smtpc__bfind(m->body, m->body_len, "Technical report:");
  if (!t) return 0;
  int n = smtpc__bmta_dsn_text(m, t, m->body_len - (size_t)(t - m->body)), rc;
  if (n > 0 && (rc = amend_nested(m, 0)) != 0) return rc;
  return n;
}
