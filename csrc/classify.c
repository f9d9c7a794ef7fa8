/*
 * classify.c -- (code, status, text lines, command, host) -> reason, hard/soft, retry advice.
 *
 * Evidence, strongest first (design.md):
 *   1. provider rules: the provider is known from the remote host / recipient domain
 *      (rules/providers.def HOST) or from markers only that provider writes (MARK); its own
 *      phrases (PPHRASE) and its own meanings of status codes (PSTATUS) come first;
 *   2. phrase rules per reason (rules/phrases.def), each with a strength;
 *   3. the enhanced status code (rules/status.def), which may be strong or only a hint;
 *   4. the reply code (rules/codes.def).
 * All phrases and markers are compiled once (pthread_once) into one case-insensitive
 * Aho-Corasick DFA (ac.c), the host suffixes into a second, small one: a host is short and
 * only suffixes can match in it, so it need not walk the big table. A call scans the lines and
 * the host once each and keeps only a few integers: no allocation, no regex.
 */
#include "smtpcode.h"
#include "ac.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* ---- providers ---------------------------------------------------------------------------- */

enum {
  PV_NONE = 0,
#define PROVIDER(id, name) PV_##id,
#include "rules/providers.def"
#undef PROVIDER
  PV_COUNT
};

static const char *const provider_name[] = {
  NULL,
#define PROVIDER(id, name) name,
#include "rules/providers.def"
#undef PROVIDER
};

/* ---- rules compiled into the matcher ----------------------------------------------------- */

enum kind {
  K_PHRASE,   /* reason phrase, any provider                                   */
  K_HEAD,     /* first part of an ordered pair; the next rule is its K_TAIL    */
  K_TAIL,     /* second part of an ordered pair                                */
  K_PPHRASE,  /* reason phrase of one provider                                 */
  K_MARK,     /* text marker naming a provider                                 */
  K_HOST,     /* host suffix naming a provider ("." suffix "\n")               */
  K_GREY,     /* greylisting phrase                                            */
  K_AFTER,    /* "retry in", followed by a number and a unit                   */
  K_CMD,      /* framing that names the command the reply answered             */
  K_PCODE     /* words a provider documents with one reply code (reason = index) */
};

/* Commands named by rules/commands.def, in rule order: the K_CMD rules come last in rules[],
 * so rule i names cmd_marker_name[i - g_cmd_base]. */
static const char *const cmd_marker_name[] = {
#define CMD(name, text) name,
#include "rules/commands.def"
#undef CMD
};

typedef struct rule {
  uint8_t kind;
  uint8_t reason;
  uint8_t prio;     /* phrase strength: 1 weak, 2 normal, 3 decisive              */
  uint8_t provider;
} rule;

#define R(x) SMTPC_REASON_##x

static const rule rules[] = {
#define PHRASE(reason, prio, text) {K_PHRASE, R(reason), prio, 0},
#define PAIR(reason, prio, head, tail) {K_HEAD, R(reason), prio, 0}, {K_TAIL, R(reason), prio, 0},
#include "rules/phrases.def"
#undef PHRASE
#undef PAIR
#define PPHRASE(pv, reason, prio, text) {K_PPHRASE, R(reason), prio, PV_##pv},
#define PSTATUS(pv, status, reason)
#include "rules/provider_rules.def"
#undef PPHRASE
#undef PSTATUS
#define HOST(pv, suffix) {K_HOST, 0, 0, PV_##pv},
#define MARK(pv, text) {K_MARK, 0, 0, PV_##pv},
#include "rules/provider_hosts.def"
#undef HOST
#undef MARK
#define GREY(strength, text) {K_GREY, 0, strength, 0},
#define AFTER(text) {K_AFTER, 0, 0, 0},
#include "rules/greylist.def"
#undef GREY
#undef AFTER
#define PCODE(pv, code, status, text) {K_PCODE, 0, 0, PV_##pv},
#include "rules/provider_codes.def"
#undef PCODE
#define CMD(name, text) {K_CMD, 0, 0, 0},
#include "rules/commands.def"
#undef CMD
};

static const char *const patterns[] = {
#define PHRASE(reason, prio, text) text,
#define PAIR(reason, prio, head, tail) head, tail,
#include "rules/phrases.def"
#undef PHRASE
#undef PAIR
#define PPHRASE(pv, reason, prio, text) text,
#define PSTATUS(pv, status, reason)
#include "rules/provider_rules.def"
#undef PPHRASE
#undef PSTATUS
#define HOST(pv, suffix) "." suffix "\n",
#define MARK(pv, text) text,
#include "rules/provider_hosts.def"
#undef HOST
#undef MARK
#define GREY(strength, text) text,
#define AFTER(text) text,
#include "rules/greylist.def"
#undef GREY
#undef AFTER
#define PCODE(pv, code, status, text) text,
#include "rules/provider_codes.def"
#undef PCODE
#define CMD(name, text) text,
#include "rules/commands.def"
#undef CMD
};

/* What a provider documents beside its words (rules/provider_codes.def); the K_PCODE rules sit
 * just before the K_CMD ones, so rule i is pcode_rules[i - g_pcode_base]. */
typedef struct pcode_rule {
  short code;
  const char *status;
} pcode_rule;

static const pcode_rule pcode_rules[] = {
#define PCODE(pv, code, status, text) {code, status},
#include "rules/provider_codes.def"
#undef PCODE
};

#define NRULES (sizeof rules / sizeof rules[0])
#define NCMDS (sizeof cmd_marker_name / sizeof cmd_marker_name[0])
#define NPCODES (sizeof pcode_rules / sizeof pcode_rules[0])
static const size_t g_cmd_base = NRULES - NCMDS;
static const size_t g_pcode_base = NRULES - NCMDS - NPCODES;
/* one bit per documented phrase in scan.pcodes */
typedef char pcodes_fit_in_64_bits[NPCODES <= 64 ? 1 : -1];

/* ---- status and code tables ------------------------------------------------------------- */

typedef struct status_rule {
  const char *sd;   /* "subject.detail", e.g. "1.1", or a full "c.s.d" */
  uint8_t reason;
  uint8_t strong;   /* 1: decides over weak phrases; 0: only when no phrase matched */
} status_rule;

static const status_rule status_rules[] = {
#define STATUS(sd, reason, strong) {sd, R(reason), strong},
#include "rules/status.def"
#undef STATUS
};

typedef struct pstatus_rule {
  uint8_t provider;
  const char *status; /* full "5.7.27"; a trailing 'x' matches any rest ("5.7.6x") */
  uint8_t reason;
} pstatus_rule;

static const pstatus_rule pstatus_rules[] = {
#define PPHRASE(pv, reason, prio, text)
#define PSTATUS(pv, status, reason) {PV_##pv, status, R(reason)},
#include "rules/provider_rules.def"
#undef PPHRASE
#undef PSTATUS
};

typedef struct code_rule {
  int code;
  uint8_t reason;
} code_rule;

static const code_rule code_rules[] = {
#define CODE(code, reason) {code, R(reason)},
#include "rules/codes.def"
#undef CODE
};

/* Tie-break between phrases of equal strength: the more specific reason first. */
static const uint8_t reason_order[] = {
  R(MAILBOXFULL), R(EMAILTOOLARGE), R(AUTHFAILURE), R(BADREPUTATION), R(RATELIMITED),
  R(REQUIREPTR), R(VIRUSDETECTED), R(SPAMDETECTED), R(POLICYVIOLATION), R(NORELAYING),
  R(NOTCOMPLIANTRFC), R(HASMOVED), R(SUSPEND), R(HOSTUNKNOWN), R(USERUNKNOWN), R(NOTACCEPT),
  R(SYSTEMFULL), R(CONTENTERROR), R(FAILEDSTARTTLS), R(BLOCKED), R(REJECTED),
  R(SECURITYERROR), R(SYSTEMERROR), R(NETWORKERROR), R(EXPIRED), R(MAILERERROR),
  R(SYNTAXERROR), R(FILTERED), R(SUPPRESSED), R(VACATION), R(FEEDBACK), R(ONHOLD),
  R(DELIVERED), R(UNDEFINED)};

/* ---- one-time build ---------------------------------------------------------------------- */

#define MAX_PAIRS 64

static smtpc__ac g_ac;   /* every rule but K_HOST; pattern i is rule g_text[i].rule  */
static smtpc__ac g_host; /* the K_HOST rules; pattern i is rule g_host_rule[i]       */
static uint16_t g_host_rule[NRULES];
/* What a match needs of its rule, by pattern number, in one load: a match otherwise looked up
 * the rule number, then the rule (two dependent cache misses, mostly). */
typedef struct text_rule {
  uint16_t rule;
  uint8_t kind, reason, prio, provider, pair; /* as in rules[]; pair as g_pair */
} text_rule;
static text_rule g_text[NRULES];
static int g_ok;
static uint8_t g_rank[SMTPC_REASON_COUNT];
static uint8_t g_pair[NRULES]; /* pair number of K_HEAD / K_TAIL rules */

static void build_status_keys(void);
static void build_status_direct(void);
static void build_pstatus(void);
static void build_host_slots(const char *const *host, size_t nh);

static void build(void) {
  size_t i;
  unsigned npair = 0;
  for (i = 0; i < SMTPC_REASON_COUNT; i++) g_rank[i] = 255;
  for (i = 0; i < sizeof reason_order; i++) g_rank[reason_order[i]] = (uint8_t)i;
  for (i = 0; i < NRULES; i++) {
    if (rules[i].kind == K_HEAD) {
      if (npair >= MAX_PAIRS) return; /* a unit test checks that the build succeeds */
      g_pair[i] = g_pair[i + 1] = (uint8_t)npair++;
    }
  }
  build_status_keys();
  build_status_direct();
  build_pstatus();
  {
    static const char *text[NRULES], *host[NRULES];
    size_t nt = 0, nh = 0;
    for (i = 0; i < NRULES; i++) {
      if (rules[i].kind == K_HOST) {
        g_host_rule[nh] = (uint16_t)i;
        host[nh++] = patterns[i];
      } else {
        g_text[nt].rule = (uint16_t)i;
        g_text[nt].kind = rules[i].kind;
        g_text[nt].reason = rules[i].reason;
        g_text[nt].prio = rules[i].prio;
        g_text[nt].provider = rules[i].provider;
        g_text[nt].pair = g_pair[i];
        text[nt++] = patterns[i];
      }
    }
    g_ok = smtpc__ac_build(&g_ac, text, nt) == 0 && smtpc__ac_build(&g_host, host, nh) == 0;
    build_host_slots(host, nh);
  }
}
typedef char rules_fit_in_16_bits[NRULES <= 65536 ? 1 : -1];

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

int smtpc__classify_prepare(void) {
  pthread_once(&g_once, build);
  return g_ok ? 0 : SMTPC_ENOMEM;
}

/* ---- per-call scan ----------------------------------------------------------------------- */

#define MAX_PHITS 8
#define STREAM_BUF 4096 /* the text stream is copied into one piece up to this size */

typedef struct scan {
  int best_reason, best_prio;          /* strongest generic phrase                  */
  struct { uint8_t pv, reason, prio; } phit[MAX_PHITS];
  unsigned nphit;
  uint64_t marks;                      /* providers named by text markers (bit pv)  */
  int host_pv;                         /* provider named by the host                */
  int grey;                            /* strongest greylisting phrase (0, 1, 2)    */
  long after;                          /* seconds from "retry in N ...", -1 none    */
  uint64_t heads;                      /* pair heads seen                           */
  size_t head_end[MAX_PAIRS];          /* stream end offset of each head seen       */
  int cmd;                             /* last command marker seen, -1 none         */
  uint64_t pcodes;                     /* documented phrases seen (bit i - base)    */
  /* The stream scanned is [" " frame] " " (line " ")* [tail]: bytes before lines_from and
   * from tail_from on are the framing around the reply. */
  size_t lines_from, tail_from;
  const smtpc_span *lines;
  size_t nlines;
  int rescan;                          /* scanning the text again, addresses taken out */
} scan;

static void take_phrase(scan *st, int reason, int prio) {
  if (prio > st->best_prio ||
      (prio == st->best_prio && g_rank[reason] < g_rank[st->best_reason])) {
    st->best_prio = prio;
    st->best_reason = reason;
  }
}

/* Parse "<n> <unit>" after a retry phrase: seconds, or -1. */
static long parse_after(const char *p, size_t len) {
  size_t i = 0;
  long n = 0;
  int digits = 0;
  while (i < len && p[i] == ' ') i++;
  while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 7) {
    n = n * 10 + (p[i] - '0');
    i++;
    digits++;
  }
  if (digits == 0) return -1;
  if (i < len && p[i] == ':') { /* "hh:mm:ss" or "mm:ss" (milter-greylist) */
    long part = 0, total = n;
    int fields = 1;
    while (i < len && p[i] == ':' && fields < 3) {
      i++;
      part = 0;
      digits = 0;
      while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 2) {
        part = part * 10 + (p[i] - '0');
        i++;
        digits++;
      }
      if (digits == 0) return -1;
      total = total * 60 + part;
      fields++;
    }
    return total;
  }
  while (i < len && p[i] == ' ') i++;
  if (i >= len) return -1;
  switch (p[i] | 0x20) {
  case 's': return n;
  case 'm': return n * 60;
  case 'h': return n * 3600;
  default: return -1;
  }
}

/* A host suffix matched in the host: the first names the provider. */
static void on_host(void *ud, size_t k, size_t end_folded, size_t end_input) {
  scan *st = ud;
  (void)end_folded, (void)end_input;
  if (st->host_pv == PV_NONE) st->host_pv = rules[g_host_rule[k]].provider;
}

/* Host suffixes without the automaton. Every K_HOST pattern is "." suffix "\n", and the host
 * is fed as "." host "\n"; when the host holds no white space, that last "\n" is the only byte
 * where a pattern can end, so the first match on_host sees is the longest pattern that is a
 * suffix of the stream (among equal texts the last rule: ac.c reports those newest first).
 * Such a suffix starts at a dot, so one hash per dot, taken right to left, finds it:
 * the automaton's walk over the host waits on one table load per byte, often a cache miss
 * after the text scan (about 4% of a decode on the bench/decode corpus). A host with white
 * space, or longer than HOST_MAXLEN, still goes through the automaton. Folding as ac.c: A-Z
 * as a-z. */
#define HOST_SLOTS 1024 /* a power of two, at least twice the host patterns (else no hash) */
#define HOST_MAXLEN 250
#define HOST_EMPTY 0xFFFFu
typedef char host_rules_below_empty[NRULES < HOST_EMPTY ? 1 : -1];

typedef struct host_slot {
  uint32_t hash;
  uint16_t rule; /* HOST_EMPTY: free */
  uint16_t len;  /* of ".suffix" */
} host_slot;

static host_slot g_host_slot[HOST_SLOTS];
static int16_t g_host_fold[256]; /* byte -> folded byte; -1 for white space */
static int g_host_hashed;

/* One step of the hash, taken from a string's last byte to its first: a rotate and an xor, so
 * the bytes cost two cycles each in sequence and every suffix's hash comes on the way. */
static uint32_t host_step(uint32_t h, unsigned c) { return ((h << 5) | (h >> 27)) ^ c; }

static size_t host_index(uint32_t h) { return (size_t)((h * 2654435761u) >> 22) & (HOST_SLOTS - 1); }

/* p[0, n) folded equals q[0, n) folded */
static int host_same(const char *p, const char *q, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (g_host_fold[(unsigned char)p[i]] != g_host_fold[(unsigned char)q[i]]) return 0;
  return 1;
}

static void build_host_slots(const char *const *host, size_t nh) {
  size_t i, k;
  for (i = 0; i < 256; i++)
    g_host_fold[i] = (int16_t)(i >= 'A' && i <= 'Z' ? i + 32 : i);
  g_host_fold[' '] = g_host_fold['\t'] = g_host_fold['\r'] = g_host_fold['\n'] = -1;
  g_host_fold['\v'] = g_host_fold['\f'] = -1;
  if (nh * 2 > HOST_SLOTS) return;
  for (i = 0; i < HOST_SLOTS; i++) g_host_slot[i].rule = HOST_EMPTY;
  for (k = 0; k < nh; k++) {
    const char *t = host[k];
    size_t n = strlen(t) - 1; /* ".suffix", without the "\n" */
    uint32_t h = 0;
    if (n < 1 || n > HOST_MAXLEN + 1 || t[0] != '.' || t[n] != '\n') return;
    for (i = n; i-- > 0;) {
      if (g_host_fold[(unsigned char)t[i]] < 0) return;
      h = host_step(h, (unsigned)g_host_fold[(unsigned char)t[i]]);
    }
    for (i = host_index(h);; i = (i + 1) & (HOST_SLOTS - 1)) {
      host_slot *e = &g_host_slot[i];
      if (e->rule == HOST_EMPTY) {
        e->hash = h;
        e->rule = g_host_rule[k];
        e->len = (uint16_t)n;
        break;
      }
      if (e->hash == h && e->len == n && host_same(patterns[e->rule], t, n)) {
        e->rule = g_host_rule[k]; /* the same text again: the later rule is reported first */
        break;
      }
    }
  }
  g_host_hashed = 1;
}

/* The rule of the pattern "." + suffix (n bytes with the dot) in the table, or HOST_EMPTY. */
static unsigned host_find(uint32_t h, const char *suffix, size_t n) {
  size_t i;
  for (i = host_index(h);; i = (i + 1) & (HOST_SLOTS - 1)) {
    const host_slot *e = &g_host_slot[i];
    if (e->rule == HOST_EMPTY) return HOST_EMPTY;
    if (e->hash == h && e->len == n && host_same(patterns[e->rule] + 1, suffix, n - 1))
      return e->rule;
  }
}

/* The provider the host names, as the automaton would find it, or -1 when the hash cannot
 * tell (white space in the host, too long, no table). */
static int host_provider(const char *h, size_t hl) {
  uint32_t sum = 0;
  unsigned best = HOST_EMPTY, r;
  size_t i;
  if (!g_host_hashed || hl > HOST_MAXLEN) return -1;
  for (i = hl; i-- > 0;) {
    int c = g_host_fold[(unsigned char)h[i]];
    /* one test for the two rare cases, white space (-1) and a dot; letters and digits pass */
    if ((unsigned)(c + 1) <= '.' + 1u) {
      if (c < 0) return -1;
      if (c == '.') {
        sum = host_step(sum, '.');
        if ((r = host_find(sum, h + i + 1, hl - i)) != HOST_EMPTY) best = r;
        continue;
      }
    }
    sum = host_step(sum, (unsigned)c);
  }
  /* the dot fed before the host */
  if ((r = host_find(host_step(sum, '.'), h, hl + 1)) != HOST_EMPTY) best = r;
  return best == HOST_EMPTY ? PV_NONE : rules[best].provider;
}

/* The line whose bytes hold stream offset `at` (*off gets the offset in it), or NULL. */
static const smtpc_span *line_at(const scan *st, size_t at, size_t *off) {
  size_t i, from = st->lines_from + 1;
  for (i = 0; i < st->nlines; i++) {
    if (st->lines[i].ptr == NULL) continue;
    if (at < from) return NULL;
    if (at < from + st->lines[i].len) {
      *off = at - from;
      return &st->lines[i];
    }
    from += st->lines[i].len + 1;
  }
  return NULL;
}

static void on_match(void *ud, size_t i, size_t end, size_t end_chunk) {
  scan *st = ud;
  const text_rule *r = &g_text[i];
  size_t pat = r->rule;
  (void)end_chunk;
  /* In a relaying MTA's framing only the command and provider markers count: its words
   * ("rejected", "failed") are about the relay, not the reason. */
  if ((end <= st->lines_from || end > st->tail_from) && r->kind != K_CMD && r->kind != K_MARK)
    return;
  switch (r->kind) {
  case K_CMD:
    st->cmd = (int)(pat - g_cmd_base);
    break;
  case K_PCODE:
    st->pcodes |= (uint64_t)1 << (pat - g_pcode_base);
    break;
  case K_PHRASE:
    take_phrase(st, r->reason, r->prio);
    break;
  case K_HEAD: {
    unsigned k = r->pair;
    if (!(st->heads & ((uint64_t)1 << k))) {
      st->heads |= (uint64_t)1 << k;
      st->head_end[k] = end;
    }
    break;
  }
  case K_TAIL: {
    unsigned k = r->pair;
    if ((st->heads & ((uint64_t)1 << k)) && st->head_end[k] + g_ac.plen[i] <= end)
      take_phrase(st, r->reason, r->prio);
    break;
  }
  case K_PPHRASE: {
    unsigned k;
    for (k = 0; k < st->nphit; k++) /* a repeated line adds nothing */
      if (st->phit[k].pv == r->provider && st->phit[k].reason == r->reason) break;
    if (k == st->nphit && st->nphit < MAX_PHITS) {
      st->phit[st->nphit].pv = r->provider;
      st->phit[st->nphit].reason = r->reason;
      st->phit[st->nphit].prio = r->prio;
      st->nphit++;
    }
    break;
  }
  case K_MARK:
    st->marks |= (uint64_t)1 << r->provider;
    break;
  case K_HOST: /* not in this automaton */
    break;
  case K_GREY:
    if (r->prio > st->grey) st->grey = r->prio;
    break;
  case K_AFTER: {
    size_t off;
    /* a rescan's offsets are not the lines' own; the first scan read what there was */
    const smtpc_span *l = st->after < 0 && !st->rescan ? line_at(st, end - 1, &off) : NULL;
    if (l != NULL) st->after = parse_after(l->ptr + off + 1, l->len - off - 1);
    break;
  }
  }
}

static int status_ok(const char *s) { return s != NULL && s[0] >= '2' && s[0] <= '5' && s[1] == '.'; }

/* "c.s.d" -> c * 1000000 + s * 1000 + d; -1 when not of that shape. An 'x' detail suffix in a
 * rule ("5.7.6x") is handled by the caller. */
static long status_num(const char *s) {
  long part[3] = {0, 0, 0};
  int k = 0, digits = 0;
  for (; *s; s++) {
    if (*s >= '0' && *s <= '9') {
      if (++digits > 3) return -1;
      part[k] = part[k] * 10 + (*s - '0');
    } else if (*s == '.' && digits && k < 2) {
      k++;
      digits = 0;
    } else {
      return -1;
    }
  }
  return k == 2 && digits ? part[0] * 1000000 + part[1] * 1000 + part[2] : -1;
}

/* Each provider's PSTATUS rules in rule order, so a lookup reads only that provider's few
 * (a walk over all of them, with strlen, was some seventy instructions per decode). */
#define NPSTATUS (sizeof pstatus_rules / sizeof pstatus_rules[0])
static uint16_t g_pstatus_first[PV_COUNT], g_pstatus_next[NPSTATUS + 1];
typedef char pstatus_fit_in_16_bits[NPSTATUS < 65535 ? 1 : -1];

static void build_pstatus(void) {
  size_t i, pv;
  uint16_t *tail[PV_COUNT];
  for (pv = 0; pv < PV_COUNT; pv++) {
    g_pstatus_first[pv] = NPSTATUS;
    tail[pv] = &g_pstatus_first[pv];
  }
  for (i = 0; i < NPSTATUS; i++) {
    g_pstatus_next[i] = NPSTATUS;
    *tail[pstatus_rules[i].provider] = (uint16_t)i;
    tail[pstatus_rules[i].provider] = &g_pstatus_next[i];
  }
}

/* Provider meaning of a status code: the most specific rule that matches, whatever the order
 * of the file. A trailing 'x' completes a three-digit detail ("4.7.5x" is 4.7.500-599), so it
 * never takes RFC 3463's own two-digit codes ("4.7.5", cryptographic failure; "5.7.60"), and
 * a longer pattern ("4.7.65x") beats a shorter one ("4.7.6x"). */
static int provider_status(int pv, const char *status) {
  size_t i, best_len = 0;
  int best = -1;
  const char *detail;
  if (!status_ok(status)) return -1;
  detail = strrchr(status, '.') + 1;
  for (i = g_pstatus_first[pv]; i < NPSTATUS; i = g_pstatus_next[i]) {
    const pstatus_rule *r = &pstatus_rules[i];
    size_t n = strlen(r->status);
    if (r->status[n - 1] != 'x') {
      if (strcmp(status, r->status) == 0) return r->reason;
    } else if (strlen(detail) == 3 && strncmp(status, r->status, n - 1) == 0 && n > best_len) {
      best = r->reason;
      best_len = n;
    }
  }
  return best;
}

/* Status rules as numbers, built once ("s.d" rules as class 0: any class): each key once,
 * with the first rule that has it, sorted, so that a lookup is two binary searches rather than
 * a walk over every rule (which was a tenth of a decode's instructions). */
#define NSTATUS (sizeof status_rules / sizeof status_rules[0])
typedef struct status_key {
  long key;
  size_t rule;
} status_key;
static status_key g_status_keys[NSTATUS];
static size_t g_nstatus_keys;

static void build_status_keys(void) {
  size_t i, j;
  for (i = 0; i < NSTATUS; i++) {
    const char *sd = status_rules[i].sd;
    char buf[16];
    long key;
    if (strchr(sd, '.') != strrchr(sd, '.')) {
      key = status_num(sd);
    } else {
      buf[0] = '0';
      buf[1] = '.';
      strncpy(buf + 2, sd, sizeof buf - 3);
      buf[sizeof buf - 1] = '\0';
      key = status_num(buf); /* class 0: any class */
    }
    if (key < 0) continue;
    for (j = 0; j < g_nstatus_keys && g_status_keys[j].key != key; j++) continue;
    if (j < g_nstatus_keys) continue; /* an earlier rule has this key */
    for (j = g_nstatus_keys++; j > 0 && g_status_keys[j - 1].key > key; j--)
      g_status_keys[j] = g_status_keys[j - 1];
    g_status_keys[j].key = key;
    g_status_keys[j].rule = i;
  }
}

/* The first rule with this key, or NSTATUS. The search halves without branching on the
 * comparisons (a conditional move each step): their outcomes are random, and mispredicted
 * branches cost more than the steps themselves. */
static size_t first_status_rule(long key) {
  const status_key *b = g_status_keys, *end = g_status_keys + g_nstatus_keys;
  size_t n = g_nstatus_keys;
  if (n == 0) return NSTATUS;
  while (n > 1) {
    size_t half = n / 2;
    b = b[half].key < key ? b + half : b;
    n -= half;
  }
  b += b->key < key; /* the first key not below `key`, or end */
  return b < end && b->key == key ? b->rule : NSTATUS;
}

/* The first rule whose key is the status (as status_num gives it) or its "s.d" (any class),
 * found by the two searches. */
static size_t status_rule_of(long num) {
  size_t a, b;
  a = first_status_rule(num);
  b = first_status_rule(num % 1000000);
  return b < a ? b : a;
}

/* Every rule's subject and detail are small: for the statuses that have them, the answer of
 * status_rule_of is taken once (build_status_direct) into a table indexed by class, subject
 * and detail, so a call does one load where it did two binary searches. Statuses outside the
 * table (subject or detail too large) have no rule; build_status_direct checks that. */
#define SD_SUBJECTS 8
#define SD_DETAILS 64
static uint8_t g_status_direct[3][SD_SUBJECTS][SD_DETAILS]; /* classes 2, 4, 5 */
static int g_status_direct_ok;
typedef char status_rules_fit_in_8_bits[NSTATUS < 255 ? 1 : -1];

static int status_class_index(long c) { return c == 2 ? 0 : c == 4 ? 1 : c == 5 ? 2 : -1; }

static void build_status_direct(void) {
  size_t i, s, d;
  int k;
  static const long cls[3] = {2, 4, 5};
  for (i = 0; i < g_nstatus_keys; i++) {
    long key = g_status_keys[i].key, c = key / 1000000;
    if ((c != 0 && status_class_index(c) < 0) || (key % 1000000) / 1000 >= SD_SUBJECTS ||
        key % 1000 >= SD_DETAILS)
      return; /* a rule the table cannot hold: the searches stay */
  }
  for (k = 0; k < 3; k++)
    for (s = 0; s < SD_SUBJECTS; s++)
      for (d = 0; d < SD_DETAILS; d++)
        g_status_direct[k][s][d] =
          (uint8_t)status_rule_of(cls[k] * 1000000 + (long)s * 1000 + (long)d);
  g_status_direct_ok = 1;
}

static const status_rule *status_lookup(long num) {
  size_t a;
  long c = num / 1000000, s = (num / 1000) % 1000, d = num % 1000;
  int k = status_class_index(c);
  if (g_status_direct_ok && k >= 0)
    a = s < SD_SUBJECTS && d < SD_DETAILS ? g_status_direct[k][s][d] : NSTATUS;
  else
    a = status_rule_of(num);
  return a < NSTATUS ? &status_rules[a] : NULL;
}

static int code_lookup(int code) {
  size_t i;
  for (i = 0; i < sizeof code_rules / sizeof code_rules[0]; i++)
    if (code_rules[i].code == code) return code_rules[i].reason;
  return -1;
}

/* A status whose subject says the mailbox exists but something refused the message
 * (X.2.x mailbox, X.3.x system, X.7.x policy): a user-unknown text beside it comes from a
 * filter that answers in those words. */
static int status_says_filter(const char *s) {
  return s != NULL && (s[2] == '2' || s[2] == '3' || s[2] == '7') && s[3] == '.';
}


/* "4.7.0", "5.1.0": RFC 3463's "other or undefined" detail of a subject. */
static int status_catch_all(const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;
  return n >= 2 && s[n - 1] == '0' && s[n - 2] == '.';
}

static int cmd_is(const char *c, const char *name) {
  size_t i;
  if (c == NULL) return 0;
  for (i = 0; name[i]; i++)
    if ((c[i] & ~0x20) != name[i]) return 0;
  return c[i] == '\0' || c[i] == ' ';
}

const char *smtpc_kind(int code, const char *status) {
  int c = code / 100;
  if (code <= 0 && status != NULL && status[0] != '\0') c = status[0] - '0';
  switch (c) {
  case 2: return "success";
  case 3: return "intermediate";
  case 4: return "transient";
  case 5: return "permanent";
  default: return "unknown";
  }
}

/* hard_bounce and retry follow from the reason and the class; the bounce parser calls this too
 * when a bounce format itself names the reason. */
void smtpc__class_set_reason(smtpc_class *out, int reason, int klass) {
  out->reason = reason;
  out->retry = 0;
  out->hard_bounce = !out->temporary && klass != 2 &&
                     (reason == R(USERUNKNOWN) || reason == R(HOSTUNKNOWN) ||
                      reason == R(HASMOVED) || reason == R(NOTACCEPT));
  /* retry: every temporary failure; and permanent failures whose cause usually clears on
   * its own or after the sender fixes something on its side (a full mailbox is emptied,
   * a block or rate limit expires, a system fault is repaired). Never for hard bounces,
   * content/policy refusals (resending the same message fails the same way) or success. */
  if (klass != 2) {
    out->retry = out->temporary || reason == R(MAILBOXFULL) || reason == R(RATELIMITED) ||
                 reason == R(SYSTEMFULL) || reason == R(SYSTEMERROR) ||
                 reason == R(NETWORKERROR) || reason == R(EXPIRED) ||
                 reason == R(BADREPUTATION) || reason == R(BLOCKED);
  }
}

void smtpc_classify_lines(int code, const char *status, const smtpc_span *lines, size_t nlines,
                          const smtpc_context *ctx, smtpc_class *out) {
  smtpc_span none = {NULL, 0};
  smtpc__classify_framed(code, status, none, lines, nlines, none, ctx, none, out);
}

/* One span of a reply that went through a wrong charset on its way here, or through a word
 * processor's typographic quotes (mojibake.c), repaired into buf[*used..STREAM_BUF) and
 * pointed there: 1 when it was. */
static int repair_span(smtpc_span *sp, char *buf, size_t *used) {
  size_t n;
  if (sp->ptr == NULL || sp->len == 0) return 0;
  n = smtpc__unmojibake(sp->ptr, sp->len, buf + *used, STREAM_BUF - *used);
  if (smtpc__has_curly_quote(n ? buf + *used : sp->ptr, n ? n : sp->len)) {
    if (n == 0) {
      if (sp->len > STREAM_BUF - *used) return 0;
      memcpy(buf + *used, sp->ptr, sp->len);
      n = sp->len;
    }
    smtpc__plain_quotes(buf + *used, n);
  }
  if (n == 0) return 0;
  sp->ptr = buf + *used;
  sp->len = n;
  *used += n;
  return 1;
}

/* The frame, lines and tail of such a reply, each repaired (buf: STREAM_BUF octets; fix:
 * MOJIBAKE_LINES spans): 1 when any was, and *lines then points at fix; the caller's spans stay
 * as they are. */
#define MOJIBAKE_LINES 32
static int unmangle(smtpc_span *frame, const smtpc_span **lines, size_t nlines, smtpc_span *tail,
                    char *buf, smtpc_span *fix) {
  size_t used = 0, i;
  int any = 0;
  if (nlines > MOJIBAKE_LINES) return 0;
  for (i = 0; i < nlines; i++) {
    fix[i] = (*lines)[i];
    any |= repair_span(&fix[i], buf, &used);
  }
  any |= repair_span(frame, buf, &used);
  any |= repair_span(tail, buf, &used);
  if (any) *lines = fix;
  return any;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_alnum(char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* The end of a name in quotes starting at in[r], the word in[r, e): 'anon', "bob", with what
 * sticks after the closing quote (a colon, a full stop); or a lone quote, spaces, then such a
 * word, as a typographic or escaped quote reads once made plain (mojibake.c pads it with spaces:
 * "\u2019anon\u2019" reads "'  anon'  "). 0 when there is none. */
static size_t quoted_name_end(const char *in, size_t n, size_t r, size_t e) {
  char q = in[r];
  size_t s = r + 1, k;
  if (q != '\'' && q != '"' && q != '`') return 0;
  if (e == r + 1) { /* the name is the next word */
    while (s < n && in[s] == ' ') s++;
    if (s == n || in[s] == q) return 0;
    for (e = s; e < n && !is_blank(in[e]); e++) continue;
  }
  for (k = e; k > s && strchr(".,;:!)", in[k - 1]) != NULL; k--) continue;
  return k > s + 1 && in[k - 1] == q ? e : 0;
}

/* Copies in[0, n) to out, every word (a run of characters between white space) that holds an
 * address taken out or, with sub, written as sub: an '@' with a character of a mailbox before
 * it and of a domain after it, bare or in <>, (), brackets or quotes, with what sticks to it (a
 * colon, "..."). With names, a name in quotes goes too (sub or not, it is taken out). The white
 * space around stays, and the framing's bounds in *st move with the bytes (a word never holds
 * the space that separates the framing from the reply). Returns the new length, at most cap; a
 * substitution that would not fit takes the word out instead. */
static size_t elide_words(const char *in, size_t n, char *out, size_t cap, const char *sub,
                          int names, scan *st) {
  size_t r = 0, w = 0, e, k, sl = sub != NULL ? strlen(sub) : 0;
  while (r < n && w < cap) {
    int addr = 0;
    size_t name;
    if (is_blank(in[r])) {
      out[w++] = in[r++];
      continue;
    }
    for (e = r; e < n && !is_blank(in[e]); e++)
      if (in[e] == '@' && e > r && e + 1 < n && is_alnum(in[e + 1]) &&
          (is_alnum(in[e - 1]) || strchr("._-+", in[e - 1]) != NULL))
        addr = 1;
    name = !addr && names ? quoted_name_end(in, n, r, e) : 0;
    /* a name whose opening quote stands apart never takes a framing bound inside it */
    if (name && ((st->lines_from > r && st->lines_from < name) ||
                 (st->tail_from > r && st->tail_from < name)))
      name = 0;
    if (name) e = name;
    if (addr || name) {
      size_t put = addr && sub != NULL && w + sl <= cap ? sl : 0;
      if (put) memcpy(out + w, sub, put);
      w += put;
      /* the bounds after the word move by what it lost (or gained) */
      if (st->lines_from > r) st->lines_from = st->lines_from - (e - r) + put;
      if (st->tail_from > r) st->tail_from = st->tail_from - (e - r) + put;
      r = e;
      continue;
    }
    for (k = r; k < e && w < cap; k++) out[w++] = in[k];
    r = e;
  }
  return w;
}

/* Whether the reply's own lines (its code and status taken off) hold a letter or a digit. */
static int has_words(const smtpc_span *lines, size_t nlines) {
  size_t i, j;
  for (i = 0; i < nlines; i++)
    for (j = 0; lines[i].ptr != NULL && j < lines[i].len; j++) {
      unsigned char c = (unsigned char)lines[i].ptr[j];
      if (c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return 1;
    }
  return 0;
}

void smtpc__classify_framed(int code, const char *status, smtpc_span frame, const smtpc_span *lines,
                            size_t nlines, smtpc_span tail, const smtpc_context *ctx,
                            smtpc_span frame_host, smtpc_class *out) {
  char fixed[STREAM_BUF];
  smtpc_span fixed_lines[MOJIBAKE_LINES];
  scan st;
  int klass, reason = -1, pv = PV_NONE, decided, has_cmd;
  long snum = -1;
  const char *cmd = ctx != NULL && ctx->command != NULL && ctx->command[0] ? ctx->command : NULL;
  size_t i;
  const status_rule *sr;

  pthread_once(&g_once, build);
  memset(out, 0, sizeof *out);
  unmangle(&frame, &lines, nlines, &tail, fixed, fixed_lines);
  if (status != NULL && (!status_ok(status) || (snum = status_num(status)) < 0)) status = NULL;
  if (code < 100 || code > 599) code = 0;
  klass = code ? code / 100 : (status ? status[0] - '0' : 0);
  out->temporary = klass == 4;

  st.best_reason = SMTPC_REASON_UNDEFINED;
  st.best_prio = 0;
  st.nphit = 0;
  st.marks = 0;
  st.host_pv = PV_NONE;
  st.grey = 0;
  st.after = -1;
  st.heads = 0;
  st.cmd = -1;
  st.pcodes = 0;
  st.rescan = 0;
  st.lines = lines;
  st.nlines = nlines;
  st.lines_from = frame.len ? 1 + frame.len : 0;
  st.tail_from = st.lines_from + 1;
  for (i = 0; i < nlines; i++)
    if (lines[i].ptr != NULL) st.tail_from += lines[i].len + 1;

  if (g_ok) {
    smtpc__ac_scan sc;
    /* The stream in one piece when it fits: one feed, and the lanes of ac.c over all of it
     * rather than over each line apart; else piece by piece (the same reports). */
    char buf[STREAM_BUF];
    size_t n = st.tail_from + tail.len;
    smtpc__ac_scan_init(&sc);
    if (n <= sizeof buf) {
      char *p = buf;
      if (frame.len) {
        *p++ = ' ';
        memcpy(p, frame.ptr, frame.len);
        p += frame.len;
      }
      *p++ = ' ';
      for (i = 0; i < nlines; i++) {
        if (lines[i].ptr == NULL) continue;
        memcpy(p, lines[i].ptr, lines[i].len);
        p += lines[i].len;
        *p++ = ' ';
      }
      if (tail.len) memcpy(p, tail.ptr, tail.len);
      smtpc__ac_feed(&g_ac, &sc, buf, n, on_match, &st);
      /* An address between a mailbox word and what is said of it ("User <bob@example.net>
       * unknown", "Account bob@example.net is disabled", "The recipient <a@b> does not
       * exist") hides the two from the phrases, which are written without one; so does a
       * mailbox's name in quotes (a Sendmail-style bounce's "The recipient 'anon' is
       * unknown"). When no phrase of strength 2 or more and no provider's phrase matched, the
       * text is scanned again with those words taken out; a text that matched keeps its
       * answer. */
      if (st.best_prio < 2 && st.nphit == 0 &&
          (memchr(buf, '@', n) != NULL || memchr(buf, '\'', n) != NULL ||
           memchr(buf, '"', n) != NULL || memchr(buf, '`', n) != NULL)) {
        char alt[STREAM_BUF]; /* buf stays as it was, for the third reading */
        size_t lines_from = st.lines_from, tail_from = st.tail_from;
        size_t m = elide_words(buf, n, alt, sizeof alt, NULL, 1, &st);
        if (m < n) {
          st.heads = 0;
          st.rescan = 1;
          smtpc__ac_scan_init(&sc);
          smtpc__ac_feed(&g_ac, &sc, alt, m, on_match, &st);
          /* Still nothing decisive: the address itself is what is spoken of ("550
           * bob@example.net does not exist", "554 RCPT (a@b) dosn't exist"). An address
           * there names a mailbox, so the text is read once more with the word "mailbox"
           * where each address stood, and the mailbox phrases have their say; a bare
           * "<name> does not exist" without one stays the weak refusal it was. */
          if (st.best_prio < 2 && st.nphit == 0 && memchr(buf, '@', n) != NULL) {
            st.lines_from = lines_from;
            st.tail_from = tail_from;
            m = elide_words(buf, n, alt, sizeof alt, "mailbox", 0, &st);
            st.heads = 0;
            smtpc__ac_scan_init(&sc);
            smtpc__ac_feed(&g_ac, &sc, alt, m, on_match, &st);
          }
        }
      }
    } else {
      if (frame.len) {
        smtpc__ac_feed(&g_ac, &sc, " ", 1, on_match, &st);
        smtpc__ac_feed(&g_ac, &sc, frame.ptr, frame.len, on_match, &st);
      }
      smtpc__ac_feed(&g_ac, &sc, " ", 1, on_match, &st);
      for (i = 0; i < nlines; i++) {
        if (lines[i].ptr == NULL) continue;
        smtpc__ac_feed(&g_ac, &sc, lines[i].ptr, lines[i].len, on_match, &st);
        smtpc__ac_feed(&g_ac, &sc, " ", 1, on_match, &st);
      }
      if (tail.len) smtpc__ac_feed(&g_ac, &sc, tail.ptr, tail.len, on_match, &st);
    }
    if ((ctx != NULL && ctx->host != NULL) || frame_host.len) {
      const char *h = ctx != NULL && ctx->host != NULL ? ctx->host : frame_host.ptr;
      size_t hl = ctx != NULL && ctx->host != NULL ? strlen(ctx->host) : frame_host.len;
      int pv_h = host_provider(h, hl);
      smtpc__ac_scan_init(&sc);
      if (pv_h >= 0) {
        st.host_pv = pv_h;
      } else if (hl + 2 <= sizeof buf) { /* one feed, as for the text */
        buf[0] = '.';
        memcpy(buf + 1, h, hl);
        buf[hl + 1] = '\n';
        smtpc__ac_feed(&g_host, &sc, buf, hl + 2, on_host, &st);
      } else {
        smtpc__ac_feed(&g_host, &sc, ".", 1, on_host, &st);
        smtpc__ac_feed(&g_host, &sc, h, hl, on_host, &st);
        smtpc__ac_feed(&g_host, &sc, "\n", 1, on_host, &st);
      }
    }
  }

  /* The caller's command, else the one the framing named. */
  if (cmd == NULL && st.cmd >= 0) cmd = cmd_marker_name[st.cmd];
  has_cmd = cmd != NULL;
  out->command = cmd;

  /* 1. provider */
  if (st.host_pv != PV_NONE) pv = st.host_pv;
  else if (st.marks) {
    for (i = 1; i < PV_COUNT; i++)
      if (st.marks & ((uint64_t)1 << i)) { pv = (int)i; break; }
  }
  /* `provider` names the provider recognised by host or marker, even when none of its own
   * rules decided the reason: callers group results by provider. */
  if (pv != PV_NONE) {
    int best = 0;
    out->provider = provider_name[pv];
    /* A provider phrase speaks for the provider unless a generic phrase is more decisive
     * (a provider's wrapper text quoting another server's precise reply). */
    for (i = 0; i < st.nphit; i++)
      if (st.phit[i].pv == pv && st.phit[i].prio > best && st.phit[i].prio >= st.best_prio) {
        best = st.phit[i].prio;
        reason = st.phit[i].reason;
      }
    /* A provider's meaning of its own detail code (Gmail's 4.7.26: unauthenticated) decides;
     * its meaning of a catch-all X.Y.0 code is a default that outright words in the reply
     * ("TLS required for RCPT domain" beside Gmail's 4.7.0) override. */
    if (reason < 0 && (st.best_prio < 3 || !status_catch_all(status)))
      reason = provider_status(pv, status);
    /* An X.2/X.3/X.7 status says the mailbox exists, whatever the provider's words. */
    if (reason == R(USERUNKNOWN) && !cmd_is(cmd, "RCPT") && status_says_filter(status))
      reason = R(FILTERED);
  }
  decided = reason >= 0 || st.best_prio >= 3;

  /* With no reply code: the one code this provider documents for the words seen (a status in
   * hand must be the documented one; two codes fitting give none). */
  if (code == 0 && pv != PV_NONE && st.pcodes) {
    for (i = 0; i < NPCODES; i++) {
      const pcode_rule *e = &pcode_rules[i];
      if (!(st.pcodes & ((uint64_t)1 << i)) || rules[g_pcode_base + i].provider != pv) continue;
      if (status != NULL && strcmp(status, e->status) != 0) continue;
      if (out->documented_code && out->documented_code != e->code) {
        out->documented_code = 0;
        break;
      }
      out->documented_code = e->code;
    }
  }

  /* 2-4. phrases, status, code */
  sr = status != NULL ? status_lookup(snum) : NULL;
  if (reason < 0) {
    if (st.best_prio >= 2) reason = st.best_reason;
    else if (sr && sr->strong) reason = sr->reason;
    else if (st.best_prio == 1) reason = st.best_reason;
    else if (sr) reason = sr->reason;
    else reason = code_lookup(code);
    /* X.4.1 "no answer from host" in a live reply (a reply code before it: "450 4.4.1 No
     * answer from host", "451 4.4.1 [internal] No valid hosts") is the relaying server's
     * network failure now; the same status alone in a DSN is the sender giving up after
     * retrying (expired), which status.def keeps. Only the status decided, no phrase. */
    if (reason == R(EXPIRED) && code != 0 && st.best_prio < 1 && sr && status != NULL &&
        strcmp(status + 1, ".4.1") == 0)
      reason = R(NETWORKERROR);

    /* The command-context rule, stated once for every "no such user" phrase: such a text
     * answering RCPT, or with no command known at all (a bare reply as a person or a probe
     * pastes it), means the mailbox does not exist. Answering a later command (DATA, given by
     * the caller or named by the framing), the address had been accepted, so what refused
     * the message was a filter speaking in those words ("filtered"), unless the status itself
     * says the mailbox is unknown (X.1.1). With no command, an X.2/X.3/X.7 status says the
     * mailbox exists, so the words come from a filter too.
     * Where Sisimai disagrees: it calls a commandless user-unknown text "filtered" (it
     * assumes DATA when the bounce lost the command); the corpus test counts those rows
     * apart (tests/python/test_corpus.py, deliberate_disagreement). */
    if (reason == R(USERUNKNOWN) && !cmd_is(cmd, "RCPT") && !cmd_is(cmd, "MAIL") &&
        !(sr && sr->reason == R(USERUNKNOWN)) &&
        (has_cmd || status_says_filter(status)))
      reason = R(FILTERED);
    /* A plain refusal of MAIL FROM (a weak "blocked") refuses the sender; its unknown
     * address or domain is the rule after this block. */
    if (cmd_is(cmd, "MAIL") && reason == R(BLOCKED) && st.best_prio < 3) reason = R(REJECTED);
    /* The sender too under an X.1.7 or X.1.8 status (RFC 3463: "bad sender's mailbox address
     * syntax", "bad sender's system address"), whatever command it answered: "an address that
     * does not exist" under it is the sender's (Microsoft "550 5.1.7 Invalid address", Gmail "553 5.1.7 The
     * sender address <a@b> is not a valid RFC-5321 address", which Gmail may give at RCPT).
     * At RCPT a domain that does not exist stays the recipient's ("550 5.1.8 Recipient domain
     * must exist"), and other reasons keep their words (LBBS "501 5.1.7 Syntax error in RCPT
     * command"). */
    if (status != NULL &&
        (strcmp(status + 1, ".1.7") == 0 || strcmp(status + 1, ".1.8") == 0) &&
        (reason == R(USERUNKNOWN) ||
         (!cmd_is(cmd, "RCPT") && (reason == R(HOSTUNKNOWN) || reason == R(NOTACCEPT)))))
      reason = R(REJECTED);
    /* Refused at connection or greeting time: the sending host was refused. */
    if ((cmd_is(cmd, "CONN") || cmd_is(cmd, "HELO") || cmd_is(cmd, "EHLO")) &&
        (reason == R(REJECTED) || reason == R(HOSTUNKNOWN) || reason == R(SYNTAXERROR) ||
         reason == R(UNDEFINED)))
      reason = R(BLOCKED);
    /* A refusal of STARTTLS is TLS not starting, whatever the server blames (Exchange "554
     * 5.7.3 Unable to initialize security subsystem", an "Internal error"): what the sender
     * must act on is the failed negotiation. Words that say more (a rate limit, a refused host,
     * a command out of sequence) keep their reason, and a 421 closes the session whatever
     * command it answered. */
    if (cmd_is(cmd, "STARTTLS") && (klass == 4 || klass == 5) && code != 421 &&
        (reason == R(SYSTEMERROR) || reason == R(SECURITYERROR) || reason == R(UNDEFINED) ||
         reason == R(ONHOLD)))
      reason = R(FAILEDSTARTTLS);
    /* A refusal of AUTH is the authentication failing: "no such user" there names the login
     * (the rule above made it "filtered"), not a mailbox. */
    if (cmd_is(cmd, "AUTH") && (klass == 4 || klass == 5) && code != 421 &&
        (reason == R(USERUNKNOWN) || reason == R(FILTERED) || reason == R(UNDEFINED) ||
         reason == R(ONHOLD)))
      reason = R(SECURITYERROR);
  }

  /* The reply to MAIL FROM concerns the sender: an unknown domain, a null MX (RFC 7505
   * 5.7.27) or an unknown mailbox there means the sender was rejected, not the recipient,
   * whether a provider's words said it (GMX's "550-Requested action not taken: mailbox
   * unavailable / 550 Sender address is not allowed" to MAIL) or anyone's. */
  if (cmd_is(cmd, "MAIL") &&
      (reason == R(HOSTUNKNOWN) || reason == R(USERUNKNOWN) || reason == R(NOTACCEPT)))
    reason = R(REJECTED);

  /* Greylisting: named outright, or a generic "try again later" deferral in a 450/451 with a
   * 4.7.x (policy) status or none that no provider rule or decisive phrase explains better.
   * A 421 closes the whole session (volume, reputation, overload: Yahoo's [TSS04], Gmail's
   * "421 4.7.0 Try again later, closing connection"), which greylisting never does. The reason
   * becomes "blocked" (the sending host is refused for now) unless something said more. */
  if (st.grey == 2) out->greylisted = klass == 4 || klass == 0;
  else if (st.grey == 1)
    out->greylisted = (code == 450 || code == 451) && !decided &&
                      (status == NULL || strncmp(status, "4.7.", 4) == 0);
  if (out->greylisted && !decided) reason = SMTPC_REASON_BLOCKED;

  if (klass == 2) reason = SMTPC_REASON_DELIVERED;
  if (reason < 0 && (cmd_is(cmd, "CONN") || cmd_is(cmd, "HELO") || cmd_is(cmd, "EHLO")))
    reason = SMTPC_REASON_BLOCKED;
  /* Nothing decided: "onhold" when the reply has words that no rule places (Sisimai's sense:
   * there is a reason, the text does not give enough to name it, as the bounce parser says of
   * such a bounce); "undefined" when there is nothing to judge but a code. */
  if (reason < 0 || reason == SMTPC_REASON_UNDEFINED)
    reason = has_words(lines, nlines) ? SMTPC_REASON_ONHOLD : SMTPC_REASON_UNDEFINED;

  smtpc__class_set_reason(out, reason, klass);
  if (out->greylisted) {
    out->retry = 1;
    out->retry_after = st.after > 0 ? (int)(st.after > 86400 ? 86400 : st.after) : 300;
  } else if (out->retry && st.after > 0) {
    out->retry_after = (int)(st.after > 86400 ? 86400 : st.after);
  }
}
