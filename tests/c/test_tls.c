/* test_tls.c -- the memory-BIO TLS client against an in-process OpenSSL server: the two only
 * ever exchange bytes through this test, as the engine does through a socket. The server's
 * certificate is made here (P-256, self-signed, SAN mx.example.test and 127.0.0.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "smtpcode.h"
#include "tls.h"

static EVP_PKEY *key;
static X509 *cert;
static char ca_path[] = "/tmp/smtpc-test-tls-XXXXXX";
static char sni_seen[256];

static void add_ext(X509 *x, int nid, const char *value) {
  X509V3_CTX ctx;
  X509_EXTENSION *e;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  assert_non_null(e);
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
}

static int setup(void **state) {
  int fd;
  FILE *f;
  (void)state;
  key = EVP_EC_gen("P-256");
  cert = X509_new();
  if (key == NULL || cert == NULL) return -1;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             (const unsigned char *)"mx.example.test", -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  add_ext(cert, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(cert, NID_subject_alt_name, "DNS:mx.example.test,IP:127.0.0.7");
  if (X509_sign(cert, key, EVP_sha256()) == 0) return -1;
  fd = mkstemp(ca_path);
  if (fd < 0 || (f = fdopen(fd, "w")) == NULL) return -1;
  PEM_write_X509(f, cert);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(ca_path);
  X509_free(cert);
  EVP_PKEY_free(key);
  return 0;
}

static int on_sni(SSL *s, int *al, void *arg) {
  const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
  (void)al;
  (void)arg;
  snprintf(sni_seen, sizeof sni_seen, "%s", n ? n : "");
  return SSL_TLSEXT_ERR_OK;
}

typedef struct server {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *in, *out;
} server;

static void server_new(server *s) {
  s->ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(s->ctx);
  assert_int_equal(SSL_CTX_use_certificate(s->ctx, cert), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, key), 1);
  SSL_CTX_set_tlsext_servername_callback(s->ctx, on_sni);
  s->ssl = SSL_new(s->ctx);
  s->in = BIO_new(BIO_s_mem());
  s->out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(s->in, -1);
  SSL_set_bio(s->ssl, s->in, s->out);
  SSL_set_accept_state(s->ssl);
  sni_seen[0] = '\0';
}

static void server_free(server *s) {
  SSL_free(s->ssl);
  SSL_CTX_free(s->ctx);
}

/* Move bytes both ways until neither side has any left to send. */
static void pump(smtpc__tls *c, server *s) {
  char buf[16384];
  int moved;
  do {
    size_t n;
    int k;
    moved = 0;
    while ((n = smtpc__tls_take(c, buf, sizeof buf)) > 0) {
      assert_int_equal(BIO_write(s->in, buf, (int)n), (int)n);
      moved = 1;
    }
    if (!SSL_is_init_finished(s->ssl)) SSL_do_handshake(s->ssl);
    while ((k = BIO_read(s->out, buf, sizeof buf)) > 0) {
      assert_int_equal(smtpc__tls_feed(c, buf, (size_t)k), 0);
      moved = 1;
    }
    if (smtpc__tls_handshake(c) < 0) return;
  } while (moved);
}

static int handshake(smtpc__tls_ctx *cx, const char *host, server *s, smtpc__tls **out) {
  smtpc__tls *c = smtpc__tls_new(cx, host);
  int rc;
  assert_non_null(c);
  server_new(s);
  assert_int_equal(smtpc__tls_handshake(c), 0); /* the ClientHello waits in the BIO */
  assert_true(smtpc__tls_pending(c) > 0);
  pump(c, s);
  rc = smtpc__tls_handshake(c);
  *out = c;
  return rc;
}

static void test_no_verify_roundtrip(void **state) {
  int err;
  smtpc__tls_ctx *cx = smtpc__tls_ctx_new(0, NULL, &err);
  smtpc__tls *c;
  server s;
  char buf[64];
  long n;
  (void)state;
  assert_non_null(cx);
  /* the certificate names another host and nobody trusts it: fine when not verifying */
  assert_int_equal(handshake(cx, "other.example.test", &s, &c), 1);
  assert_string_equal(sni_seen, "other.example.test");
  /* client -> server */
  assert_int_equal(smtpc__tls_write(c, "EHLO x\r\n", 8), 0);
  pump(c, &s);
  assert_int_equal(SSL_read(s.ssl, buf, sizeof buf), 8);
  assert_memory_equal(buf, "EHLO x\r\n", 8);
  /* server -> client, fed one byte at a time */
  assert_int_equal(SSL_write(s.ssl, "250 ok\r\n", 8), 8);
  {
    char wire[512];
    int k = BIO_read(s.out, wire, sizeof wire), i;
    size_t got = 0;
    assert_true(k > 8);
    for (i = 0; i < k; i++) {
      assert_int_equal(smtpc__tls_feed(c, wire + i, 1), 0);
      n = smtpc__tls_read(c, buf + got, sizeof buf - got);
      assert_true(n >= 0);
      got += (size_t)n;
      if (i + 1 < k) assert_int_equal(got, 0); /* no plain text before the record is whole */
    }
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "250 ok\r\n", 8);
  }
  /* close_notify reads as a clean close */
  SSL_shutdown(s.ssl);
  pump(c, &s);
  assert_int_equal(smtpc__tls_read(c, buf, sizeof buf), SMTPC_ECLOSED);
  smtpc__tls_free(c);
  server_free(&s);
  smtpc__tls_ctx_free(cx);
}

static void test_verify(void **state) {
  int err;
  smtpc__tls_ctx *cx = smtpc__tls_ctx_new(1, ca_path, &err);
  smtpc__tls *c;
  server s;
  (void)state;
  assert_non_null(cx);
  assert_int_equal(handshake(cx, "mx.example.test", &s, &c), 1);
  smtpc__tls_free(c);
  server_free(&s);
  /* the right CA, the wrong name */
  assert_int_equal(handshake(cx, "evil.example.test", &s, &c), SMTPC_ETLS);
  assert_non_null(strstr(smtpc__tls_error(c), "certificate verify failed"));
  smtpc__tls_free(c);
  server_free(&s);
  /* an IP address: checked against the IP SAN, and never sent as SNI */
  assert_int_equal(handshake(cx, "127.0.0.7", &s, &c), 1);
  assert_string_equal(sni_seen, "");
  smtpc__tls_free(c);
  server_free(&s);
  assert_int_equal(handshake(cx, "127.0.0.8", &s, &c), SMTPC_ETLS);
  smtpc__tls_free(c);
  server_free(&s);
  smtpc__tls_ctx_free(cx);

  /* the system store does not know our certificate */
  cx = smtpc__tls_ctx_new(1, NULL, &err);
  assert_non_null(cx);
  assert_int_equal(handshake(cx, "mx.example.test", &s, &c), SMTPC_ETLS);
  smtpc__tls_free(c);
  server_free(&s);
  smtpc__tls_ctx_free(cx);

  assert_null(smtpc__tls_ctx_new(1, "/nonexistent/ca.pem", &err));
  assert_int_equal(err, SMTPC_ETLS);
}

static void test_garbage(void **state) {
  int err;
  smtpc__tls_ctx *cx = smtpc__tls_ctx_new(0, NULL, &err);
  smtpc__tls *c = smtpc__tls_new(cx, "mx.example.test");
  static const char junk[] = "220 this is not TLS at all\r\n";
  (void)state;
  assert_int_equal(smtpc__tls_handshake(c), 0);
  assert_int_equal(smtpc__tls_feed(c, junk, sizeof junk - 1), 0);
  assert_int_equal(smtpc__tls_handshake(c), SMTPC_ETLS);
  assert_true(strlen(smtpc__tls_error(c)) > 0);
  smtpc__tls_free(c);
  smtpc__tls_ctx_free(cx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_no_verify_roundtrip),
    cmocka_unit_test(test_verify),
    cmocka_unit_test(test_garbage),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
