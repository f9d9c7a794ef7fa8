/* test_dns.c -- the MX resolver against a real dnsmasq on 127.0.0.1:5353 (tests/fixtures/dns),
 * plus the message walker on hand-made packets. Every query goes to 127.0.0.1 only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <uv.h>

#include "smtpcode.h"
#include "dns_internal.h"

#define CTL SMTPC_SOURCE_DIR "/tests/fixtures/dns/ctl"

/* The fixture's port: 5353, or SMTPC_DNS_PORT (ctl reads it too) for a second instance. */
static char SERVERS[32] = "127.0.0.1:5353";
static char RESPONDER[32] = "127.0.0.1:5390"; /* responder.py: the DNS port + 37 */
static int started_fixture;

static int fixture_up(void **state) {
  (void)state;
  const char *port = getenv("SMTPC_DNS_PORT"), *rport = getenv("SMTPC_DNS_RESPONDER_PORT");
  if (port && *port) {
    snprintf(SERVERS, sizeof(SERVERS), "127.0.0.1:%s", port);
    snprintf(RESPONDER, sizeof(RESPONDER), "127.0.0.1:%d", atoi(port) + 37);
  }
  if (rport && *rport) snprintf(RESPONDER, sizeof(RESPONDER), "127.0.0.1:%s", rport);
  if (system(CTL " status >/dev/null 2>&1") != 0) {
    if (system(CTL " start >/dev/null") != 0) return -1;
    started_fixture = 1;
  }
  return 0;
}

static int fixture_down(void **state) {
  (void)state;
  if (started_fixture && system(CTL " stop >/dev/null") != 0) return -1;
  return 0;
}

static smtpc_route *resolve_opts(const char *domain, smtpc_resolver_opts *o) {
  smtpc_route *r = NULL;
  if (o->servers == NULL) o->servers = SERVERS;
  int rc = smtpc_resolve_blocking(domain, o, &r);
  if (rc != 0) fail_msg("resolve %s: %s", domain, smtpc_strerror(rc));
  assert_non_null(r);
  return r;
}

static smtpc_route *resolve(const char *domain) {
  smtpc_resolver_opts o;
  memset(&o, 0, sizeof(o));
  return resolve_opts(domain, &o);
}

static const char *addr_text(const smtpc_sockaddr *a, char buf[64]) {
  if (a->sa.sa_family == AF_INET) return inet_ntop(AF_INET, &a->in.sin_addr, buf, 64);
  if (a->sa.sa_family == AF_INET6) return inet_ntop(AF_INET6, &a->in6.sin6_addr, buf, 64);
  return "?";
}

static void assert_addr(const smtpc_mx *mx, size_t i, const char *want) {
  char buf[64];
  assert_true(i < mx->naddrs);
  assert_string_equal(addr_text(&mx->addrs[i], buf), want);
  if (mx->addrs[i].sa.sa_family == AF_INET) assert_int_equal(mx->addrs[i].in.sin_port, 0);
}

static void assert_error(const char *domain, int want) {
  smtpc_resolver_opts o;
  memset(&o, 0, sizeof(o));
  o.timeout_ms = 1500;
  smtpc_route *r = resolve_opts(domain, &o);
  if (r->error != want)
    fail_msg("%s: error %s, want %s", domain, smtpc_dns_error_name(r->error) ? smtpc_dns_error_name(r->error) : "none",
             smtpc_dns_error_name(want) ? smtpc_dns_error_name(want) : "none");
  assert_int_equal(r->nmx, 0);
  assert_int_equal(r->null_mx, 0);
  smtpc_route_free(r);
}

/* ---------------------------------------------------------------------------------------- */

static void two_mx_sorted(void **state) {
  (void)state;
  smtpc_route *r = resolve("two.test"); /* dnsmasq sends the 20 before the 10 */
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_string_equal(r->domain, "two.test");
  assert_false(r->implicit);
  assert_false(r->null_mx);
  assert_int_equal(r->nmx, 2);
  assert_int_equal(r->mx[0].preference, 10);
  assert_string_equal(r->mx[0].host, "mx1.two.test");
  assert_int_equal(r->mx[0].naddrs, 1);
  assert_addr(&r->mx[0], 0, "127.0.0.11");
  assert_int_equal(r->mx[1].preference, 20);
  assert_string_equal(r->mx[1].host, "mx2.two.test");
  assert_addr(&r->mx[1], 0, "127.0.0.12");
  /* local-ttl=300 in the fixture (the 60 s default for negative answers must not win: the
   * hosts have no AAAA, which does not matter while they have an A) */
  assert_true(r->ttl >= 290 && r->ttl <= 300);
  smtpc_route_free(r);
}

static void name_forms(void **state) {
  (void)state;
  smtpc_route *r = resolve("TWO.Test."); /* case and the root dot do not matter */
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_string_equal(r->domain, "two.test");
  assert_int_equal(r->nmx, 2);
  smtpc_route_free(r);
}

static void equal_preference_shuffled(void **state) {
  (void)state;
  int a_first = 0, b_first = 0;
  for (int i = 0; i < 60; i++) {
    smtpc_route *r = resolve("equal.test");
    assert_int_equal(r->nmx, 3);
    assert_int_equal(r->mx[0].preference, 10);
    assert_int_equal(r->mx[1].preference, 10);
    assert_int_equal(r->mx[2].preference, 20);
    assert_string_equal(r->mx[2].host, "c.equal.test");
    if (strcmp(r->mx[0].host, "a.equal.test") == 0) {
      assert_string_equal(r->mx[1].host, "b.equal.test");
      a_first++;
    } else {
      assert_string_equal(r->mx[0].host, "b.equal.test");
      assert_string_equal(r->mx[1].host, "a.equal.test");
      b_first++;
    }
    smtpc_route_free(r);
  }
  /* each order has probability 2^-60 of never showing up */
  assert_true(a_first > 0);
  assert_true(b_first > 0);
}

static void multi_homed(void **state) {
  (void)state;
  smtpc_resolver_opts o;
  char buf[64];
  int seen[3] = {0, 0, 0};
  smtpc_route *r = resolve("multi.test");
  assert_int_equal(r->nmx, 1);
  assert_string_equal(r->mx[0].host, "mx.multi.test");
  assert_int_equal(r->mx[0].naddrs, 5);
  for (size_t i = 0; i < 3; i++) { /* IPv4 first by default, in any order */
    assert_int_equal(r->mx[0].addrs[i].sa.sa_family, AF_INET);
    addr_text(&r->mx[0].addrs[i], buf);
    if (strcmp(buf, "127.0.0.21") == 0) seen[0]++;
    else if (strcmp(buf, "127.0.0.22") == 0) seen[1]++;
    else if (strcmp(buf, "127.0.0.23") == 0) seen[2]++;
    else fail_msg("unexpected address %s", buf);
  }
  assert_int_equal(seen[0] + seen[1] * 10 + seen[2] * 100, 111);
  for (size_t i = 3; i < 5; i++) assert_int_equal(r->mx[0].addrs[i].sa.sa_family, AF_INET6);
  smtpc_route_free(r);

  memset(&o, 0, sizeof(o));
  o.family = SMTPC_DNS_PREFER_IPV6;
  r = resolve_opts("multi.test", &o);
  assert_int_equal(r->mx[0].naddrs, 5);
  assert_int_equal(r->mx[0].addrs[0].sa.sa_family, AF_INET6);
  assert_int_equal(r->mx[0].addrs[1].sa.sa_family, AF_INET6);
  assert_int_equal(r->mx[0].addrs[2].sa.sa_family, AF_INET);
  smtpc_route_free(r);

  o.family = SMTPC_DNS_IPV4_ONLY;
  r = resolve_opts("multi.test", &o);
  assert_int_equal(r->mx[0].naddrs, 3);
  for (size_t i = 0; i < 3; i++) assert_int_equal(r->mx[0].addrs[i].sa.sa_family, AF_INET);
  smtpc_route_free(r);

  o.family = SMTPC_DNS_IPV6_ONLY;
  r = resolve_opts("multi.test", &o);
  assert_int_equal(r->mx[0].naddrs, 2);
  addr_text(&r->mx[0].addrs[0], buf);
  assert_true(strcmp(buf, "2001:db8::21") == 0 || strcmp(buf, "2001:db8::22") == 0);
  smtpc_route_free(r);
}

static void implicit_mx(void **state) {
  (void)state;
  smtpc_route *r = resolve("implicit.test");
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_true(r->implicit);
  assert_false(r->null_mx);
  assert_int_equal(r->nmx, 1);
  assert_string_equal(r->mx[0].host, "implicit.test");
  assert_int_equal(r->mx[0].preference, 0);
  assert_int_equal(r->mx[0].naddrs, 2);
  assert_addr(&r->mx[0], 0, "127.0.0.31");
  assert_addr(&r->mx[0], 1, "2001:db8::31");
  smtpc_route_free(r);
}

static void null_mx(void **state) {
  (void)state;
  smtpc_route *r = resolve("nullmx.test"); /* it has an A record, which must not be used */
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_true(r->null_mx);
  assert_false(r->implicit);
  assert_int_equal(r->nmx, 0);
  smtpc_route_free(r);
}

static void unresolvable_targets(void **state) {
  (void)state;
  assert_error("dangling.test", SMTPC_DNS_NOADDRESS);
  assert_error("bare.test", SMTPC_DNS_NOADDRESS); /* no MX, no A/AAAA */
  smtpc_route *r = resolve("partial.test");       /* the preferred MX does not resolve */
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_int_equal(r->nmx, 1);
  assert_string_equal(r->mx[0].host, "mx.partial.test");
  assert_int_equal(r->mx[0].preference, 20);
  assert_addr(&r->mx[0], 0, "127.0.0.33");
  smtpc_route_free(r);
}

static void cnames(void **state) {
  (void)state;
  smtpc_route *r = resolve("cname.test"); /* the MX target is an alias */
  assert_int_equal(r->nmx, 1);
  assert_string_equal(r->mx[0].host, "alias.cname.test");
  assert_int_equal(r->mx[0].naddrs, 1);
  assert_addr(&r->mx[0], 0, "127.0.0.41");
  smtpc_route_free(r);
  r = resolve("aliased.test"); /* the domain is an alias of two.test */
  assert_string_equal(r->domain, "aliased.test");
  assert_int_equal(r->nmx, 2);
  assert_string_equal(r->mx[0].host, "mx1.two.test");
  assert_string_equal(r->mx[1].host, "mx2.two.test");
  smtpc_route_free(r);
}

static void failures_told_apart(void **state) {
  (void)state;
  assert_error("nope.test", SMTPC_DNS_NXDOMAIN);
  assert_error("deep.er.nope.test", SMTPC_DNS_NXDOMAIN);
  assert_error("x.servfail.test", SMTPC_DNS_SERVFAIL);
  assert_error("refused.test", SMTPC_DNS_REFUSED);
  assert_error("garbage.test", SMTPC_DNS_SERVFAIL);
  assert_error("mxfail.test", SMTPC_DNS_SERVFAIL); /* its only MX host's lookups SERVFAIL */
}

/* Straight to responder.py, without dnsmasq's interpretation: the raw SERVFAIL and REFUSED
 * reach us (ARES_FLAG_NOCHECKRESP), and a reply cut off inside its answer is a failure. */
static void raw_failures(void **state) {
  (void)state;
  static const struct { const char *domain; int error; } cases[] = {
    {"x.servfail.test", SMTPC_DNS_SERVFAIL},
    {"refused.test", SMTPC_DNS_REFUSED},
    {"garbage.test", SMTPC_DNS_SERVFAIL},
    {"nothing.negttl.test", SMTPC_DNS_NXDOMAIN},
  };
  smtpc_resolver_opts o;
  memset(&o, 0, sizeof(o));
  o.servers = RESPONDER;
  o.timeout_ms = 1500;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    smtpc_route *r = resolve_opts(cases[i].domain, &o);
    if (r->error != cases[i].error)
      fail_msg("%s: %s", cases[i].domain, smtpc_dns_error_name(r->error) ? smtpc_dns_error_name(r->error) : "ok");
    smtpc_route_free(r);
  }
  smtpc_route *r = resolve_opts("big.test", &o); /* TC over UDP, then TCP to the responder */
  assert_int_equal(r->nmx, SMTPC__DNS_MAX_MX);
  smtpc_route_free(r);
}

static void timeout(void **state) {
  (void)state;
  smtpc_resolver_opts o;
  memset(&o, 0, sizeof(o));
  o.timeout_ms = 500;
  smtpc_route *r = resolve_opts("blackhole.test", &o);
  assert_int_equal(r->error, SMTPC_DNS_TIMEOUT);
  assert_int_equal(r->nmx, 0);
  smtpc_route_free(r);
}

static void server_not_listening(void **state) {
  (void)state;
  smtpc_resolver_opts o;
  memset(&o, 0, sizeof(o));
  o.servers = "127.0.0.1:1";
  o.timeout_ms = 1500;
  smtpc_route *r = resolve_opts("two.test", &o);
  /* on loopback the kernel answers "port unreachable" at once: ECONNREFUSED, no waiting */
  assert_int_equal(r->error, SMTPC_DNS_REFUSED);
  smtpc_route_free(r);
}

static void hostile_targets(void **state) {
  (void)state;
  smtpc_route *r = resolve("hostile.test"); /* "bad\nname" and "two words" are dropped */
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_int_equal(r->nmx, 1);
  assert_string_equal(r->mx[0].host, "good.hostile.test");
  smtpc_route_free(r);

  r = resolve("many.hostile.test"); /* 23 MX: the 16 best are kept, in order */
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_int_equal(r->nmx, SMTPC__DNS_MAX_MX);
  for (size_t i = 0; i < r->nmx; i++) {
    char want[32];
    snprintf(want, sizeof(want), "g%02d.hostile.test", (int)(22 - i));
    assert_int_equal(r->mx[i].preference, (int)i);
    assert_string_equal(r->mx[i].host, want);
  }
  smtpc_route_free(r);
}

static void truncated_answer_retried_over_tcp(void **state) {
  (void)state;
  /* 20 MX do not fit 512 octets of UDP: the answer comes back with TC set, and only a retry
   * over TCP (a connecting socket, watched for writing) gets the records */
  smtpc_route *r = resolve("big.test");
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_int_equal(r->nmx, SMTPC__DNS_MAX_MX);
  assert_int_equal(r->mx[0].preference, 1);
  assert_string_equal(r->mx[0].host, "mx01.big.test");
  assert_addr(&r->mx[0], 0, "127.0.1.1");
  assert_string_equal(r->mx[15].host, "mx16.big.test");
  assert_addr(&r->mx[15], 0, "127.0.1.16");
  smtpc_route_free(r);
}

static void negative_ttl_from_soa(void **state) {
  (void)state;
  smtpc_route *r = resolve("x.negttl.test"); /* SOA TTL 3600, MINIMUM 2: RFC 2308 says 2 */
  assert_int_equal(r->error, SMTPC_DNS_NXDOMAIN);
  assert_int_equal(r->ttl, 2);
  smtpc_route_free(r);
  r = resolve("nope.test"); /* no SOA (dnsmasq's local=): the 60 s default */
  assert_int_equal(r->ttl, 60);
  smtpc_route_free(r);
}

/* A U-label domain is looked up by its A-label (IDNA2008, as verify does): the fixture serves
 * xn--bcher-kva.test (tests/fixtures/dns/conf.d/idn.conf). */
static void u_label_domain(void **state) {
  (void)state;
  smtpc_route *r = resolve("b\xc3\xbc\x63her.test");
  assert_int_equal(r->error, SMTPC_DNS_OK);
  assert_string_equal(r->domain, "xn--bcher-kva.test");
  assert_int_equal(r->nmx, 1);
  assert_string_equal(r->mx[0].host, "mx.xn--bcher-kva.test");
  smtpc_route_free(r);
  r = resolve("caf\xc3\xa9.test"); /* well-formed, not served: a DNS answer, not bad input */
  assert_int_equal(r->error, SMTPC_DNS_NXDOMAIN);
  assert_string_equal(r->domain, "xn--caf-dma.test");
  smtpc_route_free(r);
}

static void bad_input(void **state) {
  (void)state;
  static const char *bad[] = {"", ".", "..", "a..b", "-", "bad domain.test", "a\r\nb.test",
                              "x\n", "a@b.test", "[127.0.0.1]", "-a.test", "a-.test", "a.test-", "\xe2\x98\x83.test", "a.test..",
                              "\x01.test", "caf\xc3.test", "\xff.test", "b\xc3\xbc\x63her.test.."};
  smtpc_resolver_opts o;
  smtpc_route *r = (smtpc_route *)&o;
  char label[80], longname[300];
  memset(&o, 0, sizeof(o));
  o.servers = SERVERS;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (smtpc_resolve_blocking(bad[i], &o, &r) != SMTPC_EINVAL) fail_msg("accepted %s", bad[i]);
    assert_null(r);
  }
  assert_int_equal(smtpc_resolve_blocking(NULL, &o, &r), SMTPC_EINVAL);
  memset(label, 'a', 64), label[64] = '\0';
  snprintf(longname, sizeof(longname), "%s.test", label);
  assert_int_equal(smtpc_resolve_blocking(longname, &o, &r), SMTPC_EINVAL);
  memset(longname, 0, sizeof(longname));
  for (int i = 0; i < 124; i++) strcat(longname, "a.");
  strcat(longname, "test."); /* 252 octets and the root dot: long, still valid */
  assert_int_equal(smtpc_resolve_blocking(longname, &o, &r), 0);
  assert_int_equal(r->error, SMTPC_DNS_NXDOMAIN);
  assert_int_equal(strlen(r->domain), 252);
  smtpc_route_free(r);
  memmove(longname + 2, longname, strlen(longname) + 1);
  memcpy(longname, "b.", 2); /* 254 octets without the dot */
  assert_int_equal(smtpc_resolve_blocking(longname, &o, &r), SMTPC_EINVAL);

  o.servers = "not a server";
  assert_int_equal(smtpc_resolve_blocking("two.test", &o, &r), SMTPC_EINVAL);
  o.servers = SERVERS;
  o.family = 9;
  assert_int_equal(smtpc_resolve_blocking("two.test", &o, &r), SMTPC_EINVAL);
  o.family = 0;
  o.timeout_ms = -1;
  assert_int_equal(smtpc_resolve_blocking("two.test", &o, &r), SMTPC_EINVAL);
  assert_int_equal(smtpc_resolve_blocking("two.test", &o, NULL), SMTPC_EINVAL);
}

static void error_names(void **state) {
  (void)state;
  assert_null(smtpc_dns_error_name(SMTPC_DNS_OK));
  assert_string_equal(smtpc_dns_error_name(SMTPC_DNS_NXDOMAIN), "nxdomain");
  assert_string_equal(smtpc_dns_error_name(SMTPC_DNS_SERVFAIL), "servfail");
  assert_string_equal(smtpc_dns_error_name(SMTPC_DNS_REFUSED), "refused");
  assert_string_equal(smtpc_dns_error_name(SMTPC_DNS_TIMEOUT), "timeout");
  assert_string_equal(smtpc_dns_error_name(SMTPC_DNS_NOADDRESS), "no-address");
  assert_null(smtpc_dns_error_name(SMTPC_DNS_ERROR_COUNT));
  assert_null(smtpc_dns_error_name(-1));
  assert_string_equal(smtpc_dns_error_message(SMTPC_DNS_OK), "");
  assert_non_null(strstr(smtpc_dns_error_message(SMTPC_DNS_NXDOMAIN), "not exist"));
  smtpc_route_free(NULL);
  assert_null(smtpc_route_dup(NULL));
}

/* ---------------------------------------------------------------------------------------- */
/* The asynchronous API on one loop.                                                         */

typedef struct got {
  int calls, status, error;
  size_t nmx;
  char first[256];
  smtpc_route *copy;
} got;

static void on_route(int status, const smtpc_route *route, void *data) {
  got *g = data;
  g->calls++;
  g->status = status;
  if (route) {
    g->error = route->error;
    g->nmx = route->nmx;
    snprintf(g->first, sizeof(g->first), "%s", route->nmx ? route->mx[0].host : "");
    g->copy = smtpc_route_dup(route);
  }
}

static int closed;
static void on_closed(void *data) { closed = data == &closed ? 1 : -1; }

static smtpc_resolver *new_resolver(uv_loop_t *loop, int cache_size) {
  smtpc_resolver_opts o;
  int err = 1;
  memset(&o, 0, sizeof(o));
  o.servers = SERVERS;
  o.timeout_ms = 2000;
  o.cache_size = cache_size;
  smtpc_resolver *r = smtpc_resolver_new(loop, &o, &err);
  assert_non_null(r);
  assert_int_equal(err, 0);
  return r;
}

static void close_and_drain(uv_loop_t *loop, smtpc_resolver *r) {
  closed = 0;
  smtpc_resolver_close(r, on_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void async_join_and_cache(void **state) {
  (void)state;
  uv_loop_t loop;
  got g[6];
  smtpc_resolver_stats st;
  const char *names[3] = {"two.test", "nope.test", "implicit.test"};
  memset(g, 0, sizeof(g));
  assert_int_equal(uv_loop_init(&loop), 0);
  smtpc_resolver *r = new_resolver(&loop, 0);

  for (int i = 0; i < 6; i++) assert_int_equal(smtpc_resolve_mx(r, names[i % 3], on_route, &g[i]), 0);
  assert_int_equal(g[0].calls, 0); /* never called from inside smtpc_resolve_mx */
  uv_run(&loop, UV_RUN_DEFAULT);    /* returns: an idle resolver keeps no handle active */
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.resolutions, 6);
  assert_int_equal(st.joined, 3);
  assert_int_equal(st.cache_hits, 0);
  /* two.test: MX + 2 x (A, AAAA); nope.test: MX; implicit.test: MX + A + AAAA */
  assert_int_equal(st.queries, 5 + 1 + 3);
  assert_int_equal(st.cached, 3);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(g[i].calls, 1);
    assert_int_equal(g[i].status, 0);
  }
  assert_string_equal(g[0].first, "mx1.two.test");
  assert_string_equal(g[3].first, "mx1.two.test");
  assert_int_equal(g[1].error, SMTPC_DNS_NXDOMAIN);
  assert_int_equal(g[4].error, SMTPC_DNS_NXDOMAIN);
  assert_string_equal(g[2].first, "implicit.test");

  /* again: all from the cache (negative answers too), no new query */
  got h[3];
  memset(h, 0, sizeof(h));
  for (int i = 0; i < 3; i++) assert_int_equal(smtpc_resolve_mx(r, names[i], on_route, &h[i]), 0);
  assert_int_equal(h[0].calls, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.cache_hits, 3);
  assert_int_equal(st.queries, 9);
  assert_int_equal(h[0].nmx, 2);
  assert_int_equal(h[1].error, SMTPC_DNS_NXDOMAIN);
  assert_int_equal(h[2].nmx, 1);
  assert_true(h[0].copy->ttl > 0 && h[0].copy->ttl <= 300);

  smtpc_resolver_flush(r); /* forgotten: asked again */
  for (int i = 0; i < 3; i++) smtpc_route_free(h[i].copy);
  memset(h, 0, sizeof(h));
  assert_int_equal(smtpc_resolve_mx(r, "two.test", on_route, &h[0]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.queries, 14);
  assert_int_equal(h[0].nmx, 2);

  assert_int_equal(smtpc_resolve_mx(r, "bad name", on_route, &h[1]), SMTPC_EINVAL);
  assert_int_equal(smtpc_resolve_mx(r, "two.test", NULL, &h[1]), SMTPC_EINVAL);
  close_and_drain(&loop, r);
  for (int i = 0; i < 6; i++) smtpc_route_free(g[i].copy);
  for (int i = 0; i < 3; i++) smtpc_route_free(h[i].copy);
}

static void hosts_shared_between_domains(void **state) {
  (void)state;
  uv_loop_t loop;
  got g[2];
  smtpc_resolver_stats st;
  memset(g, 0, sizeof(g));
  assert_int_equal(uv_loop_init(&loop), 0);
  smtpc_resolver *r = new_resolver(&loop, 0);
  assert_int_equal(smtpc_resolve_mx(r, "two.test", on_route, &g[0]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.queries, 5); /* MX, then A and AAAA of mx1 and mx2 */
  /* aliased.test is a CNAME of two.test: same MX hosts, whose addresses are known now */
  assert_int_equal(smtpc_resolve_mx(r, "aliased.test", on_route, &g[1]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.queries, 6);
  assert_int_equal(g[1].copy->nmx, 2);
  assert_addr(&g[1].copy->mx[0], 0, "127.0.0.11");
  assert_addr(&g[1].copy->mx[1], 0, "127.0.0.12");
  assert_true(g[1].copy->ttl >= 290 && g[1].copy->ttl <= 300);
  close_and_drain(&loop, r);
  smtpc_route_free(g[0].copy);
  smtpc_route_free(g[1].copy);
}

/* More domains than the resolver runs at once (32): all are answered, none is lost. */
static void many_at_once(void **state) {
  (void)state;
  enum { N = 150 };
  static const char *zones[] = {"two.test", "equal.test", "implicit.test", "nope.test", "nullmx.test"};
  uv_loop_t loop;
  got *g = calloc(N, sizeof(*g));
  char name[64];
  smtpc_resolver_stats st;
  assert_int_equal(uv_loop_init(&loop), 0);
  smtpc_resolver *r = new_resolver(&loop, 0);
  for (int i = 0; i < N; i++) { /* distinct names: n<i>.nope.test are NXDOMAIN, no cache hit */
    if (i % 2) snprintf(name, sizeof(name), "n%d.nope.test", i);
    else snprintf(name, sizeof(name), "%s", zones[(i / 2) % 5]);
    assert_int_equal(smtpc_resolve_mx(r, name, on_route, &g[i]), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < N; i++) {
    assert_int_equal(g[i].calls, 1);
    assert_int_equal(g[i].status, 0);
    if (i % 2) assert_int_equal(g[i].error, SMTPC_DNS_NXDOMAIN);
    smtpc_route_free(g[i].copy);
  }
  assert_string_equal(g[0].first, "mx1.two.test");
  assert_int_equal(g[2].nmx, 3);
  assert_string_equal(g[4].first, "implicit.test");
  assert_int_equal(g[6].error, SMTPC_DNS_NXDOMAIN);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.resolutions, N);
  assert_int_equal(st.cache_hits + st.joined, N / 2 - 5);
  close_and_drain(&loop, r);
  free(g);
}

static void no_cache(void **state) {
  (void)state;
  uv_loop_t loop;
  got g[2];
  smtpc_resolver_stats st;
  memset(g, 0, sizeof(g));
  assert_int_equal(uv_loop_init(&loop), 0);
  smtpc_resolver *r = new_resolver(&loop, -1);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(smtpc_resolve_mx(r, "nullmx.test", on_route, &g[i]), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.queries, 2);
  assert_int_equal(st.cache_hits, 0);
  assert_int_equal(st.cached, 0);
  assert_true(g[1].copy->null_mx);
  close_and_drain(&loop, r);
  smtpc_route_free(g[0].copy);
  smtpc_route_free(g[1].copy);
}

static void cache_evicts_oldest(void **state) {
  (void)state;
  uv_loop_t loop;
  got g[4];
  smtpc_resolver_stats st;
  const char *names[4] = {"nope.test", "bare.test", "dangling.test", "nope.test"};
  memset(g, 0, sizeof(g));
  assert_int_equal(uv_loop_init(&loop), 0);
  smtpc_resolver *r = new_resolver(&loop, 2); /* room for two routes */
  for (int i = 0; i < 4; i++) {
    assert_int_equal(smtpc_resolve_mx(r, names[i], on_route, &g[i]), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.cached, 2);
  assert_int_equal(st.cache_hits, 0); /* nope.test was the oldest: evicted by dangling.test */
  assert_int_equal(g[3].error, SMTPC_DNS_NXDOMAIN);
  smtpc_route_free(g[3].copy);
  memset(&g[3], 0, sizeof(g[3]));
  assert_int_equal(smtpc_resolve_mx(r, "dangling.test", on_route, &g[3]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.cache_hits, 1);
  assert_int_equal(g[3].error, SMTPC_DNS_NOADDRESS);
  close_and_drain(&loop, r);
  for (int i = 0; i < 4; i++) smtpc_route_free(g[i].copy);
}

static void on_wait(uv_timer_t *t) { (void)t; }

static void ttl_expiry(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_timer_t wait;
  got g[2];
  smtpc_resolver_stats st;
  memset(g, 0, sizeof(g));
  assert_int_equal(uv_loop_init(&loop), 0);
  smtpc_resolver *r = new_resolver(&loop, 0);
  assert_int_equal(smtpc_resolve_mx(r, "shortttl.test", on_route, &g[0]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g[0].nmx, 1);
  assert_int_equal(g[0].copy->ttl, 1); /* every record has TTL 1 */
  smtpc_resolver_stats_get(r, &st);
  uint64_t before = st.queries;
  /* let the TTL run out, then ask again: a fresh lookup, not the cache */
  uv_timer_init(&loop, &wait);
  uv_timer_start(&wait, on_wait, 1100, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&wait, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(smtpc_resolve_mx(r, "shortttl.test", on_route, &g[1]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  smtpc_resolver_stats_get(r, &st);
  assert_int_equal(st.cache_hits, 0);
  assert_true(st.queries > before);
  assert_string_equal(g[1].first, "mx.shortttl.test");
  close_and_drain(&loop, r);
  smtpc_route_free(g[0].copy);
  smtpc_route_free(g[1].copy);
}

typedef struct closer {
  smtpc_resolver *r;
  got *g;
} closer;

static void on_close_now(uv_timer_t *t) {
  closer *c = t->data;
  closed = 0;
  smtpc_resolver_close(c->r, on_closed, &closed);
  /* pending callbacks ran before close returned */
  assert_int_equal(c->g[0].calls, 1);
  assert_int_equal(c->g[0].status, SMTPC_ECANCELED);
  assert_int_equal(c->g[1].calls, 1);
  assert_int_equal(c->g[1].status, SMTPC_ECANCELED);
  uv_close((uv_handle_t *)t, NULL);
}

static void close_with_pending(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_timer_t t;
  got g[2];
  closer c = {NULL, g};
  memset(g, 0, sizeof(g));
  assert_int_equal(uv_loop_init(&loop), 0);
  c.r = new_resolver(&loop, 0);
  assert_int_equal(smtpc_resolve_mx(c.r, "blackhole.test", on_route, &g[0]), 0);
  assert_int_equal(smtpc_resolve_mx(c.r, "two.test", on_route, &g[1]), 0);
  uv_timer_init(&loop, &t);
  t.data = &c;
  uv_timer_start(&t, on_close_now, 0, 0); /* before any answer can arrive */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_null(g[0].copy);
  assert_null(g[1].copy);
}

/* ---------------------------------------------------------------------------------------- */
/* The message walker on hand-made packets.                                                 */

static int walked;
static void count_rr(void *ctx, const unsigned char *m, int len, const unsigned char *rd, int rdlen,
                     uint32_t ttl) {
  (void)ctx, (void)m, (void)len, (void)ttl;
  assert_true(rd >= m && rd + rdlen <= m + len);
  walked++;
}

/* header + question "a.test" A */
static size_t question(unsigned char *m, int an, int ns) {
  static const unsigned char q[] = {0, 1, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                    1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
  memcpy(m, q, sizeof(q));
  m[7] = (unsigned char)an;
  m[9] = (unsigned char)ns;
  return sizeof(q);
}

static size_t put_rr(unsigned char *m, size_t off, const unsigned char *owner, size_t olen, int type,
                     uint32_t ttl, const unsigned char *rd, size_t rdlen) {
  memcpy(m + off, owner, olen), off += olen;
  m[off++] = 0, m[off++] = (unsigned char)type, m[off++] = 0, m[off++] = 1;
  m[off++] = (unsigned char)(ttl >> 24), m[off++] = (unsigned char)(ttl >> 16);
  m[off++] = (unsigned char)(ttl >> 8), m[off++] = (unsigned char)ttl;
  m[off++] = (unsigned char)(rdlen >> 8), m[off++] = (unsigned char)rdlen;
  memcpy(m + off, rd, rdlen);
  return off + rdlen;
}

static void walker(void **state) {
  (void)state;
  unsigned char m[512];
  static const unsigned char ptr_q[] = {0xc0, 12}, ip[] = {127, 0, 0, 1};
  static const unsigned char b_test[] = {1, 'b', 0xc0, 14}; /* "b" + "test" of the question */
  static const unsigned char b_owner[] = {1, 'b', 0xc0, 14};
  uint32_t ttl, neg;
  size_t off;

  /* CNAME a.test -> b.test (ttl 50), b.test A (ttl 70), and an A for a.test that must be
   * ignored because a.test is an alias */
  off = question(m, 3, 0);
  off = put_rr(m, off, ptr_q, 2, SMTPC__DNS_T_CNAME, 50, b_test, sizeof(b_test));
  off = put_rr(m, off, b_owner, sizeof(b_owner), SMTPC__DNS_T_A, 70, ip, 4);
  off = put_rr(m, off, ptr_q, 2, SMTPC__DNS_T_A, 10, ip, 4);
  walked = 0;
  assert_int_equal(smtpc__dns_walk(m, (int)off, "a.test", SMTPC__DNS_T_A, count_rr, NULL, &ttl, &neg), 1);
  assert_int_equal(walked, 1);
  assert_int_equal(ttl, 50);
  assert_int_equal(neg, UINT32_MAX);
  /* every truncation is an error or a shorter answer, never a read past the end */
  for (size_t cut = 0; cut < off; cut++) {
    unsigned char *copy = malloc(cut ? cut : 1);
    memcpy(copy, m, cut);
    walked = 0;
    assert_int_equal(smtpc__dns_walk(copy, (int)cut, "a.test", SMTPC__DNS_T_A, count_rr, NULL, &ttl, &neg), -1);
    free(copy);
  }

  /* a compression pointer loop in the answer owner */
  off = question(m, 1, 0);
  static const unsigned char loop_owner[] = {0xc0, 24};
  off = put_rr(m, off, loop_owner, 2, SMTPC__DNS_T_A, 10, ip, 4);
  m[24] = 0xc0, m[25] = 24;
  assert_int_equal(smtpc__dns_walk(m, (int)off, "a.test", SMTPC__DNS_T_A, count_rr, NULL, &ttl, &neg), -1);

  /* NXDOMAIN with an SOA: negative TTL = min(SOA TTL 900, MINIMUM 30); a TTL with the top bit
   * set counts as 0 */
  static const unsigned char soa[] = {0xc0, 14, 0xc0, 14, 0, 0, 0, 1, 0, 0, 0, 2,
                                      0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 30};
  off = question(m, 0, 1);
  off = put_rr(m, off, ptr_q + 0, 2, SMTPC__DNS_T_SOA, 900, soa, sizeof(soa));
  assert_int_equal(smtpc__dns_walk(m, (int)off, "a.test", SMTPC__DNS_T_A, count_rr, NULL, &ttl, &neg), 0);
  assert_int_equal(neg, 30);
  assert_int_equal(ttl, UINT32_MAX);
  off = question(m, 1, 0);
  off = put_rr(m, off, ptr_q, 2, SMTPC__DNS_T_A, 0x80000005u, ip, 4);
  assert_int_equal(smtpc__dns_walk(m, (int)off, "a.test", SMTPC__DNS_T_A, count_rr, NULL, &ttl, &neg), 1);
  assert_int_equal(ttl, 0);

  /* random bytes after a valid header never crash (run under ASan in the sanitizer build) */
  srand(7);
  for (int round = 0; round < 2000; round++) {
    size_t n = 12 + (size_t)(rand() % 200);
    question(m, rand() % 8, rand() % 4);
    for (size_t i = 24; i < n; i++) m[i] = (unsigned char)rand();
    smtpc__dns_walk(m, (int)n, "a.test", SMTPC__DNS_T_MX, count_rr, NULL, &ttl, &neg);
  }
}

static void name_norm(void **state) {
  (void)state;
  char out[256];
  assert_int_equal(smtpc__dns_name_norm("Mx-1.Example_Z.TEST.", 20, out), 0);
  assert_string_equal(out, "mx-1.example_z.test");
  assert_int_equal(smtpc__dns_name_norm("a\\.b", 4, out), SMTPC_EINVAL);
  assert_int_equal(smtpc__dns_name_norm("a.b\0c", 5, out), SMTPC_EINVAL);
  assert_int_equal(smtpc__dns_name_norm("a-b.c-d", 7, out), 0);
  assert_int_equal(smtpc__dns_name_norm("a.", 1, out), 0); /* only len octets are read */
  assert_string_equal(out, "a");
}

int main(void) {
  const struct CMUnitTest pure[] = {
    cmocka_unit_test(error_names),
    cmocka_unit_test(walker),
    cmocka_unit_test(name_norm),
  };
  const struct CMUnitTest live[] = {
    cmocka_unit_test(two_mx_sorted),
    cmocka_unit_test(name_forms),
    cmocka_unit_test(equal_preference_shuffled),
    cmocka_unit_test(multi_homed),
    cmocka_unit_test(implicit_mx),
    cmocka_unit_test(null_mx),
    cmocka_unit_test(unresolvable_targets),
    cmocka_unit_test(cnames),
    cmocka_unit_test(failures_told_apart),
    cmocka_unit_test(raw_failures),
    cmocka_unit_test(timeout),
    cmocka_unit_test(server_not_listening),
    cmocka_unit_test(hostile_targets),
    cmocka_unit_test(truncated_answer_retried_over_tcp),
    cmocka_unit_test(negative_ttl_from_soa),
    cmocka_unit_test(u_label_domain),
    cmocka_unit_test(bad_input),
    cmocka_unit_test(async_join_and_cache),
    cmocka_unit_test(hosts_shared_between_domains),
    cmocka_unit_test(many_at_once),
    cmocka_unit_test(no_cache),
    cmocka_unit_test(cache_evicts_oldest),
    cmocka_unit_test(ttl_expiry),
    cmocka_unit_test(close_with_pending),
  };
  int failed = cmocka_run_group_tests_name("dns_pure", pure, NULL, NULL);
  failed += cmocka_run_group_tests_name("dns_live", live, fixture_up, fixture_down);
  return failed != 0;
}
