/*
 * tls.h -- TLS client over memory BIOs, for STARTTLS in any driver: ciphertext comes from and
 * goes to the driver's own socket; the SSL object never sees a file descriptor.
 */
#ifndef SMTPC_TLS_H
#define SMTPC_TLS_H

#include <stddef.h>

typedef struct smtpc__tls_ctx smtpc__tls_ctx;
typedef struct smtpc__tls smtpc__tls;

/* verify = 1: chain and host name are checked (ca_file, or the system store when NULL).
 * Returns NULL with *err = SMTPC_ETLS or SMTPC_ENOMEM. */
smtpc__tls_ctx *smtpc__tls_ctx_new(int verify, const char *ca_file, int *err);
void smtpc__tls_ctx_free(smtpc__tls_ctx *c);

/* One connection. host: the MX name, sent as SNI (unless it is an IP address) and checked
 * against the certificate when the context verifies. NULL when out of memory. */
smtpc__tls *smtpc__tls_new(smtpc__tls_ctx *c, const char *host);
void smtpc__tls_free(smtpc__tls *t);

/* Ciphertext from the network. Returns 0 or SMTPC_ENOMEM. */
int smtpc__tls_feed(smtpc__tls *t, const char *buf, size_t len);
/* Drive the handshake: 1 done, 0 needs more ciphertext, SMTPC_ETLS failed (see _error). */
int smtpc__tls_handshake(smtpc__tls *t);
/* Plain text received: > 0 octets, 0 none yet, SMTPC_ECLOSED (close_notify), SMTPC_ETLS. */
long smtpc__tls_read(smtpc__tls *t, char *buf, size_t cap);
/* Encrypt plain text for sending. Returns 0 or SMTPC_ETLS. */
int smtpc__tls_write(smtpc__tls *t, const char *buf, size_t len);
/* Ciphertext waiting to be sent: copy up to cap octets out; returns the count. */
size_t smtpc__tls_pending(const smtpc__tls *t);
size_t smtpc__tls_take(smtpc__tls *t, char *buf, size_t cap);
/* Why the last failure happened ("certificate verify failed: ..."), never NULL. */
const char *smtpc__tls_error(const smtpc__tls *t);

#endif
