/*
 * plan_session.c -- one connection slot and its dialog, as the planner sees it: which queued
 * items a new session takes, what to hand the driver after each input (bytes, START_TLS,
 * CLOSE), its one timer, and what its end means for the items aboard. Calls plan_decide.c and
 * plan_store.c; never plan.c.
 */
#include "plan_internal.h"

static void arm(session *s, double secs) {
  smtpc_plan *p = s->p;
  s->timer_at = p->now + secs_us(secs);
  wake_at(&p->want_wake, s->timer_at);
  wake_at(&p->timer_min, s->timer_at);
}

void smtpc__sess_close(session *s) {
  if (s->state == S_CLOSING || s->state == S_FREE) return;
  s->state = S_CLOSING;
  s->timer_at = 0;
  (void)smtpc__push_action(s->p, SMTPC_PLAN_CLOSE, s->sid, NULL);
}

static void flush(session *s) {
  size_t n;
  (void)smtpc_dialog_output(s->d, &n);
  if (n == 0 || s->wpending) return;
  /* the bytes are taken when the WRITE is handed out (plan.c), with whatever came since */
  if (smtpc__push_action(s->p, SMTPC_PLAN_WRITE, s->sid, NULL) != 0) {
    smtpc_dialog_consume(s->d);
    smtpc_dialog_eof(s->d, SMTPC_ENOMEM);
    return;
  }
  s->wpending = 1;
  s->progress++;
}

/* After every input to the dialog: send, start TLS, re-arm or close. */
void smtpc__sess_step(session *s) {
  unsigned want;
  int i;
  for (i = 0; i < 3 && s->state == S_OPEN; i++) {
    flush(s);
    want = smtpc_dialog_want(s->d);
    if (want & SMTPC_DIALOG_WANT_CLOSE) {
      smtpc__sess_close(s);
      return;
    }
    if ((want & SMTPC_DIALOG_WANT_TLS) && s->tls_state == 0) {
      if (smtpc__push_action(s->p, SMTPC_PLAN_START_TLS, s->sid, NULL) != 0) {
        smtpc_dialog_tls_done(s->d, 0);
        continue; /* the dialog has given up: close on the next round */
      }
      s->tls_state = 1;
    }
    if (s->tls_state == 1 || (want & SMTPC_DIALOG_WANT_REPLY)) {
      unsigned long now = s->progress + smtpc_dialog_replies(s->d);
      if (now != s->armed_at || s->timer_at == 0) {
        s->armed_at = now;
        arm(s, s->p->o.timeout);
      }
    } else {
      s->timer_at = 0;
    }
    return;
  }
}

/* The connection never came up: the host is down for this run (next MX), items go back. */
void smtpc__sess_connect_failed(session *s, int err, const char *detail) {
  smtpc_plan *p = s->p;
  size_t i;
  int down = 0;
  for (i = 0; i < s->nitems; i++) {
    item *it = s->items[i];
    if (it == NULL) continue;
    it->in_dialog = 0;
    s->items[i] = NULL;
    if (it->reported) {
      smtpc__item_release(p, it);
      continue;
    }
    if (it->probe) {
      smtpc__probe_lost(p, it->dom, 1);
      smtpc__item_free(p, it);
      continue;
    }
    smtpc__learn(p, it, NULL, SMTPC_CMD_BANNER, NULL, err, SMTPC_REASON_NETWORKERROR, detail);
    it->mx = s->mx;
    it->mx_addr = s->h->text;
    if (!down++) smtpc__host_down(p, s, it);
    smtpc__retry_or_report(p, it, 0);
  }
  if (!down) { /* only probes or reported items were aboard: mark the host anyway */
    s->h->down_until = p->now + HOST_DOWN_US;
    s->h->fail_err = err;
    s->h->fail_reason = SMTPC_REASON_NETWORKERROR;
    s->h->fail_detail = detail;
  }
  smtpc__sess_close(s);
}

void smtpc__sess_timeout(session *s) {
  s->timer_at = 0;
  if (s->state == S_CONNECTING) {
    smtpc__sess_connect_failed(s, SMTPC_ETIMEOUT, "connect timed out");
    return;
  }
  if (s->state != S_OPEN) return;
  if (s->tls_state == 1) smtpc_dialog_tls_done(s->d, 0);
  else smtpc_dialog_timeout(s->d);
  smtpc__sess_step(s);
}

/* The driver has let go of the connection: what is still aboard goes back or away. */
void smtpc__sess_release(session *s) {
  smtpc_plan *p = s->p;
  size_t i;
  for (i = 0; i < s->nitems; i++) {
    item *it = s->items[i];
    if (it == NULL) continue;
    s->items[i] = NULL;
    if (it->probe) { /* answered or not, a probe's memory goes with its session */
      if (it->in_dialog) smtpc__probe_lost(p, it->dom, 1);
      smtpc__item_free(p, it);
    } else if (it->reported) {
      it->in_dialog = 0;
      smtpc__item_release(p, it);
    } else { /* the dialog never told: cannot happen unless closed from outside */
      it->in_dialog = 0;
      smtpc__learn(p, it, NULL, SMTPC_CMD_QUIT, NULL, SMTPC_ECLOSED, SMTPC_REASON_NETWORKERROR,
                   "session ended");
      smtpc__retry_or_report(p, it, 0);
    }
  }
  if (s->open_for) { /* it takes no more */
    s->open_for->open = NULL;
    s->open_for = NULL;
  }
  smtpc__pfree(p, s->items);
  smtpc_dialog_free(s->d);
  smtpc__reply_unref(p, s->last);
  s->last = NULL;
  s->items = NULL;
  s->d = NULL;
  s->nitems = 0;
  s->h->active--;
  p->active--;
  smtpc__host_freed(p, s->h);
  l_del(&s->node);
  s->state = S_FREE;
  s->timer_at = 0;
  p->free_sids[p->nfree++] = s->sid;
  p->dirty = 1;
}

/* How likely an RCPT to an address of d is to be rejected: d's own record once it has one,
 * and never below the group's recent rate (which sees an unknown-heavy remainder first).
 * late (a top-up): d's record alone once it is long. Top-ups come right after the rejection
 * that spent a session's budget, when the group's moving rate is at its highest: it would
 * call a session full at half its budget and open another for the rest. */
static double reject_odds(const domain *d, const group *g, int late) {
  unsigned long seen = d->rcpt_ok + d->rcpt_rejected;
  double odds = seen >= 4 ? (double)d->rcpt_rejected / (double)seen : 0.0;
  if (late && seen >= 32) return odds;
  return odds > g->reject_rate ? odds : g->reject_rate;
}

/* Move items from the head of g's queue into s (catch-all probes included) while it has room:
 * up to rcpt_per_session addresses, and until the rejections it can expect (reject_odds,
 * summed in s->expect) would pass its budget. A session sends RCPTs until about
 * max_rejections were rejected; the addresses it holds beyond that wait inside it, out of
 * reach of other sessions, only to be given back at its end. A block of unknown users (a
 * domain of them, or what is left once the rest is answered) would then go through one
 * session at a time, max_rejections per round, while other session slots sit idle. So a
 * session takes rcpt_per_session addresses while replies are 2xx, max_rejections from a
 * domain of unknown users.
 * late: s is under way (see smtpc__top_up); it takes only what needs no catch-all probe,
 * and stops at the first that does. Returns 1 when the queue ran dry with room left in s. */
static int take(smtpc_plan *p, session *s, group *g, size_t *nprobes, int late) {
  size_t cap = (size_t)p->o.rcpt_per_session;
  double budget = (double)p->o.max_rejections;
  link *l;
  for (l = g->queue.next; l != &g->queue;) {
    item *it = CONTAINER(l, item, q);
    domain *d = it->dom;
    int need = p->o.catch_all && d->catch_all == -1 && d->probe_state == PROBE_NONE &&
               d->batch_mark != s && !it->probe;
    long idx;
    double odds = it->probe ? 1.0 : reject_odds(d, g, late);
    size_t n = s->nitems;
    if (n + *nprobes >= cap) return 0;
    l = l->next;
    if (l != &g->queue) item_prefetch(CONTAINER(l, item, q));
    if (n + *nprobes + 1 + (need ? 1 : 0) > cap && n > 0) return 0;
    if ((double)n >= budget && s->expect + odds > budget + 0.5) return 0;
    if (late && (need || it->probe)) return 0;
    idx = late ? smtpc__dialog_add_late(s->d, item_rcpt(it), it->rcpt_len, it->utf8)
               : smtpc_dialog_add_rcpt(s->d, item_rcpt(it), it->rcpt_len, it->utf8);
    if (idx < 0 && late) return 0; /* it sends no more */
    s->expect += odds;
    if (idx < 0 && it->probe) { /* never: we made it */
      smtpc__item_detach(it);
      smtpc__item_free(p, it);
      d->probe_state = PROBE_DONE;
      smtpc__flush_held(p, d);
      continue;
    }
    if (idx < 0) { /* never: the parser refused these first; refuse them again anyway */
      smtpc__learn(p, it, NULL, 0, NULL, 0, SMTPC_REASON_SYNTAXERROR, smtpc_strerror((int)idx));
      smtpc__report(p, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_SYNTAXERROR);
      continue;
    }
    smtpc__item_detach(it);
    it->state = IT_SESSION;
    it->in_dialog = 1;
    if (it->probe) d->probe_state = PROBE_INFLIGHT;
    s->items[s->nitems++] = it;
    if (need) {
      d->batch_mark = s;
      (*nprobes)++;
    }
  }
  return s->nitems + *nprobes < cap;
}

/* Addresses queued for g go into g's last session if it took all there was and has room
 * left, until its transaction begins (smtpc__dialog_add_late: they go out with its first
 * RCPTs, no round trip later). Sessions started together spend their rejection budgets
 * within moments of each other and give back what they hold beyond it, one after another:
 * without this, each handful would open a session of its own and spend a connection on a
 * couple of rejections (bench/probe, one domain with 10% unknown users: 28 sessions where
 * 25 can do). Returns 1 when g's queue is empty, 0 when the rest needs a new session. */
int smtpc__top_up(smtpc_plan *p, group *g) {
  session *s = g->open;
  size_t none = 0;
  int room;
  if (s->state != S_CONNECTING && s->state != S_OPEN) room = 0;
  else room = take(p, s, g, &none, 1);
  if (!room) {
    g->open = NULL;
    s->open_for = NULL;
  }
  return g->nqueued == 0;
}

/* Take items from g's queue (take) and connect. */
int smtpc__start_session(smtpc_plan *p, group *g, host *h, const char *mx) {
  smtpc_dialog_opts cfg;
  session *s;
  size_t cap = (size_t)p->o.rcpt_per_session, n, nprobes = 0, i;
  int err, room;

  if (p->nfree == 0) return SMTPC_ENOMEM; /* never: concurrency is checked first */
  s = &p->slots[p->free_sids[p->nfree - 1]];
  s->items = smtpc__pcalloc(p, (cap + 1) * sizeof *s->items); /* + a probe beyond a cap of 1 */
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = p->helo;
  cfg.mail_from = p->mail_from;
  cfg.mail_from_utf8 = p->mail_from_utf8;
  cfg.starttls = h->no_tls ? SMTPC_STARTTLS_OFF : p->o.starttls;
  if (p->o.starttls == SMTPC_STARTTLS_REQUIRED) cfg.starttls = SMTPC_STARTTLS_REQUIRED;
  cfg.max_rejections = (size_t)p->o.max_rejections;
  cfg.transcript = p->o.transcript;
  /* the group's recent replies were mostly 2xx: the new session may pipeline wide at once */
  if (g->replies >= cfg.max_rejections && g->reject_rate <= 0.25) cfg.trusted = cfg.max_rejections;
  s->d = s->items ? smtpc_dialog_new(&cfg, smtpc__on_event, s, &err) : NULL;
  if (s->d == NULL) {
    smtpc__pfree(p, s->items);
    s->items = NULL;
    return SMTPC_ENOMEM;
  }
  s->p = p;
  s->grp = g;
  s->h = h;
  s->mx = mx;
  s->tls_state = 0;
  s->progress = s->armed_at = 0;
  s->backed_off = 0;
  s->wpending = 0;
  s->close_out = 0;
  s->last = NULL;
  s->nitems = 0;
  s->expect = 0;
  s->open_for = NULL;

  /* queue order: a probe that was lost before (at the head, see smtpc__probe_lost), then real
   * addresses */
  room = take(p, s, g, &nprobes, 0);
  n = s->nitems;
  /* then one random local part per domain whose catch-all state is unknown */
  for (i = 0; i < n && nprobes > 0; i++) {
    domain *d = s->items[i]->dom;
    item *pr;
    if (d->batch_mark != s) continue;
    d->batch_mark = NULL;
    nprobes--;
    if ((pr = smtpc__probe_new(p, d)) == NULL) continue;
    if (smtpc_dialog_add_rcpt(s->d, item_rcpt(pr), pr->rcpt_len, 0) < 0) {
      smtpc__item_free(p, pr);
      continue;
    }
    pr->in_dialog = 1;
    pr->state = IT_SESSION;
    d->probe_state = PROBE_INFLIGHT;
    s->items[s->nitems++] = pr;
  }
  n = s->nitems;
  if (n == 0) {
    smtpc_dialog_free(s->d);
    smtpc__pfree(p, s->items);
    s->d = NULL;
    s->items = NULL;
    return 0;
  }
  if (smtpc__push_action(p, SMTPC_PLAN_CONNECT, s->sid, NULL) != 0) {
    /* no room for the action: the items go back to the queue's head */
    for (i = n; i-- > 0;) {
      item *it = s->items[i];
      it->in_dialog = 0;
      if (it->probe) {
        if (it->dom->probe_state == PROBE_INFLIGHT) it->dom->probe_state = PROBE_NONE;
        smtpc__item_free(p, it);
      } else {
        smtpc__enqueue(p, it, 1);
      }
    }
    smtpc_dialog_free(s->d);
    smtpc__pfree(p, s->items);
    s->d = NULL;
    s->items = NULL;
    s->nitems = 0;
    return SMTPC_ENOMEM;
  }
  p->nfree--;
  s->state = S_CONNECTING;
  l_init(&s->node);
  l_push(&p->sessions, &s->node);
  h->active++;
  p->active++;
  p->opened++;
  h->next_at = p->now + secs_us(p->o.host_pause);
  arm(s, p->o.connect_timeout);
  if (room) { /* it took all there was: what comes next may join it (smtpc__top_up) */
    if (g->open) g->open->open_for = NULL;
    g->open = s;
    s->open_for = g;
  }
  return 0;
}
