/* bounce_mta_text.c -- text helpers and the generic "recipient: words" reader shared by the MTA
 * modules (see bounce_mta.h). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "bounce_mta.h"

static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

int smtpc__bmta_append(smtpc__bmsg *m, smtpc_bounce *r, int field, const char *s, size_t n) {
  const char *old = r->field[field];
  if (old && strlen(old) >= SMTPC__BMTA_DIAG_MAX) return 0;
  return smtpc__bounce_append(m, r, field, s, n);
}


/* Offset of the first place in s[0..n) where any marker starts (ASCII case-insensitive), or
 * n. Each marker is searched with smtpc__bfind, which skips through the text with memchr on
 * the marker's rarest letter (a pass comparing every position with the markers' first letters
 * cost several instructions an octet, and the texts are long); once one is found, the next
 * ones are searched only before it. */
static size_t first_of(const char *s, size_t n, const char *const *marks) {
  size_t best = n;
  for (const char *const *mk = marks; *mk; mk++) {
    if (!**mk) return 0; /* "" matches at once */
    size_t k = strlen(*mk), lim = best < n ? best + k - 1 : n; /* a match starting before best */
    const char *at = smtpc__bfind(s, lim < n ? lim : n, *mk);
    if (at) best = (size_t)(at - s);
  }
  return best;
}

int smtpc__bmta_any(const char *s, size_t n, const char *const *marks) {
  return *marks && first_of(s, n, marks) < n + (**marks == 0);
}

const char *smtpc__bmta_hdr(const smtpc__bmsg *m, const char *name, size_t *len) {
  size_t n = 0;
  const char *v = smtpc__bheader_get(m->headers, m->nheaders, name, &n);
  if (!v) v = "", n = 0;
  if (len) *len = n;
  return v;
}

int smtpc__bmta_hdr_has(const smtpc__bmsg *m, const char *name, const char *const *marks) {
  size_t n;
  const char *v = smtpc__bmta_hdr(m, name, &n);
  return smtpc__bmta_any(v, n, marks);
}

int smtpc__bmta_names(const char *v, size_t n, const char *a, size_t al, size_t max) {
  const char *x;
  size_t xl;
  for (size_t i = 0; v && i < max && smtpc__baddr(v, n, &x, &xl); i++) {
    if (xl == al && smtpc__bsame(x, a, al)) return 1;
    size_t used = (size_t)(x - v) + xl;
    v += used, n -= used;
  }
  return 0;
}

size_t smtpc__bmta_line_with(const char *text, size_t len, const char *const *marks) {
  if (!*marks) return len;
  size_t at = first_of(text, len, marks);
  if (at >= len) return **marks ? len : 0;
  /* a marker spans no line end unless it contains one: back to the start of its line */
  while (at > 0 && text[at - 1] != '\n') at--;
  return at;
}

const char *smtpc__bmta_trim(const char *s, size_t *n) {
  while (*n && is_ws((unsigned char)*s)) s++, (*n)--;
  while (*n && is_ws((unsigned char)s[*n - 1])) (*n)--;
  return s;
}

size_t smtpc__bmta_cmd_len(const char *s, size_t n) {
  size_t k = 0;
  while (k < n && s[k] != ' ' && s[k] != ':') k++;
  return k;
}

size_t smtpc__bmta_cut(const char *text, size_t len, const char *const *marks) {
  size_t pos = 0, at;
  const char *line;
  size_t n;
  /* the markers' first octets, either case: most lines start with none of them, and are
   * passed without a comparison per marker ("" starts every line: no filter then) */
  unsigned char first[256] = {0};
  int all = 0;
  for (const char *const *mk = marks; *mk; mk++) {
    unsigned char c = (unsigned char)**mk;
    if (!c) all = 1;
    first[c] = first[smtpc__blower(c)] = 1;
    if (c >= 'a' && c <= 'z') first[c - 32] = 1;
  }
  for (at = pos; smtpc__bline(text, len, &pos, &line, &n); at = pos) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (!all && (!n || !first[(unsigned char)*t])) continue;
    for (const char *const *mk = marks; *mk; mk++)
      if (smtpc__bstarts(t, n, *mk)) return at;
  }
  return len;
}

int smtpc__bmta_code_at(const char *s, size_t n) {
  if (n < 3 || s[0] < '2' || s[0] > '5' || !is_digit((unsigned char)s[1]) ||
      !is_digit((unsigned char)s[2]))
    return 0;
  if (n > 3 && s[3] != ' ' && s[3] != '-' && s[3] != '\t' && s[3] != ':') return 0;
  return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

int smtpc__bmta_code_find(const char *s, size_t n) {
  for (size_t i = 0; i + 3 <= n; i++) {
    if (s[i] < '2' || s[i] > '5') continue; /* no code starts here: the cheap test first */
    /* a code stands at the start, or after a colon and white space ("]: 550", "said: 550") */
    if (i > 0) {
      size_t k = i;
      if (!is_ws((unsigned char)s[k - 1])) continue;
      while (k > 0 && is_ws((unsigned char)s[k - 1])) k--;
      if (k > 0 && s[k - 1] != ':') continue;
    }
    int code = smtpc__bmta_code_at(s + i, n - i);
    if (code) return code;
  }
  return 0;
}

/* Phrases that name the command a reply answered, most specific first. Data, not code: adding
 * an MTA's wording is adding a row. */
static const struct {
  const char *phrase, *command;
} commands[] = {
    {"RCPT TO response", "RCPT"},       {"after RCPT TO", "RCPT"},
    {"in reply to RCPT TO", "RCPT"},    {"does not like recipient", "RCPT"},
    {"did not like our RCPT TO", "RCPT"}, {"[RCPT_TO]", "RCPT"},
    {"after MAIL FROM", "MAIL"},        {"in reply to MAIL FROM", "MAIL"},
    {"sender was rejected", "MAIL"},    {"[MAIL_FROM]", "MAIL"},
    {"after pipelined end of data", "DATA"}, {"after pipelined DATA", "DATA"},
    {"after pipelined RCPT TO", "RCPT"}, {"after pipelined MAIL FROM", "MAIL"},
    {"after end of data", "DATA"},      {"in reply to end of DATA", "DATA"},
    {"in reply to DATA", "DATA"},       {"after DATA", "DATA"},
    {"did not like our final DATA", "DATA"}, {"did not like our DATA", "DATA"},
    {"failed after I sent the message", "DATA"}, {"[DATA]", "DATA"},
    {"after EHLO", "EHLO"},             {"after HELO", "HELO"},
    {"in reply to EHLO", "EHLO"},       {"in reply to HELO", "HELO"},
    {"my name was rejected", "EHLO"},   {"did not like our EHLO", "EHLO"},
    {"did not like our HELO", "HELO"},  {"did not like our MAIL FROM", "MAIL"},
    {"after STARTTLS", "STARTTLS"},     {"after AUTH", "AUTH"},
    {">>> RCPT TO", "RCPT"},            {">>> MAIL FROM", "MAIL"},
    {">>> DATA", "DATA"},               {"SMTP:RCPT", "RCPT"},
    {"after RCPT", "RCPT"},             {"after MAIL", "MAIL"},
    /* the client's own words quoted: "hMailServer sent: RCPT TO:<x>", Stalwart "rejected
     * command 'RCPT TO:<x>'" */
    {"sent: RCPT TO", "RCPT"},          {"sent: MAIL FROM", "MAIL"},
    {"sent: DATA", "DATA"},             {"command 'RCPT TO", "RCPT"},
    {"command 'MAIL FROM", "MAIL"},     {"command 'DATA", "DATA"},
    /* IMail: "RCPT TO generated following response:", "Body of message generated response:" */
    {"RCPT TO generated following", "RCPT"}, {"MAIL FROM generated following", "MAIL"},
    {"Body of message generated response", "DATA"},
};

enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

/* Phrases after which a remote host's name or address follows, the first found first. */
static const char *const host_after[] = {"remote host ", "Connected to ", "Giving up on ", "host: ",
                                         "by the server for the recipient domain "};

enum { NHOST_AFTER = sizeof host_after / sizeof host_after[0] };

/* The tables of the passes over a diagnostic for those phrases, built once (a call used to
 * build them again, which cost more than most texts' pass): head/next chain the rows of
 * commands[] by first letter (either case), and starts marks every two octets, as loaded
 * (pair_at), that begin a phrase in some case, STARTS_COMMAND or STARTS_HOST: a position of
 * the text costs one load and a test, nearly always no (a test of the first letter, then the
 * second, was twice the time: a third of the letters passed the first). Read-only after the
 * build. */
enum { STARTS_COMMAND = 1, STARTS_HOST = 2 };
static struct {
  uint8_t head[256], next[NCOMMANDS];
  uint8_t starts[65536];
} g_phrase;
static pthread_once_t g_phrase_once = PTHREAD_ONCE_INIT;

static unsigned pair_at(const char *s) { /* two octets as one index, in the order loaded */
  uint16_t v;
  memcpy(&v, s, 2);
  return v;
}

static int other_case(int c) {
  return c >= 'a' && c <= 'z' ? c - 32 : c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static void mark_start(const char *ph, int which) { /* both octets in either case */
  for (unsigned v = 0; v < 4; v++) {
    char two[2] = {(char)(v & 1 ? other_case(ph[0]) : ph[0]),
                   (char)(v & 2 ? other_case(ph[1]) : ph[1])};
    g_phrase.starts[pair_at(two)] |= (uint8_t)which;
  }
}

static void build_phrase_tables(void) {
  memset(g_phrase.head, 0xff, sizeof g_phrase.head);
  for (size_t i = NCOMMANDS; i-- > 0;) { /* chains in table order */
    int c = smtpc__blower((unsigned char)commands[i].phrase[0]);
    g_phrase.next[i] = g_phrase.head[c];
    g_phrase.head[c] = (uint8_t)i;
    if (c >= 'a' && c <= 'z') g_phrase.head[c - 32] = (uint8_t)i;
  }
  /* every phrase has two letters at least */
  for (size_t i = 0; i < NCOMMANDS; i++) mark_start(commands[i].phrase, STARTS_COMMAND);
  for (size_t i = 0; i < NHOST_AFTER; i++) mark_start(host_after[i], STARTS_HOST);
}

void smtpc__bmta_text_prepare(void) { pthread_once(&g_phrase_once, build_phrase_tables); }

/* The first row (in table order) whose phrase occurs anywhere in s: one pass over the text,
 * each position compared only with the rows whose phrase starts with its two octets, and only
 * with rows before the best one found so far. */
const char *smtpc__bmta_command(const char *s, size_t n) {
  enum { NC = NCOMMANDS };
  const uint8_t *head = g_phrase.head, *next = g_phrase.next, *starts = g_phrase.starts;
  pthread_once(&g_phrase_once, build_phrase_tables);
  size_t best = NC;
  for (size_t j = 0; j + 1 < n && best > 0; j++) {
    if (!(starts[pair_at(s + j)] & STARTS_COMMAND)) continue;
    for (size_t i = head[(unsigned char)s[j]]; i < best; i = next[i]) {
      const char *ph = commands[i].phrase;
      size_t t = 1; /* ph[0] matched: it chose the chain */
      while (ph[t] && j + t < n && smtpc__blower((unsigned char)s[j + t]) == smtpc__blower((unsigned char)ph[t])) t++;
      if (!ph[t]) best = i;
    }
  }
  return best < NC ? commands[best].command : NULL;
}

/* "[192.0.2.1]", "[IPv6:2001:db8::1]", "[192.0.2.1:25]": an address literal. */
static int ip_literal(const char *s, size_t n) {
  size_t i = 1;
  if (n < 2 || s[0] != '[') return 0;
  if (smtpc__bstarts(s + 1, n - 1, "IPv6:")) i += 5;
  if (i >= n || !(is_digit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  for (; i < n && s[i] != ']'; i++)
    if (!(is_digit((unsigned char)s[i]) || s[i] == '.' || s[i] == ':' ||
          (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
      return 0;
  return i < n;
}

int smtpc__bmta_host(const char *s, size_t n, const char **host, size_t *host_len) {
  /* "mx.example.jp [192.0.2.1]", and Postfix's "mx.example.jp[192.0.2.1]" */
  for (const char *br = n > 1 ? memchr(s + 1, '[', n - 1) : NULL; br;
       br = br + 1 < s + n ? memchr(br + 1, '[', (size_t)(s + n - br - 1)) : NULL) {
    size_t i = (size_t)(br - s);
    if ((s[i - 1] != ' ' && !smtpc__bhost_char((unsigned char)s[i - 1])) ||
        !ip_literal(s + i, n - i))
      continue;
    size_t b = s[i - 1] == ' ' ? i - 1 : i, a;
    while (b > 0 && s[b - 1] == ' ') b--;
    a = b;
    while (a > 0 && smtpc__bhost_char((unsigned char)s[a - 1])) a--;
    if (b > a && s[b - 1] == '.') b--;  /* "mx.example.jp. [192.0.2.1]" */
    if (b - a < 3 || !memchr(s + a, '.', b - a)) continue;
    *host = s + a;
    *host_len = b - a;
    return 1;
  }
  /* the phrases: where each is first, in one pass (not a search of the text per phrase) */
  size_t first[NHOST_AFTER];
  pthread_once(&g_phrase_once, build_phrase_tables);
  for (size_t k = 0; k < NHOST_AFTER; k++) first[k] = n;
  for (size_t i = 0; i + 1 < n; i++) {
    if (!(g_phrase.starts[pair_at(s + i)] & STARTS_HOST)) continue;
    for (size_t k = 0; k < NHOST_AFTER; k++)
      if (first[k] == n && smtpc__bstarts(s + i, n - i, host_after[k])) first[k] = i;
  }
  for (size_t k = 0; k < NHOST_AFTER; k++) {
    if (first[k] == n) continue;
    size_t a = first[k] + strlen(host_after[k]), b = a;
    while (b < n && smtpc__bhost_char((unsigned char)s[b])) b++;
    while (b > a && s[b - 1] == '.') b--;
    if (b - a < 3 || !memchr(s + a, '.', b - a)) continue;
    *host = s + a;
    *host_len = b - a;
    return 1;
  }
  return 0;
}

/* A status code right at s ("5.7.1 text"); its length or 0. */
size_t smtpc__bmta_status_at(const char *s, size_t n) {
  size_t i = 0, dots = 0;
  if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  i = 2;
  for (; i < n && (is_digit((unsigned char)s[i]) || s[i] == '.'); i++)
    if (s[i] == '.') dots++;
  if (dots != 1 || s[i - 1] == '.' || (i < n && !is_ws((unsigned char)s[i]))) return 0;
  return i;
}

/* "=====" or "-----" alone, or "----- Transcript of session follows -----": layout, not words */
static int rule_line(const char *s, size_t n) {
  if (n >= 4 && s[0] == '|' && s[1] == '-' && s[n - 1] == '|') return 1; /* "|--- Log: ---|" */
  if (n >= 3 && (s[0] == '=' || s[0] == '-') && s[1] == s[0] && s[2] == s[0]) {
    if (s[n - 1] == s[0]) return 1;
    for (size_t i = 0; i < n; i++)
      if (s[i] != s[0]) return 0;
    return 1;
  }
  return 0;
}

int smtpc__bmta_diag_line(smtpc__bmsg *m, smtpc_bounce *r, const char *s, size_t n, int *multi) {
  s = smtpc__bmta_trim(s, &n);
  if (n == 0 || rule_line(s, n)) return 0;
  if (smtpc__bstarts(s, n, "<<< ")) {  /* a transcript's reply line: the reply itself */
    s += 4, n -= 4;
  }
  int code = smtpc__bmta_code_at(s, n);
  if (code) {
    int more = n > 3 && s[3] == '-';
    size_t skip = 4, st;
    if (!r->reply_code) r->reply_code = code;
    while (skip < n && s[skip] == ' ') skip++;  /* "550: 5.2.2 ..." */
    if (skip < n && (st = smtpc__bmta_status_at(s + skip, n - skip)) != 0) {
      if (!r->field[SMTPC_BOUNCE_F_STATUS]) {
        int rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_STATUS, s + skip, st);
        if (rc) return rc;
      }
      if (*multi) skip += st;
    }
    if (*multi) {  /* a continuation line: keep only its words */
      if (skip > n) skip = n;
      s += skip, n -= skip;
      s = smtpc__bmta_trim(s, &n);
    } else if (more) {  /* the first line of "550-5.1.1 ..." reads as "550 5.1.1 ..." */
      int rc = smtpc__bmta_append(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, s, 3);
      if (rc) return rc;
      s += 4, n -= 4;
    }
    *multi = more;
  } else {
    /* "Remote host said: 550-5.7.1 ...": a multi-line reply starts inside the line */
    size_t i;
    *multi = 0;
    for (i = 0; i + 5 < n; i++)
      if (s[i] == ':' && s[i + 1] == ' ' && smtpc__bmta_code_at(s + i + 2, n - i - 2) &&
          s[i + 5] == '-') {
        *multi = 1;
        if (!r->reply_code) r->reply_code = smtpc__bmta_code_at(s + i + 2, n - i - 2);
        break;
      }
  }
  return n ? smtpc__bmta_append(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, s, n) : 0;
}

int smtpc__bmta_finish_rec(smtpc__bmsg *m, smtpc_bounce *r) {
  const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
  int rc = 0;
  if (!d) return 0;
  size_t n = strlen(d);
  if (!r->field[SMTPC_BOUNCE_F_COMMAND]) {
    const char *c = smtpc__bmta_command(d, n);
    if (c) rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, c, strlen(c));
  }
  if (!rc && !r->field[SMTPC_BOUNCE_F_RHOST]) {
    const char *h;
    size_t hl;
    if (smtpc__bmta_host(d, n, &h, &hl)) rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RHOST, h, hl);
  }
  if (!rc && !r->reply_code) r->reply_code = smtpc__bmta_code_find(d, n);
  return rc;
}

/* Words some MTAs put before a recipient on its line. */
static const char *const rcpt_prefixes[] = {"Recipient:", "Could not be delivered to:", "* ",
                                            ">>> ", "Unable to deliver message to:", NULL};

int smtpc__bmta_rcpt_line(const char *s, size_t n, int need_angle, int space, const char **addr,
                          size_t *alen, const char **rest, size_t *rlen) {
  const char *a;
  size_t al, i = 0;
  s = smtpc__bmta_trim(s, &n);
  for (const char *const *p = rcpt_prefixes; *p; p++)
    if (smtpc__bstarts(s, n, *p)) {
      size_t k = strlen(*p);
      s += k, n -= k;
      s = smtpc__bmta_trim(s, &n);
      break;
    }
  if (n == 0) return 0;
  int open = s[0] == '<' || s[0] == '"';
  if (need_angle && s[0] != '<') return 0;
  if (!smtpc__baddr(s, n, &a, &al) || a != s + open) return 0;
  i = (size_t)(a - s) + al;
  if (open) {
    if (i >= n || s[i] != (s[0] == '<' ? '>' : '"')) return 0;
    i++;
  }
  size_t after = i;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  /* Postfix: "<rcpt> (expanded from <alias>): ..." -- the alias is read by the caller */
  if (i < n && s[i] == '(' && smtpc__bstarts(s + i, n - i, "(expanded from ")) {
    const char *close = memchr(s + i, ')', n - i);
    if (close) {
      i = (size_t)(close + 1 - s);
      while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    }
  }
  *rest = s + n, *rlen = 0;
  if (i < n && s[i] == '<' && s[n - 1] == '>' && !memchr(s + i, ' ', n - i)) i = n; /* "x <x>" */
  if (i < n) {
    if (s[i] != ':' && !(space && i > after)) return 0;
    if (s[i] == ':') i++;
    *rest = s + i;
    *rlen = n - i;
    *rest = smtpc__bmta_trim(*rest, rlen);
  }
  *addr = a;
  *alen = al;
  return 1;
}

int smtpc__bmta_better_status(smtpc__bmsg *m, smtpc_bounce *r) {
  const char *st = r->field[SMTPC_BOUNCE_F_STATUS], *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
  char found[SMTPC_STATUS_SIZE];
  if (!d || (st && !strstr(st, ".0.0"))) return 0;
  if (smtpc__status_find(d, strlen(d), st ? st[0] : 0, found) <= 0 || (st && !strcmp(st, found)))
    return 0;
  return smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_STATUS, found, strlen(found));
}

int smtpc__bmta_eq(const char *x, const char *a, size_t al) {
  return x && strlen(x) == al && smtpc__bsame(x, a, al);
}

smtpc_bounce *smtpc__bmta_find_from(smtpc__bmsg *m, size_t from, const char *a, size_t al) {
  for (size_t i = from; i < m->nrecords && i < from + SMTPC__BMTA_FIND_MAX; i++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    if (smtpc__bmta_eq(r->field[SMTPC_BOUNCE_F_RECIPIENT], a, al)) return r;
  }
  return NULL;
}

smtpc_bounce *smtpc__bmta_find(smtpc__bmsg *m, const char *a, size_t al) {
  return smtpc__bmta_find_from(m, 0, a, al);
}

/* One line of words for r; when r came from a DSN part, its first line replaces what the DSN
 * said (*fresh), the next ones add to it. */
/* A heading alone on its line ("Reason:", OpenSMTPD's first layout): the words follow it. */
static int label_only(const char *t, size_t n) {
  if (n < 2 || t[n - 1] != ':') return 0;
  for (size_t i = 0; i + 1 < n; i++)
    if (t[i] == ' ' || t[i] == '\t' || t[i] == ':') return 0;
  return 1;
}

static int read_line(smtpc__bmsg *m, smtpc_bounce *r, const char *s, size_t n, int *multi,
                     int *fresh, int *changed) {
  size_t tn = n;
  const char *t = smtpc__bmta_trim(s, &tn);
  if (label_only(t, tn)) return 0;
  if (*fresh && tn) {
    r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] = NULL;
    r->reply_code = 0;
    *fresh = 0;
    (*changed)++;
  }
  return smtpc__bmta_diag_line(m, r, s, n, multi);
}

/* A MIME boundary delimiter: "--" and a token without white space ("--1F2E3.1114/mx.example.org").
 * Seen in a text part only where the MIME structure was lost (a bounce forwarded inline, a part
 * whose boundary was not declared): the notice's own text ends there. */
static int boundary_shaped(const char *s, size_t n) {
  if (n < 12 || s[0] != '-' || s[1] != '-' || s[2] == '-' ||
      (unsigned char)s[2] <= ' ') return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] == ' ' || s[i] == '\t') return 0;
  return 1;
}

/* A DSN record's words that the text replaced (amend): when the DSN's Diagnostic-Code held the
 * server's reply and the text's words hold none, the text said something else (Hotmail's
 * "Delivery to the following recipients failed." and the sender's antivirus footer after the
 * address), and the reply is put back. */
static void keep_dsn_reply(smtpc_bounce *r, const char *old, int old_code) {
  const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
  if (!old || d == old || !smtpc__bcode_in(old, strlen(old), " ;:") ||
      (d && smtpc__bcode_in(d, strlen(d), " ;:")))
    return;
  r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] = old;
  r->reply_code = old_code;
}

int smtpc__bmta_read(smtpc__bmsg *m, const char *text, size_t len, const smtpc__bmta_layout *l) {
  size_t begin = smtpc__bmta_line_with(text, len, l->start);
  if (begin >= len) return 0;
  size_t end = begin + smtpc__bmta_cut(text + begin, len - begin, l->stop);
  size_t pos = begin;
  const char *line;
  size_t n;
  /* records already read from a DSN part: the text explains them (amend, add nothing) */
  int multi = 0, rc = 0, found = 0, amend = m->nrecords > 0, seen_rcpt = 0, fresh = 0, changed = 0;
  size_t pre_from = begin, pre_to = begin, first = m->nrecords;
  smtpc_bounce *r = NULL;
  const char *old = NULL; /* amend: the record's words as its DSN part gave them */
  int old_code = 0;
  while (smtpc__bline(text, end, &pos, &line, &n)) {
    const char *a, *rest;
    size_t al, rl;
    if (l->stop_at_boundary && boundary_shaped(line, n)) break;
    const char *rl_line = line;
    size_t rl_n = n;
    if (l->to_prefix && smtpc__bstarts(line, n, "To:")) { /* "To: <addr>:", the "<" required */
      size_t k = n - 3;
      const char *t = smtpc__bmta_trim(line + 3, &k);
      if (k && t[0] == '<') rl_line = t, rl_n = k;
    }
    if (smtpc__bmta_rcpt_line(rl_line, rl_n, l->need_angle, l->rcpt_space, &a, &al, &rest, &rl) ||
        (l->rcpt_in_start && !seen_rcpt && smtpc__baddr(line, n, &a, &al) &&
         ((rest = ""), (rl = 0), 1))) {
      seen_rcpt++;
      if (r && amend) keep_dsn_reply(r, old, old_code);
      if (r && (rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
      if (r && amend && (rc = smtpc__bmta_better_status(m, r)) != 0) return rc;
      fresh = 0;
      if (amend) {
        r = smtpc__bmta_find(m, a, al);
        fresh = r != NULL;
        old = r ? r->field[SMTPC_BOUNCE_F_DIAGNOSTIC] : NULL;
        old_code = r ? r->reply_code : 0;
      } else if ((r = smtpc__bmta_find_from(m, first, a, al)) != NULL) {
        /* named again ("<x>: Recipient address rejected" folded into x's words): words */
        if ((rc = read_line(m, r, line, n, &multi, &fresh, &changed)) != 0) return rc;
        continue;
      } else {
        if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
        if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al)) != 0) return rc;
      }
      /* Postfix: "<rcpt> (expanded from <alias>): ..." -- the address the sender wrote */
      const char *ex = r ? smtpc__bfind(line, n, "(expanded from ") : NULL, *oa;
      size_t oal;
      if (ex && smtpc__baddr(ex + 15, n - (size_t)(ex + 15 - line), &oa, &oal) &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT, oa, oal)) != 0)
        return rc;
      multi = 0;
      if (!r) continue;
      found++;
      if (l->preamble && seen_rcpt == 1) {  /* the sentences above the first recipient */
        size_t p2 = pre_from;
        const char *l2;
        size_t n2;
        while (p2 < pre_to && smtpc__bline(text, pre_to, &p2, &l2, &n2))
          if ((rc = read_line(m, r, l2, n2, &multi, &fresh, &changed)) != 0) return rc;
      }
      if (rl && (rc = read_line(m, r, rest, rl, &multi, &fresh, &changed)) != 0) return rc;
      if (l->start_is_words && seen_rcpt == 1 && !rl &&
          (rc = read_line(m, r, line, n, &multi, &fresh, &changed)) != 0)
        return rc;
      continue;
    }
    if (!seen_rcpt) pre_to = pos;
    if (r && (rc = read_line(m, r, line, n, &multi, &fresh, &changed)) != 0) return rc;
  }
  if (r && amend) keep_dsn_reply(r, old, old_code);
  if (r && (rc = smtpc__bmta_finish_rec(m, r)) != 0) return rc;
  if (r && amend && (rc = smtpc__bmta_better_status(m, r)) != 0) return rc;
  return amend ? changed : found;  /* a DSN the text adds nothing to stays the DSN's */
}

/* DSN fields quoted in a text part ("Final-Recipient: rfc822; x@y" ...): one record per
 * Final-Recipient, the fields after it until the next one. */
static const struct {
  const char *name;
  int field;
} dsn_fields[] = {
    {"Action:", SMTPC_BOUNCE_F_ACTION},
    {"Status:", SMTPC_BOUNCE_F_STATUS},
    {"Remote-MTA:", SMTPC_BOUNCE_F_RHOST},
    {"Diagnostic-Code:", SMTPC_BOUNCE_F_DIAGNOSTIC},
    {"Last-Attempt-Date:", SMTPC_BOUNCE_F_LAST_ATTEMPT},
};

static const char *after_type(const char *v, size_t *n) {  /* "dns; x" -> "x" */
  const char *semi = smtpc__bchr(v, *n, ';');
  if (semi && semi - v < 12) *n -= (size_t)(semi + 1 - v), v = semi + 1;
  return smtpc__bmta_trim(v, n);
}

int smtpc__bmta_dsn_text(smtpc__bmsg *m, const char *text, size_t len) {
  size_t pos = 0, n, rl = 0, ol = 0;
  const char *line, *reporting = NULL, *orig = NULL;
  int rc, found = 0, field = -1, block_final = 0;
  smtpc_bounce *r = NULL;
  while (smtpc__bline(text, len, &pos, &line, &n)) {
    if (n && (line[0] == ' ' || line[0] == '\t')) {  /* a folded field goes on */
      if (r && field >= 0 && (rc = smtpc__bmta_append(m, r, field, line, n)) != 0) return rc;
      continue;
    }
    field = -1;
    if (n == 0) block_final = 0;
    if (smtpc__bstarts(line, n, "Original-Recipient:")) {
      /* before its block's Final-Recipient (RFC 3464's order) or after it */
      size_t vl = n - 19;
      const char *v = after_type(line + 19, &vl);
      if (!memchr(v, '@', vl)) continue;
      if (block_final && r) {
        if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT, v, vl)) != 0) return rc;
      } else {
        orig = v, ol = vl;
      }
    } else if (smtpc__bstarts(line, n, "Reporting-MTA:")) {
      rl = n - 14;
      reporting = after_type(line + 14, &rl);
    } else if (smtpc__bstarts(line, n, "Final-Recipient:")) {
      size_t vl = n - 16;
      const char *v = after_type(line + 16, &vl);
      if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
      found++;
      if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, v, vl)) != 0) return rc;
      block_final = 1;
      if (orig && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_ORIGINAL_RECIPIENT, orig, ol)) != 0)
        return rc;
      orig = NULL;
      if (reporting &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_REPORTING_MTA, reporting, rl)) != 0)
        return rc;
    } else if (r) {
      for (size_t i = 0; i < sizeof dsn_fields / sizeof dsn_fields[0]; i++) {
        size_t k = strlen(dsn_fields[i].name), vl = n - k;
        if (!smtpc__bstarts(line, n, dsn_fields[i].name)) continue;
        const char *v = smtpc__bmta_trim(line + k, &vl), *semi = smtpc__bchr(v, vl, ';');
        if (dsn_fields[i].field == SMTPC_BOUNCE_F_DIAGNOSTIC && semi && semi - v < 12 &&
            (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC_TYPE, v, (size_t)(semi - v))))
          return rc;
        if (dsn_fields[i].field != SMTPC_BOUNCE_F_ACTION &&
            dsn_fields[i].field != SMTPC_BOUNCE_F_STATUS)
          v = after_type(v, &vl);
        if ((rc = smtpc__bounce_set(m, r, dsn_fields[i].field, v, vl)) != 0) return rc;
        field = dsn_fields[i].field;
      }
    }
  }
  return found;
}

