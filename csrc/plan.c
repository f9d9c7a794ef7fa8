/*
 * plan.c -- the probe's planner: the public API (see the "plan" section of smtpcode.h), the
 * events a driver feeds in, the front of the action queue, and the scheduling pass that
 * decides which sessions start (groups in round robin, per-host limits, pauses, failover, the
 * deadline). The file map is in plan_internal.h. No I/O, no clock, no event loop: everything
 * that takes time arrives as an event with the driver's `now`.
 */
#include "plan_internal.h"

#include <stdlib.h>

static const char *const action_names[] = {
#define SMTPC__XX(id, name) name,
  SMTPC_PLAN_ACTION_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_plan_action_name(int type) {
  return type >= 1 && type < SMTPC_PLAN_ACTION_COUNT ? action_names[type - 1] : NULL;
}

static void *default_alloc(void *ud, void *ptr, size_t size) {
  (void)ud;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, size);
}

static void tick_clock(smtpc_plan *p, uint64_t now) {
  if (now > p->now) p->now = now;
}

static int has_8bit(const char *s) {
  for (; s && *s; s++)
    if ((unsigned char)*s >= 0x80) return 1;
  return 0;
}

static void dialog_probe_cb(void *ud, const smtpc_dialog_event *ev) {
  (void)ud;
  (void)ev;
}

/* ---------------------------------------------------------------------------------------- */
/* life */

/* Zeros mean "the default", so a memset struct works too; then the same checks as ever. */
static int norm_opts(smtpc_verify_opts *o) {
  smtpc_dialog_opts dc;
  smtpc_dialog *probe;
  int err;
  if (o->port == 0) o->port = 25;
  if (o->concurrency == 0) o->concurrency = 100;
  if (o->per_host == 0) o->per_host = 2;
  if (o->rcpt_per_session == 0) o->rcpt_per_session = 50;
  if (o->max_rejections == 0) o->max_rejections = 8;
  if (o->deadline == 0) o->deadline = 300;
  if (o->timeout == 0) o->timeout = 30;
  if (o->connect_timeout == 0) o->connect_timeout = 10;
  if (o->port < 1 || o->port > 65535 || o->concurrency < 1 || o->concurrency > 1000000 ||
      o->per_host < 1 || o->rcpt_per_session < 1 || o->rcpt_per_session > 100000 ||
      o->max_rejections < 1 || o->starttls < 0 || o->starttls > 2 || !(o->deadline > 0) ||
      !(o->timeout > 0) || !(o->connect_timeout > 0) || !(o->host_pause >= 0) ||
      o->greylist_delay != o->greylist_delay || o->deadline > 1e9 || o->timeout > 1e9 ||
      o->connect_timeout > 1e9 || o->host_pause > 1e9 || o->greylist_delay > 1e9 ||
      o->disposable < SMTPC_DISPOSABLE_RISKY || o->disposable > SMTPC_DISPOSABLE_UNDELIVERABLE)
    return SMTPC_EINVAL;
  /* the dialog is the judge of what may go on the wire */
  memset(&dc, 0, sizeof dc);
  dc.helo = o->helo;
  dc.mail_from = o->mail_from;
  probe = smtpc_dialog_new(&dc, dialog_probe_cb, NULL, &err);
  if (probe == NULL) return err;
  smtpc_dialog_free(probe);
  return 0;
}

smtpc_plan *smtpc_plan_new(const smtpc_plan_opts *opts, int *err) {
  smtpc_plan_opts po;
  smtpc_plan tmp, *p;
  size_t i;
  int e;
  if (err == NULL) err = &e;
  if (opts) po = *opts;
  else {
    memset(&po, 0, sizeof po);
    smtpc_verify_opts_init(&po.verify);
  }
  if ((*err = norm_opts(&po.verify)) != 0) return NULL;
  *err = SMTPC_ENOMEM;
  /* the planner itself comes from the hooks too: build it on the stack, then move it */
  memset(&tmp, 0, sizeof tmp);
  tmp.alloc = po.alloc ? po.alloc : default_alloc;
  tmp.alloc_ud = po.alloc ? po.alloc_ud : NULL;
  p = smtpc__pcalloc(&tmp, sizeof *p);
  if (p == NULL) return NULL;
  tmp.mem_peak = tmp.mem;
  *p = tmp;
  p->o = po.verify;
  p->rng = po.seed;
  l_init(&p->delayed);
  p->deadline_us = secs_us(p->o.deadline);
  l_init(&p->groups);
  l_init(&p->ready);
  l_init(&p->sessions);
  p->mail_from = smtpc__pstrdup(p, p->o.mail_from ? p->o.mail_from : "");
  p->helo = smtpc__pstrdup(p, p->o.helo ? p->o.helo : "localhost");
  p->slots = smtpc__pcalloc(p, (size_t)p->o.concurrency * sizeof *p->slots);
  p->free_sids = smtpc__pmalloc(p, (size_t)p->o.concurrency * sizeof *p->free_sids);
  if (p->mail_from == NULL || p->helo == NULL || p->slots == NULL || p->free_sids == NULL) {
    smtpc_plan_free(p);
    return NULL;
  }
  /* borrowed strings of the caller's options are not kept */
  p->o.mail_from = p->mail_from;
  p->o.helo = p->helo;
  p->o.dns_servers = p->o.bind_address = p->o.tls_ca_file = NULL;
  p->o.proxy = p->o.cache = NULL; /* the driver's business */
  p->mail_from_utf8 = has_8bit(p->mail_from);
  for (i = (size_t)p->o.concurrency; i-- > 0;) { /* sid 0 first */
    p->slots[i].sid = (unsigned)i;
    p->slots[i].p = p;
    l_init(&p->slots[i].node);
    p->free_sids[p->nfree++] = (unsigned)i;
  }
  *err = 0;
  return p;
}

/* Everything goes, whatever state the driver left it in (sessions it never released, RESULTs
 * it never took). Items are reachable from several places: free each exactly once. */
void smtpc_plan_free(smtpc_plan *p) {
  link *l;
  size_t i;
  if (p == NULL) return;
  for (l = p->groups.next; l != &p->groups; l = l->next) { /* probes live only in queues */
    group *g = CONTAINER(l, group, node);
    while (!l_empty(&g->queue)) {
      item *it = CONTAINER(g->queue.next, item, q);
      l_del(&it->q);
      if (it->probe) smtpc__item_free(p, it);
    }
  }
  for (i = 0; p->slots && i < (size_t)p->o.concurrency; i++) {
    session *s = &p->slots[i];
    size_t k;
    if (s->state == S_FREE) continue;
    for (k = 0; k < s->nitems; k++) {
      item *it = s->items[k];
      if (it == NULL) continue;
      it->in_dialog = 0;
      if (it->probe) smtpc__item_free(p, it);
      else if (it->reported && !it->in_queue) smtpc__item_free(p, it);
    }
    smtpc__pfree(p, s->items);
    smtpc_dialog_free(s->d);
    smtpc__reply_unref(p, s->last);
  }
  for (; p->all_head != p->all_tail; p->all_head++) { /* unreported inputs, wherever they wait */
    item *it = p->all[p->all_head & (p->all_cap - 1)];
    if (it) smtpc__item_free(p, it);
  }
  for (i = 0; i < p->qlen; i++) {
    qent *e = &p->q[(p->qhead + i) % p->qcap];
    if (e->it) smtpc__item_free(p, e->it);
  }
  if (p->handed) smtpc__item_free(p, p->handed);
  smtpc__store_free(p);
  smtpc__pfree(p, p->slots);
  smtpc__pfree(p, p->free_sids);
  smtpc__pfree(p, p->mail_from);
  smtpc__pfree(p, p->helo);
  smtpc__pfree(p, p->wbuf);
  {
    void *(*alloc)(void *, void *, size_t) = p->alloc;
    void *ud = p->alloc_ud;
    smtpc_plan tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.alloc = alloc;
    tmp.alloc_ud = ud;
    tmp.mem = p->mem;
    smtpc__pfree(&tmp, p);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* scheduling */

/* Start what can start for g now. Returns 1 when only the concurrency limit stopped it (it
 * stays ready); otherwise it waits for an event that makes it ready again: addresses queued,
 * a slot freed on one of its hosts (smtpc__host_freed), or the end of a pause (a sleeper). */
static int schedule_group(smtpc_plan *p, group *g, uint64_t now) {
  if (g->open && smtpc__top_up(p, g)) return 0;
  while (g->nqueued > 0) {
    size_t m, a, k = 0;
    host *pick = NULL;
    const char *mx = NULL;
    int any_up = 0;
    uint64_t later = 0;
    if (p->active >= (size_t)p->o.concurrency) return 1;
    for (m = 0; m < g->route->nmx && !any_up; m++) {
      const smtpc_mx *x = &g->route->mx[m];
      for (a = 0; a < x->naddrs; a++) {
        host *h = g->hosts[k++];
        if (h == NULL) continue;
        if (h->down_until > now) { /* skipped until then; it may be the way again after */
          wake_at(&later, h->down_until);
          continue;
        }
        any_up = 1;
        if (h->active >= p->o.per_host) continue;
        if (h->next_at > now) {
          wake_at(&later, h->next_at);
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
          smtpc__item_detach(it);
          it->dom->probe_state = PROBE_DONE;
          smtpc__flush_held(p, it->dom);
          smtpc__item_free(p, it);
          continue;
        }
        smtpc__adopt_host_failure(it, g);
        if (it->reason == SMTPC_REASON_UNDEFINED) it->reason = SMTPC_REASON_NETWORKERROR;
        smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, it->reason);
      }
      return 0;
    }
    if (pick == NULL) { /* a session's end (host_freed) or a pause's end will wake it */
      if (later) smtpc__group_sleep(p, g, later);
      return 0;
    }
    if (smtpc__start_session(p, g, pick, mx) != 0) { /* out of memory: not before a second */
      if (g->in_ready) { /* (the items it gave back made it ready) */
        l_del(&g->rnode);
        g->in_ready = 0;
      }
      smtpc__group_sleep(p, g, now + 1000000);
      return 0;
    }
  }
  return 0;
}

static void expire(smtpc_plan *p, uint64_t now, uint64_t *next) {
  item *it;
  while ((it = all_oldest(p)) != NULL) {
    if (it->added + p->deadline_us > now) {
      wake_at(next, it->added + p->deadline_us);
      return;
    }
    if (it->err == 0 && it->reply == NULL) it->err = SMTPC_ETIMEOUT;
    it->detail = "deadline reached";
    smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_EXPIRED);
  }
}

static void schedule(smtpc_plan *p) {
  uint64_t now = p->now, next = 0;
  link *l, *n;
  if (p->canceled) {
    p->sched_next = p->want_wake = 0;
    p->dirty = 0;
    return;
  }
  p->want_wake = 0; /* the scan below sees every timer; sessions started after it arm anew */
  expire(p, now, &next);
  /* connect and reply timers: the sessions are looked at only when one may be due (timers
   * move later with every reply, so timer_min is a lower bound, made exact here) */
  if (p->timer_min && p->timer_min <= now) {
    uint64_t tmin = 0;
    for (l = p->sessions.next; l != &p->sessions; l = n) {
      session *s = CONTAINER(l, session, node);
      n = l->next;
      if (s->timer_at == 0) continue;
      if (s->timer_at <= now) smtpc__sess_timeout(s);
      if (s->timer_at) wake_at(&tmin, s->timer_at);
    }
    p->timer_min = tmin;
  }
  if (p->timer_min) wake_at(&next, p->timer_min);
  for (l = p->delayed.next; l != &p->delayed; l = n) { /* in ready order */
    item *it = CONTAINER(l, item, q);
    n = l->next;
    if (it->ready_at > now) {
      wake_at(&next, it->ready_at);
      break;
    }
    smtpc__enqueue(p, it, 0);
  }
  /* the groups that may start a session, in turn: one that only the concurrency limit
   * stopped goes to the back, so that the next pass starts with another */
  smtpc__wake_sleepers(p, now, &next);
  if (!l_empty(&p->ready)) {
    link todo; /* this pass's share: groups made ready while it runs wait for the next */
    todo.next = p->ready.next;
    todo.prev = p->ready.prev;
    todo.next->prev = todo.prev->next = &todo;
    l_init(&p->ready);
    while (!l_empty(&todo) && p->active < (size_t)p->o.concurrency) {
      group *g = CONTAINER(todo.next, group, rnode);
      l_del(&g->rnode);
      g->in_ready = 0;
      if (schedule_group(p, g, now)) smtpc__group_ready(p, g);
    }
    if (!l_empty(&todo)) { /* not reached (the concurrency limit): first in the next pass */
      link *first = todo.next, *last = todo.prev, *after = p->ready.next;
      p->ready.next = first;
      first->prev = &p->ready;
      last->next = after;
      after->prev = last;
    }
    if (!l_empty(&p->ready) && p->active < (size_t)p->o.concurrency) wake_at(&next, now);
  }
  if (p->nsleepers) wake_at(&next, p->sleepers[0].at);
  p->sched_next = next;
  p->dirty = 0; /* what this pass queued, it has seen */
}

/* ---------------------------------------------------------------------------------------- */
/* events */

int smtpc_plan_add(smtpc_plan *p, uint64_t now, const char *address, size_t len, uint64_t tag) {
  smtpc_address a;
  item *it;
  domain *d;
  size_t rlen = 0;
  int kind = 0, rc, same = 0;
  unsigned char slab;
  if (p == NULL || p->ended || p->canceled || (address == NULL && len > 0)) return SMTPC_EINVAL;
  if (len > (size_t)-1 / 2) return SMTPC_ENOMEM;
  tick_clock(p, now);
  rc = len ? smtpc_parse_address(address, len, &a, &kind) : SMTPC_EBADADDRESS;
  if (rc == SMTPC_ENOMEM) return SMTPC_ENOMEM;
  if (rc == 0) {
    rlen = strlen(a.ascii_address);
    same = rlen == len && memcmp(a.ascii_address, address, len) == 0;
  }
  /* one block: the item, the input, and what RCPT TO carries when it differs from the input
   * (one allocation and one cache line less per address than three blocks) */
  it = smtpc__item_mem(p, sizeof *it + len + 1 + (rc == 0 && !same ? rlen + 1 : 0), &slab);
  if (it == NULL) return SMTPC_ENOMEM;
  memset(it, 0, sizeof *it);
  it->slab = slab;
  if (len) memcpy(item_input(it), address, len);
  item_input(it)[len] = '\0';
  it->input_len = len;
  it->tag = tag;
  it->added = p->now;
  it->reason = SMTPC_REASON_UNDEFINED;
  l_init(&it->q);
  if (smtpc__all_push(p, it) != 0) {
    smtpc__item_free(p, it);
    return SMTPC_ENOMEM;
  }
  p->pending++;
  p->dirty = 1;

  if (rc != 0) {
    it->detail = len ? smtpc_address_kind_message(kind) : "the address is empty";
    smtpc__report(p, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_SYNTAXERROR);
    return 0;
  }
  it->rcpt_len = (uint16_t)rlen;
  it->rcpt_apart = !same;
  if (!same) memcpy(item_input(it) + len + 1, a.ascii_address, rlen + 1);
  it->utf8 = a.utf8_local ? 1 : 0;
  d = smtpc__domain_for(p, a.ascii_domain, a.literal);
  if (d == NULL) goto nomem;
  it->dom = d;
  if (d->state == D_READY) {
    smtpc__enqueue(p, it, 0);
  } else if (d->state == D_RESOLVING) {
    it->state = IT_RESOLVING;
    l_push(&d->waiting, &it->q);
  } else {
    smtpc__dns_fail(p, d, it);
  }
  return 0;
nomem:
  smtpc__all_del(p, it);
  p->pending--;
  smtpc__item_free(p, it);
  return SMTPC_ENOMEM;
}

void smtpc_plan_end(smtpc_plan *p) {
  if (p == NULL) return;
  p->ended = 1;
  p->dirty = 1;
}

void smtpc_plan_cancel(smtpc_plan *p, uint64_t now) {
  link *l;
  item *it;
  if (p == NULL || p->canceled) return;
  tick_clock(p, now);
  p->ended = 1;
  p->canceled = 1;
  for (l = p->sessions.next; l != &p->sessions; l = l->next)
    smtpc__sess_close(CONTAINER(l, session, node));
  while ((it = all_oldest(p)) != NULL) {
    it->err = SMTPC_ECANCELED;
    it->detail = "canceled";
    smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_EXPIRED);
  }
  p->dirty = 1;
}

int smtpc_plan_resolved(smtpc_plan *p, uint64_t now, uint64_t token, int status,
                        const smtpc_route *route) {
  domain *d;
  if (p == NULL || token == 0 || token > p->ndom) return SMTPC_EINVAL;
  d = p->dom_by_token[token - 1];
  if (d->state != D_RESOLVING) return SMTPC_EINVAL;
  tick_clock(p, now);
  if (status == 0 && route != NULL) {
    (void)smtpc__domain_route(p, d, route);
  } else {
    d->state = D_FAILED;
    d->failed_status = status < 0 ? status : SMTPC_EDNS;
  }
  while (!l_empty(&d->waiting)) {
    item *it = CONTAINER(d->waiting.next, item, q);
    if (it->q.next != &d->waiting) item_prefetch(CONTAINER(it->q.next, item, q));
    if (d->state == D_READY) smtpc__enqueue(p, it, 0);
    else smtpc__dns_fail(p, d, it);
  }
  p->dirty = 1;
  return 0;
}

int smtpc_plan_catch_all(smtpc_plan *p, uint64_t token, int catch_all) {
  domain *d;
  if (p == NULL || token == 0 || token > p->ndom || catch_all < 0 || catch_all > 1)
    return SMTPC_EINVAL;
  d = p->dom_by_token[token - 1];
  if (d->probe_state != PROBE_NONE || d->catch_all != -1) return SMTPC_EINVAL;
  d->catch_all = catch_all;
  d->probe_state = PROBE_DONE; /* no probe RCPT for it this run */
  return 0;
}

int smtpc_plan_catch_all_of(const smtpc_plan *p, uint64_t token) {
  const domain *d;
  if (p == NULL || token == 0 || token > p->ndom) return SMTPC_EINVAL;
  d = p->dom_by_token[token - 1];
  if (d->catch_all != -1) return d->catch_all;
  /* no answer and none to come: probes spent, no route, or the run is over */
  return d->probe_state == PROBE_DONE || d->state == D_FAILED || p->canceled ? -2 : -1;
}

/* The session a driver event names, if the planner expects events for it. */
static session *sess_of(smtpc_plan *p, unsigned sid, uint64_t now) {
  session *s;
  if (p == NULL || sid >= (unsigned)p->o.concurrency) return NULL;
  s = &p->slots[sid];
  if (s->state == S_FREE) return NULL;
  tick_clock(p, now);
  return s;
}

int smtpc_plan_connected(smtpc_plan *p, uint64_t now, unsigned sid) {
  session *s = sess_of(p, sid, now);
  if (s == NULL || s->state != S_CONNECTING) return SMTPC_EINVAL;
  s->state = S_OPEN;
  s->timer_at = 0;
  s->armed_at = s->progress + smtpc_dialog_replies(s->d);
  s->timer_at = p->now + secs_us(p->o.timeout); /* the banner */
  wake_at(&p->want_wake, s->timer_at);
  wake_at(&p->timer_min, s->timer_at);
  return 0;
}

int smtpc_plan_read(smtpc_plan *p, uint64_t now, unsigned sid, const char *buf, size_t len) {
  session *s = sess_of(p, sid, now);
  if (s == NULL || s->state != S_OPEN || s->tls_state == 1 || (buf == NULL && len > 0))
    return SMTPC_EINVAL;
  if (len) smtpc_dialog_feed(s->d, buf, len);
  smtpc__sess_step(s);
  return 0;
}

int smtpc_plan_tls(smtpc_plan *p, uint64_t now, unsigned sid, int ok) {
  session *s = sess_of(p, sid, now);
  if (s == NULL || s->state != S_OPEN || s->tls_state != 1) return SMTPC_EINVAL;
  s->tls_state = ok ? 2 : 3;
  smtpc_dialog_tls_done(s->d, ok ? 1 : 0);
  smtpc__sess_step(s);
  return 0;
}

int smtpc_plan_eof(smtpc_plan *p, uint64_t now, unsigned sid, int err, const char *detail) {
  session *s = sess_of(p, sid, now);
  if (s == NULL) return SMTPC_EINVAL;
  if (err >= 0) err = SMTPC_ECLOSED;
  if (s->state == S_CONNECTING) {
    smtpc__sess_connect_failed(s, err, detail ? detail : "connection failed");
    return 0;
  }
  if (s->state != S_OPEN) return SMTPC_EINVAL; /* we closed it already */
  smtpc_dialog_eof(s->d, err);
  smtpc__sess_step(s);
  smtpc__sess_close(s); /* whatever the dialog says, the connection is gone */
  return 0;
}

int smtpc_plan_released(smtpc_plan *p, uint64_t now, unsigned sid) {
  session *s = sess_of(p, sid, now);
  if (s == NULL || s->state != S_CLOSING || !s->close_out) return SMTPC_EINVAL;
  smtpc__sess_release(s);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* actions */

/* What the probe learnt of the domain's route, as inspect.c's typo check wants it. */
static int route_fact(const domain *d) {
  if (d == NULL) return SMTPC_ROUTE_UNKNOWN;
  if (d->grp) return SMTPC_ROUTE_OK;
  if (d->null_mx || d->dns_error == SMTPC_DNS_NXDOMAIN || d->dns_error == SMTPC_DNS_NOADDRESS)
    return SMTPC_ROUTE_NONE;
  return SMTPC_ROUTE_UNKNOWN;
}

/* The queue's front, made into an action. 0 when the entry has gone stale (a WRITE whose
 * bytes an earlier WRITE took). */
static int hand_out(smtpc_plan *p, const qent *e, smtpc_plan_action *out) {
  session *s = e->type == SMTPC_PLAN_RESOLVE || e->type == SMTPC_PLAN_RESULT ? NULL
                                                                             : &p->slots[e->sid];
  memset(out, 0, sizeof *out);
  out->type = e->type;
  out->sid = e->sid;
  switch (e->type) {
  case SMTPC_PLAN_RESOLVE:
    out->token = e->token;
    out->name = p->dom_by_token[e->token - 1]->name;
    return 1;
  case SMTPC_PLAN_CONNECT:
    out->addr = &s->h->sa;
    out->name = s->mx;
    return 1;
  case SMTPC_PLAN_START_TLS:
    out->name = s->mx;
    return 1;
  case SMTPC_PLAN_CLOSE:
    s->close_out = 1;
    return 1;
  case SMTPC_PLAN_WRITE: {
    size_t n = 0;
    const char *b;
    s->wpending = 0;
    b = s->d ? smtpc_dialog_output(s->d, &n) : NULL;
    if (n == 0) return 0;
    if (n > p->wcap) {
      char *nb = smtpc__pmalloc(p, n);
      if (nb == NULL) { /* the bytes cannot be handed out: the session cannot go on */
        smtpc_dialog_consume(s->d);
        smtpc_dialog_eof(s->d, SMTPC_ENOMEM);
        smtpc__sess_step(s);
        smtpc__sess_close(s);
        return 0;
      }
      smtpc__pfree(p, p->wbuf);
      p->wbuf = nb;
      p->wcap = n;
    }
    memcpy(p->wbuf, b, n);
    smtpc_dialog_consume(s->d);
    out->data = p->wbuf;
    out->len = n;
    return 1;
  }
  case SMTPC_PLAN_RESULT: {
    item *it = e->it;
    smtpc_result *r = &p->res;
    memset(r, 0, sizeof *r);
    r->tag = it->tag;
    r->address = item_input(it);
    r->address_len = it->input_len;
    r->verdict = it->verdict;
    r->reason = it->reason;
    if (it->reply) {
      r->reply = it->reply->r;
      r->cls = it->reply->cls;
    } else {
      r->cls.reason = SMTPC_REASON_UNDEFINED;
    }
    r->mx = it->mx;
    r->mx_addr = it->mx_addr;
    r->catch_all = it->catch_all;
    r->tls = it->tls;
    r->greylisted = it->greylisted;
    r->error = it->err;
    r->detail = it->detail;
    r->duration = (double)(p->now - it->added) / 1e6;
    r->transcript = it->transcript;
    r->transcript_len = it->transcript_len;
    /* disposable, role, free provider, suggestion; the disposable policy may change the
     * verdict. A result suggests only what DNS backs: a domain that failed to resolve may
     * exist. Made here rather than kept in every item: it is only needed once. The address
     * was parsed when it was added (an item with a domain is valid: its RCPT form is
     * local part @ A-label domain), and what the domain says is its record's, worked out
     * once for all of its addresses: nothing is parsed or hashed twice. */
    if (it->dom && !it->dom->literal) {
      domain *d = it->dom;
      int fact = route_fact(d);
      size_t dn = strlen(d->name);
      if (!d->facts.known) smtpc__inspect_domain(d->name, dn, &d->facts);
      smtpc__inspect_with(&d->facts, d->name, dn, item_rcpt(it), it->rcpt_len - dn - 1, fact,
                          &r->inspect);
      r->verdict = smtpc_verdict_with_inspection(r->verdict, &r->inspect, p->o.disposable);
      if (fact != SMTPC_ROUTE_NONE) r->inspect.suggestion[0] = '\0';
    }
    out->result = r;
    p->handed = it; /* lives until the next call */
    p->results++;
    p->pending--;
    return 1;
  }
  }
  return 0;
}

/* The scheduling pass: at a WAKE time, or whenever the driver likes (a timer that fires early
 * only costs a pass; the WAKE comes again). */
void smtpc_plan_tick(smtpc_plan *p, uint64_t now) {
  if (p == NULL) return;
  tick_clock(p, now);
  /* the driver's timer is spent (early or not): the next WAKE is handed out again */
  p->announced = 0;
  schedule(p);
}

int smtpc_plan_next(smtpc_plan *p, uint64_t now, smtpc_plan_action *out) {
  uint64_t w;
  if (p == NULL || out == NULL) return 0;
  tick_clock(p, now);
  if (p->handed) {
    item *it = p->handed;
    p->handed = NULL;
    it->in_queue = 0;
    smtpc__item_release(p, it);
  }
  while (p->qlen > 0) {
    qent e = p->q[p->qhead];
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
    if (hand_out(p, &e, out)) return 1;
  }
  /* Work that events made (addresses queued, a slot freed) waits for the next tick: the
   * driver's next loop turn, after the rest of the I/O at hand, so that one pass sees it all
   * (the addresses several sessions gave back go out in one new session, not in several). */
  w = p->sched_next;
  if (p->want_wake && (w == 0 || p->want_wake < w)) w = p->want_wake;
  if (p->dirty) {
    if (p->announced && p->announced <= p->now) return 0; /* "soon" is asked for already */
    w = p->now;
  }
  if (w == p->announced) return 0;
  p->announced = w;
  memset(out, 0, sizeof *out);
  out->type = SMTPC_PLAN_WAKE;
  out->time = w;
  return 1;
}

void smtpc_plan_stats_get(const smtpc_plan *p, smtpc_plan_stats *out) {
  memset(out, 0, sizeof *out);
  if (p == NULL) return;
  out->pending = p->pending;
  out->sessions = p->active;
  out->sessions_opened = p->opened;
  out->results = p->results;
  out->memory = p->mem;
  out->memory_peak = p->mem_peak;
}

int smtpc_plan_done(const smtpc_plan *p) { return p && p->ended && p->pending == 0; }
