/* test_engine.c -- the probe engine against real servers on loopback: Postfix (+ postgrey) from
 * tests/fixtures/mta and dnsmasq from tests/fixtures/dns, started here when they are not up
 * (and stopped again only if this program started them), plus a silent TCP listener of our own
 * for timeouts. Every run checks that each input got exactly one result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "smtpcode.h"

#ifndef SMTPC_SOURCE_DIR
#define SMTPC_SOURCE_DIR "."
#endif
#define MTA_CTL SMTPC_SOURCE_DIR "/tests/fixtures/mta/ctl"
#define DNS_CTL SMTPC_SOURCE_DIR "/tests/fixtures/dns/ctl"
#define MAX_RES 512

typedef struct res {
  char address[128];
  int verdict, reason, code, catch_all, tls, greylisted, error;
  char status[SMTPC_STATUS_SIZE];
  char mx[64];
  double duration;
  int count;
} res;

static res results[MAX_RES];
static size_t nadded;
static int started_dns, started_mta;

static void on_result(smtpc_verifier *v, const smtpc_result *r, void *data) {
  res *x;
  (void)v;
  (void)data;
  assert_true(r->tag < nadded);
  x = &results[r->tag];
  x->count++;
  assert_true(r->address_len < sizeof x->address);
  memcpy(x->address, r->address, r->address_len);
  x->address[r->address_len] = '\0';
  x->verdict = r->verdict;
  x->reason = r->reason;
  x->code = r->reply.code;
  memcpy(x->status, r->reply.status, sizeof x->status);
  snprintf(x->mx, sizeof x->mx, "%s", r->mx ? r->mx : "");
  x->catch_all = r->catch_all;
  x->tls = r->tls;
  x->greylisted = r->greylisted;
  x->error = r->error;
  x->duration = r->duration;
}

static int closed;
static void on_closed(smtpc_verifier *v) {
  (void)v;
  closed = 1;
}

static void base_opts(smtpc_verify_opts *o) {
  smtpc_verify_opts_init(o);
  o->port = 2525;
  o->dns_servers = "127.0.0.1:5353";
  o->mail_from = "probe@sender.test";
  o->helo = "probe.test";
  o->deadline = 30;
  o->timeout = 10;
  o->connect_timeout = 5;
}

/* Verify every address; each must get exactly one result. */
static void run(const smtpc_verify_opts *o, const char *const *addrs, size_t n) {
  uv_loop_t loop;
  smtpc_verifier *v;
  int err = 0;
  size_t i;
  assert_true(n <= MAX_RES);
  memset(results, 0, sizeof results);
  nadded = n;
  assert_int_equal(uv_loop_init(&loop), 0);
  v = smtpc_verifier_new(&loop, o, on_result, NULL, &err);
  assert_non_null(v);
  for (i = 0; i < n; i++)
    assert_int_equal(smtpc_verifier_add(v, addrs[i], strlen(addrs[i]), i), 0);
  assert_int_equal(smtpc_verifier_pending(v), n);
  smtpc_verifier_end(v);
  while (!smtpc_verifier_done(v)) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(smtpc_verifier_pending(v), 0);
  closed = 0;
  smtpc_verifier_close(v, on_closed);
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  for (i = 0; i < n; i++) {
    assert_int_equal(results[i].count, 1);
    assert_string_equal(results[i].address, addrs[i]);
  }
}

static const res *R(size_t i) { return &results[i]; }

static int ctl(const char *script, const char *cmd) {
  char line[1024];
  snprintf(line, sizeof line, "%s %s >/dev/null 2>&1", script, cmd);
  return system(line);
}

/* Up already, or started here (other suites share these servers and may be stopping them
 * at this moment: try a few times). */
static int ensure(const char *script, int *started) {
  int i;
  for (i = 0; i < 5; i++) {
    if (ctl(script, "status") == 0) return 0;
    if (ctl(script, "start") == 0) {
      *started = 1;
      return 0;
    }
    uv_sleep(1000);
  }
  fprintf(stderr, "cannot start %s\n", script);
  return -1;
}

static int setup(void **state) {
  (void)state;
  return ensure(DNS_CTL, &started_dns) == 0 && ensure(MTA_CTL, &started_mta) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  if (started_mta) ctl(MTA_CTL, "stop");
  if (started_dns) ctl(DNS_CTL, "stop");
  return 0;
}

/* ---------------------------------------------------------------------------------------- */

static void test_users(void **state) {
  static const char *const a[] = {"alice@users.mta.test", "nobody@users.mta.test",
                                  "full@users.mta.test", "disabled@users.mta.test",
                                  "moved@users.mta.test", "Bob@USERS.mta.test"};
  smtpc_verify_opts o;
  (void)state;
  base_opts(&o);
  run(&o, a, 6);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(0)->code, 250);
  assert_int_equal(R(0)->catch_all, 0);
  assert_int_equal(R(0)->tls, 1);
  assert_string_equal(R(0)->mx, "mx1.mta.test");
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(R(1)->reason, SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(R(1)->code, 550);
  assert_string_equal(R(1)->status, "5.1.1");
  assert_int_equal(R(2)->verdict, SMTPC_VERDICT_RISKY);
  assert_int_equal(R(2)->reason, SMTPC_REASON_MAILBOXFULL);
  assert_int_equal(R(2)->code, 452);
  assert_int_equal(R(3)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_string_equal(R(3)->status, "5.2.1");
  assert_int_equal(R(4)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(R(4)->reason, SMTPC_REASON_HASMOVED);
  assert_int_equal(R(5)->verdict, SMTPC_VERDICT_DELIVERABLE); /* domain case folded */
}

static void test_catch_all(void **state) {
  static const char *const a[] = {"anyone@catchall.mta.test", "alice@users.mta.test"};
  smtpc_verify_opts o;
  (void)state;
  base_opts(&o);
  run(&o, a, 2);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_RISKY);
  assert_int_equal(R(0)->catch_all, 1);
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(1)->catch_all, 0);
  o.catch_all = 0; /* no probe: no way to know */
  run(&o, a, 2);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(0)->catch_all, -1);
}

static void test_dns_and_syntax(void **state) {
  static const char *const a[] = {"x@nxdomain.mta.test", "x@nullmx.mta.test",
                                  "x@dangling.mta.test", "bad..dots@users.mta.test",
                                  "", "a@b@c", "x\r\nDATA@users.mta.test"};
  smtpc_verify_opts o;
  size_t i;
  (void)state;
  base_opts(&o);
  run(&o, a, 7);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(R(0)->reason, SMTPC_REASON_HOSTUNKNOWN);
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(R(1)->reason, SMTPC_REASON_NOTACCEPT);
  assert_int_equal(R(2)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(R(2)->reason, SMTPC_REASON_HOSTUNKNOWN);
  for (i = 3; i < 7; i++) {
    assert_int_equal(R(i)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
    assert_int_equal(R(i)->reason, SMTPC_REASON_SYNTAXERROR);
    assert_string_equal(R(i)->mx, "");
  }
}

static void test_mx_failover(void **state) {
  static const char *const a[] = {"alice@backup.mta.test", "alice@failover.mta.test",
                                  "alice@deferonly.mta.test", "alice@down.mta.test"};
  smtpc_verify_opts o;
  (void)state;
  base_opts(&o);
  run(&o, a, 4);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE); /* past a 421 greeting */
  assert_string_equal(R(0)->mx, "mx1.mta.test");
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_DELIVERABLE); /* past a refused connect */
  assert_string_equal(R(1)->mx, "mx1.mta.test");
  assert_int_equal(R(2)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(2)->code, 421);
  assert_string_equal(R(2)->mx, "mx-defer.mta.test");
  assert_int_equal(R(3)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(3)->reason, SMTPC_REASON_NETWORKERROR);
  assert_int_equal(R(3)->code, 0);
}

static void test_starttls_modes(void **state) {
  static const char *const a[] = {"alice@notls.mta.test", "alice@users.mta.test"};
  smtpc_verify_opts o;
  (void)state;
  base_opts(&o);
  o.starttls = SMTPC_STARTTLS_REQUIRED;
  run(&o, a, 2);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(0)->reason, SMTPC_REASON_FAILEDSTARTTLS);
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(1)->tls, 1);

  o.starttls = SMTPC_STARTTLS_OFF;
  run(&o, a, 2);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(1)->tls, 0);

  /* checking the self-signed certificate fails the handshake: required gives up... */
  o.starttls = SMTPC_STARTTLS_REQUIRED;
  o.tls_verify = 1;
  run(&o, a + 1, 1);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(0)->reason, SMTPC_REASON_FAILEDSTARTTLS);
  assert_int_equal(R(0)->error, SMTPC_ETLS);
  /* ...opportunistic comes back in clear */
  o.starttls = SMTPC_STARTTLS_OPPORTUNISTIC;
  run(&o, a + 1, 1);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(0)->tls, 0);
}

static void fixture_path(const char *tail, char *out, size_t cap) {
  FILE *p = popen(MTA_CTL " dir", "r");
  assert_non_null(p);
  assert_non_null(fgets(out, (int)(cap - strlen(tail) - 1), p));
  pclose(p);
  out[strcspn(out, "\n")] = '\0';
  strcat(out, tail);
}

static void test_tls_verify_with_ca(void **state) {
  /* Trust the fixture's self-signed certificate (SAN mx1.mta.test ...): the MX name must match.
   * implicit.mta.test reaches the same Postfix under its own name, which the certificate does
   * not carry: the host name check refuses it. */
  static const char *const a[] = {"alice@users.mta.test", "alice@implicit.mta.test"};
  char ca[1024];
  smtpc_verify_opts o;
  (void)state;
  fixture_path("/tls/cert.pem", ca, sizeof ca);
  base_opts(&o);
  o.starttls = SMTPC_STARTTLS_REQUIRED;
  o.tls_verify = 1;
  o.tls_ca_file = ca;
  run(&o, a, 2);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_int_equal(R(0)->tls, 1);
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(1)->reason, SMTPC_REASON_FAILEDSTARTTLS);
  assert_int_equal(R(1)->error, SMTPC_ETLS);
}

static void test_greylisting(void **state) {
  static const char *const a[] = {"alice@greylist.mta.test"};
  char sender[64];
  unsigned char rnd[6];
  smtpc_verify_opts o;
  (void)state;
  /* a sender never seen before: postgrey defers its first RCPT (3 s) */
  assert_int_equal(uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL), 0);
  snprintf(sender, sizeof sender, "g%02x%02x%02x%02x%02x%02x@sender.test", rnd[0], rnd[1], rnd[2],
           rnd[3], rnd[4], rnd[5]);
  base_opts(&o);
  o.mail_from = sender;
  o.greylist_delay = -1; /* no retry: the deferral is the answer */
  run(&o, a, 1);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(0)->code / 100, 4);
  o.greylist_delay = 4;
  run(&o, a, 1);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_DELIVERABLE);
  assert_true(R(0)->duration >= 3.5);
}

static void test_error_limits(void **state) {
  /* 30 unknown users between known ones: Postfix slows down after 10 errors and hangs up
   * after 20; every answer must still be the right one */
  static char buf[40][48];
  const char *a[40];
  smtpc_verify_opts o;
  size_t i;
  (void)state;
  for (i = 0; i < 34; i++) {
    if (i % 10 == 0) snprintf(buf[i], sizeof buf[i], "bulk%04zu@errors.mta.test", i + 1);
    else snprintf(buf[i], sizeof buf[i], "nouser%zu@errors.mta.test", i);
    a[i] = buf[i];
  }
  base_opts(&o);
  run(&o, a, 34);
  for (i = 0; i < 34; i++) {
    if (i % 10 == 0) assert_int_equal(R(i)->verdict, SMTPC_VERDICT_DELIVERABLE);
    else assert_int_equal(R(i)->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  }
}

static long log_size(const char *path) {
  FILE *f = fopen(path, "rb");
  long n;
  if (f == NULL) return -1;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fclose(f);
  return n;
}

/* Count our "disconnect from" lines (by source address: other suites may be probing the same
 * Postfix now) of the primary MX after offset; note any DATA command. */
#define OUR_SOURCE "127.0.0.211"
static int count_sessions(const char *path, long from, int *data_seen) {
  FILE *f = fopen(path, "rb");
  char line[2048];
  int n = 0;
  *data_seen = 0;
  if (f == NULL) return -1;
  fseek(f, from, SEEK_SET);
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "mta-mx1/smtpd") && strstr(line, " disconnect from ") &&
        strstr(line, "[" OUR_SOURCE "]")) {
      n++;
      if (strstr(line, " data=")) *data_seen = 1;
    }
  }
  fclose(f);
  return n;
}

static void test_batching_from_postfix_log(void **state) {
  static char buf[200][40];
  const char *a[200];
  char logpath[1024];
  smtpc_verify_opts o;
  size_t i;
  long start;
  int sessions = 0, data_seen = 0, tries;
  (void)state;
  fixture_path("/log/maillog", logpath, sizeof logpath);
  start = log_size(logpath);
  assert_true(start >= 0);
  for (i = 0; i < 200; i++) {
    snprintf(buf[i], sizeof buf[i], "bulk%04zu@users.mta.test", i + 1);
    a[i] = buf[i];
  }
  base_opts(&o);
  o.rcpt_per_session = 50;
  o.bind_address = OUR_SOURCE;
  run(&o, a, 200);
  for (i = 0; i < 200; i++) assert_int_equal(R(i)->verdict, SMTPC_VERDICT_DELIVERABLE);
  /* postlogd writes asynchronously: wait for the sessions to show up */
  for (tries = 0; tries < 50; tries++) {
    sessions = count_sessions(logpath, start, &data_seen);
    if (sessions >= 4) break;
    uv_sleep(100);
  }
  uv_sleep(200);
  sessions = count_sessions(logpath, start, &data_seen);
  assert_true(sessions >= 4);               /* 50 a session: at least 4 */
  assert_true(sessions <= 200 / 50 + 1);    /* the bound */
  assert_int_equal(data_seen, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* a listener that accepts and never says a word: timeouts and the deadline */

static uv_tcp_t silent;
static uv_tcp_t silent_peers[16];
static int npeers;

static void on_silent_conn(uv_stream_t *srv, int status) {
  if (status < 0 || npeers >= 16) return;
  uv_tcp_init(srv->loop, &silent_peers[npeers]);
  if (uv_accept(srv, (uv_stream_t *)&silent_peers[npeers]) == 0) npeers++;
}

static uv_async_t silent_stop;

/* and one that drips a banner, a byte every 100 ms: progress, but never a whole reply in time */
static uv_tcp_t drip;
static uv_tcp_t drip_peers[16];
static int ndrip;
static uv_timer_t drip_timer;
static size_t drip_pos[16];
static const char drip_banner[] = "220 a banner that takes a long long time to arrive\r\n";

static void on_drip_conn(uv_stream_t *srv, int status) {
  if (status < 0 || ndrip >= 16) return;
  uv_tcp_init(srv->loop, &drip_peers[ndrip]);
  if (uv_accept(srv, (uv_stream_t *)&drip_peers[ndrip]) == 0) ndrip++;
}

static void on_drip_tick(uv_timer_t *t) {
  int i;
  (void)t;
  for (i = 0; i < ndrip; i++) {
    uv_buf_t b = uv_buf_init((char *)drip_banner + drip_pos[i] % (sizeof drip_banner - 1), 1);
    if (uv_try_write((uv_stream_t *)&drip_peers[i], &b, 1) == 1) drip_pos[i]++;
  }
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void on_silent_stop(uv_async_t *a) { uv_walk(a->loop, close_any, NULL); }

static void silent_main(void *arg) {
  uv_loop_t *loop = arg;
  uv_run(loop, UV_RUN_DEFAULT);
}

static void test_timeouts_and_deadline(void **state) {
  static const char *const a[] = {"x@[127.0.0.1]", "y@[127.0.0.1]"};
  uv_loop_t *sloop = malloc(sizeof *sloop);
  uv_thread_t th;
  struct sockaddr_in sa;
  struct sockaddr_storage bound, dbound;
  int blen = sizeof bound;
  smtpc_verify_opts o;
  (void)state;
  /* the silent server runs on its own loop and thread, so it answers while we wait */
  assert_non_null(sloop);
  assert_int_equal(uv_loop_init(sloop), 0);
  uv_tcp_init(sloop, &silent);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&silent, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&silent, 16, on_silent_conn), 0);
  assert_int_equal(uv_tcp_getsockname(&silent, (struct sockaddr *)&bound, &blen), 0);
  uv_tcp_init(sloop, &drip);
  assert_int_equal(uv_tcp_bind(&drip, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&drip, 16, on_drip_conn), 0);
  blen = sizeof dbound;
  assert_int_equal(uv_tcp_getsockname(&drip, (struct sockaddr *)&dbound, &blen), 0);
  uv_timer_init(sloop, &drip_timer);
  uv_timer_start(&drip_timer, on_drip_tick, 100, 100);
  assert_int_equal(uv_async_init(sloop, &silent_stop, on_silent_stop), 0);
  assert_int_equal(uv_thread_create(&th, silent_main, sloop), 0);

  base_opts(&o);
  o.port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  o.timeout = 0.3; /* no banner in time */
  run(&o, a, 2);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(0)->reason, SMTPC_REASON_NETWORKERROR);
  assert_int_equal(R(0)->error, SMTPC_ETIMEOUT);
  assert_true(R(0)->duration < 5);

  o.timeout = 20;
  o.deadline = 0.5; /* the deadline comes first */
  run(&o, a, 2);
  assert_int_equal(R(1)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(1)->reason, SMTPC_REASON_EXPIRED);
  assert_true(R(1)->duration >= 0.4 && R(1)->duration < 5);

  /* bytes trickle in, no reply completes: the reply timer must not restart on each byte */
  o.port = ntohs(((struct sockaddr_in *)&dbound)->sin_port);
  o.timeout = 0.5;
  o.deadline = 30;
  run(&o, a, 1);
  assert_int_equal(R(0)->verdict, SMTPC_VERDICT_UNKNOWN);
  assert_int_equal(R(0)->error, SMTPC_ETIMEOUT);
  assert_true(R(0)->duration < 3); /* the whole banner would take 5 s */

  uv_async_send(&silent_stop);
  assert_int_equal(uv_thread_join(&th), 0);
  assert_int_equal(uv_loop_close(sloop), 0);
  free(sloop);
}

static void test_cancel(void **state) {
  static const char *const a[] = {"alice@greylist.mta.test", "bob@users.mta.test",
                                  "x@nxdomain.mta.test"};
  uv_loop_t loop;
  smtpc_verifier *v;
  smtpc_verify_opts o;
  int err, i;
  (void)state;
  base_opts(&o);
  memset(results, 0, sizeof results);
  nadded = 3;
  uv_loop_init(&loop);
  v = smtpc_verifier_new(&loop, &o, on_result, NULL, &err);
  assert_non_null(v);
  for (i = 0; i < 3; i++) assert_int_equal(smtpc_verifier_add(v, a[i], strlen(a[i]), i), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  smtpc_verifier_cancel(v);
  assert_int_equal(smtpc_verifier_pending(v), 0);
  assert_true(smtpc_verifier_done(v));
  assert_int_equal(smtpc_verifier_add(v, "a@b.test", 8, 9), SMTPC_EINVAL);
  for (i = 0; i < 3; i++) assert_int_equal(results[i].count, 1);
  closed = 0;
  smtpc_verifier_close(v, on_closed);
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_options(void **state) {
  uv_loop_t loop;
  smtpc_verify_opts o;
  int err = 0;
  (void)state;
  uv_loop_init(&loop);
  base_opts(&o);
  o.mail_from = "a@b.test>\r\nDATA";
  assert_null(smtpc_verifier_new(&loop, &o, on_result, NULL, &err));
  assert_int_equal(err, SMTPC_EINVAL);
  base_opts(&o);
  o.port = 70000;
  assert_null(smtpc_verifier_new(&loop, &o, on_result, NULL, &err));
  base_opts(&o);
  o.starttls = 7;
  assert_null(smtpc_verifier_new(&loop, &o, on_result, NULL, &err));
  base_opts(&o);
  o.bind_address = "not-an-ip";
  assert_null(smtpc_verifier_new(&loop, &o, on_result, NULL, &err));
  assert_int_equal(err, SMTPC_EINVAL);
  base_opts(&o);
  o.dns_servers = "not a server list";
  assert_null(smtpc_verifier_new(&loop, &o, on_result, NULL, &err));
  assert_null(smtpc_verifier_new(&loop, NULL, NULL, NULL, &err));
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(smtpc_starttls_from_name("required", 8), SMTPC_STARTTLS_REQUIRED);
  assert_int_equal(smtpc_starttls_from_name("maybe", 5), -1);
  assert_string_equal(smtpc_verdict_name(SMTPC_VERDICT_RISKY), "risky");
  assert_null(smtpc_verdict_name(SMTPC_VERDICT_COUNT));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bad_options),
    cmocka_unit_test(test_users),
    cmocka_unit_test(test_catch_all),
    cmocka_unit_test(test_dns_and_syntax),
    cmocka_unit_test(test_mx_failover),
    cmocka_unit_test(test_starttls_modes),
    cmocka_unit_test(test_tls_verify_with_ca),
    cmocka_unit_test(test_error_limits),
    cmocka_unit_test(test_batching_from_postfix_log),
    cmocka_unit_test(test_greylisting),
    cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_timeouts_and_deadline),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
