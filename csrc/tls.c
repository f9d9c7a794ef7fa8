/*
 * tls.c -- OpenSSL client over two memory BIOs (see tls.h).
 *
 * Probing wants to see what a server says, not to protect a message, so certificate checks
 * are off unless asked for; when asked, both the chain and the host name are checked.
 */
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "smtpcode.h"

struct smtpc__tls_ctx {
  SSL_CTX *ctx;
  int verify;
};

struct smtpc__tls {
  SSL *ssl;
  BIO *in;   /* network -> SSL */
  BIO *out;  /* SSL -> network */
  char err[160];
};

smtpc__tls_ctx *smtpc__tls_ctx_new(int verify, const char *ca_file, int *err) {
  smtpc__tls_ctx *c = calloc(1, sizeof *c);
  *err = SMTPC_ENOMEM;
  if (c == NULL) return NULL;
  c->ctx = SSL_CTX_new(TLS_client_method());
  if (c->ctx == NULL) goto fail;
  *err = SMTPC_ETLS;
  SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
  /* idle sessions keep no 34 KiB record buffers */
  SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
  c->verify = verify;
  if (verify) {
    int ok = ca_file ? SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(c->ctx);
    if (ok != 1) goto fail;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
  } else {
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
  }
  *err = 0;
  return c;
fail:
  ERR_clear_error();
  if (c->ctx) SSL_CTX_free(c->ctx);
  free(c);
  return NULL;
}

void smtpc__tls_ctx_free(smtpc__tls_ctx *c) {
  if (c == NULL) return;
  SSL_CTX_free(c->ctx);
  free(c);
}

static int is_ip(const char *host) {
  ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
  if (ip == NULL) {
    ERR_clear_error();
    return 0;
  }
  ASN1_OCTET_STRING_free(ip);
  return 1;
}

static int set_peer(smtpc__tls *t, smtpc__tls_ctx *c, const char *host) {
  int ip;
  if (host == NULL || host[0] == '\0') return 1;
  ip = is_ip(host);
  if (!ip && SSL_set_tlsext_host_name(t->ssl, host) != 1) return 0;
  if (!c->verify) return 1;
  if (ip) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1;
  return SSL_set1_host(t->ssl, host) == 1;
}

smtpc__tls *smtpc__tls_new(smtpc__tls_ctx *c, const char *host) {
  smtpc__tls *t = calloc(1, sizeof *t);
  BIO *in, *out;
  if (t == NULL) return NULL;
  t->ssl = SSL_new(c->ctx);
  in = BIO_new(BIO_s_mem());
  out = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || in == NULL || out == NULL) {
    if (in) BIO_free(in);
    if (out) BIO_free(out);
    if (t->ssl) SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  /* an empty memory BIO means "no data yet", not end of file */
  BIO_set_mem_eof_return(in, -1);
  BIO_set_mem_eof_return(out, -1);
  SSL_set_bio(t->ssl, in, out); /* the SSL owns both BIOs from here */
  t->in = in;
  t->out = out;
  SSL_set_connect_state(t->ssl);
  if (!set_peer(t, c, host)) {
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  return t;
}

void smtpc__tls_free(smtpc__tls *t) {
  if (t == NULL) return;
  SSL_free(t->ssl);
  free(t);
}

static void set_error(smtpc__tls *t) {
  unsigned long e = ERR_get_error();
  long vr = SSL_get_verify_result(t->ssl);
  if (vr != X509_V_OK)
    snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
  else if (e != 0)
    ERR_error_string_n(e, t->err, sizeof t->err);
  else
    snprintf(t->err, sizeof t->err, "TLS failure");
  ERR_clear_error();
}

int smtpc__tls_feed(smtpc__tls *t, const char *buf, size_t len) {
  while (len > 0) {
    int chunk = len > 65536 ? 65536 : (int)len;
    int n = BIO_write(t->in, buf, chunk);
    if (n <= 0) return SMTPC_ENOMEM;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

int smtpc__tls_handshake(smtpc__tls *t) {
  int rc = SSL_do_handshake(t->ssl);
  if (rc == 1) return 1;
  switch (SSL_get_error(t->ssl, rc)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return 0;
  default:
    set_error(t);
    return SMTPC_ETLS;
  }
}

long smtpc__tls_read(smtpc__tls *t, char *buf, size_t cap) {
  int n = SSL_read(t->ssl, buf, cap > 65536 ? 65536 : (int)cap);
  if (n > 0) return n;
  switch (SSL_get_error(t->ssl, n)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return 0;
  case SSL_ERROR_ZERO_RETURN:
    return SMTPC_ECLOSED;
  default:
    set_error(t);
    return SMTPC_ETLS;
  }
}

int smtpc__tls_write(smtpc__tls *t, const char *buf, size_t len) {
  while (len > 0) {
    int chunk = len > 65536 ? 65536 : (int)len;
    int n = SSL_write(t->ssl, buf, chunk);
    if (n <= 0) { /* memory BIOs never block on write */
      set_error(t);
      return SMTPC_ETLS;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

size_t smtpc__tls_pending(const smtpc__tls *t) { return BIO_ctrl_pending(t->out); }

size_t smtpc__tls_take(smtpc__tls *t, char *buf, size_t cap) {
  int n;
  if (cap == 0) return 0;
  n = BIO_read(t->out, buf, cap > 65536 ? 65536 : (int)cap);
  return n > 0 ? (size_t)n : 0;
}

const char *smtpc__tls_error(const smtpc__tls *t) { return t->err[0] ? t->err : "TLS failure"; }
