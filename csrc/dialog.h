/*
 * dialog.h -- the SMTP client dialog of one probe connection, as a machine that does no I/O.
 *
 * Bytes from the server and timer events go in; bytes to send, "start TLS now", "close now"
 * and one event per recipient come out. Drivers (the libuv engine, and later cosocket or
 * asyncio drivers) own the socket, the timers and TLS. The machine has no DATA command at all:
 * it cannot send one, whatever the server says.
 */
#ifndef SMTPC_DIALOG_H
#define SMTPC_DIALOG_H

#include "smtpcode.h"

/* The commands a reply can answer; also the stage where a recipient's fate was decided. */
#define SMTPC__CMD_MAP(XX) \
  XX(BANNER, "CONN")       \
  XX(EHLO, "EHLO")         \
  XX(HELO, "HELO")         \
  XX(STARTTLS, "STARTTLS") \
  XX(TLS, "TLS")           \
  XX(MAIL, "MAIL")         \
  XX(RCPT, "RCPT")         \
  XX(RSET, "RSET")         \
  XX(QUIT, "QUIT")

enum smtpc__cmd {
#define SMTPC__XX(id, name) SMTPC__CMD_##id,
  SMTPC__CMD_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC__CMD_COUNT
};

/* Command name as smtpc_context.command wants it ("CONN" for the banner). */
const char *smtpc__cmd_name(int cmd);

/* EHLO keywords the dialog understands (data as data). */
#define SMTPC__CAP_MAP(XX)                      \
  XX(PIPELINING, "PIPELINING")                  \
  XX(STARTTLS, "STARTTLS")                      \
  XX(SIZE, "SIZE")                              \
  XX(SMTPUTF8, "SMTPUTF8")                      \
  XX(ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES") \
  XX(8BITMIME, "8BITMIME")

enum smtpc__cap_bit {
#define SMTPC__XX(id, name) SMTPC__CAPBIT_##id,
  SMTPC__CAP_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC__CAPBIT_COUNT
};
#define SMTPC__CAP(id) (1u << SMTPC__CAPBIT_##id)

/* How a recipient's turn ended. */
enum smtpc__outcome {
  SMTPC__RCPT_REPLY = 1, /* its RCPT got a reply (reply is set; never a 421)                  */
  SMTPC__RCPT_SESSION,   /* the session failed or refused before its RCPT was answered:
                            stage, reply (421, 554 banner, 5xx MAIL ... or NULL), err, and
                            a reason when the dialog itself decided one                      */
  SMTPC__RCPT_UNTRIED    /* not sent: the session's rejection budget is spent; use another   */
};

typedef struct smtpc__rcpt_event {
  size_t index;              /* as returned by smtpc__dialog_add_rcpt                         */
  int outcome;               /* smtpc__outcome                                                */
  int stage;                 /* smtpc__cmd whose reply (or lack of one) decided it            */
  int err;                   /* SMTPC_ETIMEOUT, SMTPC_ECLOSED, SMTPC_EPROTO, SMTPC_ETLS ... or 0 */
  int reason;                /* SMTPC_REASON_UNDEFINED, or the dialog's own decision          */
  const char *detail;        /* static text or NULL                                          */
  const smtpc_reply *reply;  /* NULL when none; valid during the callback only               */
} smtpc__rcpt_event;

typedef void (*smtpc__rcpt_cb)(void *ud, const smtpc__rcpt_event *ev);

typedef struct smtpc__dialog_cfg {
  const char *helo;        /* NULL = "localhost"                                          */
  const char *mail_from;   /* NULL or "" = <>                                              */
  int mail_from_utf8;      /* the sender needs SMTPUTF8                                    */
  int starttls;            /* smtpc_starttls                                               */
  size_t max_rejections;   /* 0 = 8: RCPT replies >= 400 allowed in one session            */
  size_t max_inflight;     /* 0 = 64: RCPTs in one pipelined burst                          */
  int transcript;          /* keep a C:/S: transcript                                      */
} smtpc__dialog_cfg;

typedef struct smtpc__dialog smtpc__dialog;

/* Returns NULL with *err = SMTPC_EINVAL (helo/sender carry CR, LF, controls, '<' '>' or are
 * too long) or SMTPC_ENOMEM. */
smtpc__dialog *smtpc__dialog_new(const smtpc__dialog_cfg *cfg, smtpc__rcpt_cb cb, void *ud,
                                 int *err);
void smtpc__dialog_free(smtpc__dialog *d);

/* Add a recipient before the banner is answered. The string is borrowed: it must stay valid
 * until the recipient's event. Returns its index (>= 0), SMTPC_EBADADDRESS (controls, CR/LF,
 * angle brackets, empty or > 256 octets: defence in depth, the parser rejects these first),
 * SMTPC_EINVAL once the dialog has started, or SMTPC_ENOMEM. */
long smtpc__dialog_add_rcpt(smtpc__dialog *d, const char *addr, size_t len, int smtputf8);

/* Server bytes (plain text; after STARTTLS the driver decrypts first). Events fire from here.
 * Returns 0 or the error that ended the session (the events have been sent then). */
int smtpc__dialog_feed(smtpc__dialog *d, const char *buf, size_t len);
/* The reply timer fired / the peer closed / the connection failed with err. */
void smtpc__dialog_timeout(smtpc__dialog *d);
void smtpc__dialog_eof(smtpc__dialog *d, int err);
/* The TLS handshake the dialog asked for ended (ok = 1) or failed (ok = 0). */
void smtpc__dialog_tls_done(smtpc__dialog *d, int ok);

#define SMTPC__WANT_TLS   1u /* start the TLS handshake now (no bytes before it)          */
#define SMTPC__WANT_CLOSE 2u /* every recipient has had its event: close the connection    */
#define SMTPC__WANT_REPLY 4u /* a reply is awaited: keep the reply timer running           */
unsigned smtpc__dialog_want(const smtpc__dialog *d);

/* Bytes to send (plain text); the driver takes them all and then calls _consume. */
const char *smtpc__dialog_output(const smtpc__dialog *d, size_t *len);
void smtpc__dialog_consume(smtpc__dialog *d);

/* Facts about the session. */
unsigned smtpc__dialog_caps(const smtpc__dialog *d);
/* Complete replies read so far. A reply timer restarts on progress, not on every byte: a
 * server that drips one byte a second must still time out. */
unsigned long smtpc__dialog_replies(const smtpc__dialog *d);
int smtpc__dialog_tls(const smtpc__dialog *d);
const char *smtpc__dialog_transcript(const smtpc__dialog *d, size_t *len);
/* Heap octets the dialog holds (for the memory budget). */
size_t smtpc__dialog_memory(const smtpc__dialog *d);

#endif
