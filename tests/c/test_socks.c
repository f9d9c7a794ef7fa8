/* test_socks.c -- the SOCKS5 client machine (socks.c) against byte sequences written from
 * RFC 1928 and RFC 1929, and the proxy URL parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtpcode.h"

static smtpc_proxy proxy(const char *url) {
  smtpc_proxy p;
  assert_int_equal(smtpc_proxy_parse(url, strlen(url), &p), 0);
  return p;
}

static void expect_out(smtpc_socks *s, const void *bytes, size_t n) {
  size_t len;
  const char *out = smtpc_socks_output(s, &len);
  assert_int_equal(len, n);
  assert_memory_equal(out, bytes, n);
  smtpc_socks_consume(s);
}

static int feed(smtpc_socks *s, const void *bytes, size_t n, size_t *used) {
  return smtpc_socks_feed(s, bytes, n, used);
}

static void test_no_auth_ipv4(void **state) {
  smtpc_proxy p = proxy("socks5://127.0.0.1:1080");
  smtpc_socks *s = smtpc_socks_new(&p, "127.0.0.1", 25, NULL);
  size_t used;
  /* reply, bound address 127.0.0.1:8080, then the server's banner in the same read */
  static const char rep[] = "\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90" "220 hi\r\n";
  (void)state;
  assert_non_null(s);
  expect_out(s, "\x05\x01\x00", 3);                /* version 5, one method: none */
  assert_int_equal(feed(s, "\x05\x00", 2, &used), 0);
  assert_int_equal(used, 2);
  expect_out(s, "\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x19", 10); /* CONNECT 127.0.0.1:25 */
  assert_int_equal(feed(s, rep, sizeof rep - 1, &used), 1);
  assert_int_equal(used, 10); /* the banner is left for the dialog */
  assert_int_equal(smtpc_socks_state(s), 1);
  assert_int_equal(smtpc_socks_eof(s), 0);
  smtpc_socks_free(s);
}

static void test_auth_name_one_byte_at_a_time(void **state) {
  smtpc_proxy p = proxy("socks5h://us%40er:p%3Ass@[::1]:1081");
  smtpc_socks *s;
  static const char srv[] = "\x05\x02" "\x01\x00"
                            "\x05\x00\x00\x03\x04host\x00\x19";
  static const char auth[] = "\x01\x05us@er\x04p:ss";
  static const char req[] = "\x05\x01\x00\x03\x0cmx1.mta.test\x00\x19";
  size_t i, used, total = 0;
  int rc = 0;
  (void)state;
  assert_true(p.remote_dns);
  assert_true(p.auth);
  assert_string_equal(p.user, "us@er");
  assert_string_equal(p.pass, "p:ss");
  assert_string_equal(p.host, "::1");
  assert_int_equal(p.port, 1081);
  s = smtpc_socks_new(&p, "mx1.mta.test", 25, NULL);
  assert_non_null(s);
  expect_out(s, "\x05\x01\x02", 3); /* with credentials only username/password is offered */
  for (i = 0; i < sizeof srv - 1; i++) {
    assert_int_equal(rc, 0);
    rc = feed(s, srv + i, 1, &used);
    total += used;
    if (i == 1) expect_out(s, auth, sizeof auth - 1);
    if (i == 3) expect_out(s, req, sizeof req - 1);
  }
  assert_int_equal(rc, 1);
  assert_int_equal(total, sizeof srv - 1);
  smtpc_socks_free(s);
}

static void test_ipv6_target(void **state) {
  smtpc_proxy p = proxy("socks5://10.0.0.1");
  smtpc_socks *s = smtpc_socks_new(&p, "2001:db8::1", 2525, NULL);
  static const unsigned char req[] = {5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                      0, 0, 0, 0, 0, 0, 0, 1, 0x09, 0xdd};
  (void)state;
  assert_int_equal(p.port, 1080);
  smtpc_socks_consume(s);
  assert_int_equal(feed(s, "\x05\x00", 2, NULL), 0);
  expect_out(s, req, sizeof req);
  smtpc_socks_free(s);
}

/* the reply codes of RFC 1928 section 6, each its own error */
static void test_reply_codes(void **state) {
  static const int want[] = {0, SMTPC_EPROXY, SMTPC_EPROXYDENIED, SMTPC_EPROXYUNREACH,
                             SMTPC_EPROXYUNREACH, SMTPC_EPROXYREFUSED, SMTPC_EPROXYTTL,
                             SMTPC_EPROXY, SMTPC_EPROXY, SMTPC_EPROXY};
  smtpc_proxy p = proxy("socks5://127.0.0.1:1080");
  int rep;
  (void)state;
  for (rep = 1; rep <= 9; rep++) {
    smtpc_socks *s = smtpc_socks_new(&p, "127.0.0.1", 25, NULL);
    char r[10] = {5, 0, 0, 1, 127, 0, 0, 1, 0, 25};
    r[1] = (char)rep;
    assert_int_equal(feed(s, "\x05\x00", 2, NULL), 0);
    assert_int_equal(feed(s, r, sizeof r, NULL), want[rep]);
    assert_int_equal(smtpc_socks_state(s), want[rep]); /* sticky */
    assert_int_equal(feed(s, "x", 1, NULL), want[rep]);
    assert_non_null(smtpc_socks_detail(s));
    smtpc_socks_free(s);
  }
}

static void test_auth_failures(void **state) {
  smtpc_proxy none = proxy("socks5://127.0.0.1"), cred = proxy("socks5://u:p@127.0.0.1");
  smtpc_socks *s;
  (void)state;
  /* no acceptable method */
  s = smtpc_socks_new(&cred, "127.0.0.1", 25, NULL);
  assert_int_equal(feed(s, "\x05\xff", 2, NULL), SMTPC_EPROXYAUTH);
  smtpc_socks_free(s);
  /* the proxy wants credentials we do not have */
  s = smtpc_socks_new(&none, "127.0.0.1", 25, NULL);
  assert_int_equal(feed(s, "\x05\xff", 2, NULL), SMTPC_EPROXYAUTH);
  smtpc_socks_free(s);
  /* wrong password: status 1 */
  s = smtpc_socks_new(&cred, "127.0.0.1", 25, NULL);
  assert_int_equal(feed(s, "\x05\x02", 2, NULL), 0);
  assert_int_equal(feed(s, "\x01\x01", 2, NULL), SMTPC_EPROXYAUTH);
  smtpc_socks_free(s);
  /* a method we did not offer (no auth while we offered only username/password) */
  s = smtpc_socks_new(&cred, "127.0.0.1", 25, NULL);
  assert_int_equal(feed(s, "\x05\x00", 2, NULL), SMTPC_EPROXY);
  smtpc_socks_free(s);
}

static void test_garbage_and_eof(void **state) {
  smtpc_proxy p = proxy("socks5://127.0.0.1");
  smtpc_socks *s;
  (void)state;
  s = smtpc_socks_new(&p, "127.0.0.1", 25, NULL);
  assert_int_equal(feed(s, "220 smtp.example ESMTP\r\n", 24, NULL), SMTPC_EPROXY);
  smtpc_socks_free(s);
  s = smtpc_socks_new(&p, "127.0.0.1", 25, NULL);
  assert_int_equal(feed(s, "\x05", 1, NULL), 0);
  assert_int_equal(smtpc_socks_eof(s), SMTPC_EPROXYCLOSED);
  assert_int_equal(smtpc_socks_state(s), SMTPC_EPROXYCLOSED);
  smtpc_socks_free(s);
  s = smtpc_socks_new(&p, "127.0.0.1", 25, NULL); /* address type 9 does not exist */
  assert_int_equal(feed(s, "\x05\x00\x05\x00\x00\x09\x00", 7, NULL), SMTPC_EPROXY);
  smtpc_socks_free(s);
}

static void test_bad_arguments(void **state) {
  smtpc_proxy p = proxy("socks5://127.0.0.1");
  char longname[300];
  int err = 0;
  (void)state;
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_null(smtpc_socks_new(&p, longname, 25, &err));
  assert_int_equal(err, SMTPC_EINVAL);
  assert_null(smtpc_socks_new(&p, "", 25, &err));
  assert_null(smtpc_socks_new(&p, "127.0.0.1", 0, &err));
  assert_null(smtpc_socks_new(&p, "127.0.0.1", 65536, &err));
}

static void test_url(void **state) {
  static const char *bad[] = {"", "socks5://", "socks4://127.0.0.1", "http://127.0.0.1:1080",
                              "socks5://127.0.0.1:0", "socks5://127.0.0.1:65536",
                              "socks5://127.0.0.1:", "socks5://user@127.0.0.1",
                              "socks5://:p@127.0.0.1", "socks5://u:@127.0.0.1",
                              "socks5://[::1", "socks5://[zz]:1080", "socks5://a b",
                              "socks5://127.0.0.1/path", "socks5://u:p%4@host",
                              "socks5://u:p%00@host", "SOCKS5://127.0.0.1", NULL};
  smtpc_proxy p;
  int i;
  (void)state;
  for (i = 0; bad[i]; i++) assert_int_equal(smtpc_proxy_parse(bad[i], strlen(bad[i]), &p), SMTPC_EINVAL);
  p = proxy("socks5://proxy.example.test/");
  assert_string_equal(p.host, "proxy.example.test");
  assert_int_equal(p.port, 1080);
  assert_false(p.remote_dns);
  assert_false(p.auth);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_no_auth_ipv4),
    cmocka_unit_test(test_auth_name_one_byte_at_a_time),
    cmocka_unit_test(test_ipv6_target),
    cmocka_unit_test(test_reply_codes),
    cmocka_unit_test(test_auth_failures),
    cmocka_unit_test(test_garbage_and_eof),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
