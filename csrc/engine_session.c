/*
 * engine_session.c -- one TCP connection and its dialog: connect, STARTTLS, read/write,
 * timers and close callbacks; and which queued items a new session takes.
 */
#include "engine_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* sessions */

typedef struct wreq {
  uv_write_t req;
  char data[1];
} wreq;

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
      smtpc__sess_close(s);
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

static void connect_failed(session *s, int err, const char *detail);

/* seam: socks -- proxy bytes go to the handshake until the tunnel is open; what follows
 * (a banner in the same packet) is the dialog's. Returns how many octets were the proxy's, or
 * -1 when the session is over. */
static ssize_t socks_read(session *s, ssize_t nread, const uv_buf_t *buf) {
  size_t used = 0, n;
  const char *out;
  int rc = nread < 0 ? smtpc_socks_eof(s->socks)
                     : smtpc_socks_feed(s->socks, buf->base, (size_t)nread, &used);
  if (rc < 0) {
    connect_failed(s, rc, smtpc_socks_detail(s->socks));
    return -1;
  }
  out = smtpc_socks_output(s->socks, &n);
  if (n) sess_send(s, out, n);
  smtpc_socks_consume(s->socks);
  if (rc == 1) { /* the tunnel is open: from here on it is an SMTP connection */
    smtpc_socks_free(s->socks);
    s->socks = NULL;
    s->connected = 1;
    arm(s, s->v->o.timeout); /* the banner */
  }
  return (ssize_t)used;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  session *s = st->data;
  uv_buf_t rest = *buf;
  if (s->closing) return;
  if (s->socks) {
    ssize_t used = socks_read(s, nread, buf);
    if (used < 0 || s->socks || nread <= used) return;
    rest.base += used;
    nread -= used;
  }
  buf = &rest;
  if (nread < 0) {
    /* through a proxy, the proxy is the one we see hang up */
    smtpc_dialog_eof(s->d, s->v->use_proxy ? SMTPC_EPROXYCLOSED : SMTPC_ECLOSED);
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
      smtpc__item_free(it);
      continue;
    }
    if (it->probe) {
      smtpc__probe_lost(s->v, it->dom, 1);
      smtpc__item_free(it);
      continue;
    }
    smtpc__learn(s->v, it, NULL, SMTPC_CMD_BANNER, NULL, err, SMTPC_REASON_NETWORKERROR, detail);
    it->mx = s->mx;
    it->mx_addr = s->h->text;
    if (!down++) smtpc__host_down(s, it);
    smtpc__retry_or_report(s->v, it, 0);
  }
  if (!down) { /* only probes or reported items were aboard: mark the host anyway */
    s->h->down_until = uv_now(s->v->loop) + HOST_DOWN_MS;
    s->h->fail_err = err;
    s->h->fail_reason = SMTPC_REASON_NETWORKERROR;
    s->h->fail_detail = detail;
  }
  smtpc__sess_close(s);
}

static void on_connect(uv_connect_t *req, int status) {
  session *s = req->data;
  if (s->closing) return;
  if (status < 0) {
    connect_failed(s, s->socks ? SMTPC_EPROXYCONNECT : SMTPC_ECLOSED, uv_strerror(status));
    return;
  }
  if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) != 0) {
    connect_failed(s, SMTPC_ECLOSED, "read failed");
    return;
  }
  if (s->socks) { /* seam: socks -- the greeting; connected once the tunnel is open */
    size_t n;
    const char *out = smtpc_socks_output(s->socks, &n);
    sess_send(s, out, n);
    smtpc_socks_consume(s->socks);
    arm(s, s->v->o.timeout);
    return;
  }
  s->connected = 1;
  arm(s, s->v->o.timeout); /* the banner */
}

static void on_sess_timer(uv_timer_t *t) {
  session *s = t->data;
  if (s->closing) return;
  if (!s->connected) {
    connect_failed(s, SMTPC_ETIMEOUT,
                   s->socks ? "no SOCKS5 answer from the proxy in time" : "connect timed out");
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
      if (it->in_dialog) smtpc__probe_lost(v, it->dom, 1);
      smtpc__item_free(it);
    } else if (it->reported) {
      smtpc__item_free(it);
    } else { /* the dialog never told: cannot happen unless closed from outside */
      it->in_dialog = 0;
      smtpc__learn(v, it, NULL, SMTPC_CMD_QUIT, NULL, SMTPC_ECLOSED, SMTPC_REASON_NETWORKERROR,
            "session ended");
      smtpc__retry_or_report(v, it, 0);
    }
  }
  free(s->items);
  smtpc_dialog_free(s->d);
  smtpc__tls_free(s->tls);
  smtpc_socks_free(s->socks);
  s->h->active--;
  v->active--;
  l_del(&s->node);
  free(s);
  smtpc__kick(v);
  smtpc__maybe_finish_close(v);
}

static void on_sess_closed(uv_handle_t *h) {
  session *s = h->data;
  if (--s->nclosing == 0) sess_free(s);
}

void smtpc__sess_close(session *s) {
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
int smtpc__start_session(smtpc_verifier *v, group *g, host *h, const char *mx) {
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
  s->d = s->items ? smtpc_dialog_new(&cfg, smtpc__on_event, s, &err) : NULL;
  if (s->d == NULL) {
    free(s->items);
    free(s);
    return SMTPC_ENOMEM;
  }
  s->v = v;
  s->grp = g;
  s->h = h;
  s->mx = mx;

  /* queue order: a probe that was lost before (at the head, see smtpc__probe_lost), then real
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
      smtpc__item_detach(it);
      smtpc__item_free(it);
      d->probe_state = PROBE_DONE;
      smtpc__flush_held(v, d);
      continue;
    }
    if (idx < 0) { /* never: the parser refused these first; refuse them again anyway */
      smtpc__learn(v, it, NULL, 0, NULL, 0, SMTPC_REASON_SYNTAXERROR, smtpc_strerror((int)idx));
      smtpc__report(v, it, SMTPC_VERDICT_UNDELIVERABLE, SMTPC_REASON_SYNTAXERROR);
      continue;
    }
    smtpc__item_detach(it);
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
    if ((pr = smtpc__probe_new(d)) == NULL) continue;
    if (smtpc_dialog_add_rcpt(s->d, pr->rcpt, pr->rcpt_len, 0) < 0) {
      smtpc__item_free(pr);
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
  if (v->use_proxy) { /* seam: socks -- connect to the proxy; it connects to the MX */
    s->socks = smtpc_socks_new(&v->proxy, v->proxy.remote_dns ? mx : h->text, v->o.port, &err);
    if (s->socks == NULL) {
      connect_failed(s, SMTPC_EPROXY, "cannot start the SOCKS5 handshake (MX name too long?)");
      return 0;
    }
    sa = v->proxy_sa;
  }
  if (v->nsrcs) { /* seam: source -- one source per MX address for the run, round-robin */
    if (h->src == 0) {
      size_t k;
      for (k = 0; k < v->nsrcs && !h->src; k++) {
        size_t i = (v->next_src + k) % v->nsrcs;
        if (v->srcs[i].sa.sa_family == sa.sa.sa_family) {
          h->src = (int)i + 1;
          v->next_src = i + 1;
        }
      }
      if (!h->src) h->src = -1; /* none of its family: the system chooses */
    }
    if (h->src > 0) err = uv_tcp_bind(&s->tcp, &v->srcs[h->src - 1].sa, 0);
  }
  if (err == 0) err = uv_tcp_connect(&s->creq, &s->tcp, &sa.sa, on_connect);
  if (err != 0) {
    connect_failed(s, SMTPC_ECLOSED, uv_strerror(err));
    return 0;
  }
  arm(s, v->o.connect_timeout);
  return 0;
}
