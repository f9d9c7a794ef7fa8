/* test_dialog.c -- the SMTP dialog machine fed server transcripts: each transcript is fed whole,
 * at every split point in two pieces, and byte by byte, and must give the same client bytes and
 * the same per-recipient events every time. No test may ever see DATA on the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtpcode.h"

typedef struct run {
  char out[8192];
  size_t outlen;
  char ev[4096];
  size_t evlen;
  unsigned want;
} run;

static void on_event(void *ud, const smtpc_dialog_event *e) {
  run *r = ud;
  static const char *const oc[] = {"?", "R", "S", "U"};
  int n = snprintf(r->ev + r->evlen, sizeof r->ev - r->evlen, "%zu %s %s %d%s%s%s%s%s%s;",
                   e->index, oc[e->outcome], smtpc_cmd_name(e->stage),
                   e->reply ? e->reply->code : 0,
                   e->reply && e->reply->status[0] ? " " : "", e->reply ? e->reply->status : "",
                   e->err ? " !" : "", e->err ? smtpc_err_name(e->err) : "",
                   e->reason ? " " : "", e->reason ? smtpc_reason_name(e->reason) : "");
  assert_true(n > 0 && (size_t)n < sizeof r->ev - r->evlen);
  r->evlen += (size_t)n;
}

static void drain(smtpc_dialog *d, run *r) {
  size_t len;
  const char *p = smtpc_dialog_output(d, &len);
  assert_true(r->outlen + len < sizeof r->out);
  if (len) memcpy(r->out + r->outlen, p, len);
  r->outlen += len;
  r->out[r->outlen] = '\0';
  smtpc_dialog_consume(d);
}

static const char *const default_rcpts[] = {"a@x.test", "b@x.test", "c@x.test", NULL};

static smtpc_dialog *make(const smtpc_dialog_opts *cfg, const char *const *rcpts,
                           const int *utf8, run *r) {
  int err = 0;
  size_t i;
  smtpc_dialog *d;
  smtpc_dialog_opts def;
  memset(r, 0, sizeof *r);
  if (cfg == NULL) {
    memset(&def, 0, sizeof def);
    def.helo = "probe.test";
    def.mail_from = "s@x.test";
    cfg = &def;
  }
  d = smtpc_dialog_new(cfg, on_event, r, &err);
  assert_non_null(d);
  assert_int_equal(err, 0);
  for (i = 0; rcpts[i]; i++)
    assert_int_equal(smtpc_dialog_add_rcpt(d, rcpts[i], strlen(rcpts[i]), utf8 ? utf8[i] : 0),
                     (long)i);
  return d;
}

/* Feed `srv` in pieces ending at cuts[] (ascending, then the end), draining after each. */
static void feed_cuts(const smtpc_dialog_opts *cfg, const char *const *rcpts, const int *utf8,
                      const char *srv, const size_t *cuts, size_t ncuts, run *r) {
  size_t len = strlen(srv), from = 0, i;
  smtpc_dialog *d = make(cfg, rcpts, utf8, r);
  for (i = 0; i <= ncuts; i++) {
    size_t to = i < ncuts ? cuts[i] : len;
    smtpc_dialog_feed(d, srv + from, to - from);
    drain(d, r);
    from = to;
  }
  r->want = smtpc_dialog_want(d);
  smtpc_dialog_free(d);
}

/* The transcript must give out_expect / ev_expect fed whole, in two pieces at every split
 * point, and one byte at a time. */
static void check_all_splits(const smtpc_dialog_opts *cfg, const char *const *rcpts,
                             const int *utf8, const char *srv, const char *out_expect,
                             const char *ev_expect, unsigned want_expect) {
  size_t len = strlen(srv), k;
  size_t *each = malloc((len + 1) * sizeof *each);
  run *r = malloc(sizeof *r);
  assert_non_null(each);
  assert_non_null(r);
  for (k = 0; k <= len; k++) {
    feed_cuts(cfg, rcpts, utf8, srv, &k, 1, r);
    assert_string_equal(r->out, out_expect);
    assert_string_equal(r->ev, ev_expect);
    assert_int_equal(r->want, want_expect);
    assert_null(strstr(r->out, "DATA"));
  }
  for (k = 0; k < len; k++) each[k] = k + 1;
  feed_cuts(cfg, rcpts, utf8, srv, each, len, r);
  assert_string_equal(r->out, out_expect);
  assert_string_equal(r->ev, ev_expect);
  free(each);
  free(r);
}

#define EHLO_PLAIN "250-mx.x.test\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
#define EHLO_PIPE "250-mx.x.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"

static void test_lockstep(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts, NULL,
                   "220 mx.x.test ESMTP\r\n" EHLO_PLAIN "250 2.1.0 Ok\r\n"
                   "250 2.1.5 Ok\r\n550 5.1.1 <b@x.test>: User unknown\r\n"
                   "452 4.2.2 Mailbox full\r\n221 2.0.0 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250 2.1.5;1 R RCPT 550 5.1.1;2 R RCPT 452 4.2.2;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

static void test_pipelined_one_write(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts, NULL,
                   "220 mx ESMTP\r\n" EHLO_PIPE "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                   "550 5.1.1 unknown\r\n250 2.1.5 Ok\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250 2.1.5;1 R RCPT 550 5.1.1;2 R RCPT 250 2.1.5;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

static void test_pipelined_burst_is_single_chunk(void **state) {
  run r;
  smtpc_dialog *d = make(NULL, default_rcpts, NULL, &r);
  const char *a = "220 mx ESMTP\r\n";
  (void)state;
  smtpc_dialog_feed(d, a, strlen(a));
  drain(d, &r);
  r.outlen = 0;
  smtpc_dialog_feed(d, EHLO_PIPE, strlen(EHLO_PIPE));
  drain(d, &r);
  assert_string_equal(r.out, "MAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                             "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n");
  smtpc_dialog_free(d);
}

static void test_helo_fallback(void **state) {
  const char *const one[] = {"a@x.test", NULL};
  (void)state;
  check_all_splits(NULL, one, NULL,
                   "220 old\r\n502 5.5.2 Error: command not recognized\r\n250 old\r\n"
                   "250 ok\r\n250 ok\r\n221 bye\r\n",
                   "EHLO probe.test\r\nHELO probe.test\r\nMAIL FROM:<s@x.test>\r\n"
                   "RCPT TO:<a@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250;", SMTPC_DIALOG_WANT_CLOSE);
}

static void test_banner_refusal(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts, NULL, "554 5.7.1 no thanks\r\n", "",
                   "0 S CONN 554 5.7.1;1 S CONN 554 5.7.1;2 S CONN 554 5.7.1;",
                   SMTPC_DIALOG_WANT_CLOSE);
  check_all_splits(NULL, default_rcpts, NULL, "421-busy\r\n421 4.3.2 try later\r\n", "",
                   "0 S CONN 421 4.3.2;1 S CONN 421 4.3.2;2 S CONN 421 4.3.2;",
                   SMTPC_DIALOG_WANT_CLOSE);
  check_all_splits(NULL, default_rcpts, NULL, "354 what\r\n", "",
                   "0 S CONN 354 !PROTO;1 S CONN 354 !PROTO;2 S CONN 354 !PROTO;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

static void test_too_many_recipients(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts, NULL,
                   "220 mx\r\n" EHLO_PIPE "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                   "452 4.5.3 Error: too many recipients\r\n452 4.5.3 Error: too many recipients\r\n"
                   "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRSET\r\nMAIL FROM:<s@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250 2.1.5;1 R RCPT 250 2.1.5;2 R RCPT 550 5.1.1;",
                   SMTPC_DIALOG_WANT_CLOSE);
  /* on the first RCPT of a transaction it is an answer, not a count: no endless loop */
  check_all_splits(NULL, default_rcpts + 2, NULL,
                   "220 mx\r\n" EHLO_PLAIN "250 Ok\r\n452 4.5.3 too many recipients\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 452 4.5.3;", SMTPC_DIALOG_WANT_CLOSE);
}

static void test_rejection_budget(void **state) {
  const char *const five[] = {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test", NULL};
  smtpc_dialog_opts cfg;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = "probe.test";
  cfg.mail_from = "s@x.test";
  cfg.max_rejections = 2;
  /* pipelined: never more RCPTs in flight than rejections still allowed */
  check_all_splits(&cfg, five, NULL,
                   "220 mx\r\n" EHLO_PIPE "250 Ok\r\n550 5.1.1 no\r\n250 Ok\r\n550 5.1.1 no\r\n"
                   "221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 550 5.1.1;1 R RCPT 250;2 R RCPT 550 5.1.1;3 U RCPT 0;4 U RCPT 0;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

/* Pipelining widens once the server has accepted max_rejections RCPTs: here 2, so after b's
 * 250 four RCPTs may be in flight (c, d, e, f), not the strict two (c, d). */
static void test_window_widens_after_acceptances(void **state) {
  const char *const eight[] = {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test",
                               "f@x.test", "g@x.test", "h@x.test", NULL};
  smtpc_dialog_opts cfg;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = "probe.test";
  cfg.mail_from = "s@x.test";
  cfg.max_rejections = 2;
  check_all_splits(&cfg, eight, NULL,
                   "220 mx\r\n" EHLO_PIPE "250 Ok\r\n250 Ok\r\n250 Ok\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n"
                   "RCPT TO:<e@x.test>\r\nRCPT TO:<f@x.test>\r\n",
                   "0 R RCPT 250;1 R RCPT 250;", SMTPC_DIALOG_WANT_REPLY);
  /* the widening never goes past max_inflight */
  cfg.max_inflight = 3;
  check_all_splits(&cfg, eight, NULL,
                   "220 mx\r\n" EHLO_PIPE "250 Ok\r\n250 Ok\r\n250 Ok\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n"
                   "RCPT TO:<e@x.test>\r\n",
                   "0 R RCPT 250;1 R RCPT 250;", SMTPC_DIALOG_WANT_REPLY);
}

/* The worst case of the widened window: a server that accepted four, then rejects all it
 * has in flight. Nothing is sent once the budget (2) is spent, the rest goes back at once,
 * and the session ends at 2 x max_rejections rejections, never more. */
static void test_window_worst_case_is_twice_the_budget(void **state) {
  const char *const twelve[] = {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test",
                                "f@x.test", "g@x.test", "h@x.test", "i@x.test", "j@x.test",
                                "k@x.test", "l@x.test", NULL};
  smtpc_dialog_opts cfg;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = "probe.test";
  cfg.mail_from = "s@x.test";
  cfg.max_rejections = 2;
  check_all_splits(&cfg, twelve, NULL,
                   "220 mx\r\n" EHLO_PIPE "250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n"
                   "550 5.1.1 no\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n"
                   "RCPT TO:<e@x.test>\r\nRCPT TO:<f@x.test>\r\nRCPT TO:<g@x.test>\r\n"
                   "RCPT TO:<h@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250;1 R RCPT 250;2 R RCPT 250;3 R RCPT 250;4 R RCPT 550 5.1.1;"
                   "5 R RCPT 550 5.1.1;8 U RCPT 0;9 U RCPT 0;10 U RCPT 0;11 U RCPT 0;"
                   "6 R RCPT 550 5.1.1;7 R RCPT 550 5.1.1;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

/* Once the budget is spent QUIT goes behind the RCPTs still in flight; if the server then
 * hangs up before answering them, they still get their events (the session failed). */
static void test_quit_pipelined_after_budget(void **state) {
  const char *const six[] = {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test",
                             "f@x.test", NULL};
  const char *srv = "220 mx\r\n" EHLO_PIPE "250 Ok\r\n250 Ok\r\n250 Ok\r\n550 5.1.1 no\r\n"
                    "550 5.1.1 no\r\n";
  smtpc_dialog_opts cfg;
  run r;
  smtpc_dialog *d;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = "probe.test";
  cfg.mail_from = "s@x.test";
  cfg.max_rejections = 2;
  d = make(&cfg, six, NULL, &r);
  smtpc_dialog_feed(d, srv, strlen(srv));
  drain(d, &r);
  /* a 250 -> c; b 250 -> d, e, f (window 4 after two acceptances); c, d 550: spent */
  assert_string_equal(r.out, "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                             "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n"
                             "RCPT TO:<e@x.test>\r\nRCPT TO:<f@x.test>\r\nQUIT\r\n");
  assert_string_equal(r.ev, "0 R RCPT 250;1 R RCPT 250;2 R RCPT 550 5.1.1;3 R RCPT 550 5.1.1;");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_REPLY);
  smtpc_dialog_eof(d, 0);
  assert_string_equal(r.ev, "0 R RCPT 250;1 R RCPT 250;2 R RCPT 550 5.1.1;3 R RCPT 550 5.1.1;"
                            "4 S RCPT 0 !CLOSED;5 S RCPT 0 !CLOSED;");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_CLOSE);
  smtpc_dialog_free(d);
}

/* A server answering whatever the dialog sends, RCPTs accepted or rejected at random: over
 * many sessions and budgets, every recipient gets exactly one event and no session collects
 * more than 2 x max_rejections rejections. */
static void test_window_budget_property(void **state) {
  static const char *const names[] = {"r00@x.test", "r01@x.test", "r02@x.test", "r03@x.test",
                                      "r04@x.test", "r05@x.test", "r06@x.test", "r07@x.test",
                                      "r08@x.test", "r09@x.test", "r10@x.test", "r11@x.test",
                                      "r12@x.test", "r13@x.test", "r14@x.test", "r15@x.test",
                                      "r16@x.test", "r17@x.test", "r18@x.test", "r19@x.test",
                                      "r20@x.test", "r21@x.test", "r22@x.test", "r23@x.test",
                                      "r24@x.test", "r25@x.test", "r26@x.test", "r27@x.test",
                                      "r28@x.test", "r29@x.test", NULL};
  unsigned seed = 12345;
  int round;
  (void)state;
  for (round = 0; round < 400; round++) {
    smtpc_dialog_opts cfg;
    run *r = malloc(sizeof *r);
    smtpc_dialog *d;
    size_t budget = 1 + (size_t)round % 5, rejected = 0, i, count[30] = {0};
    unsigned reject_pct = (unsigned)(round * 7) % 101;
    char *p;
    assert_non_null(r);
    memset(&cfg, 0, sizeof cfg);
    cfg.helo = "probe.test";
    cfg.mail_from = "s@x.test";
    cfg.max_rejections = budget;
    d = make(&cfg, names, NULL, r);
    smtpc_dialog_feed(d, "220 mx\r\n", 8);
    for (i = 0; i < 200 && !(smtpc_dialog_want(d) & SMTPC_DIALOG_WANT_CLOSE); i++) {
      size_t before = r->outlen;
      drain(d, r);
      /* answer each new command line in order */
      for (p = r->out + before; p < r->out + r->outlen;) {
        char *eol = strstr(p, "\r\n");
        const char *reply = "250 2.0.0 Ok\r\n";
        assert_non_null(eol);
        if (strncmp(p, "EHLO", 4) == 0) reply = EHLO_PIPE;
        else if (strncmp(p, "QUIT", 4) == 0) reply = "221 Bye\r\n";
        else if (strncmp(p, "RCPT", 4) == 0) {
          seed = seed * 1103515245u + 12345u;
          if ((seed >> 16) % 100 < reject_pct) {
            reply = "550 5.1.1 no\r\n";
            rejected++;
          }
        }
        p = eol + 2;
        smtpc_dialog_feed(d, reply, strlen(reply));
      }
      if (r->outlen == before) break; /* nothing new was sent */
    }
    assert_true(smtpc_dialog_want(d) & SMTPC_DIALOG_WANT_CLOSE);
    assert_true(rejected <= 2 * budget);
    for (p = r->ev; *p; p = strchr(p, ';') + 1) { /* "index outcome ...;" per event */
      unsigned long idx = strtoul(p, NULL, 10);
      assert_true(idx < 30);
      count[idx]++;
    }
    for (i = 0; i < 30; i++) assert_int_equal(count[i], 1); /* replied or given back, once */
    smtpc_dialog_free(d);
    free(r);
  }
}

static void test_421_mid_batch(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts, NULL,
                   "220 mx\r\n" EHLO_PIPE "250 Ok\r\n250 Ok\r\n"
                   "421 4.7.0 Error: too many errors\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n",
                   "0 R RCPT 250;1 S RCPT 421 4.7.0;2 S RCPT 421 4.7.0;", SMTPC_DIALOG_WANT_CLOSE);
}

static void test_sender_refused(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts, NULL,
                   "220 mx\r\n" EHLO_PIPE "553 5.7.1 <s@x.test>: Sender address rejected\r\n"
                   "503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 S MAIL 553 5.7.1;1 S MAIL 553 5.7.1;2 S MAIL 553 5.7.1;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

static void test_smtputf8(void **state) {
  const char *const mix[] = {"a@x.test", "\xc3\xa9l\xc3\xa8ve@x.test", NULL};
  const int utf8[] = {0, 1};
  (void)state;
  /* the server lacks SMTPUTF8: the UTF-8 address is never sent, the other one goes plain */
  check_all_splits(NULL, mix, utf8,
                   "220 mx\r\n" EHLO_PLAIN "250 Ok\r\n250 Ok\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nQUIT\r\n",
                   "1 S MAIL 0 notcompliantrfc;0 R RCPT 250;", SMTPC_DIALOG_WANT_CLOSE);
  check_all_splits(NULL, mix, utf8,
                   "220 mx\r\n250-mx\r\n250-smtputf8\r\n250 PIPELINING\r\n250 Ok\r\n250 Ok\r\n"
                   "250 Ok\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test> SMTPUTF8\r\nRCPT TO:<a@x.test>\r\n"
                   "RCPT TO:<\xc3\xa9l\xc3\xa8ve@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250;1 R RCPT 250;", SMTPC_DIALOG_WANT_CLOSE);
}

static void test_starttls_required_missing(void **state) {
  smtpc_dialog_opts cfg;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.helo = "probe.test";
  cfg.starttls = SMTPC_STARTTLS_REQUIRED;
  check_all_splits(&cfg, default_rcpts + 2, NULL, "220 mx\r\n" EHLO_PLAIN,
                   "EHLO probe.test\r\n", "0 S EHLO 0 failedstarttls;", SMTPC_DIALOG_WANT_CLOSE);
  check_all_splits(&cfg, default_rcpts + 2, NULL,
                   "220 mx\r\n250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n",
                   "EHLO probe.test\r\nSTARTTLS\r\n", "0 S STARTTLS 454 4.7.0 failedstarttls;",
                   SMTPC_DIALOG_WANT_CLOSE);
}

static void test_starttls_flow(void **state) {
  run r;
  smtpc_dialog *d = make(NULL, default_rcpts + 2, NULL, &r);
  /* "250 injected" arrives in clear after 220: RFC 3207 says drop it */
  const char *pre = "220 mx\r\n250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n220 2.0.0 go\r\n"
                    "250 injected\r\n";
  const char *post = "250-mx\r\n250 PIPELINING\r\n250 Ok\r\n250 Ok\r\n221 Bye\r\n";
  (void)state;
  smtpc_dialog_feed(d, pre, strlen(pre));
  drain(d, &r);
  assert_string_equal(r.out, "EHLO probe.test\r\nSTARTTLS\r\n");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_TLS);
  assert_int_equal(smtpc_dialog_tls(d), 0);
  smtpc_dialog_tls_done(d, 1);
  assert_int_equal(smtpc_dialog_tls(d), 1);
  assert_int_equal(smtpc_dialog_caps(d), 0);
  smtpc_dialog_feed(d, post, strlen(post));
  drain(d, &r);
  assert_string_equal(r.out, "EHLO probe.test\r\nSTARTTLS\r\nEHLO probe.test\r\n"
                             "MAIL FROM:<s@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n");
  assert_string_equal(r.ev, "0 R RCPT 250;");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_CLOSE);
  smtpc_dialog_free(d);

  /* a failed handshake ends the session */
  d = make(NULL, default_rcpts + 2, NULL, &r);
  smtpc_dialog_feed(d, pre, strlen(pre));
  smtpc_dialog_tls_done(d, 0);
  assert_string_equal(r.ev, "0 S TLS 0 !TLS failedstarttls;");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_CLOSE);
  smtpc_dialog_free(d);

  /* starttls=off never asks */
  {
    smtpc_dialog_opts cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.starttls = SMTPC_STARTTLS_OFF;
    check_all_splits(&cfg, default_rcpts + 2, NULL,
                     "220 mx\r\n250-mx\r\n250 STARTTLS\r\n250 Ok\r\n250 Ok\r\n221 Bye\r\n",
                     "EHLO localhost\r\nMAIL FROM:<>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                     "0 R RCPT 250;", SMTPC_DIALOG_WANT_CLOSE);
  }
}

static void test_timeout_and_eof(void **state) {
  run r;
  smtpc_dialog *d = make(NULL, default_rcpts + 1, NULL, &r);
  const char *s = "220 mx\r\n" EHLO_PLAIN "250 Ok\r\n";
  (void)state;
  smtpc_dialog_feed(d, s, strlen(s));
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_REPLY);
  smtpc_dialog_timeout(d);
  assert_string_equal(r.ev, "0 S RCPT 0 !TIMEOUT;1 S RCPT 0 !TIMEOUT;");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_CLOSE);
  smtpc_dialog_free(d);

  d = make(NULL, default_rcpts + 1, NULL, &r);
  smtpc_dialog_eof(d, 0);
  assert_string_equal(r.ev, "0 S CONN 0 !CLOSED;1 S CONN 0 !CLOSED;");
  smtpc_dialog_free(d);

  /* a timeout waiting for QUIT's answer changes no result */
  d = make(NULL, default_rcpts + 2, NULL, &r);
  s = "220 mx\r\n" EHLO_PLAIN "250 Ok\r\n250 Ok\r\n";
  smtpc_dialog_feed(d, s, strlen(s));
  smtpc_dialog_timeout(d);
  assert_string_equal(r.ev, "0 R RCPT 250;");
  assert_int_equal(smtpc_dialog_want(d), SMTPC_DIALOG_WANT_CLOSE);
  smtpc_dialog_free(d);
}

static void test_garbage_and_hostile_server(void **state) {
  (void)state;
  check_all_splits(NULL, default_rcpts + 2, NULL, "220 mx\r\nHELLO THERE\r\n",
                   "EHLO probe.test\r\n", "0 S EHLO 0 !PROTO;", SMTPC_DIALOG_WANT_CLOSE);
  /* a server that invites DATA gets no DATA */
  check_all_splits(NULL, default_rcpts + 2, NULL,
                   "220 mx\r\n" EHLO_PLAIN "354 send data\r\n354 go on\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nQUIT\r\n", "0 S MAIL 354 !PROTO;",
                   SMTPC_DIALOG_WANT_CLOSE);
  check_all_splits(NULL, default_rcpts + 2, NULL,
                   "220 mx\r\n" EHLO_PLAIN "250 Ok\r\n354 send data\r\n221 Bye\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 354;", SMTPC_DIALOG_WANT_CLOSE);
  /* replies nobody asked for */
  check_all_splits(NULL, default_rcpts + 2, NULL,
                   "220 mx\r\n" EHLO_PLAIN "250 Ok\r\n250 Ok\r\n221 Bye\r\n250 extra\r\n",
                   "EHLO probe.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<c@x.test>\r\nQUIT\r\n",
                   "0 R RCPT 250;", SMTPC_DIALOG_WANT_CLOSE);
}

static void test_injection_refused(void **state) {
  run r;
  int err = 0;
  smtpc_dialog_opts cfg;
  smtpc_dialog *d = make(NULL, default_rcpts + 3, NULL, &r);
  static const char *const bad[] = {"a@x.test\r\nDATA", "a@x\n.test", "a@x\r.test",
                                    "a>@x.test", "<a@x.test", "", "a\x7f@x.test"};
  size_t i;
  char big[300];
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(smtpc_dialog_add_rcpt(d, bad[i], strlen(bad[i]), 0), SMTPC_EBADADDRESS);
  assert_int_equal(smtpc_dialog_add_rcpt(d, "a\0b@x.test", 10, 0), SMTPC_EBADADDRESS);
  memset(big, 'a', sizeof big);
  assert_int_equal(smtpc_dialog_add_rcpt(d, big, sizeof big, 0), SMTPC_EBADADDRESS);
  smtpc_dialog_free(d);

  memset(&cfg, 0, sizeof cfg);
  cfg.helo = "probe.test\r\nDATA";
  assert_null(smtpc_dialog_new(&cfg, on_event, &r, &err));
  assert_int_equal(err, SMTPC_EINVAL);
  cfg.helo = "a b";
  assert_null(smtpc_dialog_new(&cfg, on_event, &r, &err));
  cfg.helo = NULL;
  cfg.mail_from = "s@x.test>\r\nDATA";
  assert_null(smtpc_dialog_new(&cfg, on_event, &r, &err));
  assert_int_equal(err, SMTPC_EINVAL);
}

static void test_no_rcpts_and_late_add(void **state) {
  const char *const none[] = {NULL};
  run r;
  smtpc_dialog *d;
  const char *s = "220 mx\r\n";
  (void)state;
  check_all_splits(NULL, none, NULL, "220 mx\r\n" EHLO_PLAIN "221 bye\r\n",
                   "EHLO probe.test\r\nQUIT\r\n", "", SMTPC_DIALOG_WANT_CLOSE);
  d = make(NULL, none, NULL, &r);
  smtpc_dialog_feed(d, s, strlen(s));
  assert_int_equal(smtpc_dialog_add_rcpt(d, "a@x.test", 8, 0), SMTPC_EINVAL);
  smtpc_dialog_free(d);
}

static void test_transcript(void **state) {
  run r;
  smtpc_dialog_opts cfg;
  size_t len;
  const char *t;
  int err;
  smtpc_dialog *d;
  const char *s = "220 mx\r\n250-mx\r\n250 SIZE\r\n250 Ok\r\n250 Ok\r\n221 Bye\r\n";
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  memset(&r, 0, sizeof r);
  cfg.transcript = 1;
  d = smtpc_dialog_new(&cfg, on_event, &r, &err);
  assert_non_null(d);
  smtpc_dialog_add_rcpt(d, "a@x.test", 8, 0);
  smtpc_dialog_feed(d, s, strlen(s));
  t = smtpc_dialog_transcript(d, &len);
  assert_int_equal(len, strlen("S: 220 mx\r\nC: EHLO localhost\r\nS: 250-mx\r\nS: 250 SIZE\r\n"
                               "C: MAIL FROM:<>\r\nS: 250 Ok\r\nC: RCPT TO:<a@x.test>\r\n"
                               "S: 250 Ok\r\nC: QUIT\r\nS: 221 Bye\r\n"));
  assert_memory_equal(t, "S: 220 mx\r\nC: EHLO localhost\r\nS: 250-mx\r\nS: 250 SIZE\r\n", 52);
  assert_int_equal(smtpc_dialog_caps(d), SMTPC_CAP(SIZE));
  smtpc_dialog_free(d);
}

static void test_verdict_rules(void **state) {
  (void)state;
  assert_int_equal(smtpc_verdict_of(250, SMTPC_REASON_DELIVERED, 0), SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(smtpc_verdict_of(250, SMTPC_REASON_DELIVERED, -1), SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(smtpc_verdict_of(251, SMTPC_REASON_DELIVERED, 1), SMTPC_VERDICT_RISKY);
  assert_int_equal(smtpc_verdict_of(550, SMTPC_REASON_USERUNKNOWN, -1),
                   SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(smtpc_verdict_of(551, SMTPC_REASON_HASMOVED, 1), SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(smtpc_verdict_of(550, SMTPC_REASON_SUSPEND, 0), SMTPC_VERDICT_UNDELIVERABLE);
  /* a temporary "user unknown" is not proof */
  assert_int_equal(smtpc_verdict_of(450, SMTPC_REASON_USERUNKNOWN, 0), SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(smtpc_verdict_of(452, SMTPC_REASON_MAILBOXFULL, 0), SMTPC_VERDICT_RISKY);
  assert_int_equal(smtpc_verdict_of(552, SMTPC_REASON_MAILBOXFULL, 0), SMTPC_VERDICT_RISKY);
  /* refusals aimed at the prober say nothing about the address */
  assert_int_equal(smtpc_verdict_of(554, SMTPC_REASON_BLOCKED, 0), SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(smtpc_verdict_of(550, SMTPC_REASON_SPAMDETECTED, 0), SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(smtpc_verdict_of(554, SMTPC_REASON_NORELAYING, 0), SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(smtpc_verdict_of(450, SMTPC_REASON_UNDEFINED, 0), SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(smtpc_verdict_of(0, SMTPC_REASON_NETWORKERROR, -1), SMTPC_VERDICT_UNKNOWN);
  assert_string_equal(smtpc_cmd_name(SMTPC_CMD_BANNER), "CONN");
  assert_string_equal(smtpc_cmd_name(99), "UNKNOWN");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_lockstep),
    cmocka_unit_test(test_pipelined_one_write),
    cmocka_unit_test(test_pipelined_burst_is_single_chunk),
    cmocka_unit_test(test_helo_fallback),
    cmocka_unit_test(test_banner_refusal),
    cmocka_unit_test(test_too_many_recipients),
    cmocka_unit_test(test_rejection_budget),
    cmocka_unit_test(test_window_widens_after_acceptances),
    cmocka_unit_test(test_window_worst_case_is_twice_the_budget),
    cmocka_unit_test(test_window_budget_property),
    cmocka_unit_test(test_quit_pipelined_after_budget),
    cmocka_unit_test(test_421_mid_batch),
    cmocka_unit_test(test_sender_refused),
    cmocka_unit_test(test_smtputf8),
    cmocka_unit_test(test_starttls_required_missing),
    cmocka_unit_test(test_starttls_flow),
    cmocka_unit_test(test_timeout_and_eof),
    cmocka_unit_test(test_garbage_and_hostile_server),
    cmocka_unit_test(test_injection_refused),
    cmocka_unit_test(test_no_rcpts_and_late_add),
    cmocka_unit_test(test_transcript),
    cmocka_unit_test(test_verdict_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
