/*
 * engine_decide.c -- the probe's items and results, and what to do with an item after each
 * event of its dialog: report it, hold it for the catch-all answer, retry it, back off or skip
 * its host. The catch-all probes of a domain live here too.
 */
#include "engine_internal.h"

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

void smtpc__item_free(item *it) {
  free(it->input);
  free(it->rcpt);
  free(it->reply);
  free(it->transcript);
  free(it->cached);
  free(it);
}

void smtpc__item_detach(item *it) {
  l_del(&it->q);
  if (it->state == IT_QUEUED && it->dom && it->dom->grp) it->dom->grp->nqueued--;
}

/* What the probe learnt of the domain's route, as inspect.c's typo check wants it. */
static int route_fact(const domain *d) {
  if (d == NULL) return SMTPC_ROUTE_UNKNOWN;
  if (d->grp) return SMTPC_ROUTE_OK;
  if (d->null_mx || d->dns_error == SMTPC_DNS_NXDOMAIN || d->dns_error == SMTPC_DNS_NOADDRESS)
    return SMTPC_ROUTE_NONE;
  return SMTPC_ROUTE_UNKNOWN;
}

/* Report one input: the one and only result for it. */
void smtpc__report(smtpc_verifier *v, item *it, int verdict, int reason) {
  smtpc_result r;
  int fact;
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
  /* seam: cache -- a stored answer goes out as stored; a new one is stored */
  if (it->cached) smtpc__rcached_result(it->cached, &r);
  else if (v->cache && it->rcpt) (void)smtpc__rcache_put(v->cache, it->rcpt, &r);
  /* disposable, role, free provider, suggestion; the disposable policy may change the verdict.
   * A result suggests only what DNS backs: a domain that failed to resolve may exist. */
  fact = route_fact(it->dom);
  if (smtpc_inspect(it->input, it->input_len, fact, &r.inspect) == 0)
    r.verdict = smtpc_verdict_with_inspection(verdict, &r.inspect, v->o.disposable);
  if (fact != SMTPC_ROUTE_NONE) r.inspect.suggestion[0] = '\0';
  it->reported = 1;
  smtpc__item_detach(it);
  l_del(&it->all);
  it->state = IT_DONE;
  v->pending--;
  v->cb(v, &r, v->data);
  if (!it->in_dialog) smtpc__item_free(it); /* the result pointed into it until now */
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
void smtpc__learn(smtpc_verifier *v, item *it, session *s, int stage, const smtpc_reply *rep,
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

void smtpc__enqueue(smtpc_verifier *v, item *it, int front) {
  group *g = it->dom->grp;
  smtpc__item_detach(it);
  it->state = IT_QUEUED;
  if (front) l_push_front(&g->queue, &it->q);
  else l_push(&g->queue, &it->q);
  g->nqueued++;
  smtpc__kick(v);
}

static void delay_item(smtpc_verifier *v, item *it, uint64_t ms) {
  smtpc__item_detach(it);
  it->state = IT_DELAYED;
  it->ready_ms = uv_now(v->loop) + ms;
  l_push(&v->delayed, &it->q);
  smtpc__kick(v);
}

/* A session lost this item: try again, or report the last thing learnt. */
void smtpc__retry_or_report(smtpc_verifier *v, item *it, uint64_t after_ms) {
  if (it->probe) return;
  if (++it->attempts >= MAX_ATTEMPTS || uv_now(v->loop) + after_ms >= it->deadline_ms) {
    smtpc__report(v, it, verdict_of(it), it->reason);
    return;
  }
  if (after_ms) delay_item(v, it, after_ms);
  else smtpc__enqueue(v, it, 0);
}

void smtpc__flush_held(smtpc_verifier *v, domain *d) {
  while (!l_empty(&d->held)) {
    item *it = CONTAINER(d->held.next, item, q);
    int ca = v->o.catch_all ? d->catch_all : -1;
    smtpc__report(v, it, ca == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE, it->reason);
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

void smtpc__host_down(session *s, const item *it) {
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
void smtpc__adopt_host_failure(smtpc_verifier *v, item *it, const smtpc_route *route) {
  size_t m, a;
  if (it->reply || it->err) return;
  for (m = 0; m < route->nmx; m++)
    for (a = 0; a < route->mx[m].naddrs; a++) {
      host *h = smtpc__host_for(v, &route->mx[m].addrs[a]);
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
item *smtpc__probe_new(domain *d) {
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
void smtpc__probe_lost(smtpc_verifier *v, domain *d, int count) {
  item *pr;
  if (d->probe_state != PROBE_INFLIGHT) return;
  if (count && ++d->probe_tries >= PROBE_TRIES) {
    d->probe_state = PROBE_DONE;
    smtpc__flush_held(v, d);
    return;
  }
  d->probe_state = PROBE_NONE; /* the next session with an address of the domain adds one */
  if (l_empty(&d->held) || v->canceled) return;
  if ((pr = smtpc__probe_new(d)) == NULL) {
    smtpc__flush_held(v, d);
    return;
  }
  d->probe_state = PROBE_QUEUED;
  smtpc__enqueue(v, pr, 1);
}

/* The probe's RCPT was answered. */
static void on_probe(smtpc_verifier *v, item *it, const smtpc_dialog_event *ev) {
  domain *d = it->dom;
  int code = ev->reply ? ev->reply->code : 0;
  if (ev->outcome != SMTPC_RCPT_REPLY) {
    smtpc__probe_lost(v, d, 1);
    return;
  }
  if (code >= 200 && code < 300) d->catch_all = 1;
  else if (code >= 500 && code < 600) d->catch_all = 0;
  if (v->cache) smtpc__rcache_put_catch_all(v->cache, d->name, d->catch_all); /* seam: cache */
  /* a deferred probe (greylisting) goes again with the next session, a few times at most */
  d->probe_state = d->catch_all != -1 || ++d->probe_tries >= PROBE_TRIES ? PROBE_DONE : PROBE_NONE;
  smtpc__flush_held(v, d);
}

static void on_rcpt_reply(smtpc_verifier *v, session *s, item *it) {
  int code = it->reply ? it->reply->r.code : 0;
  domain *d = it->dom;
  if (code >= 200 && code < 300) {
    int ca = v->o.catch_all ? d->catch_all : -1;
    if (ca == -1 && v->o.catch_all &&
        (d->probe_state == PROBE_INFLIGHT || d->probe_state == PROBE_QUEUED)) {
      smtpc__item_detach(it);
      it->state = IT_HELD;
      l_push(&d->held, &it->q);
      return;
    }
    smtpc__report(v, it, ca == 1 ? SMTPC_VERDICT_RISKY : SMTPC_VERDICT_DELIVERABLE, it->reason);
  } else if (code >= 400 && code < 500) {
    uint64_t delay = secs_ms(v->o.greylist_delay);
    if (it->reason == SMTPC_REASON_MAILBOXFULL) {
      smtpc__report(v, it, SMTPC_VERDICT_RISKY, it->reason);
    } else if (it->reason == SMTPC_REASON_RATELIMITED) {
      backoff_host(s, it);
      smtpc__retry_or_report(v, it, 0);
    } else if (v->o.greylist_delay >= 0 && it->temp_retries < MAX_TEMP_RETRIES &&
               uv_now(v->loop) + delay < it->deadline_ms) {
      it->temp_retries++;
      delay_item(v, it, delay);
    } else {
      smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
    }
  } else if (code >= 500 && code < 600) {
    smtpc__report(v, it, verdict_of(it), it->reason);
  } else {
    it->err = SMTPC_EPROTO;
    smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  }
}

static void on_session_fail(smtpc_verifier *v, session *s, item *it,
                            const smtpc_dialog_event *ev) {
  int code = ev->reply ? ev->reply->code : 0;
  if (ev->stage == SMTPC_CMD_TLS && v->o.starttls == SMTPC_STARTTLS_OPPORTUNISTIC &&
      (ev->reason == SMTPC_REASON_FAILEDSTARTTLS || ev->err == SMTPC_ECLOSED || ev->err == SMTPC_ETIMEOUT)) {
    /* the handshake broke the connection (an alert, a hang-up or silence): next time, in clear */
    s->h->no_tls = 1;
    smtpc__retry_or_report(v, it, 0);
  } else if (ev->reason != SMTPC_REASON_UNDEFINED) {
    smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  } else if (code >= 400 && code < 500 && ev->stage == SMTPC_CMD_BANNER) {
    smtpc__host_down(s, it); /* a 4xx greeting: try the next MX */
    smtpc__retry_or_report(v, it, 0);
  } else if (code >= 400 && code < 500) { /* 421 "too many errors", rate limits ... */
    backoff_host(s, it);
    smtpc__retry_or_report(v, it, 0);
  } else if (code >= 500 && code < 600) {
    smtpc__report(v, it, SMTPC_VERDICT_UNKNOWN, it->reason);
  } else {
    if (ev->stage == SMTPC_CMD_BANNER) smtpc__host_down(s, it);
    smtpc__retry_or_report(v, it, 0);
  }
}

void smtpc__on_event(void *ud, const smtpc_dialog_event *ev) {
  session *s = ud;
  smtpc_verifier *v = s->v;
  item *it = s->items[ev->index];
  it->in_dialog = 0;
  if (!it->probe) s->items[ev->index] = NULL; /* from here the item lives on its own */
  if (it->reported) { /* expired or canceled while its RCPT was out */
    smtpc__item_free(it);
    return;
  }
  if (ev->outcome == SMTPC_RCPT_UNTRIED) {
    if (it->probe) smtpc__probe_lost(v, it->dom, 0);
    else {
      smtpc__enqueue(v, it, 1);
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
  smtpc__learn(v, it, s, ev->stage, ev->reply, ev->err, ev->reason, ev->detail);
  if (it->probe) {
    on_probe(v, it, ev);
    return;
  }
  if (ev->outcome == SMTPC_RCPT_REPLY) on_rcpt_reply(v, s, it);
  else on_session_fail(v, s, it, ev);
}
