/* fuzz_dialog.c -- the SMTP dialog machine fed arbitrary server bytes, as a driver would.
 *
 * Input: 4 control octets, then the server's byte stream.
 *   [0] bits 0-1 starttls mode (3 = off), bit 2 TLS handshake result when asked, bit 3 end of
 *       stream is a timeout (else EOF), bit 4 transcript, bit 5 sender needs SMTPUTF8
 *   [1] recipients (1..8; some need SMTPUTF8)   [2] max_rejections (1..16)
 *   [3] chunk size (1..64) the stream is fed in
 * The driver loop answers the machine's wants as the libuv engine does: takes its output,
 * does the TLS handshake when asked (success or failure from [0]), stops feeding once it
 * wants to close, and ends with EOF or a timeout.
 * Properties checked (abort() on violation):
 *   - every recipient gets exactly one event, and none has one twice;
 *   - only whole, known commands ever go out: EHLO/HELO/STARTTLS/MAIL FROM/RCPT TO/RSET/QUIT
 *     lines ending in CRLF with no other CR or LF; never DATA; RCPTs only for added addresses;
 *   - once it wants to close, it neither sends nor reports anything more (late EOF, timer);
 *   - the machine's memory stays bounded whatever the server sends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const RCPTS[] = {
    "alice@example.test", "bob@example.test",   "unknown@example.test", "用户@例子.test",
    "carol@example.test", "full@example.test",  "dörte@example.test",   "x@[127.0.0.1]"};
#define NRCPTS (sizeof RCPTS / sizeof RCPTS[0])
#define MEMORY_BOUND (1u << 20) /* octets: the reader's limits, the transcript cap, the queue */

typedef struct state {
  size_t n;
  unsigned events[NRCPTS];
} state;

static void on_event(void *ud, const smtpc_dialog_event *ev) {
  state *s = ud;
  if (ev->index >= s->n || s->events[ev->index]++ != 0) abort();
  if (ev->outcome < SMTPC_RCPT_REPLY || ev->outcome > SMTPC_RCPT_UNTRIED) abort();
  if (ev->outcome == SMTPC_RCPT_REPLY && (ev->reply == NULL || ev->reply->code == 421)) abort();
  if (ev->stage < 0 || ev->stage >= SMTPC_CMD_COUNT) abort();
}

static int starts(const char *p, size_t n, const char *w) {
  size_t k = strlen(w);
  return n >= k && memcmp(p, w, k) == 0;
}

/* One output line (without its CRLF) must be a command the prober may send. */
static void check_line(const state *s, const char *p, size_t n) {
  size_t i;
  if (memchr(p, '\r', n) || memchr(p, '\n', n)) abort();
  if (starts(p, n, "RCPT TO:<")) {
    for (i = 0; i < s->n; i++) {
      size_t k = strlen(RCPTS[i]);
      if (n == 10 + k && memcmp(p + 9, RCPTS[i], k) == 0 && p[n - 1] == '>') return;
    }
    abort();
  }
  if ((n == 15 && starts(p, n, "EHLO probe.test")) || (n == 15 && starts(p, n, "HELO probe.test")))
    return;
  if (starts(p, n, "MAIL FROM:<")) return; /* the sender is ours: its safety is the new() check */
  if ((n == 8 && starts(p, n, "STARTTLS")) || (n == 4 && starts(p, n, "RSET")) ||
      (n == 4 && starts(p, n, "QUIT")))
    return;
  abort(); /* DATA, or anything else */
}

/* Take (and check) what the machine wants sent; a driver flushes it before it starts TLS or
 * closes, as the libuv engine does. */
static void take_output(smtpc_dialog *d, const state *s) {
  size_t len, i, start = 0;
  const char *out = smtpc_dialog_output(d, &len);
  if (len == 0) return;
  if (out == NULL) abort();
  if (len < 2 || out[len - 2] != '\r' || out[len - 1] != '\n') abort();
  for (i = 0; i + 1 < len; i++) {
    if (out[i] == '\r' && out[i + 1] == '\n') {
      check_line(s, out + start, i - start);
      start = i + 2;
      i++;
    }
  }
  if (start != len) abort();
  smtpc_dialog_consume(d);
}

/* Answer what the machine wants; returns 1 once it wants the connection closed. */
static int drive(smtpc_dialog *d, const state *s, int tls_ok) {
  int rounds;
  for (rounds = 0; rounds < 4; rounds++) {
    unsigned want = smtpc_dialog_want(d);
    take_output(d, s);
    if (want & SMTPC_DIALOG_WANT_CLOSE) return 1;
    if (want & SMTPC_DIALOG_WANT_TLS) {
      smtpc_dialog_tls_done(d, tls_ok);
      continue;
    }
    return 0;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  smtpc_dialog_opts o;
  smtpc_dialog *d;
  state s;
  size_t i, off = 0, chunk;
  int err, closed = 0, tls_ok;
  unsigned char ctl;
  if (size < 4) return 0;
  ctl = data[0];
  memset(&o, 0, sizeof o);
  memset(&s, 0, sizeof s);
  o.helo = "probe.test";
  o.mail_from = (data[0] & 32) ? "prüfer@probe.test" : "probe@probe.test";
  o.mail_from_utf8 = (data[0] & 32) != 0;
  o.starttls = (data[0] & 3) == 3 ? SMTPC_STARTTLS_OFF : (data[0] & 3);
  o.transcript = (data[0] & 16) != 0;
  o.max_rejections = (size_t)(data[2] % 16) + 1;
  tls_ok = (data[0] & 4) != 0;
  s.n = (size_t)(data[1] % NRCPTS) + 1;
  chunk = (size_t)(data[3] % 64) + 1;
  d = smtpc_dialog_new(&o, on_event, &s, &err);
  if (d == NULL) return 0;
  for (i = 0; i < s.n; i++) {
    const char *a = RCPTS[i];
    int utf8 = 0;
    size_t k;
    for (k = 0; a[k]; k++) utf8 |= (unsigned char)a[k] >= 0x80;
    if (smtpc_dialog_add_rcpt(d, a, strlen(a), utf8) != (long)i) abort();
  }
  data += 4;
  size -= 4;
  closed = drive(d, &s, tls_ok);
  while (!closed && off < size) {
    size_t n = size - off < chunk ? size - off : chunk;
    smtpc_dialog_feed(d, (const char *)data + off, n);
    off += n;
    if (smtpc_dialog_memory(d) > MEMORY_BOUND) abort();
    closed = drive(d, &s, tls_ok);
  }
  if (!closed) {
    if (ctl & 8) smtpc_dialog_timeout(d);
    else smtpc_dialog_eof(d, 0);
    if (!drive(d, &s, tls_ok)) abort(); /* after EOF or a timeout there is nothing to wait for */
  }
  for (i = 0; i < s.n; i++)
    if (s.events[i] != 1) abort(); /* the session is over: everyone has had exactly one event */
  /* a late EOF and a late timer change nothing once it is closed */
  smtpc_dialog_eof(d, 0);
  smtpc_dialog_timeout(d);
  {
    size_t len;
    (void)smtpc_dialog_output(d, &len);
    if (len != 0) abort();
  }
  if (o.transcript) {
    size_t tlen;
    (void)smtpc_dialog_transcript(d, &tlen);
    if (tlen > 65536) abort();
  }
  smtpc_dialog_free(d);
  return 0;
}
