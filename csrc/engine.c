/*
 * engine.c -- the libuv driver of the probe: resolve, group by MX, schedule sessions politely,
 * run one dialog (dialog.c) per connection, retry, and report exactly one result per address.
 *
 * Shapes:
 *   item     one input address (or a catch-all probe) and the last thing learnt about it;
 *   domain   a recipient domain: its route, and its catch-all state for the run;
 *   group    the addresses whose domains share a primary MX: they share sessions;
 *   host     one MX IP address: its session count, pause, backoff, "down" mark;
 *   session  one TCP connection and its dialog.
 * One timer ("tick") does all the scheduling, so nothing is reported re-entrantly from
 * smtpc_verifier_add. Memory is freed only from close callbacks.
 */
#include "smtpcode.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "tls.h"

#define MAX_ATTEMPTS 4      /* sessions an address may lose before it is reported        */
#define MAX_TEMP_RETRIES 2  /* retries of a 4xx (greylisting) RCPT reply                   */
#define PROBE_TRIES 3       /* catch-all probes a domain may lose or have deferred          */
#define HOST_DOWN_MS 60000  /* a host that refused us is skipped this long                  */
#define READ_BUF 65536

/* ---------------------------------------------------------------------------------------- */
/* intrusive lists */

typedef struct link {
  struct link *prev, *next;
} link;

#define CONTAINER(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

static void l_init(link *h) { h->prev = h->next = h; }
static int l_empty(const link *h) { return h->next == h; }
static void l_del(link *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}
static void l_push(link *h, link *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static void l_push_front(link *h, link *n) {
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}

/* ---------------------------------------------------------------------------------------- */
/* types */

typedef struct saved { /* a reply kept past its read buffer */
  smtpc_reply r;
  smtpc_span lines[1];
} saved;

enum { IT_NEW, IT_IMMEDIATE, IT_RESOLVING, IT_QUEUED, IT_DELAYED, IT_SESSION, IT_HELD, IT_DONE };
/* A domain's catch-all probe: none sent yet, waiting at the head of its group's queue (accepted
 * addresses of the domain are held for it), sent, or answered (or given up on). */
enum { PROBE_NONE, PROBE_QUEUED, PROBE_INFLIGHT, PROBE_DONE };
enum { D_RESOLVING, D_READY, D_FAILED };

struct group;
struct domain;
struct host;

typedef struct item {
  link q;                 /* the list of its state                                    */
  link all;               /* every unreported input, in add order (deadline FIFO)     */
  struct domain *dom;
  uint64_t tag;
  char *input;
  size_t input_len;
  char *rcpt;             /* what RCPT TO carries: local part @ A-label domain          */
  size_t rcpt_len;
  unsigned utf8 : 1, probe : 1, reported : 1, in_dialog : 1;
  int state;
  int attempts, temp_retries;
  uint64_t deadline_ms, ready_ms;
  uint64_t added_hr;
  /* the last thing learnt */
  int reason, err, tls, greylisted, verdict, have_verdict;
  saved *reply;
  smtpc_class cls;
  const char *detail;
  const char *mx, *mx_addr;
  char *transcript;
  size_t transcript_len;
} item;

typedef struct host {
  struct host *hnext;
  smtpc_sockaddr sa;
  char text[64];
  int active;
  int strikes;
  int no_tls;
  uint64_t next_ms;       /* no new session before (pause, backoff)                     */
  uint64_t down_until;    /* refused a connection or greeted with 4xx: skip until       */
  /* why it is down, for the addresses that never reached it */
  int fail_err, fail_reason;
  const char *fail_detail;
  saved *fail_reply;
  smtpc_class fail_cls;
} host;

typedef struct group {
  struct group *hnext;
  link node;
  char *key;
  smtpc_route *route;
  int own_route;          /* built here (address literal): free(), not smtpc_route_free */
  link queue;
  size_t nqueued;
  double reject_rate;     /* moving average of its RCPT replies >= 400 (see reject_odds) */
  unsigned long replies;  /* RCPT replies seen                                           */
} group;

typedef struct domain {
  struct domain *hnext;
  char *name;
  int state;
  int dns_error, null_mx;
  group *grp;
  link waiting;           /* items waiting for the route                               */
  link held;              /* accepted items waiting for the catch-all answer           */
  int catch_all;
  int probe_state;
  int probe_tries;
  char *probe_rcpt;       /* one random address per domain for the run: a greylisting
                             server must see the same one again on the retry            */
  void *batch_mark;
  unsigned long rcpt_ok, rcpt_rejected; /* RCPT replies to its addresses (see reject_odds) */
} domain;

typedef struct session {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  link node;
  struct smtpc_verifier *v;
  group *grp;
  host *h;
  const char *mx;
  smtpc_dialog *d;
  smtpc__tls *tls;
  int tls_state;          /* 0 clear, 1 handshaking, 2 up                               */
  int connected, closing, nclosing;
  unsigned long progress, armed_at; /* replies read + writes made; value when last armed */
  int backed_off;         /* one 421 or rate limit backs the host off once, not per address */
  item **items;
  size_t nitems;
} session;

typedef struct table {
  void **slots;
  size_t cap, n;
} table;

struct smtpc_verifier {
  uv_loop_t *loop;
  smtpc_verify_opts o;
  char *mail_from, *helo, *bind, *dns, *ca;
  smtpc_sockaddr bind_sa;   /* parsed bind_address (port 0)                             */
  int mail_from_utf8;
  smtpc_result_cb cb;
  void *data;
  smtpc_resolver *resolver;
  smtpc__tls_ctx *tls_ctx;
  uv_timer_t tick;
  int tick_armed;
  uint64_t tick_at;
  link immediate, delayed, all, groups, sessions;
  table domains, groups_t, hosts;
  size_t pending, active;
  int ended, canceled, closing, resolver_open, tick_open, in_tick;
  smtpc_verifier_close_cb close_cb;
  char readbuf[READ_BUF];
  char plainbuf[16384];
};

static void kick(smtpc_verifier *v);
static void on_tick(uv_timer_t *t);
static struct host *host_for(smtpc_verifier *v, const smtpc_sockaddr *sa);
static void maybe_finish_close(smtpc_verifier *v);

/* ---------------------------------------------------------------------------------------- */
/* names and options */

static const char *const verdict_names[] = {
#define SMTPC__XX(id, name) name,
  SMTPC_VERDICT_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_verdict_name(int verdict) {
  return verdict >= 0 && verdict < SMTPC_VERDICT_COUNT ? verdict_names[verdict] : NULL;
}

int smtpc_starttls_from_name(const char *name, size_t len) {
  static const char *const names[] = {"opportunistic", "required", "off"};
  int i;
  if (name == NULL) return -1;
  for (i = 0; i < 3; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
  return -1;
}

void smtpc_verify_opts_init(smtpc_verify_opts *o) {
  memset(o, 0, sizeof *o);
  o->port = 25;
  o->concurrency = 100;
  o->per_host = 2;
  o->rcpt_per_session = 50;
  o->max_rejections = 8;
  o->starttls = SMTPC_STARTTLS_OPPORTUNISTIC;
  o->catch_all = 1;
  o->greylist_delay = 60.0;
  o->deadline = 300.0;
  o->timeout = 30.0;
  o->connect_timeout = 10.0;
  o->host_pause = 0.1;
}

static char *dupstr(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s);
  p = malloc(n + 1);
  if (p) memcpy(p, s, n + 1);
  return p;
}

static uint64_t secs_ms(double s) { return s <= 0 ? 0 : (uint64_t)(s * 1000.0 + 0.5); }

/* ---------------------------------------------------------------------------------------- */
/* string-keyed hash table (open chaining through each record's first field) */

typedef struct hrec {
  struct hrec *hnext;
} hrec;

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
  return h;
}

static void *t_get(table *t, const char *key, const char *(*key_of)(void *)) {
  hrec *r;
  if (t->cap == 0) return NULL;
  for (r = t->slots[fnv(key) & (t->cap - 1)]; r; r = r->hnext)
    if (strcmp(key_of(r), key) == 0) return r;
  return NULL;
}

static int t_put(table *t, void *rec, const char *(*key_of)(void *)) {
  size_t i;
  hrec *r = rec;
  if ((t->n + 1) * 4 > t->cap * 3) { /* keep the load under 3/4 */
    size_t ncap = t->cap ? t->cap * 2 : 64;
    void **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL) return SMTPC_ENOMEM;
    for (i = 0; i < t->cap; i++) {
      hrec *x = t->slots[i];
      while (x) {
        hrec *nx = x->hnext;
        size_t b = fnv(key_of(x)) & (ncap - 1);
        x->hnext = ns[b];
        ns[b] = x;
        x = nx;
      }
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
  }
  i = fnv(key_of(rec)) & (t->cap - 1);
  r->hnext = t->slots[i];
  t->slots[i] = r;
  t->n++;
  return 0;
}

static const char *domain_key(void *p) { return ((domain *)p)->name; }
static const char *group_key(void *p) { return ((group *)p)->key; }
static const char *host_key(void *p) { return ((host *)p)->text; }

/* ---------------------------------------------------------------------------------------- */
/* items and results */

static saved *save_reply(const smtpc_reply *r) {
  size_t i, text = 0, n = r->nlines ? r->nlines : 1;
  saved *s;
  char *p;
  for (i = 0; i < r->nlines; i++) text += r->lines[i].len + 1;
  s = malloc(sizeof *s + n * sizeof(smtpc_span) + text);
  if (s == NULL) return NULL;
  s->r = *r;
  p = (char *)(s->lines + n);
  for (i = 0; i < r->nlines; i++) {
    memcpy(p, r->lines[i].ptr, r->lines[i].len);
    s->lines[i].ptr = p;
    s->lines[i].len = r->lines[i].len;
    p += r->lines[i].len;
    *p++ = '\0';
  }
  s->r.lines = s->lines;
  return s;
}

static void item_free(item *it) {
  free(it->input);
  free(it->rcpt);
  free(it->reply);
  free(it->transcript);
  free(it);
}

static void item_detach(item *it) {
  l_del(&it->q);
  if (it->state == IT_QUEUED && it->dom && it->dom->grp) it->dom->grp->nqueued--;
}

/* Report one input: the one and only result for it. */
static void report(smtpc_verifier *v, item *it, int verdict, int reason) {
  smtpc_result r;
  if (it->reported || it->probe) return;
  memset(&r, 0, sizeof r);
  r.tag = it->tag;
  r.address = it->input;
  r.address_len = it->input_len;
  r.verdict = verdict;
  r.reason = reason;
  if (it->reply) r.reply = it->reply->r;
  r.cls = it->cls;
  r.mx = it->mx;
  r.mx_addr = it->mx_addr;
  r.catch_all = it->dom ? it->dom->catch_all : -1;
  if (!v->o.catch_all) r.catch_all = -1;
  r.tls = it->tls;
  r.greylisted = it->greylisted;
  r.error = it->err;
  r.detail = it->detail;
  r.duration = (double)(uv_hrtime() - it->added_hr) / 1e9;
  r.transcript = it->transcript;
  r.transcript_len = it->transcript_len;
  it->reported = 1;
  item_detach(it);
  l_del(&it->all);
  it->state = IT_DONE;
  v->pending--;
  v->cb(v, &r, v->data);
  if (!it->in_dialog) item_free(it); /* the result pointed into it until now */
}

int smtpc_verdict_of(int code, int reason, int catch_all) {
  if (code >= 200 && code < 300)
    return catch_all == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE;
  switch (reason) {
  case SMTPC_REASON_USERUNKNOWN:
  case SMTPC_REASON_HASMOVED:
  case SMTPC_REASON_SUSPEND:
  case SMTPC_REASON_HOSTUNKNOWN:
  case SMTPC_REASON_NOTACCEPT: /* only a permanent refusal says the address is dead */
    return code >= 500 && code < 600 ? SMTPC_VERDICT_UNDELIVERABLE : SMTPC_VERDICT_UNKNOWN;
  case SMTPC_REASON_MAILBOXFULL:
    return SMTPC_VERDICT_RISKY;
  default:
    return SMTPC_VERDICT_UNKNOWN;
  }
}

/* The verdict for what an item last learnt, short of a 2xx (decided with catch-all). */
static int verdict_of(const item *it) {
  return smtpc_verdict_of(it->reply ? it->reply->r.code : 0, it->reason, -1);
}

/* Remember what a session said about an item. */
static void learn(smtpc_verifier *v, item *it, session *s, int stage, const smtpc_reply *rep,
                  int err, int reason, const char *detail) {
  smtpc_context ctx;
  free(it->reply);
  it->reply = NULL;
  memset(&it->cls, 0, sizeof it->cls);
  it->cls.reason = SMTPC_REASON_UNDEFINED;
  it->reason = SMTPC_REASON_UNDEFINED;
  if (rep) {
    it->reply = save_reply(rep);
    ctx.command = smtpc_cmd_name(stage);
    ctx.host = s && s->mx ? s->mx : (it->dom ? it->dom->name : NULL);
    smtpc_classify_lines(rep->code, rep->status, rep->lines, rep->nlines, &ctx, &it->cls);
    it->reason = it->cls.reason;
  }
  if (reason != SMTPC_REASON_UNDEFINED) it->reason = reason;
  else if (!rep && err) it->reason = SMTPC_REASON_NETWORKERROR;
  it->err = err;
  it->detail = detail;
  it->greylisted = it->cls.greylisted;
  if (s) {
    it->mx = s->mx;
    it->mx_addr = s->h->text;
    it->tls = smtpc_dialog_tls(s->d);
    if (v->o.transcript) {
      size_t n;
      const char *t = smtpc_dialog_transcript(s->d, &n);
      free(it->transcript);
      it->transcript = NULL;
      it->transcript_len = 0;
      if (t && (it->transcript = malloc(n + 1)) != NULL) {
        memcpy(it->transcript, t, n);
        it->transcript[n] = '\0';
        it->transcript_len = n;
      }
    }
  }
}

static void enqueue(smtpc_verifier *v, item *it, int front) {
  group *g = it->dom->grp;
  item_detach(it);
  it->state = IT_QUEUED;
  if (front) l_push_front(&g->queue, &it->q);
  else l_push(&g->queue, &it->q);
  g->nqueued++;
  kick(v);
}

static void delay_item(smtpc_verifier *v, item *it, uint64_t ms) {
  item_detach(it);
  it->state = IT_DELAYED;
  it->ready_ms = uv_now(v->loop) + ms;
  l_push(&v->delayed, &it->q);
  kick(v);
}

/* A session lost this item: try again, or report the last thing learnt. */
static void retry_or_report(smtpc_verifier *v, item *it, uint64_t after_ms) {
  if (it->probe) return;
  if (++it->attempts >= MAX_ATTEMPTS || uv_now(v->loop) + after_ms >= it->deadline_ms) {
    report(v, it, verdict_of(it), it->reason);
    return;
  }
  if (after_ms) delay_item(v, it, after_ms);
  else enqueue(v, it, 0);
}

static void flush_held(smtpc_verifier *v, domain *d) {
  while (!l_empty(&d->held)) {
    item *it = CONTAINER(d->held.next, item, q);
    int ca = v->o.catch_all ? d->catch_all : -1;
    report(v, it, ca == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE, it->reason);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* deciding after a dialog event */

static void backoff_host(session *s, const item *it) {
  uint64_t ms = it->cls.retry_after > 0 ? (uint64_t)it->cls.retry_after * 1000
                                        : (uint64_t)2000 << (s->h->strikes < 5 ? s->h->strikes : 5);
  /* every address of the session hears the same 421: count it as one strike */
  if (s->backed_off) return;
  s->backed_off = 1;
  s->h->strikes++;
  if (s->h->next_ms < uv_now(s->v->loop) + ms) s->h->next_ms = uv_now(s->v->loop) + ms;
}

static void host_down(session *s, const item *it) {
  host *h = s->h;
  h->down_until = uv_now(s->v->loop) + HOST_DOWN_MS;
  free(h->fail_reply);
  h->fail_reply = it->reply ? save_reply(&it->reply->r) : NULL;
  h->fail_cls = it->cls;
  h->fail_err = it->err;
  h->fail_reason = it->reason;
  h->fail_detail = it->detail;
}

/* An address that never reached its MX because every host is down takes their excuse. */
static void adopt_host_failure(smtpc_verifier *v, item *it, const smtpc_route *route) {
  size_t m, a;
  if (it->reply || it->err) return;
  for (m = 0; m < route->nmx; m++)
    for (a = 0; a < route->mx[m].naddrs; a++) {
      host *h = host_for(v, &route->mx[m].addrs[a]);
      if (h == NULL || (h->fail_reply == NULL && h->fail_err == 0)) continue;
      it->reply = h->fail_reply ? save_reply(&h->fail_reply->r) : NULL;
      it->cls = h->fail_cls;
      it->err = h->fail_err;
      it->reason = h->fail_reason;
      it->detail = h->fail_detail;
      it->mx = route->mx[m].host;
      it->mx_addr = h->text;
      return;
    }
}

/* A domain's probe: one RCPT to a random local part (the same one for the whole run: a
 * greylisting server must see it again on the retry). The item is never reported. */
static item *probe_new(domain *d) {
  unsigned char rnd[10];
  size_t k, dl;
  item *pr;
  if (d->probe_rcpt == NULL) {
    dl = strlen(d->name);
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0 ||
        (d->probe_rcpt = malloc(7 + sizeof rnd + dl + 1)) == NULL)
      return NULL;
    memcpy(d->probe_rcpt, "smtpc-", 6);
    for (k = 0; k < sizeof rnd; k++)
      d->probe_rcpt[6 + k] = "abcdefghijklmnopqrstuvwxyz234567"[rnd[k] & 31];
    d->probe_rcpt[6 + sizeof rnd] = '@';
    memcpy(d->probe_rcpt + 7 + sizeof rnd, d->name, dl + 1);
  }
  pr = calloc(1, sizeof *pr);
  if (pr == NULL || (pr->rcpt = dupstr(d->probe_rcpt)) == NULL) {
    free(pr);
    return NULL;
  }
  pr->rcpt_len = strlen(pr->rcpt);
  pr->probe = 1;
  pr->dom = d;
  pr->reason = pr->cls.reason = SMTPC_REASON_UNDEFINED;
  l_init(&pr->q);
  l_init(&pr->all);
  return pr;
}

/* The probe went unanswered: its session spent its rejection budget before sending it, or
 * ended (421 "too many errors", a reset ...). Accepted addresses of the domain may be held for
 * it; reporting them now would lose the catch-all answer, so the probe goes again at the head
 * of the group's queue, where the next session sends it first. Only losses that are the
 * session's fault count against PROBE_TRIES (count = 1); an unsent probe does not. */
static void probe_lost(smtpc_verifier *v, domain *d, int count) {
  item *pr;
  if (d->probe_state != PROBE_INFLIGHT) return;
  if (count && ++d->probe_tries >= PROBE_TRIES) {
    d->probe_state = PROBE_DONE;
    flush_held(v, d);
    return;
  }
  d->probe_state = PROBE_NONE; /* the next session with an address of the domain adds one */
  if (l_empty(&d->held) || v->canceled) return;
  if ((pr = probe_new(d)) == NULL) {
    flush_held(v, d);
    return;
  }
  d->probe_state = PROBE_QUEUED;
  enqueue(v, pr, 1);
}

/* The probe's RCPT was answered. */
static void on_probe(smtpc_verifier *v, item *it, const smtpc_dialog_event *ev) {
  domain *d = it->dom;
  int code = ev->reply ? ev->reply->code : 0;
  if (ev->outcome != SMTPC_RCPT_REPLY) {
    probe_lost(v, d, 1);
    return;
  }
  if (code >= 200 && code < 300) d->catch_all = 1;
  else if (code >= 500 && code < 600) d->catch_all = 0;
  /* a deferred probe (greylisting) goes again with the next session, a few times at most */
  d->probe_state = d->catch_all != -1 || ++d->probe_tries >= PROBE_TRIES ? PROBE_DONE : PROBE_NONE;
  flush_held(v, d);
}

static void on_rcpt_reply(smtpc_verifier *v, session *s, item *it) {
  int code = it->reply ? it->reply->r.code : 0;
  domain *d = it->dom;
  if (code >= 200 && code < 300) {
    int ca = v->o.catch_all ? d->catch_all : -1;
    if (ca == -1 && v->o.catch_all &&
        (d->probe_state == PROBE_INFLIGHT || d->probe_state == PROBE_QUEUED)) {
      item_detach(it);
      it->state = IT_HELD;
      l_push(&d->held, &it->q);
      return;
    }
    report(v, it, ca == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE, it->reason);
  } else if (code >= 400 && code < 500) {
    uint64_t delay = secs_ms(v->o.greylist_delay);
    if (it->reason == SMTPC_REASON_MAILBOXFULL) {
      report(v, it, SMTPC_VERDICT_RISKY, it->reason);
    } else if (it->reason == SMTPC_REASON_RATELIMITED) {
      backoff_host(s, it);
      retry_or_report(v, it, 0);
    } else if (v->o.greylist_delay >= 0 && it->temp_retries < MAX_TEMP_RETRIES &&
               uv_now(v->loop) + delay < it->deadline_ms) {
      it->temp_retries++;
      delay_item(v, it, delay);
    } else {
      report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
    }
  } else if (code >= 500 && code < 600) {
    report(v, it, verdict_of(it), it->reason);
  } else {
    it->err = SMTPC_EPROTO;
    report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  }
}

static void on_session_fail(smtpc_verifier *v, session *s, item *it,
                            const smtpc_dialog_event *ev) {
  int code = ev->reply ? ev->reply->code : 0;
  if (ev->stage == SMTPC_CMD_TLS && v->o.starttls == SMTPC_STARTTLS_OPPORTUNISTIC &&
      (ev->reason == SMTPC_REASON_FAILEDSTARTTLS || ev->err == SMTPC_ECLOSED || ev->err == SMTPC_ETIMEOUT)) {
    /* the handshake broke the connection (an alert, a hang-up or silence): next time, in clear */
    s->h->no_tls = 1;
    retry_or_report(v, it, 0);
  } else if (ev->reason != SMTPC_REASON_UNDEFINED) {
    report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  } else if (code >= 400 && code < 500 && ev->stage == SMTPC_CMD_BANNER) {
    host_down(s, it); /* a 4xx greeting: try the next MX */
    retry_or_report(v, it, 0);
  } else if (code >= 400 && code < 500) { /* 421 "too many errors", rate limits ... */
    backoff_host(s, it);
    retry_or_report(v, it, 0);
  } else if (code >= 500 && code < 600) {
    report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  } else {
    if (ev->stage == SMTPC_CMD_BANNER) host_down(s, it);
    retry_or_report(v, it, 0);
  }
}

static void on_event(void *ud, const smtpc_dialog_event *ev) {
  session *s = ud;
  smtpc_verifier *v = s->v;
  item *it = s->items[ev->index];
  it->in_dialog = 0;
  if (!it->probe) s->items[ev->index] = NULL; /* from here the item lives on its own */
  if (it->reported) { /* expired or canceled while its RCPT was out */
    item_free(it);
    return;
  }
  if (ev->outcome == SMTPC_RCPT_UNTRIED) {
    if (it->probe) probe_lost(v, it->dom, 0);
    else {
      enqueue(v, it, 1);
    }
    return;
  }
  if (ev->outcome == SMTPC_RCPT_REPLY) { /* 1/8 weight: about the last dozen replies */
    int rejected = ev->reply && ev->reply->code >= 400;
    s->grp->reject_rate += ((rejected ? 1.0 : 0.0) - s->grp->reject_rate) / 8.0;
    s->grp->replies++;
    if (!it->probe && rejected) it->dom->rcpt_rejected++;
    else if (!it->probe) it->dom->rcpt_ok++;
  }
  learn(v, it, s, ev->stage, ev->reply, ev->err, ev->reason, ev->detail);
  if (it->probe) {
    on_probe(v, it, ev);
    return;
  }
  if (ev->outcome == SMTPC_RCPT_REPLY) on_rcpt_reply(v, s, it);
  else on_session_fail(v, s, it, ev);
}

/* ---------------------------------------------------------------------------------------- */
/* sessions */

typedef struct wreq {
  uv_write_t req;
  char data[1];
} wreq;

static void sess_close(session *s);

static void on_written(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error or EOF */
  free(CONTAINER(req, wreq, req));
}

static void sess_send(session *s, const char *p, size_t n) {
  wreq *w;
  uv_buf_t b;
  if (n == 0 || s->closing) return;
  w = malloc(offsetof(wreq, data) + n);
  if (w == NULL) {
    smtpc_dialog_eof(s->d, SMTPC_ENOMEM);
    return;
  }
  memcpy(w->data, p, n);
  s->progress++;
  b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written) != 0) {
    free(w);
    smtpc_dialog_eof(s->d, SMTPC_ECLOSED);
  }
}

static void tls_flush(session *s) {
  while (s->tls && smtpc__tls_pending(s->tls) > 0) {
    size_t n = smtpc__tls_take(s->tls, s->v->plainbuf, sizeof s->v->plainbuf);
    if (n == 0) break;
    sess_send(s, s->v->plainbuf, n);
  }
}

static void sess_flush(session *s) {
  size_t n;
  const char *out = smtpc_dialog_output(s->d, &n);
  if (n == 0) return;
  if (s->tls_state == 2) {
    if (smtpc__tls_write(s->tls, out, n) != 0) {
      smtpc_dialog_consume(s->d);
      smtpc_dialog_eof(s->d, SMTPC_ETLS);
      return;
    }
    smtpc_dialog_consume(s->d);
    tls_flush(s);
  } else {
    sess_send(s, out, n);
    smtpc_dialog_consume(s->d);
  }
}

static void on_sess_timer(uv_timer_t *t);

static void arm(session *s, double secs) {
  uv_timer_start(&s->timer, on_sess_timer, secs_ms(secs), 0);
}

/* After every input to the dialog: send, start TLS, re-arm or close. */
static void sess_step(session *s) {
  unsigned want;
  int i;
  for (i = 0; i < 3 && !s->closing; i++) {
    sess_flush(s);
    want = smtpc_dialog_want(s->d);
    if (want & SMTPC_DIALOG_WANT_CLOSE) {
      sess_close(s);
      return;
    }
    if ((want & SMTPC_DIALOG_WANT_TLS) && s->tls_state == 0) {
      s->tls = s->v->tls_ctx ? smtpc__tls_new(s->v->tls_ctx, s->mx) : NULL;
      if (s->tls == NULL || smtpc__tls_handshake(s->tls) < 0) {
        smtpc_dialog_tls_done(s->d, 0);
        continue; /* the dialog has given up: close on the next round */
      }
      s->tls_state = 1;
      tls_flush(s);
    }
    if (s->tls_state == 1 || (want & SMTPC_DIALOG_WANT_REPLY)) {
      unsigned long now = s->progress + smtpc_dialog_replies(s->d);
      if (now != s->armed_at || !uv_is_active((uv_handle_t *)&s->timer)) {
        s->armed_at = now;
        arm(s, s->v->o.timeout);
      }
    } else {
      uv_timer_stop(&s->timer);
    }
    return;
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  session *s = h->data;
  (void)hint;
  *buf = uv_buf_init(s->v->readbuf, sizeof s->v->readbuf);
}

static void feed_tls(session *s, const char *p, size_t n) {
  if (smtpc__tls_feed(s->tls, p, n) != 0) {
    smtpc_dialog_eof(s->d, SMTPC_ENOMEM);
    return;
  }
  if (s->tls_state == 1) {
    int rc = smtpc__tls_handshake(s->tls);
    tls_flush(s);
    if (rc < 0) {
      smtpc_dialog_tls_done(s->d, 0);
      return;
    }
    if (rc == 0) return;
    s->tls_state = 2;
    smtpc_dialog_tls_done(s->d, 1);
    sess_flush(s);
  }
  for (;;) {
    long got = smtpc__tls_read(s->tls, s->v->plainbuf, sizeof s->v->plainbuf);
    if (got == 0) break;
    if (got < 0) {
      smtpc_dialog_eof(s->d, got == SMTPC_ECLOSED ? SMTPC_ECLOSED : SMTPC_ETLS);
      break;
    }
    smtpc_dialog_feed(s->d, s->v->plainbuf, (size_t)got);
    if (s->closing) break;
    sess_flush(s);
  }
  tls_flush(s);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  session *s = st->data;
  if (s->closing) return;
  if (nread < 0) {
    smtpc_dialog_eof(s->d, SMTPC_ECLOSED);
  } else if (nread > 0) {
    if (s->tls_state == 0) smtpc_dialog_feed(s->d, buf->base, (size_t)nread);
    else feed_tls(s, buf->base, (size_t)nread);
  }
  if (!s->closing) sess_step(s);
}

/* The connection never came up: the host is down for this run (next MX), items go back. */
static void connect_failed(session *s, int err, const char *detail) {
  size_t i;
  int down = 0;
  for (i = 0; i < s->nitems; i++) {
    item *it = s->items[i];
    if (it == NULL) continue;
    it->in_dialog = 0;
    s->items[i] = NULL;
    if (it->reported) {
      item_free(it);
      continue;
    }
    if (it->probe) {
      probe_lost(s->v, it->dom, 1);
      item_free(it);
      continue;
    }
    learn(s->v, it, NULL, SMTPC_CMD_BANNER, NULL, err, SMTPC_REASON_NETWORKERROR, detail);
    it->mx = s->mx;
    it->mx_addr = s->h->text;
    if (!down++) host_down(s, it);
    retry_or_report(s->v, it, 0);
  }
  if (!down) { /* only probes or reported items were aboard: mark the host anyway */
    s->h->down_until = uv_now(s->v->loop) + HOST_DOWN_MS;
    s->h->fail_err = err;
    s->h->fail_reason = SMTPC_REASON_NETWORKERROR;
    s->h->fail_detail = detail;
  }
  sess_close(s);
}

static void on_connect(uv_connect_t *req, int status) {
  session *s = req->data;
  if (s->closing) return;
  if (status < 0) {
    connect_failed(s, SMTPC_ECLOSED, uv_strerror(status));
    return;
  }
  s->connected = 1;
  if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) != 0) {
    connect_failed(s, SMTPC_ECLOSED, "read failed");
    return;
  }
  arm(s, s->v->o.timeout); /* the banner */
}

static void on_sess_timer(uv_timer_t *t) {
  session *s = t->data;
  if (s->closing) return;
  if (!s->connected) {
    connect_failed(s, SMTPC_ETIMEOUT, "connect timed out");
    return;
  }
  if (s->tls_state == 1) smtpc_dialog_tls_done(s->d, 0);
  else smtpc_dialog_timeout(s->d);
  sess_step(s);
}

static void sess_free(session *s) {
  smtpc_verifier *v = s->v;
  size_t i;
  for (i = 0; i < s->nitems; i++) {
    item *it = s->items[i];
    if (it == NULL) continue;
    s->items[i] = NULL;
    if (it->probe) { /* answered or not, a probe's memory goes with its session */
      if (it->in_dialog) probe_lost(v, it->dom, 1);
      item_free(it);
    } else if (it->reported) {
      item_free(it);
    } else { /* the dialog never told: cannot happen unless closed from outside */
      it->in_dialog = 0;
      learn(v, it, NULL, SMTPC_CMD_QUIT, NULL, SMTPC_ECLOSED, SMTPC_REASON_NETWORKERROR,
            "session ended");
      retry_or_report(v, it, 0);
    }
  }
  free(s->items);
  smtpc_dialog_free(s->d);
  smtpc__tls_free(s->tls);
  s->h->active--;
  v->active--;
  l_del(&s->node);
  free(s);
  kick(v);
  maybe_finish_close(v);
}

static void on_sess_closed(uv_handle_t *h) {
  session *s = h->data;
  if (--s->nclosing == 0) sess_free(s);
}

static void sess_close(session *s) {
  if (s->closing) return;
  s->closing = 1;
  s->nclosing = 2;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, on_sess_closed);
  uv_close((uv_handle_t *)&s->tcp, on_sess_closed);
}

/* How likely an RCPT to an address of d is to be rejected: d's own record once it has one,
 * and never below the group's recent rate (which sees an unknown-heavy remainder first). */
static double reject_odds(const domain *d, const group *g) {
  unsigned long seen = d->rcpt_ok + d->rcpt_rejected;
  double p = seen >= 4 ? (double)d->rcpt_rejected / (double)seen : 0.0;
  return p > g->reject_rate ? p : g->reject_rate;
}

/* Take up to rcpt_per_session items from g's queue (catch-all probes included) and connect.
 * A session sends RCPTs until about max_rejections were rejected; the addresses it holds
 * beyond that wait inside it, out of reach of other sessions, only to be given back at its
 * end. A block of unknown users (a domain of them, or what is left once the rest is
 * answered) would then go through one session at a time, max_rejections per round, while
 * other session slots sit idle. So a session stops taking addresses once the rejections it
 * can expect (reject_odds, summed) would pass its budget: rcpt_per_session addresses while
 * replies are 2xx, max_rejections from a domain of unknown users. */
static int start_session(smtpc_verifier *v, group *g, host *h, const char *mx) {
  smtpc_dialog_opts cfg;
  session *s;
  size_t cap = (size_t)v->o.rcpt_per_session, n = 0, nprobes = 0, i;
  double expect = 0, budget = (double)v->o.max_rejections;
  smtpc_sockaddr sa;
  link *p;
  int err;

  s = calloc(1, sizeof *s);
  if (s == NULL) return SMTPC_ENOMEM;
  s->items = calloc(cap + 1, sizeof *s->items); /* + a probe beyond a cap of 1 */
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = v->helo;
  cfg.mail_from = v->mail_from;
  cfg.mail_from_utf8 = v->mail_from_utf8;
  cfg.starttls = h->no_tls || v->tls_ctx == NULL ? SMTPC_STARTTLS_OFF : v->o.starttls;
  if (v->o.starttls == SMTPC_STARTTLS_REQUIRED) cfg.starttls = SMTPC_STARTTLS_REQUIRED;
  cfg.max_rejections = (size_t)v->o.max_rejections;
  cfg.transcript = v->o.transcript;
  /* the group's recent replies were mostly 2xx: the new session may pipeline wide at once */
  if (g->replies >= cfg.max_rejections && g->reject_rate <= 0.25) cfg.trusted = cfg.max_rejections;
  s->d = s->items ? smtpc_dialog_new(&cfg, on_event, s, &err) : NULL;
  if (s->d == NULL) {
    free(s->items);
    free(s);
    return SMTPC_ENOMEM;
  }
  s->v = v;
  s->grp = g;
  s->h = h;
  s->mx = mx;

  /* queue order: a probe that was lost before (at the head, see probe_lost), then real
   * addresses */
  for (p = g->queue.next; p != &g->queue && n + nprobes < cap;) {
    item *it = CONTAINER(p, item, q);
    domain *d = it->dom;
    int need = v->o.catch_all && d->catch_all == -1 && d->probe_state == PROBE_NONE &&
               d->batch_mark != s && !it->probe;
    long idx;
    double odds = it->probe ? 1.0 : reject_odds(d, g);
    p = p->next;
    if (n + nprobes + 1 + (need ? 1 : 0) > cap && n > 0) break;
    if ((double)n >= budget && expect + odds > budget + 0.5) break;
    expect += odds;
    idx = smtpc_dialog_add_rcpt(s->d, it->rcpt, it->rcpt_len, it->utf8);
    if (idx < 0 && it->probe) { /* never: we made it */
      item_detach(it);
      item_free(it);
      d->probe_state = PROBE_DONE;
      flush_held(v, d);
      continue;
    }
    if (idx < 0) { /* never: the parser refused these first; refuse them again anyway */
      learn(v, it, NULL, 0, NULL, 0, SMTPC_REASON_SYNTAXERROR, smtpc_strerror((int)idx));
      report(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_SYNTAXERROR);
      continue;
    }
    item_detach(it);
    it->state = IT_SESSION;
    it->in_dialog = 1;
    if (it->probe) d->probe_state = PROBE_INFLIGHT;
    s->items[n++] = it;
    if (need) {
      d->batch_mark = s;
      nprobes++;
    }
  }
  /* then one random local part per domain whose catch-all state is unknown */
  for (i = 0; i < n && nprobes > 0; i++) {
    domain *d = s->items[i]->dom;
    item *pr;
    if (d->batch_mark != s) continue;
    d->batch_mark = NULL;
    nprobes--;
    if ((pr = probe_new(d)) == NULL) continue;
    if (smtpc_dialog_add_rcpt(s->d, pr->rcpt, pr->rcpt_len, 0) < 0) {
      item_free(pr);
      continue;
    }
    pr->in_dialog = 1;
    pr->state = IT_SESSION;
    d->probe_state = PROBE_INFLIGHT;
    s->items[n++] = pr;
  }
  s->nitems = n;
  if (n == 0) {
    smtpc_dialog_free(s->d);
    free(s->items);
    free(s);
    return 0;
  }

  l_init(&s->node);
  l_push(&v->sessions, &s->node);
  h->active++;
  v->active++;
  h->next_ms = uv_now(v->loop) + secs_ms(v->o.host_pause);
  uv_tcp_init(v->loop, &s->tcp);
  uv_timer_init(v->loop, &s->timer);
  s->tcp.data = s->timer.data = s->creq.data = s;
  sa = h->sa;
  if (sa.sa.sa_family == AF_INET6) sa.in6.sin6_port = htons((uint16_t)v->o.port);
  else sa.in.sin_port = htons((uint16_t)v->o.port);
  err = 0;
  if (v->bind && v->bind_sa.sa.sa_family == sa.sa.sa_family)
    err = uv_tcp_bind(&s->tcp, &v->bind_sa.sa, 0);
  if (err == 0) err = uv_tcp_connect(&s->creq, &s->tcp, &sa.sa, on_connect);
  if (err != 0) {
    connect_failed(s, SMTPC_ECLOSED, uv_strerror(err));
    return 0;
  }
  arm(s, v->o.connect_timeout);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* scheduling */

static struct host *host_for(smtpc_verifier *v, const smtpc_sockaddr *sa) {
  char text[64];
  host *h;
  if (sa->sa.sa_family == AF_INET6) uv_ip6_name(&sa->in6, text, sizeof text);
  else uv_ip4_name(&sa->in, text, sizeof text);
  h = t_get(&v->hosts, text, host_key);
  if (h) return h;
  h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->sa = *sa;
  memcpy(h->text, text, sizeof text);
  if (t_put(&v->hosts, h, host_key) != 0) {
    free(h);
    return NULL;
  }
  return h;
}

static void wake_at(uint64_t *next, uint64_t t) {
  if (*next == 0 || t < *next) *next = t;
}

/* Start what can start for g now; note when it can next start something in *next. */
static void schedule_group(smtpc_verifier *v, group *g, uint64_t now, uint64_t *next) {
  while (g->nqueued > 0 && v->active < (size_t)v->o.concurrency) {
    size_t m, a;
    host *pick = NULL;
    const char *mx = NULL;
    int any_up = 0;
    for (m = 0; m < g->route->nmx && !any_up; m++) {
      const smtpc_mx *x = &g->route->mx[m];
      for (a = 0; a < x->naddrs; a++) {
        host *h = host_for(v, &x->addrs[a]);
        if (h == NULL || h->down_until > now) continue;
        any_up = 1;
        if (h->active >= v->o.per_host) continue;
        if (h->next_ms > now) {
          wake_at(next, h->next_ms);
          continue;
        }
        if (pick == NULL || h->active < pick->active) {
          pick = h;
          mx = x->host;
        }
      }
    }
    if (!any_up) { /* every MX refused us: the addresses get what we last learnt */
      while (!l_empty(&g->queue)) {
        item *it = CONTAINER(g->queue.next, item, q);
        if (it->probe) { /* nobody to ask: the held addresses go as they are */
          item_detach(it);
          it->dom->probe_state = PROBE_DONE;
          flush_held(v, it->dom);
          item_free(it);
          continue;
        }
        adopt_host_failure(v, it, g->route);
        if (it->reason == SMTPC_REASON_UNDEFINED) it->reason = SMTPC_REASON_NETWORKERROR;
        report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
      }
      return;
    }
    if (pick == NULL) return; /* a session end or the pause will wake us */
    if (start_session(v, g, pick, mx) != 0) return;
  }
}

static void expire(smtpc_verifier *v, uint64_t now, uint64_t *next) {
  while (!l_empty(&v->all)) {
    item *it = CONTAINER(v->all.next, item, all);
    if (it->deadline_ms > now) {
      wake_at(next, it->deadline_ms);
      return;
    }
    if (it->err == 0 && it->reply == NULL) it->err = SMTPC_ETIMEOUT;
    it->detail = "deadline reached";
    report(v, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_EXPIRED);
  }
}

static void schedule(smtpc_verifier *v) {
  uint64_t now = uv_now(v->loop), next = 0;
  link *p, *n;
  size_t rounds = 0;
  while (!l_empty(&v->immediate) && !v->canceled) {
    item *it = CONTAINER(v->immediate.next, item, q);
    report(v, it, it->verdict, it->reason);
  }
  if (!v->canceled) expire(v, now, &next);
  for (p = v->delayed.next; p != &v->delayed && !v->canceled; p = n) {
    item *it = CONTAINER(p, item, q);
    n = p->next;
    if (it->ready_ms <= now) enqueue(v, it, 0);
    else wake_at(&next, it->ready_ms);
  }
  for (p = v->groups.next; p != &v->groups && !v->canceled; p = n) {
    n = p->next;
    if (v->active >= (size_t)v->o.concurrency) break;
    schedule_group(v, CONTAINER(p, group, node), now, &next);
    rounds++;
  }
  if (v->canceled) return;
  if (rounds > 1) { /* round robin: the next pass starts with another group */
    link *first = v->groups.next;
    l_del(first);
    l_push(&v->groups, first);
  }
  if (next && !(v->tick_armed && v->tick_at <= next)) {
    v->tick_armed = 1;
    v->tick_at = next;
    uv_timer_start(&v->tick, on_tick, next > now ? next - now : 0, 0);
  }
}

static void on_tick(uv_timer_t *t) {
  smtpc_verifier *v = t->data;
  v->tick_armed = 0;
  schedule(v);
}

static void kick(smtpc_verifier *v) {
  if (!v->tick_open || v->canceled) return;
  if (v->tick_armed && v->tick_at <= uv_now(v->loop)) return;
  v->tick_armed = 1;
  v->tick_at = uv_now(v->loop);
  uv_timer_start(&v->tick, on_tick, 0, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* domains, routes, groups */

/* The route to an address literal: one "MX", the address itself. One allocation. */
typedef struct literal_route {
  smtpc_route r;
  smtpc_mx m;
  smtpc_sockaddr a;
  char host[64];
} literal_route;

static smtpc_route *make_literal_route(const char *lit) {
  literal_route *b;
  size_t n = strlen(lit);
  const char *p = lit + 1;
  if (n < 3 || lit[0] != '[' || lit[n - 1] != ']') return NULL;
  n -= 2;
  if (n > 5 && (p[0] == 'I' || p[0] == 'i') && (p[1] == 'P' || p[1] == 'p') &&
      (p[2] == 'v' || p[2] == 'V') && p[3] == '6' && p[4] == ':') {
    p += 5;
    n -= 5;
  }
  b = calloc(1, sizeof *b);
  if (b == NULL || n >= sizeof b->host) {
    free(b);
    return NULL;
  }
  memcpy(b->host, p, n);
  b->host[n] = '\0';
  if (uv_ip4_addr(b->host, 0, &b->a.in) != 0 && uv_ip6_addr(b->host, 0, &b->a.in6) != 0) {
    free(b);
    return NULL;
  }
  b->m.host = b->host;
  b->m.naddrs = 1;
  b->m.addrs = &b->a;
  b->r.domain = b->host;
  b->r.implicit = 1;
  b->r.nmx = 1;
  b->r.mx = &b->m;
  return &b->r;
}

/* Domains with the same MX set (hosts and preferences) share a group, hence sessions. The
 * whole set is the key, not only the best host: a backup MX that takes mail for one domain may
 * refuse to relay for another. Hosts of equal preference are keyed in name order. */
static char *route_key(const smtpc_route *route, int own) {
  size_t i, j, len = 4, used;
  const smtpc_mx **order = malloc(route->nmx * sizeof *order);
  char *key;
  if (order == NULL) return NULL;
  for (i = 0; i < route->nmx; i++) {
    const smtpc_mx *x = &route->mx[i];
    for (j = i; j > 0 && (order[j - 1]->preference > x->preference ||
                          (order[j - 1]->preference == x->preference &&
                           strcmp(order[j - 1]->host, x->host) > 0)); j--)
      order[j] = order[j - 1];
    order[j] = x;
    len += strlen(x->host) + 14;
  }
  key = malloc(len);
  if (key != NULL) {
    memcpy(key, own ? "ip:" : "mx:", 4);
    used = 3;
    for (i = 0; i < route->nmx; i++)
      used += (size_t)snprintf(key + used, len - used, "%d %s,", order[i]->preference,
                               order[i]->host);
  }
  free(order);
  return key;
}

static void route_free(smtpc_route *route, int own) {
  if (own) free(route);
  else smtpc_route_free(route);
}

/* Takes ownership of route: it becomes the group's, or is freed. */
static group *group_for(smtpc_verifier *v, smtpc_route *route, int own) {
  char *key = route_key(route, own);
  group *g = key ? t_get(&v->groups_t, key, group_key) : NULL;
  if (g || key == NULL) {
    free(key);
    route_free(route, own);
    return g;
  }
  g = calloc(1, sizeof *g);
  if (g) g->key = key;
  if (g == NULL || t_put(&v->groups_t, g, group_key) != 0) {
    free(g);
    free(key);
    route_free(route, own);
    return NULL;
  }
  g->route = route;
  g->own_route = own;
  l_init(&g->queue);
  l_push(&v->groups, &g->node);
  return g;
}

static void push_immediate(smtpc_verifier *v, item *it, int verdict, int reason) {
  item_detach(it);
  it->state = IT_IMMEDIATE;
  it->verdict = verdict;
  it->reason = reason;
  l_push(&v->immediate, &it->q);
  kick(v);
}

/* The domain has no usable route: the contract's DNS verdicts. */
static void dns_fail(smtpc_verifier *v, domain *d, item *it) {
  if (d->null_mx) {
    it->detail = "the domain takes no mail (null MX, RFC 7505)";
    push_immediate(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_NOTACCEPT);
  } else if (d->dns_error == SMTPC_DNS_NXDOMAIN || d->dns_error == SMTPC_DNS_NOADDRESS) {
    it->detail = smtpc_dns_error_message(d->dns_error);
    push_immediate(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_HOSTUNKNOWN);
  } else {
    it->err = SMTPC_EDNS;
    it->detail = d->dns_error ? smtpc_dns_error_message(d->dns_error) : "DNS lookup failed";
    push_immediate(v, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_NETWORKERROR);
  }
}

typedef struct domain_req { /* resolver callback data: the domain and its verifier */
  smtpc_verifier *v;
  domain *d;
} domain_req;

static void on_route(int status, const smtpc_route *route, void *data) {
  domain_req *rq = data;
  smtpc_verifier *v = rq->v;
  domain *d = rq->d;
  smtpc_route *copy = NULL;
  free(rq);
  d->state = D_FAILED;
  if (status == 0 && route->error == SMTPC_DNS_OK && !route->null_mx && route->nmx > 0 &&
      (copy = smtpc_route_dup(route)) != NULL && (d->grp = group_for(v, copy, 0)) != NULL)
    d->state = D_READY;
  else if (status == 0)
    d->dns_error = route->error, d->null_mx = route->null_mx;
  while (!l_empty(&d->waiting)) {
    item *it = CONTAINER(d->waiting.next, item, q);
    if (d->state == D_READY) enqueue(v, it, 0);
    else dns_fail(v, d, it);
  }
}

static domain *domain_for(smtpc_verifier *v, const char *name, int literal) {
  domain *d = t_get(&v->domains, name, domain_key);
  domain_req *rq;
  if (d) return d;
  d = calloc(1, sizeof *d);
  if (d == NULL || (d->name = dupstr(name)) == NULL || t_put(&v->domains, d, domain_key) != 0) {
    if (d) free(d->name);
    free(d);
    return NULL;
  }
  l_init(&d->waiting);
  l_init(&d->held);
  d->catch_all = -1;
  if (literal) {
    smtpc_route *r = make_literal_route(name);
    d->state = D_FAILED;
    d->dns_error = SMTPC_DNS_NOADDRESS;
    if (r && (d->grp = group_for(v, r, 1)) != NULL) d->state = D_READY;
    return d;
  }
  d->state = D_RESOLVING;
  rq = malloc(sizeof *rq);
  if (rq) {
    rq->v = v;
    rq->d = d;
  }
  if (rq == NULL || smtpc_resolve_mx(v->resolver, name, on_route, rq) != 0) {
    free(rq);
    d->state = D_FAILED;
  }
  return d;
}

/* ---------------------------------------------------------------------------------------- */
/* public API */

int smtpc_verifier_add(smtpc_verifier *v, const char *address, size_t len, uint64_t tag) {
  smtpc_address a;
  item *it;
  domain *d;
  int kind = 0, rc;
  if (v == NULL || v->ended || v->canceled || v->closing || (address == NULL && len > 0))
    return SMTPC_EINVAL;
  it = calloc(1, sizeof *it);
  if (it == NULL || (it->input = malloc(len + 1)) == NULL) {
    free(it);
    return SMTPC_ENOMEM;
  }
  if (len) memcpy(it->input, address, len);
  it->input[len] = '\0';
  it->input_len = len;
  it->tag = tag;
  it->added_hr = uv_hrtime();
  /* bindings add between uv_run calls, maybe long after the loop last looked at the clock */
  uv_update_time(v->loop);
  it->deadline_ms = uv_now(v->loop) + secs_ms(v->o.deadline);
  it->reason = SMTPC_REASON_UNDEFINED;
  it->cls.reason = SMTPC_REASON_UNDEFINED;
  l_init(&it->q);
  l_push(&v->all, &it->all);
  v->pending++;

  rc = len ? smtpc_parse_address(address, len, &a, &kind) : SMTPC_EBADADDRESS;
  if (rc == SMTPC_ENOMEM) {
    l_del(&it->all);
    v->pending--;
    item_free(it);
    return SMTPC_ENOMEM;
  }
  if (rc != 0) {
    it->detail = len ? smtpc_address_kind_message(kind) : "the address is empty";
    push_immediate(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_SYNTAXERROR);
    return 0;
  }
  it->rcpt_len = strlen(a.ascii_address);
  it->rcpt = dupstr(a.ascii_address);
  it->utf8 = a.utf8_local ? 1 : 0;
  d = it->rcpt ? domain_for(v, a.ascii_domain, a.literal) : NULL;
  if (d == NULL) {
    l_del(&it->all);
    v->pending--;
    item_free(it);
    return SMTPC_ENOMEM;
  }
  it->dom = d;
  if (d->state == D_READY) {
    enqueue(v, it, 0);
  } else if (d->state == D_RESOLVING) {
    it->state = IT_RESOLVING;
    l_push(&d->waiting, &it->q);
  } else {
    dns_fail(v, d, it);
  }
  return 0;
}

void smtpc_verifier_end(smtpc_verifier *v) {
  v->ended = 1;
  kick(v);
}

size_t smtpc_verifier_pending(const smtpc_verifier *v) { return v->pending; }
int smtpc_verifier_done(const smtpc_verifier *v) { return v->ended && v->pending == 0; }
void *smtpc_verifier_data(const smtpc_verifier *v) { return v->data; }

void smtpc_verifier_cancel(smtpc_verifier *v) {
  link *p;
  if (v->canceled) return;
  v->ended = 1;
  v->canceled = 1;
  if (v->tick_open) uv_timer_stop(&v->tick);
  v->tick_armed = 0;
  for (p = v->sessions.next; p != &v->sessions; p = p->next)
    sess_close(CONTAINER(p, session, node));
  while (!l_empty(&v->all)) {
    item *it = CONTAINER(v->all.next, item, all);
    it->err = SMTPC_ECANCELED;
    it->detail = "canceled";
    report(v, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_EXPIRED);
  }
}

static void free_all(smtpc_verifier *v) {
  size_t i;
  for (i = 0; i < v->domains.cap; i++) {
    domain *d = v->domains.slots[i];
    while (d) {
      domain *n = d->hnext;
      free(d->name);
      free(d->probe_rcpt);
      free(d);
      d = n;
    }
  }
  for (i = 0; i < v->groups_t.cap; i++) {
    group *g = v->groups_t.slots[i];
    while (g) {
      group *n = g->hnext;
      while (!l_empty(&g->queue)) { /* only probes can be left (see probe_lost) */
        item *it = CONTAINER(g->queue.next, item, q);
        l_del(&it->q);
        item_free(it);
      }
      route_free(g->route, g->own_route);
      free(g->key);
      free(g);
      g = n;
    }
  }
  for (i = 0; i < v->hosts.cap; i++) {
    host *h = v->hosts.slots[i];
    while (h) {
      host *n = h->hnext;
      free(h->fail_reply);
      free(h);
      h = n;
    }
  }
  free(v->domains.slots);
  free(v->groups_t.slots);
  free(v->hosts.slots);
  smtpc__tls_ctx_free(v->tls_ctx);
  free(v->mail_from);
  free(v->helo);
  free(v->bind);
  free(v->dns);
  free(v->ca);
}

static void maybe_finish_close(smtpc_verifier *v) {
  if (!v->closing || v->tick_open || v->resolver_open || !l_empty(&v->sessions)) return;
  free_all(v);
  if (v->close_cb) v->close_cb(v);
  free(v);
}

static void on_tick_closed(uv_handle_t *h) {
  smtpc_verifier *v = h->data;
  v->tick_open = 0;
  maybe_finish_close(v);
}

static void on_resolver_closed(void *data) {
  smtpc_verifier *v = data;
  v->resolver_open = 0;
  maybe_finish_close(v);
}

void smtpc_verifier_close(smtpc_verifier *v, smtpc_verifier_close_cb close_cb) {
  if (v->closing) return;
  v->close_cb = close_cb;
  smtpc_verifier_cancel(v);
  v->closing = 1;
  uv_close((uv_handle_t *)&v->tick, on_tick_closed);
  smtpc_resolver_close(v->resolver, on_resolver_closed, v);
}

static int has_8bit(const char *s) {
  for (; s && *s; s++)
    if ((unsigned char)*s >= 0x80) return 1;
  return 0;
}

smtpc_verifier *smtpc_verifier_new(uv_loop_t *loop, const smtpc_verify_opts *opts,
                                   smtpc_result_cb cb, void *data, int *err) {
  smtpc_verifier *v;
  smtpc_verify_opts o;
  smtpc_resolver_opts ro;
  smtpc_dialog_opts dc;
  smtpc_dialog *probe;
  int e = SMTPC_EINVAL;
  if (err == NULL) err = &e;
  *err = SMTPC_EINVAL;
  if (loop == NULL || cb == NULL) return NULL;
  if (opts) o = *opts;
  else smtpc_verify_opts_init(&o);
  /* zeros mean "the default", so a memset struct works too */
  if (o.port == 0) o.port = 25;
  if (o.concurrency == 0) o.concurrency = 100;
  if (o.per_host == 0) o.per_host = 2;
  if (o.rcpt_per_session == 0) o.rcpt_per_session = 50;
  if (o.max_rejections == 0) o.max_rejections = 8;
  if (o.deadline == 0) o.deadline = 300;
  if (o.timeout == 0) o.timeout = 30;
  if (o.connect_timeout == 0) o.connect_timeout = 10;
  if (o.port < 1 || o.port > 65535 || o.concurrency < 1 || o.per_host < 1 ||
      o.rcpt_per_session < 1 || o.rcpt_per_session > 100000 || o.max_rejections < 1 ||
      o.starttls < 0 || o.starttls > 2 || !(o.deadline > 0) || !(o.timeout > 0) ||
      !(o.connect_timeout > 0) || o.host_pause < 0 || o.greylist_delay != o.greylist_delay)
    return NULL;
  if (o.bind_address) {
    smtpc_sockaddr b;
    if (uv_ip4_addr(o.bind_address, 0, &b.in) != 0 && uv_ip6_addr(o.bind_address, 0, &b.in6) != 0)
      return NULL;
  }
  /* the dialog is the judge of what may go on the wire */
  memset(&dc, 0, sizeof dc);
  dc.helo = o.helo;
  dc.mail_from = o.mail_from;
  probe = smtpc_dialog_new(&dc, on_event, (void *)&dc, err);
  if (probe == NULL) return NULL;
  smtpc_dialog_free(probe);

  *err = SMTPC_ENOMEM;
  v = calloc(1, sizeof *v);
  if (v == NULL) return NULL;
  v->loop = loop;
  v->o = o;
  v->cb = cb;
  v->data = data;
  v->mail_from = dupstr(o.mail_from ? o.mail_from : "");
  v->helo = dupstr(o.helo ? o.helo : "localhost");
  v->bind = dupstr(o.bind_address);
  v->dns = dupstr(o.dns_servers);
  v->ca = dupstr(o.tls_ca_file);
  v->o.mail_from = v->mail_from;
  v->o.helo = v->helo;
  v->o.bind_address = v->bind;
  v->o.dns_servers = v->dns;
  v->o.tls_ca_file = v->ca;
  v->mail_from_utf8 = has_8bit(v->mail_from);
  if (v->bind && uv_ip4_addr(v->bind, 0, &v->bind_sa.in) != 0)
    (void)uv_ip6_addr(v->bind, 0, &v->bind_sa.in6);
  l_init(&v->immediate);
  l_init(&v->delayed);
  l_init(&v->all);
  l_init(&v->groups);
  l_init(&v->sessions);
  if (v->mail_from == NULL || v->helo == NULL || (o.bind_address && !v->bind) ||
      (o.dns_servers && !v->dns) || (o.tls_ca_file && !v->ca))
    goto fail;
  if (o.starttls != SMTPC_STARTTLS_OFF &&
      (v->tls_ctx = smtpc__tls_ctx_new(o.tls_verify, v->ca, err)) == NULL)
    goto fail;
  memset(&ro, 0, sizeof ro);
  ro.servers = v->dns;
  v->resolver = smtpc_resolver_new(loop, &ro, err);
  if (v->resolver == NULL) goto fail;
  v->resolver_open = 1;
  uv_timer_init(loop, &v->tick);
  v->tick.data = v;
  v->tick_open = 1;
  *err = 0;
  return v;
fail:
  free_all(v);
  free(v);
  return NULL;
}
