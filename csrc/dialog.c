/*
 * dialog.c -- SMTP client dialog for one probe connection; no I/O (see dialog.h).
 *
 * Every command the machine sends pushes what it expects onto a FIFO; every complete reply
 * pops the head, so pipelined and lock-step servers go through the same code. RCPTs are sent
 * while two budgets allow: the burst size, and the server's patience with rejected
 * recipients. Strictly, sent-but-unanswered RCPTs count as if they will be rejected, so even
 * a burst that is rejected whole stays within max_rejections; but that caps pipelining at the
 * budget (8 RCPTs per round trip, fewer after each rejection) even on a server that accepts
 * everything. So the window widens on evidence (see rcpt_window): each acceptance lets one
 * more RCPT be in flight, up to max_rejections more, each rejection halves that extra, and
 * the extra applies once the server has accepted max_rejections RCPTs in the session (before
 * that the strict budget holds; a driver that saw earlier sessions to the same server accept
 * may vouch for some with opts.trusted). The worst case, a server that accepted everything
 * and then rejects a whole burst, ends the session at twice max_rejections (16 by default:
 * past Postfix's soft limit of 10, under its hard limit of 20).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_REJECTIONS 8
#define DEFAULT_MAX_INFLIGHT 64
#define MAX_NAME 255            /* helo name, sender, recipient octets              */
#define TRANSCRIPT_CAP 65536    /* a transcript never grows past this                */

enum { R_UNSENT, R_INFLIGHT, R_DONE };
enum { PH_GREET, PH_TLS, PH_TXN, PH_RSET, PH_QUIT, PH_DONE };
enum { TXN_NONE, TXN_MAIL_SENT, TXN_OPEN, TXN_FAILED };

typedef struct rcpt {
  size_t off;             /* in d->addrs: copied when added, while the caller's is hot */
  size_t len;
  unsigned char utf8;
  unsigned char state;
} rcpt;

typedef struct expect {
  unsigned char cmd;
  size_t idx;
} expect;

struct smtpc_dialog {
  smtpc_dialog_cb cb;
  void *ud;
  char *helo;
  char *mail_from;
  int mail_from_utf8;
  int starttls;
  size_t max_rejections;
  size_t max_inflight;
  int keep_transcript;

  smtpc_reader *reader;
  char *addrs;            /* the recipients' addresses, end to end                     */
  size_t addrslen, addrscap;
  rcpt *r;
  size_t nr, capr;
  size_t cursor;           /* no unsent recipient below this index              */
  expect *q;               /* ring of awaited replies                          */
  size_t qcap, qhead, qlen;
  char *out;
  size_t outlen, outcap;
  char *ts;
  size_t tslen, tscap;

  int phase;
  int txn;
  int toomany;             /* "452 4.5.3 too many recipients" seen this transaction */
  size_t txn_replies;      /* RCPT replies counted in this transaction          */
  size_t inflight;         /* RCPTs sent, not answered                           */
  size_t rejections;       /* RCPT replies >= 400 in this session                */
  size_t accepted;         /* RCPT replies < 400 in this session                 */
  size_t extra;            /* RCPTs allowed in flight beyond the strict budget, once
                              accepted >= max_rejections (see rcpt_window)          */
  unsigned caps;
  int tls;
  int started;
  unsigned long replies;   /* complete replies read: the driver's measure of progress */
};

static const char *const cmd_names[] = {
#define SMTPC__XX(id, name) name,
  SMTPC_CMD_MAP(SMTPC__XX)
#undef SMTPC__XX
};

static const struct { const char *kw; size_t len; } cap_names[] = {
#define SMTPC__XX(id, name) {name, sizeof name - 1},
  SMTPC_CAP_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_cmd_name(int cmd) {
  return cmd >= 0 && cmd < SMTPC_CMD_COUNT ? cmd_names[cmd] : "UNKNOWN";
}

/* ---------------------------------------------------------------------------------------- */
/* buffers */

static int buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 256;
    char *nb;
    while (ncap < *len + n) ncap *= 2;
    nb = realloc(*buf, ncap);
    if (nb == NULL) return SMTPC_ENOMEM;
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  return 0;
}

static void ts_add(smtpc_dialog *d, const char *s, size_t n) {
  static const char cut[] = "...\n";
  if (!d->keep_transcript || d->tslen >= TRANSCRIPT_CAP) return;
  if (d->tslen + n + sizeof cut > TRANSCRIPT_CAP) {
    (void)buf_add(&d->ts, &d->tslen, &d->tscap, cut, sizeof cut - 1);
    d->tslen = TRANSCRIPT_CAP; /* mark as full; the bytes past the cut are never read */
    return;
  }
  (void)buf_add(&d->ts, &d->tslen, &d->tscap, s, n);
}

/* Octets allowed inside a command argument: printable or UTF-8, never a control, never an
 * angle bracket (it would end the path early). */
static int safe_arg(const char *s, size_t n, int allow_empty) {
  size_t i;
  if ((n == 0 && !allow_empty) || n > MAX_NAME) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') return 0;
  }
  return 1;
}

static int q_push(smtpc_dialog *d, int cmd, size_t idx) {
  if (d->qlen == d->qcap) {
    size_t ncap = d->qcap ? d->qcap * 2 : 8, i;
    expect *nq = malloc(ncap * sizeof *nq);
    if (nq == NULL) return SMTPC_ENOMEM;
    for (i = 0; i < d->qlen; i++) nq[i] = d->q[(d->qhead + i) % d->qcap];
    free(d->q);
    d->q = nq;
    d->qcap = ncap;
    d->qhead = 0;
  }
  d->q[(d->qhead + d->qlen) % d->qcap].cmd = (unsigned char)cmd;
  d->q[(d->qhead + d->qlen) % d->qcap].idx = idx;
  d->qlen++;
  return 0;
}

static expect q_pop(smtpc_dialog *d) {
  expect e = d->q[d->qhead];
  d->qhead = (d->qhead + 1) % d->qcap;
  d->qlen--;
  return e;
}

/* ---------------------------------------------------------------------------------------- */
/* events */

static void emit(smtpc_dialog *d, size_t idx, int outcome, int stage, int err, int reason,
                 const char *detail, const smtpc_reply *reply) {
  smtpc_dialog_event ev;
  if (d->r[idx].state == R_INFLIGHT && d->inflight > 0) d->inflight--;
  d->r[idx].state = R_DONE;
  ev.index = idx;
  ev.outcome = outcome;
  ev.stage = stage;
  ev.err = err;
  ev.reason = reason;
  ev.detail = detail;
  ev.reply = reply;
  d->cb(d->ud, &ev);
}

/* The session is over: every recipient without an event gets one, then close. */
static void fail_all(smtpc_dialog *d, int stage, int err, int reason, const char *detail,
                     const smtpc_reply *reply) {
  size_t i;
  d->phase = PH_DONE;
  d->qlen = 0;
  for (i = 0; i < d->nr; i++)
    if (d->r[i].state != R_DONE)
      emit(d, i, SMTPC_RCPT_SESSION, stage, err, reason, detail, reply);
}

/* Recipients not yet sent go back to the driver for another session. */
static void give_back_unsent(smtpc_dialog *d, const char *detail) {
  size_t i;
  for (i = d->cursor; i < d->nr; i++)
    if (d->r[i].state == R_UNSENT)
      emit(d, i, SMTPC_RCPT_UNTRIED, SMTPC_CMD_RCPT, 0, SMTPC_REASON_UNDEFINED, detail, NULL);
}

/* The session ended after QUIT was sent: with QUIT pipelined behind the last RCPTs (see
 * maybe_quit), some may still be unanswered. Those not sent go back; those in flight failed. */
static void end_after_quit(smtpc_dialog *d, int stage, int err, const char *detail) {
  size_t i;
  give_back_unsent(d, "session ended");
  for (i = 0; i < d->nr; i++)
    if (d->r[i].state != R_DONE) {
      fail_all(d, stage, err, SMTPC_REASON_UNDEFINED, detail, NULL);
      return;
    }
  d->phase = PH_DONE;
}

/* ---------------------------------------------------------------------------------------- */
/* commands */

static int send_cmd(smtpc_dialog *d, int cmd, size_t idx, const char *a, size_t alen,
                    const char *b, size_t blen, const char *c, size_t clen) {
  size_t start = d->outlen;
  if (buf_add(&d->out, &d->outlen, &d->outcap, a, alen) != 0 ||
      buf_add(&d->out, &d->outlen, &d->outcap, b, blen) != 0 ||
      buf_add(&d->out, &d->outlen, &d->outcap, c, clen) != 0 ||
      buf_add(&d->out, &d->outlen, &d->outcap, "\r\n", 2) != 0 || q_push(d, cmd, idx) != 0) {
    d->outlen = start;
    fail_all(d, cmd, SMTPC_ENOMEM, SMTPC_REASON_UNDEFINED, "out of memory", NULL);
    return SMTPC_ENOMEM;
  }
  ts_add(d, "C: ", 3);
  ts_add(d, d->out + start, d->outlen - start);
  return 0;
}

static void send_simple(smtpc_dialog *d, int cmd, const char *line) {
  (void)send_cmd(d, cmd, 0, line, strlen(line), "", 0, "", 0);
}

static void send_quit(smtpc_dialog *d) {
  d->phase = PH_QUIT;
  send_simple(d, SMTPC_CMD_QUIT, "QUIT");
}

static int has_unsent(smtpc_dialog *d) {
  while (d->cursor < d->nr && d->r[d->cursor].state != R_UNSENT) d->cursor++;
  return d->cursor < d->nr;
}

/* RCPTs that may be in flight now: the unspent budget, plus the extra earned by acceptances
 * (at most max_rejections), never more than max_inflight. */
static size_t rcpt_window(const smtpc_dialog *d) {
  size_t w;
  if (d->rejections >= d->max_rejections) return 0;
  w = d->max_rejections - d->rejections;
  if (d->accepted >= d->max_rejections) w += d->extra; /* earned from the first acceptance */
  return w < d->max_inflight ? w : d->max_inflight;
}

static void pump_rcpts(smtpc_dialog *d) {
  int pipelining = (d->caps & SMTPC_CAP(PIPELINING)) != 0;
  if (d->phase != PH_TXN || d->toomany) return;
  if (d->txn != TXN_OPEN && !(d->txn == TXN_MAIL_SENT && pipelining)) return;
  while (has_unsent(d)) {
    rcpt *r = &d->r[d->cursor];
    if (d->inflight >= rcpt_window(d)) break;
    if (!pipelining && d->qlen > 0) break;
    r->state = R_INFLIGHT;
    d->inflight++;
    if (send_cmd(d, SMTPC_CMD_RCPT, d->cursor, "RCPT TO:<", 9, d->addrs + r->off, r->len, ">",
                 1) != 0)
      return;
  }
}

/* The rejection budget is spent and the rest given back: nothing more will be sent in this
 * session, whatever the replies in flight say (even a 452 "too many recipients" could only
 * give its RCPT back). So QUIT goes now, behind the RCPTs in flight (RFC 2920 3.1: QUIT may
 * end a pipelined group): their replies still come, before QUIT's, and the session's slot
 * frees a round trip sooner for the session that takes the rest. Otherwise QUIT waits for
 * the replies (end_txn): a 452 may yet call for RSET and another transaction. */
static void maybe_quit(smtpc_dialog *d) {
  if (d->phase != PH_TXN || d->rejections < d->max_rejections || has_unsent(d)) return;
  if (d->qlen > 0 && !(d->caps & SMTPC_CAP(PIPELINING))) return;
  send_quit(d);
}

static void begin_txn(smtpc_dialog *d) {
  static const char no_utf8[] = "server does not offer SMTPUTF8";
  int need_utf8 = d->mail_from_utf8;
  size_t i;
  if (!(d->caps & SMTPC_CAP(SMTPUTF8))) {
    if (d->mail_from_utf8) {
      fail_all(d, SMTPC_CMD_MAIL, 0, SMTPC_REASON_NOTCOMPLIANTRFC, no_utf8, NULL);
      return;
    }
    for (i = d->cursor; i < d->nr; i++)
      if (d->r[i].state == R_UNSENT && d->r[i].utf8)
        emit(d, i, SMTPC_RCPT_SESSION, SMTPC_CMD_MAIL, 0, SMTPC_REASON_NOTCOMPLIANTRFC, no_utf8,
             NULL);
  } else {
    for (i = d->cursor; i < d->nr && !need_utf8; i++)
      need_utf8 = d->r[i].state == R_UNSENT && d->r[i].utf8;
  }
  if (!has_unsent(d)) {
    send_quit(d);
    return;
  }
  if (d->rejections >= d->max_rejections) {
    give_back_unsent(d, "rejection budget of the session spent");
    send_quit(d);
    return;
  }
  d->phase = PH_TXN;
  d->txn = TXN_MAIL_SENT;
  d->toomany = 0;
  d->txn_replies = 0;
  if (send_cmd(d, SMTPC_CMD_MAIL, 0, "MAIL FROM:<", 11, d->mail_from, strlen(d->mail_from),
               need_utf8 ? "> SMTPUTF8" : ">", need_utf8 ? 10 : 1) != 0)
    return;
  pump_rcpts(d);
  maybe_quit(d);
}

/* Nothing is awaited in the transaction: open another one, or finish. */
static void end_txn(smtpc_dialog *d) {
  if (!has_unsent(d)) {
    send_quit(d);
  } else if (d->rejections >= d->max_rejections) {
    give_back_unsent(d, "rejection budget of the session spent");
    send_quit(d);
  } else {
    d->phase = PH_RSET;
    d->txn = TXN_NONE;
    send_simple(d, SMTPC_CMD_RSET, "RSET");
  }
}

/* ---------------------------------------------------------------------------------------- */
/* replies */

static int ci_prefix(const char *s, size_t n, const char *kw, size_t kwlen) {
  size_t i;
  if (n < kwlen) return 0;
  for (i = 0; i < kwlen; i++) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    if (c != kw[i]) return 0;
  }
  return n == kwlen || s[kwlen] == ' ' || s[kwlen] == '=';
}

static unsigned parse_caps(const smtpc_reply *rep) {
  unsigned caps = 0;
  size_t i, k;
  for (i = 1; i < rep->nlines; i++) /* line 0 is the server's greeting */
    for (k = 0; k < SMTPC_CAPBIT_COUNT; k++)
      if (ci_prefix(rep->lines[i].ptr, rep->lines[i].len, cap_names[k].kw, cap_names[k].len))
        caps |= 1u << k;
  return caps;
}

static int ci_contains(const smtpc_span *s, const char *needle) {
  size_t n = strlen(needle), i, j;
  for (i = 0; i + n <= s->len; i++) {
    for (j = 0; j < n; j++) {
      char c = s->ptr[i + j];
      if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
      if (c != needle[j]) break;
    }
    if (j == n) return 1;
  }
  return 0;
}

/* RFC 5321 4.5.3.1.10: 452 (or the older 552) "too many recipients". */
static int too_many(const smtpc_reply *rep) {
  size_t i;
  if (rep->code != 452 && rep->code != 552) return 0;
  if (strcmp(rep->status, "4.5.3") == 0 || strcmp(rep->status, "5.5.3") == 0) return 1;
  for (i = 0; i < rep->nlines; i++)
    if (ci_contains(&rep->lines[i], "too many recipients")) return 1;
  return 0;
}

static void ts_reply(smtpc_dialog *d, const smtpc_reply *rep) {
  size_t i;
  char head[8];
  if (!d->keep_transcript) return;
  for (i = 0; i < rep->nlines || i == 0; i++) {
    int last = i + 1 >= rep->nlines;
    head[0] = 'S'; head[1] = ':'; head[2] = ' ';
    head[3] = (char)('0' + rep->code / 100);
    head[4] = (char)('0' + rep->code / 10 % 10);
    head[5] = (char)('0' + rep->code % 10);
    head[6] = last ? ' ' : '-';
    ts_add(d, head, 7);
    if (i < rep->nlines) ts_add(d, rep->lines[i].ptr, rep->lines[i].len);
    ts_add(d, "\r\n", 2);
  }
}

static void on_rcpt_reply(smtpc_dialog *d, size_t idx, const smtpc_reply *rep) {
  rcpt *r = &d->r[idx];
  if (r->state != R_INFLIGHT) return; /* already decided, e.g. its MAIL failed */
  if ((d->toomany && rep->code >= 400) || (too_many(rep) && d->txn_replies > 0)) {
    /* the server stopped counting this transaction: try it again in the next one */
    d->toomany = 1;
    d->inflight--;
    r->state = R_UNSENT;
    if (idx < d->cursor) d->cursor = idx;
    return;
  }
  if (rep->code >= 400) {
    d->rejections++;
    d->extra /= 2;
  } else {
    d->accepted++;
    if (d->extra < d->max_rejections) d->extra++;
  }
  d->txn_replies++;
  emit(d, idx, SMTPC_RCPT_REPLY, SMTPC_CMD_RCPT, 0, SMTPC_REASON_UNDEFINED, NULL, rep);
  /* nothing more will be sent: hand the rest to another session now, not a round trip later */
  if (d->rejections == d->max_rejections)
    give_back_unsent(d, "rejection budget of the session spent");
}

static void on_reply(smtpc_dialog *d, const smtpc_reply *rep) {
  expect e;
  int cls = rep->code / 100;
  d->replies++;
  ts_reply(d, rep);
  if (d->qlen == 0) { /* a reply nobody asked for */
    fail_all(d, SMTPC_CMD_QUIT, rep->code == 421 ? 0 : SMTPC_EPROTO, SMTPC_REASON_UNDEFINED,
             rep->code == 421 ? NULL : "unexpected reply", rep);
    return;
  }
  e = q_pop(d);
  if (rep->code == 421) { /* the server is closing the channel, whatever it answered */
    fail_all(d, e.cmd, 0, SMTPC_REASON_UNDEFINED, NULL, rep);
    return;
  }
  switch (e.cmd) {
  case SMTPC_CMD_BANNER:
    if (cls == 2) send_cmd(d, SMTPC_CMD_EHLO, 0, "EHLO ", 5, d->helo, strlen(d->helo), "", 0);
    else if (cls == 4 || cls == 5) fail_all(d, e.cmd, 0, SMTPC_REASON_UNDEFINED, NULL, rep);
    else fail_all(d, e.cmd, SMTPC_EPROTO, SMTPC_REASON_UNDEFINED, "bad banner", rep);
    return;
  case SMTPC_CMD_EHLO:
  case SMTPC_CMD_HELO:
    if (cls == 5 && e.cmd == SMTPC_CMD_EHLO) {
      send_cmd(d, SMTPC_CMD_HELO, 0, "HELO ", 5, d->helo, strlen(d->helo), "", 0);
    } else if (cls != 2) {
      fail_all(d, e.cmd, cls == 4 || cls == 5 ? 0 : SMTPC_EPROTO, SMTPC_REASON_UNDEFINED, NULL,
               rep);
    } else {
      d->caps = e.cmd == SMTPC_CMD_EHLO ? parse_caps(rep) : 0;
      if (!d->tls && d->starttls != SMTPC_STARTTLS_OFF && (d->caps & SMTPC_CAP(STARTTLS)))
        send_simple(d, SMTPC_CMD_STARTTLS, "STARTTLS");
      else if (!d->tls && d->starttls == SMTPC_STARTTLS_REQUIRED)
        fail_all(d, e.cmd, 0, SMTPC_REASON_FAILEDSTARTTLS, "STARTTLS not offered", NULL);
      else
        begin_txn(d);
    }
    return;
  case SMTPC_CMD_STARTTLS:
    if (cls == 2) d->phase = PH_TLS;
    else if (d->starttls == SMTPC_STARTTLS_REQUIRED)
      fail_all(d, e.cmd, 0, SMTPC_REASON_FAILEDSTARTTLS, "STARTTLS refused", rep);
    else begin_txn(d);
    return;
  case SMTPC_CMD_MAIL:
    if (d->txn != TXN_MAIL_SENT) return;
    if (cls == 2) {
      d->txn = TXN_OPEN;
    } else { /* no RCPT of this transaction can succeed: the sender was refused */
      size_t i;
      d->txn = TXN_FAILED;
      for (i = 0; i < d->nr; i++)
        if (d->r[i].state != R_DONE)
          emit(d, i, SMTPC_RCPT_SESSION, e.cmd, cls == 4 || cls == 5 ? 0 : SMTPC_EPROTO,
               SMTPC_REASON_UNDEFINED, NULL, rep);
    }
    break;
  case SMTPC_CMD_RCPT:
    on_rcpt_reply(d, e.idx, rep);
    break;
  case SMTPC_CMD_RSET:
    if (cls == 2) begin_txn(d);
    else {
      give_back_unsent(d, "RSET refused");
      send_quit(d);
    }
    return;
  case SMTPC_CMD_QUIT:
    end_after_quit(d, SMTPC_CMD_RCPT, SMTPC_EPROTO, "no reply before QUIT's");
    return;
  default:
    return;
  }
  if (d->phase == PH_TXN) {
    pump_rcpts(d);
    if (d->phase == PH_TXN && d->qlen == 0) end_txn(d);
    else maybe_quit(d);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* public (internal) API */

smtpc_dialog *smtpc_dialog_new(const smtpc_dialog_opts *cfg, smtpc_dialog_cb cb, void *ud,
                                 int *err) {
  smtpc_dialog *d;
  const char *helo = cfg->helo ? cfg->helo : "localhost";
  const char *from = cfg->mail_from ? cfg->mail_from : "";
  size_t hl = strlen(helo), fl = strlen(from), i;
  *err = SMTPC_EINVAL;
  if (cb == NULL || !safe_arg(helo, hl, 0) || !safe_arg(from, fl, 1)) return NULL;
  for (i = 0; i < hl; i++)
    if (helo[i] == ' ') return NULL;
  *err = SMTPC_ENOMEM;
  d = calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  d->helo = malloc(hl + 1);
  d->mail_from = malloc(fl + 1);
  d->reader = smtpc_reader_new(NULL);
  if (d->helo == NULL || d->mail_from == NULL || d->reader == NULL || q_push(d, SMTPC_CMD_BANNER, 0)) {
    smtpc_dialog_free(d);
    return NULL;
  }
  memcpy(d->helo, helo, hl + 1);
  memcpy(d->mail_from, from, fl + 1);
  d->cb = cb;
  d->ud = ud;
  d->mail_from_utf8 = cfg->mail_from_utf8;
  d->starttls = cfg->starttls;
  d->max_rejections = cfg->max_rejections ? cfg->max_rejections : DEFAULT_MAX_REJECTIONS;
  d->max_inflight = cfg->max_inflight ? cfg->max_inflight : DEFAULT_MAX_INFLIGHT;
  d->keep_transcript = cfg->transcript;
  /* earlier sessions' acceptances count as this one's: the window may start wide */
  d->accepted = cfg->trusted < d->max_rejections ? cfg->trusted : d->max_rejections;
  d->extra = d->accepted;
  d->phase = PH_GREET;
  *err = 0;
  return d;
}

void smtpc_dialog_free(smtpc_dialog *d) {
  if (d == NULL) return;
  smtpc_reader_free(d->reader);
  free(d->helo);
  free(d->mail_from);
  free(d->r);
  free(d->addrs);
  free(d->q);
  free(d->out);
  free(d->ts);
  free(d);
}

static long add_rcpt(smtpc_dialog *d, const char *addr, size_t len, int smtputf8) {
  if (addr == NULL || !safe_arg(addr, len, 0)) return SMTPC_EBADADDRESS;
  if (d->nr == d->capr) {
    size_t ncap = d->capr ? d->capr * 2 : 4;
    rcpt *nr = realloc(d->r, ncap * sizeof *nr);
    if (nr == NULL) return SMTPC_ENOMEM;
    d->r = nr;
    d->capr = ncap;
  }
  d->r[d->nr].off = d->addrslen;
  if (buf_add(&d->addrs, &d->addrslen, &d->addrscap, addr, len) != 0) return SMTPC_ENOMEM;
  d->r[d->nr].len = len;
  d->r[d->nr].utf8 = smtputf8 ? 1 : 0;
  d->r[d->nr].state = R_UNSENT;
  return (long)d->nr++;
}

long smtpc_dialog_add_rcpt(smtpc_dialog *d, const char *addr, size_t len, int smtputf8) {
  if (d->started || d->phase != PH_GREET) return SMTPC_EINVAL;
  return add_rcpt(d, addr, len, smtputf8);
}

/* A session under way takes one more recipient until its transaction begins (banner, EHLO,
 * STARTTLS are not over yet): MAIL FROM (and its SMTPUTF8 parameter) and the first RCPTs go
 * out with it as if it had been there from the start, at no cost of a round trip. */
long smtpc__dialog_add_late(smtpc_dialog *d, const char *addr, size_t len, int smtputf8) {
  if (d->phase != PH_GREET && d->phase != PH_TLS) return SMTPC_EINVAL;
  return add_rcpt(d, addr, len, smtputf8);
}

int smtpc_dialog_feed(smtpc_dialog *d, const char *buf, size_t len) {
  smtpc_reply rep;
  int rc;
  if (d->phase == PH_DONE || d->phase == PH_TLS || len == 0) return 0;
  d->started = 1;
  rc = smtpc_reader_feed(d->reader, buf, len);
  while (rc == 0) {
    rc = smtpc_reader_next(d->reader, &rep);
    if (rc <= 0) break;
    on_reply(d, &rep);
    rc = 0;
    if (d->phase == PH_DONE) return 0;
    if (d->phase == PH_TLS) {
      /* RFC 3207 5: bytes after "220 ready" that arrived in clear are an injection; drop. */
      smtpc_reader *fresh = smtpc_reader_new(NULL);
      if (fresh == NULL) {
        fail_all(d, SMTPC_CMD_STARTTLS, SMTPC_ENOMEM, SMTPC_REASON_UNDEFINED, "out of memory",
                 NULL);
        return SMTPC_ENOMEM;
      }
      smtpc_reader_free(d->reader);
      d->reader = fresh;
      return 0;
    }
  }
  if (rc < 0) {
    int stage = d->qlen ? d->q[d->qhead].cmd : SMTPC_CMD_QUIT;
    if (d->phase == PH_QUIT) { /* garbage after QUIT: only unanswered RCPTs care */
      end_after_quit(d, stage, rc == SMTPC_ENOMEM ? rc : SMTPC_EPROTO, smtpc_strerror(rc));
      return 0;
    }
    fail_all(d, stage, rc == SMTPC_ENOMEM ? rc : SMTPC_EPROTO, SMTPC_REASON_UNDEFINED,
             smtpc_strerror(rc), NULL);
    return rc;
  }
  return 0;
}

void smtpc_dialog_timeout(smtpc_dialog *d) {
  int stage = d->qlen ? d->q[d->qhead].cmd : SMTPC_CMD_TLS;
  d->started = 1;
  if (d->phase == PH_DONE) return;
  if (d->phase == PH_QUIT) {
    end_after_quit(d, stage, SMTPC_ETIMEOUT, "no reply in time");
    return;
  }
  fail_all(d, d->phase == PH_TLS ? SMTPC_CMD_TLS : stage, SMTPC_ETIMEOUT,
           d->phase == PH_TLS ? SMTPC_REASON_FAILEDSTARTTLS : SMTPC_REASON_UNDEFINED,
           "no reply in time", NULL);
}

void smtpc_dialog_eof(smtpc_dialog *d, int err) {
  int stage = d->qlen ? d->q[d->qhead].cmd : SMTPC_CMD_TLS;
  d->started = 1;
  if (d->phase == PH_DONE) return;
  if (d->phase == PH_QUIT) {
    end_after_quit(d, stage, err ? err : SMTPC_ECLOSED, "connection closed");
    return;
  }
  fail_all(d, d->phase == PH_TLS ? SMTPC_CMD_TLS : stage, err ? err : SMTPC_ECLOSED,
           d->phase == PH_TLS ? SMTPC_REASON_FAILEDSTARTTLS : SMTPC_REASON_UNDEFINED,
           "connection closed", NULL);
}

void smtpc_dialog_tls_done(smtpc_dialog *d, int ok) {
  if (d->phase != PH_TLS) return;
  if (!ok) {
    fail_all(d, SMTPC_CMD_TLS, SMTPC_ETLS, SMTPC_REASON_FAILEDSTARTTLS, "TLS handshake failed",
             NULL);
    return;
  }
  d->tls = 1;
  d->caps = 0; /* RFC 3207: forget what was learnt in clear */
  d->phase = PH_GREET;
  send_cmd(d, SMTPC_CMD_EHLO, 0, "EHLO ", 5, d->helo, strlen(d->helo), "", 0);
}

unsigned smtpc_dialog_want(const smtpc_dialog *d) {
  if (d->phase == PH_DONE) return SMTPC_DIALOG_WANT_CLOSE;
  if (d->phase == PH_TLS) return SMTPC_DIALOG_WANT_TLS;
  return d->qlen > 0 ? SMTPC_DIALOG_WANT_REPLY : 0;
}

const char *smtpc_dialog_output(const smtpc_dialog *d, size_t *len) {
  *len = d->outlen;
  return d->out;
}

void smtpc_dialog_consume(smtpc_dialog *d) {
  d->outlen = 0;
  if (d->outcap > 4096) { /* a big pipelined burst is over: give the memory back */
    free(d->out);
    d->out = NULL;
    d->outcap = 0;
  }
}

unsigned smtpc_dialog_caps(const smtpc_dialog *d) { return d->caps; }
unsigned long smtpc_dialog_replies(const smtpc_dialog *d) { return d->replies; }
int smtpc_dialog_tls(const smtpc_dialog *d) { return d->tls; }

const char *smtpc_dialog_transcript(const smtpc_dialog *d, size_t *len) {
  *len = d->tslen > TRANSCRIPT_CAP ? TRANSCRIPT_CAP : d->tslen;
  return d->ts;
}

size_t smtpc_dialog_memory(const smtpc_dialog *d) {
  return sizeof *d + d->capr * sizeof(rcpt) + d->qcap * sizeof(expect) + d->outcap + d->tscap +
         strlen(d->helo) + strlen(d->mail_from) + 2;
}
