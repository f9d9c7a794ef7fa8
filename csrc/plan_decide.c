/*
 * plan_decide.c -- the probe's items and results, and what to do with an item after each
 * event of its dialog: report it, hold it for the catch-all answer, retry it, back off or skip
 * its host. The catch-all probes of a domain live here too. Calls only plan_store.c.
 */
#include "plan_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* items and results */

static saved *save_reply(smtpc_plan *p, const smtpc_reply *r, const smtpc_class *cls) {
  size_t i, text = 0, n = r->nlines ? r->nlines : 1;
  saved *s;
  char *o;
  for (i = 0; i < r->nlines; i++) text += r->lines[i].len + 1;
  s = smtpc__pmalloc(p, sizeof *s + n * sizeof(smtpc_span) + text);
  if (s == NULL) return NULL;
  s->refs = 1;
  s->r = *r;
  s->cls = *cls;
  o = (char *)(s->lines + n);
  for (i = 0; i < r->nlines; i++) {
    memcpy(o, r->lines[i].ptr, r->lines[i].len);
    s->lines[i].ptr = o;
    s->lines[i].len = r->lines[i].len;
    o += r->lines[i].len;
    *o++ = '\0';
  }
  s->r.lines = s->lines;
  return s;
}

void smtpc__reply_unref(smtpc_plan *p, saved *r) {
  if (r && --r->refs == 0) smtpc__pfree(p, r);
}

static saved *reply_ref(saved *r) {
  if (r) r->refs++;
  return r;
}

static int same_reply(const smtpc_reply *a, const smtpc_reply *b) {
  size_t i;
  if (a->code != b->code || a->nlines != b->nlines || a->size != b->size ||
      strcmp(a->status, b->status) != 0)
    return 0;
  for (i = 0; i < a->nlines; i++)
    if (a->lines[i].len != b->lines[i].len ||
        memcmp(a->lines[i].ptr, b->lines[i].ptr, a->lines[i].len) != 0)
      return 0;
  return 1;
}

void smtpc__item_free(smtpc_plan *p, item *it) {
  smtpc__reply_unref(p, it->reply); /* (input and rcpt live in the item's block) */
  smtpc__pfree(p, it->transcript);
  smtpc__item_mem_free(p, it, it->slab);
}

/* An item is freed once no session holds it, no queued RESULT points at it, and it is either
 * reported or a probe that is no longer anywhere. */
void smtpc__item_release(smtpc_plan *p, item *it) {
  if (it->in_dialog || it->in_queue || !(it->reported || it->probe)) return;
  smtpc__item_free(p, it);
}

void smtpc__item_detach(item *it) {
  l_del(&it->q);
  if (it->state == IT_QUEUED && it->dom && it->dom->grp) it->dom->grp->nqueued--;
}

/* Report one input: the one and only result for it. The RESULT action is built from the
 * item when it is handed out (plan.c); the item lives until then. */
void smtpc__report(smtpc_plan *p, item *it, int verdict, int reason) {
  if (it->reported || it->probe) return;
  it->verdict = verdict;
  it->reason = reason;
  it->catch_all = it->dom && p->o.catch_all ? it->dom->catch_all : -1;
  it->reported = 1;
  smtpc__item_detach(it);
  smtpc__all_del(p, it);
  it->state = IT_DONE;
  /* pending counts until the RESULT is handed out: "added but not yet reported" */
  if (smtpc__push_action(p, SMTPC_PLAN_RESULT, 0, it) != 0) {
    /* no room to queue it: the result is lost, not the memory (ENOMEM is the only way) */
    p->pending--;
    smtpc__item_release(p, it);
  }
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
void smtpc__learn(smtpc_plan *p, item *it, session *s, int stage, const smtpc_reply *rep,
                  int err, int reason, const char *detail) {
  smtpc_context ctx;
  smtpc__reply_unref(p, it->reply);
  it->reply = NULL;
  it->reason = SMTPC_REASON_UNDEFINED;
  it->greylisted = 0;
  if (rep && s && s->last && s->last_stage == stage && same_reply(&s->last->r, rep)) {
    it->reply = reply_ref(s->last); /* the class is a function of the reply and context */
    it->reason = (short)it->reply->cls.reason;
    it->greylisted = it->reply->cls.greylisted != 0;
  } else if (rep) {
    smtpc_class cls;
    ctx.command = smtpc_cmd_name(stage);
    ctx.host = s && s->mx ? s->mx : (it->dom ? it->dom->name : NULL);
    smtpc_classify_lines(rep->code, rep->status, rep->lines, rep->nlines, &ctx, &cls);
    it->reply = save_reply(p, rep, &cls);
    it->reason = (short)cls.reason;
    it->greylisted = cls.greylisted != 0;
    if (s && it->reply) {
      smtpc__reply_unref(p, s->last);
      s->last = reply_ref(it->reply);
      s->last_stage = stage;
    }
  }
  if (reason != SMTPC_REASON_UNDEFINED) it->reason = (short)reason;
  else if (!rep && err) it->reason = SMTPC_REASON_NETWORKERROR;
  it->err = (short)err;
  it->detail = detail;
  if (s) {
    it->mx = s->mx;
    it->mx_addr = s->h->text;
    it->tls = smtpc_dialog_tls(s->d) != 0;
    if (p->o.transcript) {
      size_t n;
      const char *t = smtpc_dialog_transcript(s->d, &n);
      smtpc__pfree(p, it->transcript);
      it->transcript = NULL;
      it->transcript_len = 0;
      if (t && (it->transcript = smtpc__pmalloc(p, n + 1)) != NULL) {
        memcpy(it->transcript, t, n);
        it->transcript[n] = '\0';
        it->transcript_len = (uint32_t)n; /* (a dialog's transcript is capped at 64 KiB) */
      }
    }
  }
}

void smtpc__enqueue(smtpc_plan *p, item *it, int front) {
  group *g = it->dom->grp;
  smtpc__item_detach(it);
  it->state = IT_QUEUED;
  if (front) l_push_front(&g->queue, &it->q);
  else l_push(&g->queue, &it->q);
  g->nqueued++;
  smtpc__group_ready(p, g);
  p->dirty = 1;
}

static void delay_item(smtpc_plan *p, item *it, uint64_t us) {
  smtpc__item_detach(it);
  it->state = IT_DELAYED;
  it->ready_at = p->now + us;
  /* kept in ready order (from the tail: delays are nearly always the same), so that the
   * scheduling pass stops at the first one not ready */
  {
    link *l = p->delayed.prev;
    while (l != &p->delayed && CONTAINER(l, item, q)->ready_at > it->ready_at) l = l->prev;
    l_push(l->next, &it->q); /* before l->next = after l */
  }
  p->dirty = 1;
}

/* A session lost this item: try again, or report the last thing learnt. */
void smtpc__retry_or_report(smtpc_plan *p, item *it, uint64_t after_us) {
  if (it->probe) return;
  if (++it->attempts >= MAX_ATTEMPTS || p->now + after_us >= it->added + p->deadline_us) {
    smtpc__report(p, it, verdict_of(it), it->reason);
    return;
  }
  if (after_us) delay_item(p, it, after_us);
  else smtpc__enqueue(p, it, 0);
}

void smtpc__flush_held(smtpc_plan *p, domain *d) {
  while (!l_empty(&d->held)) {
    item *it = CONTAINER(d->held.next, item, q);
    if (it->q.next != &d->held) item_prefetch(CONTAINER(it->q.next, item, q));
    int ca = p->o.catch_all ? d->catch_all : -1;
    smtpc__report(p, it, ca == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE, it->reason);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* deciding after a dialog event */

static void backoff_host(smtpc_plan *p, session *s, const item *it) {
  int after = it->reply ? it->reply->cls.retry_after : 0;
  uint64_t us = after > 0 ? (uint64_t)after * 1000000
                          : (uint64_t)2000000 << (s->h->strikes < 5 ? s->h->strikes : 5);
  /* every address of the session hears the same 421: count it as one strike */
  if (s->backed_off) return;
  s->backed_off = 1;
  s->h->strikes++;
  if (s->h->next_at < p->now + us) s->h->next_at = p->now + us;
}

void smtpc__host_down(smtpc_plan *p, session *s, const item *it) {
  host *h = s->h;
  h->down_until = p->now + HOST_DOWN_US;
  smtpc__reply_unref(p, h->fail_reply);
  h->fail_reply = reply_ref(it->reply);
  h->fail_err = it->err;
  h->fail_reason = it->reason;
  h->fail_detail = it->detail;
}

/* An address that never reached its MX because every host is down takes their excuse. */
void smtpc__adopt_host_failure(item *it, const group *g) {
  const smtpc_route *route = g->route;
  size_t m, a, k = 0;
  if (it->reply || it->err) return;
  for (m = 0; m < route->nmx; m++)
    for (a = 0; a < route->mx[m].naddrs; a++) {
      host *h = g->hosts[k++];
      if (h == NULL || (h->fail_reply == NULL && h->fail_err == 0)) continue;
      it->reply = reply_ref(h->fail_reply);
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
item *smtpc__probe_new(smtpc_plan *p, domain *d) {
  unsigned char rnd[10], slab;
  size_t k, dl;
  item *pr;
  if (d->probe_rcpt == NULL) {
    uint64_t z = p->rng += 0x9E3779B97F4A7C15ULL, w; /* splitmix64: 50 bits for 10 letters */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    w = z ^ (z >> 31);
    for (k = 0; k < sizeof rnd; k++) rnd[k] = (unsigned char)(w >> (5 * k));
    dl = strlen(d->name);
    if ((d->probe_rcpt = smtpc__pmalloc(p, 7 + sizeof rnd + dl + 1)) == NULL) return NULL;
    memcpy(d->probe_rcpt, "smtpc-", 6);
    for (k = 0; k < sizeof rnd; k++)
      d->probe_rcpt[6 + k] = "abcdefghijklmnopqrstuvwxyz234567"[rnd[k] & 31];
    d->probe_rcpt[6 + sizeof rnd] = '@';
    memcpy(d->probe_rcpt + 7 + sizeof rnd, d->name, dl + 1);
  }
  dl = strlen(d->probe_rcpt);
  if ((pr = smtpc__item_mem(p, sizeof *pr + dl + 1, &slab)) == NULL) return NULL;
  memset(pr, 0, sizeof *pr);
  pr->slab = slab;
  memcpy(item_input(pr), d->probe_rcpt, dl + 1); /* its RCPT address: it has no input */
  pr->rcpt_len = (uint16_t)dl;
  pr->probe = 1;
  pr->dom = d;
  pr->reason = SMTPC_REASON_UNDEFINED;
  l_init(&pr->q);
  return pr;
}

/* The probe went unanswered: its session spent its rejection budget before sending it, or
 * ended (421 "too many errors", a reset ...). Accepted addresses of the domain may be held for
 * it; reporting them now would lose the catch-all answer, so the probe goes again at the head
 * of the group's queue, where the next session sends it first. Only losses that are the
 * session's fault count against PROBE_TRIES (count = 1); an unsent probe does not. */
void smtpc__probe_lost(smtpc_plan *p, domain *d, int count) {
  item *pr;
  if (d->probe_state != PROBE_INFLIGHT) return;
  if (count && ++d->probe_tries >= PROBE_TRIES) {
    d->probe_state = PROBE_DONE;
    smtpc__flush_held(p, d);
    return;
  }
  d->probe_state = PROBE_NONE; /* the next session with an address of the domain adds one */
  if (l_empty(&d->held) || p->canceled) return;
  if ((pr = smtpc__probe_new(p, d)) == NULL) {
    smtpc__flush_held(p, d);
    return;
  }
  d->probe_state = PROBE_QUEUED;
  smtpc__enqueue(p, pr, 1);
}

/* The probe's RCPT was answered. */
static void on_probe(smtpc_plan *p, item *it, const smtpc_dialog_event *ev) {
  domain *d = it->dom;
  int code = ev->reply ? ev->reply->code : 0;
  if (ev->outcome != SMTPC_RCPT_REPLY) {
    smtpc__probe_lost(p, d, 1);
    return;
  }
  if (code >= 200 && code < 300) d->catch_all = 1;
  else if (code >= 500 && code < 600) d->catch_all = 0;
  /* a deferred probe (greylisting) goes again with the next session, a few times at most */
  d->probe_state = d->catch_all != -1 || ++d->probe_tries >= PROBE_TRIES ? PROBE_DONE : PROBE_NONE;
  smtpc__flush_held(p, d);
}

static void on_rcpt_reply(smtpc_plan *p, session *s, item *it) {
  int code = it->reply ? it->reply->r.code : 0;
  domain *d = it->dom;
  if (code >= 200 && code < 300) {
    int ca = p->o.catch_all ? d->catch_all : -1;
    if (ca == -1 && p->o.catch_all &&
        (d->probe_state == PROBE_INFLIGHT || d->probe_state == PROBE_QUEUED)) {
      smtpc__item_detach(it);
      it->state = IT_HELD;
      l_push(&d->held, &it->q);
      return;
    }
    smtpc__report(p, it, ca == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE, it->reason);
  } else if (code >= 400 && code < 500) {
    uint64_t delay = secs_us(p->o.greylist_delay);
    if (it->reason == SMTPC_REASON_MAILBOXFULL) {
      smtpc__report(p, it, SMTPC_VERDICT_RISKY, it->reason);
    } else if (it->reason == SMTPC_REASON_RATELIMITED) {
      backoff_host(p, s, it);
      smtpc__retry_or_report(p, it, 0);
    } else if (p->o.greylist_delay >= 0 && it->temp_retries < MAX_TEMP_RETRIES &&
               p->now + delay < it->added + p->deadline_us) {
      it->temp_retries++;
      delay_item(p, it, delay);
    } else {
      smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, it->reason);
    }
  } else if (code >= 500 && code < 600) {
    smtpc__report(p, it, verdict_of(it), it->reason);
  } else {
    it->err = SMTPC_EPROTO;
    smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  }
}

static void on_session_fail(smtpc_plan *p, session *s, item *it,
                            const smtpc_dialog_event *ev) {
  int code = ev->reply ? ev->reply->code : 0;
  if (ev->stage == SMTPC_CMD_TLS && p->o.starttls == SMTPC_STARTTLS_OPPORTUNISTIC &&
      (ev->reason == SMTPC_REASON_FAILEDSTARTTLS || ev->err == SMTPC_ECLOSED || ev->err == SMTPC_ETIMEOUT)) {
    /* the handshake broke the connection (an alert, a hang-up or silence): next time, in clear */
    s->h->no_tls = 1;
    smtpc__retry_or_report(p, it, 0);
  } else if (ev->reason != SMTPC_REASON_UNDEFINED) {
    smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  } else if (code >= 400 && code < 500 && ev->stage == SMTPC_CMD_BANNER) {
    smtpc__host_down(p, s, it); /* a 4xx greeting: try the next MX */
    smtpc__retry_or_report(p, it, 0);
  } else if (code >= 400 && code < 500) { /* 421 "too many errors", rate limits ... */
    backoff_host(p, s, it);
    smtpc__retry_or_report(p, it, 0);
  } else if (code >= 500 && code < 600) {
    smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  } else {
    if (ev->stage == SMTPC_CMD_BANNER) smtpc__host_down(p, s, it);
    smtpc__retry_or_report(p, it, 0);
  }
}

void smtpc__on_event(void *ud, const smtpc_dialog_event *ev) {
  session *s = ud;
  smtpc_plan *p = s->p;
  item *it = s->items[ev->index];
  /* the replies come in RCPT order, mostly several per read: the next one's item is wanted */
  if (ev->index + 1 < s->nitems && s->items[ev->index + 1]) item_prefetch(s->items[ev->index + 1]);
  it->in_dialog = 0;
  if (!it->probe) s->items[ev->index] = NULL; /* from here the item lives on its own */
  if (it->reported) { /* expired or canceled while its RCPT was out */
    smtpc__item_release(p, it);
    return;
  }
  if (ev->outcome == SMTPC_RCPT_UNTRIED) {
    if (it->probe) smtpc__probe_lost(p, it->dom, 0);
    else {
      smtpc__enqueue(p, it, 1);
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
  smtpc__learn(p, it, s, ev->stage, ev->reply, ev->err, ev->reason, ev->detail);
  if (it->probe) {
    on_probe(p, it, ev);
    return;
  }
  if (ev->outcome == SMTPC_RCPT_REPLY) on_rcpt_reply(p, s, it);
  else on_session_fail(p, s, it, ev);
}

/* The domain has no usable route: the contract's DNS verdicts. */
void smtpc__dns_fail(smtpc_plan *p, domain *d, item *it) {
  if (d->null_mx) {
    it->detail = "the domain takes no mail (null MX, RFC 7505)";
    smtpc__report(p, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_NOTACCEPT);
  } else if (d->dns_error == SMTPC_DNS_NXDOMAIN || d->dns_error == SMTPC_DNS_NOADDRESS) {
    it->detail = smtpc_dns_error_message(d->dns_error);
    smtpc__report(p, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_HOSTUNKNOWN);
  } else {
    it->err = d->failed_status == SMTPC_ECANCELED ? SMTPC_ECANCELED : SMTPC_EDNS;
    it->detail = d->dns_error ? smtpc_dns_error_message(d->dns_error) : "DNS lookup failed";
    smtpc__report(p, it, SMTPC_VERDICT_UNKNOWN, SMTPC_REASON_NETWORKERROR);
  }
}
