/*
 * bounce.c -- the bounce parser: message framing, records, and the order of work
 * (MIME -> ARF -> RFC 3464 -> MTA modules -> auto-reply -> completing each record).
 * See bounce_internal.h for the contract with the MTA modules.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_core.h"
#include "bounce_mta.h"

static const char *const field_names[] = {
#define SMTPC__XX(id, name) name,
    SMTPC_BOUNCE_FIELD_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_bounce_field_name(int field) {
  return (field >= 0 && field < SMTPC_BOUNCE_NFIELDS) ? field_names[field] : NULL;
}

static const struct {
  const char *name;
  smtpc__bmta_fn fn;
} mta_modules[] = {
#define SMTPC__XX(id, name, fn) {name, fn},
#include "bounce_mta.def"
#undef SMTPC__XX
};

/* ---- memory -------------------------------------------------------------------------------- */

void *smtpc__balloc_chunk(smtpc_bounce_parser *p, size_t n) {
  n = (n + 7) & ~(size_t)7;
  smtpc__chunk *c = p->arena;
  if (!c || c->size - c->used < n) {
    size_t size = n > 65536 ? n : 65536;
    /* reuse the next (older) chunk when it is big enough: it was kept by reset */
    c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    c->next = p->arena;
    p->arena = c;
  }
  void *r = c->data + c->used;
  c->used += n;
  return r;
}

char *smtpc__bstrdup(smtpc_bounce_parser *p, const char *s, size_t n) {
  char *d = smtpc__balloc(p, n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

void smtpc__bnote(smtpc_bounce_parser *p, const char *fmt, ...) {
  char tmp[160];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
  size_t room = sizeof p->note - 1 - p->note_len;
  size_t sep = p->note_len ? 2 : 0;
  if (room < sep + (size_t)n) return; /* the first notes are the useful ones */
  if (sep) memcpy(p->note + p->note_len, "; ", 2);
  memcpy(p->note + p->note_len + sep, tmp, (size_t)n);
  p->note_len += sep + (size_t)n;
  p->note[p->note_len] = '\0';
}

int smtpc__bfail(smtpc_bounce_parser *p, int err, size_t offset) {
  if (!p->err) {
    p->err = err;
    p->erroff = offset;
  }
  return err;
}

int smtpc__bnext_line(const char *msg, size_t end, size_t *pos, size_t *line, size_t *line_len) {
  size_t i = *pos;
  if (i >= end) return 0;
  /* the line ends at the first LF or CR: memchr for each (fast), CR being rare or just before LF */
  const char *nl = smtpc__bchr(msg + i, end - i, '\n');
  size_t j = nl ? (size_t)(nl - msg) : end;
  const char *cr = smtpc__bchr(msg + i, j - i, '\r');
  if (cr) j = (size_t)(cr - msg);
  *line = i;
  *line_len = j - i;
  if (j < end && msg[j] == '\r') j++;
  if (j < end && msg[j] == '\n' && (j == i + *line_len || msg[j - 1] == '\r')) j++;
  *pos = j;
  return 1;
}

/* ---- parser lifetime ------------------------------------------------------------------------ */

smtpc_bounce_parser *smtpc_bounce_new(const smtpc_bounce_limits *limits) {
  smtpc_bounce_parser *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  smtpc_bounce_limits l = limits ? *limits : (smtpc_bounce_limits){0};
  p->lim.max_message = l.max_message ? l.max_message : SMTPC_BOUNCE_MAX_MESSAGE_DEFAULT;
  p->lim.max_line = l.max_line ? l.max_line : SMTPC_BOUNCE_MAX_LINE_DEFAULT;
  p->lim.max_headers = l.max_headers ? l.max_headers : SMTPC_BOUNCE_MAX_HEADERS_DEFAULT;
  p->lim.max_parts = l.max_parts ? l.max_parts : SMTPC_BOUNCE_MAX_PARTS_DEFAULT;
  p->lim.max_depth = l.max_depth ? l.max_depth : SMTPC_BOUNCE_MAX_DEPTH_DEFAULT;
  p->lim.max_records = l.max_records ? l.max_records : SMTPC_BOUNCE_MAX_RECORDS_DEFAULT;
  for (size_t i = 0; i < SMTPC__ICONV_CACHE; i++) p->iconv[i].cd = (iconv_t)-1;
  return p;
}

void smtpc_bounce_reset(smtpc_bounce_parser *p) {
  if (!p) return;
  p->len = 0;
  p->truncated = 0;
  p->err = 0;
  p->erroff = 0;
  /* keep one chunk (the newest) so a mailbox of small bounces allocates nothing per message */
  if (p->arena) {
    smtpc__chunk *c = p->arena->next;
    while (c) {
      smtpc__chunk *n = c->next;
      free(c);
      c = n;
    }
    p->arena->next = NULL;
    p->arena->used = 0;
    if (p->arena->size > (1u << 20)) { /* do not keep a giant one */
      free(p->arena);
      p->arena = NULL;
    }
  }
  p->nhdr = p->npart = p->nrec = 0;
  p->top_nhdr = p->orig_first = p->orig_n = 0;
  p->have_orig = 0;
  p->nparts_seen = 0;
  p->html_part = (size_t)-1;
  p->note_len = 0;
  p->note[0] = '\0';
  /* a big message's buffer is not kept either: memory stays bounded by typical messages */
  if (p->cap > (4u << 20)) {
    free(p->msg);
    p->msg = NULL;
    p->cap = 0;
  }
}

void smtpc_bounce_free(smtpc_bounce_parser *p) {
  if (!p) return;
  smtpc_bounce_reset(p);
  free(p->arena);
  free(p->msg);
  free(p->hdr);
  free(p->part);
  free(p->part_hfirst);
  free(p->rec);
  for (size_t i = 0; i < SMTPC__ICONV_CACHE; i++)
    if (p->iconv[i].cd != (iconv_t)-1) iconv_close(p->iconv[i].cd);
  free(p);
}

int smtpc_bounce_feed(smtpc_bounce_parser *p, const char *buf, size_t len) {
  if (!p || (!buf && len)) return SMTPC_EINVAL;
  if (p->err) return p->err;
  if (p->len + len > p->lim.max_message) {
    if (!p->truncated) smtpc__bnote(p, "message cut at octet %zu (size limit)", p->lim.max_message);
    p->truncated = 1;
    len = p->lim.max_message - p->len;
  }
  if (p->len + len + 1 > p->cap) {
    size_t cap = p->cap ? p->cap : 16384;
    while (cap < p->len + len + 1) cap *= 2;
    char *m = realloc(p->msg, cap);
    if (!m) return smtpc__bfail(p, SMTPC_ENOMEM, p->len);
    p->msg = m;
    p->cap = cap;
  }
  if (len) memcpy(p->msg + p->len, buf, len);
  p->len += len;
  p->msg[p->len] = '\0';
  return 0;
}

/* ---- records -------------------------------------------------------------------------------- */

smtpc_bounce *smtpc__bounce_add(smtpc__bmsg *m) {
  smtpc_bounce_parser *p = m->p;
  if (p->nrec >= p->lim.max_records) {
    if (p->nrec == p->lim.max_records) smtpc__bnote(p, "records beyond %zu dropped", p->nrec);
    return NULL;
  }
  if (p->nrec == p->caprec) {
    size_t cap = p->caprec ? p->caprec * 2 : 16;
    smtpc_bounce *r = realloc(p->rec, cap * sizeof *r);
    if (!r) return NULL;
    p->rec = r;
    p->caprec = cap;
  }
  smtpc_bounce *r = &p->rec[p->nrec++];
  memset(r, 0, sizeof *r);
  m->nrecords = p->nrec;
  return r;
}

int smtpc__bounce_add_failed(const smtpc__bmsg *m) {
  return m->p->nrec >= m->p->lim.max_records ? 1 : SMTPC_ENOMEM;
}

smtpc_bounce *smtpc__bounce_rec(smtpc__bmsg *m, size_t i) {
  return i < m->p->nrec ? &m->p->rec[i] : NULL;
}

/* s[0..n) into d with white space runs squeezed to one space and the ends trimmed; returns the
 * length written (at most n; no NUL added). */
static size_t squeeze_into(char *d, const char *s, size_t n) {
  static const unsigned char ws[256] = {['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1};
  size_t k = 0, i = 0;
  while (i < n && ws[(unsigned char)s[i]]) i++; /* leading white space */
  while (i < n) {
#if defined(__SSE2__)
    /* Prose is mostly words and single spaces, which stay as they are: sixteen octets are
     * copied at once when they hold no tab, CR or LF, no two spaces side by side and no space
     * last (the octet before them is never white space here, so a space first is a single
     * one; and what follows cannot change them). k <= i, so the store stays within d[0..n). */
    while (i + 16 <= n) {
      __m128i b = _mm_loadu_si128((const __m128i *)(s + i));
      __m128i other = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, _mm_set1_epi8('\t')),
                                                _mm_cmpeq_epi8(b, _mm_set1_epi8('\n'))),
                                   _mm_cmpeq_epi8(b, _mm_set1_epi8('\r')));
      unsigned sp = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, _mm_set1_epi8(' ')));
      if (_mm_movemask_epi8(other) || (sp & (sp >> 1)) || (sp & 0x8000)) break;
      _mm_storeu_si128((__m128i *)(d + k), b);
      i += 16, k += 16;
    }
    if (i >= n) break;
#endif
    unsigned char c = (unsigned char)s[i++];
    if (!ws[c]) {
      d[k++] = (char)c;
      continue;
    }
    while (i < n && ws[(unsigned char)s[i]]) i++; /* a run: one space, none at the end */
    if (i < n) d[k++] = ' ';
  }
  return k;
}

/* Copy with white space runs squeezed to one space and the ends trimmed. */
static char *squeeze(smtpc_bounce_parser *p, const char *s, size_t n, size_t *out_len) {
  char *d = smtpc__balloc(p, n + 1);
  if (!d) return NULL;
  size_t k = squeeze_into(d, s, n);
  d[k] = '\0';
  *out_len = k;
  return d;
}

static void clean_recipient(char *s, size_t *n) {
  char *a = s;
  size_t len = *n;
  if (len > 7 && smtpc__bstarts(a, len, "rfc822;")) {
    a += 7;
    len -= 7;
  }
  while (len && (*a == ' ' || *a == '<' || *a == '"' || *a == '\'')) a++, len--;
  while (len && (a[len - 1] == ' ' || a[len - 1] == '>' || a[len - 1] == '"' ||
                 a[len - 1] == '\'' || a[len - 1] == '.' || a[len - 1] == ':'))
    len--;
  const char *addr;
  size_t alen;
  if (smtpc__baddr(a, len, &addr, &alen)) {
    a = (char *)addr;
    len = alen;
  }
  memmove(s, a, len);
  s[len] = '\0';
  char *at = memchr(s, '@', len);
  for (char *c = at ? at : s + len; c < s + len; c++)
    if (*c >= 'A' && *c <= 'Z') *c += 32;
  *n = len;
}

int smtpc__bounce_set(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *s, size_t len) {
  if (!r || field < 0 || field >= SMTPC_BOUNCE_NFIELDS) return SMTPC_EINVAL;
  size_t n;
  char *d = squeeze(m->p, s ? s : "", s ? len : 0, &n);
  if (!d) return SMTPC_ENOMEM;
  if (field == SMTPC_BOUNCE_F_RECIPIENT) clean_recipient(d, &n);
  if (n) r->field[field] = d; /* an empty value never erases what the bounce said elsewhere */
  return 0;
}

int smtpc__bounce_append(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *s, size_t len) {
  if (!r || field < 0 || field >= SMTPC_BOUNCE_NFIELDS) return SMTPC_EINVAL;
  const char *old = r->field[field];
  if (!old) return smtpc__bounce_set(m, r, field, s, len);
  size_t ol = strlen(old);
  if (field != SMTPC_BOUNCE_F_RECIPIENT && ol && old[ol - 1] != ' ') {
    /* every field but the recipient holds what squeeze() made of it (bounce_set is the only
     * writer but for fixed words), so squeezing old + ' ' + s again would give old back:
     * only the new words are squeezed, onto a copy of old (appending stays linear). Not when
     * old ends in a space or is empty: a NUL octet the text carried cut it short there. */
    char *d = smtpc__balloc(m->p, ol + 1 + len + 1);
    if (!d) return SMTPC_ENOMEM;
    size_t k = squeeze_into(d + ol + 1, s, len);
    if (!k) return 0; /* nothing but white space: the field stays as it is */
    memcpy(d, old, ol);
    d[ol] = ' ';
    d[ol + 1 + k] = '\0';
    r->field[field] = d;
    return 0;
  }
  char *tmp = smtpc__balloc(m->p, ol + 1 + len + 1);
  if (!tmp) return SMTPC_ENOMEM;
  memcpy(tmp, old, ol);
  tmp[ol] = ' ';
  memcpy(tmp + ol + 1, s, len);
  return smtpc__bounce_set(m, r, field, tmp, ol + 1 + len);
}

/* ---- completing records --------------------------------------------------------------------- */

/* The SMTP command a diagnostic answered, from the phrases MTAs use: the first phrase of the
 * table that occurs anywhere in the text. Every phrase starts with a lead word, so the text is
 * searched for those (one pass per lead word among the first nlead, not one per phrase) and the
 * phrases are compared where a lead word stands. */
static const char *find_phrase(const char *t, size_t n, size_t nlead, int *has_command);

/* The command a text says a reply answered. Where the usual phrases are missing and the text
 * speaks of a command, it may be quoted (Stalwart "rejected command 'RCPT TO:<x>'") or folded
 * over lines ("(in\n    reply to RCPT TO command)"): searched again, with one space for every
 * run of white space. */
static const char *find_command(const char *t, size_t n) {
  int has_command;
  const char *c = find_phrase(t, n, 3, &has_command);
  if (c || !has_command) return c;
  if (!memchr(t, '\n', n)) return find_phrase(t, n, 4, NULL);
  char buf[2048];
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof buf; i++) {
    char ch = t[i];
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    if (ch == ' ' && k && buf[k - 1] == ' ') continue;
    buf[k++] = ch;
  }
  return find_phrase(buf, k, 4, NULL);
}

/* find_phrase over a text of fewer than FIND_SHORT octets: one pass looking at every octet
 * that may start a lead word, not one smtpc__bfind per lead word (which, for a text this short,
 * is itself a pass over every octet). The same phrases at the same places: the same answer. */
#define FIND_SHORT 96 /* smtpc__bfind scans a text this short octet by octet too */

/* find_phrase: the first row (lowest index) whose phrase occurs in t, looked for where a lead
 * word stands. With has_command, *has_command says whether "command" occurs in t when no row
 * does (find_command's next question, answered on the way). */
static const char *find_phrase(const char *t, size_t n, size_t nlead, int *has_command) {
  static const char *const lead[] = {"in reply to ", ">>> ", "after ", "command '"};
  static const struct { const char *phrase; const char *cmd; } k[] = {
      {"in reply to rcpt to", "RCPT"}, {"in reply to end of data", "DATA"},
      {"in reply to data", "DATA"},    {"in reply to mail from", "MAIL"},
      {"in reply to helo", "HELO"},    {"in reply to ehlo", "EHLO"},
      {"in reply to quit", "QUIT"},    {"in reply to starttls", "STARTTLS"},
      {">>> rcpt to", "RCPT"},         {">>> mail from", "MAIL"},
      {">>> data", "DATA"},            {">>> ehlo", "EHLO"},
      {">>> helo", "HELO"},            {"after rcpt to", "RCPT"},
      {"after end of data", "DATA"},   {"after mail from", "MAIL"},
      {"after data", "DATA"},          {"after ehlo", "EHLO"},
      {"after helo", "HELO"},          {"after initial connection", "CONN"},
      {"after pipelined rcpt to", "RCPT"}, {"after pipelined mail from", "MAIL"},
      /* Exim names a command it wrote while pipelining so: "SMTP error from remote mail server
       * after pipelined end of data:" (Gmail's refusals quoted in bounces and logs) */
      {"after pipelined end of data", "DATA"}, {"after pipelined data", "DATA"},
      /* the command quoted: Stalwart "rejected command 'RCPT TO:<x>'" */
      {"command 'rcpt to", "RCPT"},      {"command 'mail from", "MAIL"},
      {"command 'data", "DATA"},
  };
  enum { NK = sizeof k / sizeof k[0], NLEAD = sizeof lead / sizeof lead[0] };
  size_t best = NK;
  if (nlead > NLEAD) nlead = NLEAD;
  if (n < FIND_SHORT) {
    /* bit l: lead[l] starts with this octet (ASCII case-insensitive); "command" is lead 3's */
    static const unsigned char starts[256] = {['i'] = 1, ['I'] = 1, ['>'] = 2, ['a'] = 4,
                                              ['A'] = 4, ['c'] = 8, ['C'] = 8};
    int cmd = 0;
    for (size_t j = 0; j < n; j++) {
      unsigned m = starts[(unsigned char)t[j]];
      if (!m) continue;
      if (m == 8 && !cmd && smtpc__bstarts(t + j, n - j, "command")) cmd = 1;
      for (size_t l = 0; l < nlead; l++) {
        if (!(m >> l & 1) || !smtpc__bstarts(t + j, n - j, lead[l])) continue;
        size_t ll = strlen(lead[l]);
        for (size_t i = 0; i < best; i++) /* only an earlier row can change the answer */
          if (!strncmp(k[i].phrase, lead[l], ll) && smtpc__bstarts(t + j, n - j, k[i].phrase))
            best = i;
      }
    }
    if (has_command) *has_command = cmd;
    return best < NK ? k[best].cmd : NULL;
  }
  for (size_t l = 0; l < nlead; l++) {
    size_t ll = strlen(lead[l]);
    for (const char *at = smtpc__bfind(t, n, lead[l]); at;
         at = smtpc__bfind(at + 1, n - (size_t)(at + 1 - t), lead[l]))
      for (size_t i = 0; i < best; i++) /* only an earlier row can change the answer */
        if (!strncmp(k[i].phrase, lead[l], ll) &&
            smtpc__bstarts(at, n - (size_t)(at - t), k[i].phrase))
          best = i;
  }
  if (has_command) *has_command = best == NK && smtpc__bfind(t, n, "command") != NULL;
  return best < NK ? k[best].cmd : NULL;
}

/* The next octet at or after i that is one of the `nlead` digits lead[] ("45" or "452"), or n;
 * next[k] caches where lead[k] was found (memchr skips the prose between). */
static size_t next_lead(const char *t, size_t n, size_t i, const char *lead, size_t nlead,
                        const char **next) {
  size_t best = n;
  for (size_t k = 0; k < nlead; k++) {
    if (next[k] && next[k] < t + i) next[k] = i < n ? memchr(t + i, lead[k], n - i) : NULL;
    if (next[k] && (size_t)(next[k] - t) < best) best = (size_t)(next[k] - t);
  }
  return best;
}

/* The first reply code in a diagnostic: "said: 550 5.1.1 ...", "<<< 421 ...", "smtp; 554-...".
 * A code stands alone: not part of a number, an address or a host name. Returns its offset
 * (or -1) and the code in *code; want (0 = any) asks for one code in particular. */
static long find_code(const char *t, size_t n, int want, int *code, int with2) {
  const size_t nlead = with2 ? 3 : 2;
  const char *next[3];
  size_t i = 0;
  if (n < 3) return -1;
  for (size_t k = 0; k < nlead; k++) next[k] = memchr(t, "452"[k], n);
  for (; (i = next_lead(t, n, i, "452", nlead, next)) + 3 <= n; i++) {
    if (t[i + 1] < '0' || t[i + 1] > '5' || t[i + 2] < '0' || t[i + 2] > '9') continue;
    if (i > 0 && (!t[i - 1] || !strchr(" :;(<[\"'#=", t[i - 1]))) continue;
    if (i + 3 < n && (!t[i + 3] || !strchr(" -;:,)", t[i + 3]))) continue;
    if (i + 4 < n && (t[i + 3] == ':' || t[i + 3] == ',') && t[i + 4] >= '0' && t[i + 4] <= '9') continue;
    int c = (t[i] - '0') * 100 + (t[i + 1] - '0') * 10 + (t[i + 2] - '0');
    if (want && c != want) continue;
    *code = c;
    return (long)i;
  }
  return -1;
}

/* Reply code and status, from what the bounce says in its fields and in the server's words.
 * The remote server's own status (in the diagnostic, after its reply code) is more precise than
 * the reporting MTA's summary in the Status field (5.0.0, or a 4.4.7 "expired" stamped over a
 * 4.7.1 refusal), so it wins when it agrees with the reply code's class (or with the Status
 * field's class when there is no code). */
static void code_and_status(smtpc_bounce_parser *p, smtpc_bounce *r, const char *diag, size_t dlen) {
  const char **f = r->field;
  char st[SMTPC_STATUS_SIZE], dst[SMTPC_STATUS_SIZE];
  const char *have = f[SMTPC_BOUNCE_F_STATUS];
  if (have && !(smtpc_status_parse(have, strlen(have), st) > 0 || smtpc__status_find(have, strlen(have), 0, st)))
    have = NULL;
  else if (have)
    have = st;
  long at = -1;
  int code = 0;
  /* a failure's code first: "220-mx ... 421 4.2.1 Service refused" is a refusal, not a greeting */
  if (diag && (at = find_code(diag, dlen, r->reply_code, &code, 0)) < 0)
    at = find_code(diag, dlen, r->reply_code, &code, 1);
  if (!r->reply_code) r->reply_code = code;
  char cls = r->reply_code ? (char)('0' + r->reply_code / 100) : (have ? have[0] : 0);
  if (diag && ((at >= 0 && smtpc__status_find(diag + at, dlen - (size_t)at, cls, dst)) ||
               smtpc__status_find(diag, dlen, cls, dst))) {
    if (!have || strcmp(have, dst)) have = dst;
  }
  f[SMTPC_BOUNCE_F_STATUS] = have ? smtpc__bstrdup(p, have, strlen(have)) : NULL;
}

/* Budgeted: see bounce_internal.h. Each record's search may read the whole text, and a message
 * can hold thousands of records. */
#define PARA_BUDGET 16
const char *smtpc__bfind_rcpt(smtpc__bmsg *m, size_t from, const char *rcpt) {
  if (!rcpt || from >= m->body_len || m->para_scanned > PARA_BUDGET * m->body_len + (1u << 20))
    return NULL;
  const char *at = smtpc__bfind(m->body + from, m->body_len - from, rcpt);
  m->para_scanned += at ? (size_t)(at - (m->body + from)) : m->body_len - from;
  return at;
}

/* chasquid's error text names the phase before the reply: "DATA 554 ...", "DATA closing 550 ...",
 * "DATA writing ..." (its courier/smtp.go; "MAIL+RCPT 550 ..." names two commands, so nothing).
 * "DATA" when the diagnostic starts so and a reply code follows. */
static const char *phase_command(const char *d, size_t n) {
  static const char *const lead[] = {"DATA closing ", "DATA writing ", "DATA "};
  for (size_t i = 0; i < sizeof lead / sizeof lead[0]; i++) {
    size_t k = strlen(lead[i]);
    if (n >= k + 4 && !strncmp(d, lead[i], k) && smtpc__bmta_code_at(d + k, n - k) &&
        (d[k + 3] == ' ' || d[k + 3] == '-'))
      return "DATA";
  }
  return NULL;
}

/* The reply at s (n octets) starts as the diagnostic does: the first octets of both, ASCII case
 * aside, a multi-line reply's "550-" read as "550 " (the diagnostic is unfolded). */
static int same_reply_start(const char *s, size_t n, const char *diag, size_t dlen) {
  size_t k = dlen < 32 ? dlen : 32;
  if (n < k || k < 5) return 0;
  for (size_t i = 0; i < k; i++) {
    int a = smtpc__blower((unsigned char)s[i]), b = smtpc__blower((unsigned char)diag[i]);
    if (i == 3 && a == '-') a = ' ';
    if (i == 3 && b == '-') b = ' ';
    if (a != b) return 0;
  }
  return 1;
}

/* Where a session transcript in the bounce's text (Sendmail's ">>> DATA" / "<<< 554 ...") has
 * the diagnostic's reply: the offset of the first "<<< " line that starts as the diagnostic
 * does, or the body's length when none does. */
static size_t transcript_reply(const smtpc__bmsg *m, const char *diag, size_t dlen) {
  const char *b = m->body, *q;
  size_t n = m->body_len;
  for (size_t from = 0; from < n && (q = smtpc__bfind(b + from, n - from, "<<< ")) != NULL;) {
    size_t i = (size_t)(q - b);
    from = i + 4;
    if ((!i || b[i - 1] == '\n') && same_reply_start(q + 4, n - i - 4, diag, dlen)) return i;
  }
  return n;
}

/* The command of a session transcript (Sendmail: "... while talking to mx.example.net.:", then
 * ">>> DATA" and "<<< 554 5.7.9 Header error") that the diagnostic's reply answered: the ">>>"
 * line above the "<<<" lines that start as the diagnostic does. A refusal after DATA or MAIL
 * names no recipient, so the paragraphs that name one do not hold it. *at and *len: the
 * transcript from that command line to the end of its paragraph. */
static const char *transcript_command(const smtpc__bmsg *m, const char *diag, size_t dlen,
                                      const char **at, size_t *len) {
  const char *b = m->body;
  size_t n = m->body_len, i = transcript_reply(m, diag, dlen);
  if (i < n) {
    /* up over the reply's earlier lines to the line above them */
    while (i) {
      size_t e = i - 1, s0 = e; /* e: the line end of the line above */
      while (s0 && b[s0 - 1] != '\n') s0--;
      size_t l = e - s0 - (e > s0 && b[e - 1] == '\r');
      if (smtpc__bstarts(b + s0, l, "<<< ")) {
        i = s0;
        continue;
      }
      if (!smtpc__bstarts(b + s0, l, ">>> ")) return NULL;
      *at = b + s0;
      *len = smtpc__bpara_end(b, n, s0, s0 + 2000) - s0;
      return find_command(b + s0, l);
    }
  }
  return NULL;
}

/* Exim writes the octets of a reply outside printable ASCII as a backslash and three octal
 * digits (its string_printing(): "Recipient address rejected: \351\202\256..." for a server's
 * UTF-8 "邮箱..."). A run of such escapes that spells valid UTF-8 is those characters again;
 * any other stays as written. NULL when nothing was undone. */
static char *undo_octal_escapes(smtpc_bounce_parser *p, const char *d, size_t n, size_t *out_len) {
  if (!memchr(d, '\\', n)) return NULL;
  char *o = smtpc__balloc(p, n + 1);
  if (!o) return NULL;
  size_t k = 0, undone = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i, start = k;
    while (j + 4 <= n && d[j] == '\\' && (d[j + 1] == '2' || d[j + 1] == '3') &&
           d[j + 2] >= '0' && d[j + 2] <= '7' && d[j + 3] >= '0' && d[j + 3] <= '7') {
      o[k++] = (char)((d[j + 1] - '0') * 64 + (d[j + 2] - '0') * 8 + (d[j + 3] - '0'));
      j += 4;
    }
    if (j == i) {
      o[k++] = d[i++];
      continue;
    }
    if (smtpc__utf8_valid((const unsigned char *)o + start, k - start)) {
      undone++;
    } else { /* not UTF-8: the escapes as they were (they are longer, and k <= i) */
      memcpy(o + start, d + i, j - i);
      k = start + (j - i);
    }
    i = j;
  }
  if (!undone) return NULL;
  o[k] = '\0';
  *out_len = k;
  return o;
}

/* Appends the words of one line of a multi-line reply (code, then "-" or " ", then the text)
 * to o[*k..]: the first line's code and status once, as "550 5.7.1 ", every later line's
 * dropped when they are the first line's. Returns 0 when the line is not one of the reply's:
 * another code, or nothing after it. *last: the line ends the reply ("550 " not "550-"). */
static int reply_line(char *o, size_t *k, const char *l, size_t n, const char *first, int *last) {
  if (n < 4 || !smtpc__bmta_code_at(l, n) || memcmp(l, first, 3) || (l[3] != '-' && l[3] != ' '))
    return 0;
  size_t fst = smtpc__bmta_status_at(first + 4, strlen(first + 4)), i = 4;
  *last = l[3] == ' ';
  if (*k == 0) {
    memcpy(o, l, 3);
    o[3] = ' ';
    *k = 4;
  } else {
    if (fst && n >= 4 + fst && !memcmp(l + 4, first + 4, fst) && (n == 4 + fst || l[4 + fst] == ' '))
      i += fst;
    if (*k && o[*k - 1] != ' ') o[(*k)++] = ' ';
  }
  while (i < n && l[i] == ' ' && *k && o[*k - 1] == ' ') i++;
  memcpy(o + *k, l + i, n - i);
  *k += n - i;
  return 1;
}

/* Go's net/textproto joins the lines of a multi-line reply without their codes but with their
 * status ("550 5.1.1 The email account ... Please try\n5.1.1 double-checking ..."), and Go
 * MTAs quote it so (chasquid "MAIL+RCPT 550 5.1.1 ... Please try 5.1.1 double-checking ..."):
 * the status of a reply near the start, again as a word of its own later, is dropped there. */
static char *drop_repeated_status(smtpc_bounce_parser *p, const char *d, size_t n, size_t *out_len) {
  size_t i, st = 0;
  for (i = 0; i + 6 < n && i < 40; i++)
    if ((i == 0 || d[i - 1] == ' ') && smtpc__bmta_code_at(d + i, n - i) && d[i + 3] == ' ' &&
        (st = smtpc__bmta_status_at(d + i + 4, n - i - 4)) != 0)
      break;
  if (!st) return NULL;
  const char *status = d + i + 4;
  size_t from = i + 4 + st, k = 0, drops = 0;
  char *o = smtpc__balloc(p, n + 1);
  if (!o) return NULL;
  memcpy(o, d, from);
  k = from;
  for (size_t j = from; j < n; j++) {
    /* not after a reply code: "550 5.1.10 x 550 5.1.10 x" repeats a whole reply */
    if (d[j] == ' ' && j + 1 + st <= n && !memcmp(d + j + 1, status, st) &&
        (j + 1 + st == n || d[j + 1 + st] == ' ') &&
        !(j >= 4 && smtpc__bmta_code_at(d + j - 3, 3) && d[j - 4] == ' ')) {
      j += st; /* the space stays, the status goes */
      drops++;
      o[k++] = ' ';
      while (j + 1 < n && d[j + 1] == ' ') j++;
      continue;
    }
    o[k++] = d[j];
  }
  if (!drops) return NULL;
  while (k && o[k - 1] == ' ') k--;
  o[k] = '\0';
  *out_len = k;
  return o;
}

/* A multi-line reply as one diagnostic. A DSN's folded Diagnostic-Code, unfolded, keeps every
 * line's code ("550-5.2.1 The account is disabled. Learn more at 550 5.2.1 https://..."); the
 * text formats' readers drop those of the continuation lines (smtpc__bmta_diag_line), and so
 * does this: "550 5.2.1 The account is disabled. Learn more at https://...". Sendmail's DSN
 * gives only the first line ("Diagnostic-Code: SMTP; 552-5.7.0 This message was blocked because
 * its content presents a potential"), while its transcript has all of them as "<<< " lines:
 * those are read instead. NULL when the diagnostic is no cut or folded multi-line reply. */
static char *whole_reply(smtpc_bounce_parser *p, const smtpc__bmsg *m, const char *d, size_t n,
                         size_t *out_len) {
  if (n < 5 || !smtpc__bmta_code_at(d, n) || d[3] != '-')
    return drop_repeated_status(p, d, n, out_len);
  const char *b = m->body;
  size_t bn = m->body_len, k = 0;
  int last = 0;
  char first[16];
  memcpy(first, d, 4);
  size_t fst = smtpc__bmta_status_at(d + 4, n - 4);
  memcpy(first + 4, d + 4, fst < 11 ? fst : 0);
  first[4 + (fst < 11 ? fst : 0)] = '\0';
  /* the transcript's lines, when one starts as the diagnostic does */
  size_t i = transcript_reply(m, d, n);
  if (i < bn) {
    char *o = smtpc__balloc(p, bn - i + 1);
    if (!o) return NULL;
    for (size_t at = i; at < bn && !last && smtpc__bstarts(b + at, bn - at, "<<< ");) {
      const char *nl = smtpc__bchr(b + at, bn - at, '\n');
      size_t e = nl ? (size_t)(nl - b) : bn, l = e - at - 4;
      if (l && b[at + 4 + l - 1] == '\r') l--;
      if (!reply_line(o, &k, b + at + 4, l, first, &last)) break;
      at = e + 1;
    }
    if (k > n) { /* more than the diagnostic gave */
      o[k] = '\0';
      *out_len = k;
      return o;
    }
    k = 0, last = 0;
  }
  /* the diagnostic's own lines: each later one starts at a space and the first line's code,
   * then "-" (a continuation) or " " and the first line's status (the last line; with no
   * status, the first "NNN " after the last continuation) -- not at a code in running text
   * ("exceeded 550 messages") */
  char *o = smtpc__balloc(p, n + 1);
  if (!o) return NULL;
  size_t last_cont = 0, start = 0, joined = 0;
  int final_line = 0; /* with no status: the last line's "NNN " was found */
  for (size_t i = 0; i + 5 <= n; i++)
    if (d[i] == ' ' && !memcmp(d + i + 1, d, 3) && d[i + 4] == '-') last_cont = i;
  for (size_t i = 0; i <= n; i++) {
    if (i < n) {
      if (d[i] != ' ' || i + 5 > n || memcmp(d + i + 1, d, 3)) continue;
      if (d[i + 4] == ' ') {
        const char *st = d + i + 5;
        size_t rest = n - i - 5;
        if (fst ? !(rest >= fst && !memcmp(st, first + 4, fst) && (rest == fst || st[fst] == ' '))
                : !(last_cont && i > last_cont && !final_line))
          continue;
        final_line = 1;
      } else if (d[i + 4] != '-') {
        continue;
      }
    }
    if (!reply_line(o, &k, d + start, i - start, first, &last)) return NULL;
    joined += i < n;
    start = i + 1;
  }
  if (!joined) return NULL;
  o[k] = '\0';
  *out_len = k;
  return o;
}

/* The paragraph of the bounce's own text that names the recipient (at most 2000 octets). */
static const char *paragraph(smtpc__bmsg *m, size_t from, const char *rcpt, size_t *len) {
  const char *at = smtpc__bfind_rcpt(m, from, rcpt);
  if (!at) return NULL;
  size_t start = (size_t)(at - m->body), end;
  while (start && !(m->body[start - 1] == '\n' && start >= 2 && m->body[start - 2] == '\n')) start--;
  end = smtpc__bpara_end(m->body, m->body_len, (size_t)(at - m->body), start + 2000);
  *len = end - start;
  return m->body + start;
}

/* The same address, ASCII case aside ("<X@Y>" and "x@y" alike). */
static int same_address(const char *a, const char *b) {
  if (*a == '<') a++;
  if (*b == '<') b++;
  size_t al = strcspn(a, ">"), bl = strcspn(b, ">");
  return al == bl && smtpc__bsame(a, b, al);
}

/* A recipient that is no mailbox address as written: an RFC 821 source route
 * ("@smtp.example.net:kijitora@server", Oracle Messaging Server's Final-Recipient) loses its
 * route; one with no local part ("@mx.example.org", a Sendmail DSN) or no domain of its own
 * ("kijitora@server") gives way to the original recipient, else to the one address the
 * diagnostic names ("550 5.1.2 <kijitora@example.org>... Host unknown"). */
static void fix_recipient(smtpc_bounce_parser *p, const char **f) {
  const char *rc = f[SMTPC_BOUNCE_F_RECIPIENT], *colon, *at;
  if (!rc) return;
  if (rc[0] == '@' && (colon = strchr(rc, ':')) != NULL)
    f[SMTPC_BOUNCE_F_RECIPIENT] = rc = colon + 1; /* a suffix of an arena string */
  /* Exchange's address-type prefix: an X.400 recipient line's "cat:SMTP=user@example.com"
   * (Exchange 2000/2003 NDRs), or a proxy address written "SMTP:user@example.com" */
  size_t rl = strlen(rc);
  if ((smtpc__bstarts(rc, rl, "smtp=") || smtpc__bstarts(rc, rl, "smtp:")) && strchr(rc + 5, '@'))
    f[SMTPC_BOUNCE_F_RECIPIENT] = rc = rc + 5;
  at = strchr(rc, '@');
  if (at && at != rc && strchr(at, '.')) return; /* a mailbox at a qualified domain */
  const char *orig = f[SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT], *a, *d = f[SMTPC_BOUNCE_F_DIAGNOSTIC];
  size_t al;
  if (orig && orig[0] != '@' && (at = strchr(orig, '@')) && strchr(at, '.')) {
    f[SMTPC_BOUNCE_F_RECIPIENT] = orig;
    f[SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT] = NULL;
  } else if (d && smtpc__baddr(d, strlen(d), &a, &al)) {
    const char *rest = a + al, *b;
    size_t bl;
    if (!smtpc__baddr(rest, strlen(rest), &b, &bl) || (bl == al && !strncmp(a, b, al)))
      f[SMTPC_BOUNCE_F_RECIPIENT] = smtpc__bstrdup(p, a, al);
  }
}

/* "Diagnostic-Code: x-unix; ..." carries a local program's words, not a server's reply: Postfix's
 * pipe(8) and local(8) give a command's output so, Sendmail its mailers' exit statuses. When
 * those words name no cause ("temporary failure" under a generic 4.3.0), the program failed:
 * mailererror, as Sisimai reads an undecided X-Unix diagnostic. A content (X.6) or security
 * (X.7) status still says what it says. Returns the reason, or 0 to leave the record's. */
static int local_program_failed(const char *const *f, const char *diag, size_t dlen,
                                const smtpc_context *ctx) {
  const char *type = f[SMTPC_BOUNCE_F_DIAGNOSTIC_TYPE], *st = f[SMTPC_BOUNCE_F_STATUS];
  smtpc_decoded words;
  if (!type || strlen(type) != 6 || !smtpc__bsame(type, "x-unix", 6)) return 0;
  if (st && st[0] && st[1] == '.' && (st[2] == '6' || st[2] == '7') && st[3] == '.') return 0;
  if (smtpc_classify(0, NULL, diag, dlen, ctx, &words) != 0) return 0;
  return words.cls.reason == SMTPC_REASON_UNDEFINED || words.cls.reason == SMTPC_REASON_ONHOLD
             ? SMTPC_REASON_MAILERERROR
             : 0;
}

static void complete(smtpc_bounce_parser *p, smtpc__bmsg *m, smtpc_bounce *r, const char *mta) {
  const char **f = r->field;
  if (!f[SMTPC_BOUNCE_F_KIND]) f[SMTPC_BOUNCE_F_KIND] = "bounce";
  if (!strcmp(f[SMTPC_BOUNCE_F_KIND], "bounce")) fix_recipient(p, f);
  /* the original recipient only when it is another address than the final one */
  if (f[SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT] && f[SMTPC_BOUNCE_F_RECIPIENT] &&
      same_address(f[SMTPC_BOUNCE_F_RECIPIENT], f[SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT]))
    f[SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT] = NULL;
  if (!f[SMTPC_BOUNCE_F_MTA]) f[SMTPC_BOUNCE_F_MTA] = mta;
  if (!f[SMTPC_BOUNCE_F_ACTION] && !strcmp(f[SMTPC_BOUNCE_F_KIND], "bounce"))
    f[SMTPC_BOUNCE_F_ACTION] = m->delay_notice ? "delayed" : "failed";
  static const struct { int field; const char *name; } orig[] = {
      {SMTPC_BOUNCE_F_ORIGINAL_MESSAGE_ID, "Message-ID"},
      {SMTPC_BOUNCE_F_ORIGINAL_SUBJECT, "Subject"},
      {SMTPC_BOUNCE_F_ORIGINAL_FROM, "From"},
      {SMTPC_BOUNCE_F_ORIGINAL_TO, "To"},
  };
  for (size_t i = 0; i < 4; i++) {
    size_t n;
    const char *v;
    if (f[orig[i].field] || !m->orig_headers) continue;
    if ((v = smtpc__bheader_get(m->orig_headers, m->norig_headers, orig[i].name, &n)) && n)
      f[orig[i].field] = v;
  }
  const char *diag = f[SMTPC_BOUNCE_F_DIAGNOSTIC];
  size_t dlen = diag ? strlen(diag) : 0;
  char *whole;
  size_t wl;
  if (dlen && (whole = undo_octal_escapes(p, diag, dlen, &wl)) != NULL)
    f[SMTPC_BOUNCE_F_DIAGNOSTIC] = diag = whole, dlen = wl;
  if (dlen && (whole = whole_reply(p, m, diag, dlen, &wl)) != NULL)
    f[SMTPC_BOUNCE_F_DIAGNOSTIC] = diag = whole, dlen = wl;
  if (!dlen && !strcmp(f[SMTPC_BOUNCE_F_MTA], "rfc3464") && !strcmp(f[SMTPC_BOUNCE_F_KIND], "bounce")) {
    /* a DSN block without Diagnostic-Code or Status comment, which no format's reader
     * completed: the bounce's own words on the recipient say why, with or without a reply
     * (CommuniGate Pro "Failed to deliver to '<a@b>' / LOCAL module(account a) reports: /
     * account is full (quota exceeded)" beside Status 5.0.0) */
    const char *w;
    size_t wl;
    char *d;
    if (smtpc__bwords_on(m, f[SMTPC_BOUNCE_F_RECIPIENT], &w, &wl) >= 0 &&
        (d = squeeze(p, w, wl, &dlen)) != NULL && dlen)
      f[SMTPC_BOUNCE_F_DIAGNOSTIC] = diag = d;
    else
      dlen = 0;
  }
  if (!f[SMTPC_BOUNCE_F_COMMAND] && diag) f[SMTPC_BOUNCE_F_COMMAND] = find_command(diag, dlen);
  if (!f[SMTPC_BOUNCE_F_COMMAND] && diag) f[SMTPC_BOUNCE_F_COMMAND] = phase_command(diag, dlen);
  if (!f[SMTPC_BOUNCE_F_COMMAND] && f[SMTPC_BOUNCE_F_RECIPIENT] && m->body_len &&
      (f[SMTPC_BOUNCE_F_DIAGNOSTIC_TYPE] || !strcmp(f[SMTPC_BOUNCE_F_MTA], "rfc3464"))) {
    /* the bounce's own text often says more than the DSN part: Postfix writes "<rcpt>: host
     * mx[ip] said: 550 ... (in reply to RCPT TO command)" in the paragraph naming the recipient,
     * Sendmail ">>> RCPT To:<rcpt>" in its transcript, a later paragraph. (Only for what a DSN
     * part said: a text format's own reader knows which words are whose.) */
    size_t n = 0, from = 0;
    const char *para = NULL;
    for (int k = 0; k < 4 && !f[SMTPC_BOUNCE_F_COMMAND] &&
                    (para = paragraph(m, from, f[SMTPC_BOUNCE_F_RECIPIENT], &n)) != NULL;
         k++) {
      f[SMTPC_BOUNCE_F_COMMAND] = find_command(para, n);
      from = (size_t)(para - m->body) + n;
    }
    if (!f[SMTPC_BOUNCE_F_COMMAND] && diag && dlen)
      f[SMTPC_BOUNCE_F_COMMAND] = transcript_command(m, diag, dlen, &para, &n);
    if (f[SMTPC_BOUNCE_F_COMMAND] && !strcmp(f[SMTPC_BOUNCE_F_COMMAND], "DATA") &&
        smtpc__bmta_sendmail_verdict(para, n, f[SMTPC_BOUNCE_F_RECIPIENT]))
      f[SMTPC_BOUNCE_F_COMMAND] = "RCPT"; /* a pipelined RCPT's refusal */
  }
  code_and_status(p, r, diag, dlen);
  if (!strcmp(f[SMTPC_BOUNCE_F_KIND], "feedback")) {
    r->cls = (smtpc_class){0};
    r->cls.reason = SMTPC_REASON_FEEDBACK;
  } else if (!strcmp(f[SMTPC_BOUNCE_F_KIND], "autoreply")) {
    r->cls = (smtpc_class){0};
    r->cls.reason = SMTPC_REASON_VACATION;
  } else {
    int hint = r->cls.reason; /* a module that knows the reason from the format says so */
    smtpc_context ctx = {f[SMTPC_BOUNCE_F_COMMAND], f[SMTPC_BOUNCE_F_RHOST]};
    smtpc_decoded d;
    const char *st = f[SMTPC_BOUNCE_F_STATUS];
    int rc = smtpc_classify(r->reply_code, st, diag ? diag : "", dlen, &ctx, &d);
    if (rc == 0) {
      if (!r->reply_code) r->reply_code = d.code;
      if (!st && d.status[0]) f[SMTPC_BOUNCE_F_STATUS] = smtpc__bstrdup(p, d.status, strlen(d.status));
      r->cls = d.cls;
    } else {
      r->cls = (smtpc_class){0};
    }
    /* classify already calls words that no rule places "onhold"; a bounce whose diagnostic is
     * a bare code is on hold too (Sisimai's onhold: the bounce failed for a reason it does not
     * give in enough detail); "undefined" stays for a bounce with no diagnostic at all */
    if (!hint && r->cls.reason == SMTPC_REASON_UNDEFINED && dlen) hint = SMTPC_REASON_ONHOLD;
    if (!hint && rc == 0 && dlen) hint = local_program_failed(f, diag, dlen, &ctx);
    /* A delay notice whose words name no cause (Exim's warning, "(generated from a@b)") is the
     * message running out of time, as Sisimai reads an undecided "Action: delayed": expired. */
    if (f[SMTPC_BOUNCE_F_ACTION] && !strcmp(f[SMTPC_BOUNCE_F_ACTION], "delayed")) {
      int now = hint ? hint : r->cls.reason;
      if (now == SMTPC_REASON_UNDEFINED || now == SMTPC_REASON_ONHOLD) hint = SMTPC_REASON_EXPIRED;
    }
    if (hint > 0 && hint < SMTPC_REASON_COUNT) {
      const char *s = f[SMTPC_BOUNCE_F_STATUS];
      int klass = r->reply_code ? r->reply_code / 100 : (s ? s[0] - '0' : 0);
      r->cls.temporary = klass == 4;
      smtpc__class_set_reason(&r->cls, hint, klass);
    }
  }
  if (p->note_len && !f[SMTPC_BOUNCE_F_NOTE]) f[SMTPC_BOUNCE_F_NOTE] = p->note;
}

/* Whether address a (a_len octets) is the record's recipient or original recipient. */
static int names_own(const smtpc_bounce *r, const char *a, size_t a_len) {
  for (int k = 0; k < 2; k++) {
    const char *own = r->field[k ? SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT : SMTPC_BOUNCE_F_RECIPIENT];
    if (own && strlen(own) == a_len && smtpc__bsame(own, a, a_len)) return 1;
  }
  return 0;
}

/* A reply that names another recipient of the same report, and not the record's own, is that
 * recipient's reply. nullmailer gives up on a whole message when one RCPT is refused, and its
 * report lists every recipient with that one reply ("550 5.1.1 <nobody@x>: ... User unknown"
 * under Final-Recipient alice@x as well): what the reply says of its mailbox is no fact about
 * this one, which was never tried. Such a record keeps what the report says (action, status,
 * code, diagnostic) but is on hold, never a hard bounce, to be sent again, with a note. Only
 * for reasons that speak of one mailbox; a refusal of the message or of the sender concerns
 * every recipient, whichever address it quotes. */
static void others_reply(smtpc_bounce_parser *p) {
  for (size_t i = 0; i < p->nrec; i++) {
    smtpc_bounce *r = &p->rec[i];
    const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC], *a, *other = NULL;
    size_t n, al, other_len = 0;
    int reason = r->cls.reason, own = 0;
    if (!d || !r->field[SMTPC_BOUNCE_F_RECIPIENT] || strcmp(r->field[SMTPC_BOUNCE_F_KIND], "bounce") ||
        !(reason == SMTPC_REASON_USERUNKNOWN || reason == SMTPC_REASON_MAILBOXFULL ||
          reason == SMTPC_REASON_SUSPEND || reason == SMTPC_REASON_HASMOVED ||
          reason == SMTPC_REASON_HOSTUNKNOWN || reason == SMTPC_REASON_FILTERED))
      continue;
    for (n = strlen(d); !own && smtpc__baddr(d, n, &a, &al); n -= (size_t)(a + al - d), d = a + al) {
      own = names_own(r, a, al);
      for (size_t j = 0; j < p->nrec && !other && !own; j++)
        if (j != i && names_own(&p->rec[j], a, al)) other = a, other_len = al;
    }
    if (!other || own) continue;
    int klass = r->reply_code ? r->reply_code / 100 : 5;
    smtpc__class_set_reason(&r->cls, SMTPC_REASON_ONHOLD, klass);
    r->cls.retry = klass != 2;
    char note[sizeof p->note + 160];
    int len = snprintf(note, sizeof note, "the reply names another recipient, %.*s, not this one%s%s",
                       (int)(other_len > 120 ? 120 : other_len), other, p->note_len ? "; " : "",
                       p->note_len ? p->note : "");
    if (len > 0 && (size_t)len < sizeof note)
      r->field[SMTPC_BOUNCE_F_NOTE] = smtpc__bstrdup(p, note, (size_t)len);
  }
}

/* ---- the order of work ---------------------------------------------------------------------- */

static void view(smtpc_bounce_parser *p, smtpc__bmsg *m) {
  memset(m, 0, sizeof *m);
  m->p = p;
  m->headers = p->hdr;
  m->nheaders = p->top_nhdr;
  m->parts = p->part;
  m->nparts = p->npart;
  m->body = "";
  for (size_t i = 0; i < p->npart; i++) /* NULL + 0 is undefined in C: no fields, no pointer */
    p->part[i].headers = p->hdr ? p->hdr + p->part_hfirst[i] : NULL;
  for (size_t i = 0; i < p->npart; i++) {
    const smtpc__bpart *pt = &p->part[i];
    if (!pt->in_rfc822 && !strcmp(pt->type, "text/plain")) {
      m->body = pt->text;
      m->body_len = pt->len;
      break;
    }
  }
  /* a bounce that comes as HTML alone: the text it shows (bounce_html.c) */
  for (size_t i = 0; !m->body_len && i < p->npart; i++) {
    const smtpc__bpart *pt = &p->part[i];
    if (!pt->in_rfc822 && !strcmp(pt->type, "text/html")) {
      m->body = pt->text;
      m->body_len = pt->len;
    }
  }
  if (p->have_orig && p->hdr) {
    m->orig_headers = p->hdr + p->orig_first;
    m->norig_headers = p->orig_n;
  }
  m->nrecords = p->nrec;
}

/* The order of work over p->src[0..srclen). */
static int finish(smtpc_bounce_parser *p) {
  int rc = smtpc__bmime(p);
  if (rc < 0) return rc;
  smtpc__bmsg m;
  view(p, &m);
  if (!m.orig_headers && m.body_len) {
    smtpc__binline_orig(p, m.body, m.body_len);
    view(p, &m); /* hdr may have moved */
  }
  const char *mta = "rfc3464";
  if ((rc = smtpc__barf(&m)) < 0) return smtpc__bfail(p, rc, 0);
  if (rc == 0) {
    if ((rc = smtpc__bdsn(&m)) < 0) return smtpc__bfail(p, rc, 0);
    for (size_t i = 0; i < sizeof mta_modules / sizeof mta_modules[0]; i++) {
      rc = mta_modules[i].fn(&m);
      if (rc < 0) return smtpc__bfail(p, rc, 0);
      if (rc > 0) {
        mta = mta_modules[i].name;
        break;
      }
    }
    if (p->nrec == 0 && (rc = smtpc__bautoreply(&m)) < 0) return smtpc__bfail(p, rc, 0);
  }
  for (size_t i = 0; i < p->nrec; i++) {
    smtpc_bounce *r = &p->rec[i];
    if (!r->field[SMTPC_BOUNCE_F_RECIPIENT] && !r->field[SMTPC_BOUNCE_F_KIND]) {
      /* a record a module could not name a recipient for is no record */
      memmove(r, r + 1, (p->nrec - i - 1) * sizeof *r);
      p->nrec--;
      i--;
      continue;
    }
    complete(p, &m, r, mta);
  }
  others_reply(p);
  return (int)p->nrec;
}

int smtpc_bounce_finish(smtpc_bounce_parser *p) {
  if (!p) return SMTPC_EINVAL;
  if (p->err) return p->err;
  if (!p->msg && smtpc_bounce_feed(p, "", 0)) return p->err;
  p->src = p->msg;
  p->srclen = p->len;
  return finish(p);
}

int smtpc_bounce_parse(smtpc_bounce_parser *p, const char *msg, size_t len) {
  if (!p) return SMTPC_EINVAL;
  smtpc_bounce_reset(p);
  if (!msg && len) return SMTPC_EINVAL;
  /* what feed would have kept of it */
  if (len > p->lim.max_message) {
    smtpc__bnote(p, "message cut at octet %zu (size limit)", p->lim.max_message);
    p->truncated = 1;
    len = p->lim.max_message;
  }
  /* read where it is: copying every message into the parser cost more than some of the
   * steps that read it. The caller's octets stay unchanged during the call, and nothing the
   * records hold points into them (every field is an arena copy or a constant). */
  p->src = msg ? msg : "";
  p->srclen = len;
  int rc = finish(p);
  p->src = NULL;
  p->srclen = 0;
  return rc;
}

const smtpc_bounce *smtpc_bounce_record(const smtpc_bounce_parser *p, size_t i) {
  return (p && i < p->nrec) ? &p->rec[i] : NULL;
}

size_t smtpc_bounce_count(const smtpc_bounce_parser *p) { return p ? p->nrec : 0; }

int smtpc_bounce_error(const smtpc_bounce_parser *p, uint64_t *offset) {
  if (!p) return SMTPC_EINVAL;
  if (offset) *offset = p->erroff;
  return p->err;
}
