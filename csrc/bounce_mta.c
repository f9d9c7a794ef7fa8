/* bounce_mta.c -- the dispatcher over the non-RFC 3464 formats of bounce_mta_formats.def.
 *
 * Thirty-odd formats each looking through every message would read the text thirty times; a
 * bounce reader meets mostly messages that are none of them. So one Aho-Corasick scan of the
 * bounce's text and of the header fields the formats read finds which formats' gate markers
 * occur, and only those formats are tried, in the file's order. The automaton is built once
 * and read-only after. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "ac.h"
#include "bounce_mta.h"

static const struct format {
  const char *name;
  smtpc__bmta_fn fn;
  const char *const *gate;
} formats[] = {
#define SMTPC__FMT(id, name, fn, ...) {name, fn, (const char *const[]){__VA_ARGS__, NULL}},
#include "bounce_mta_formats.def"
#undef SMTPC__FMT
};

#define NFORMATS (sizeof formats / sizeof formats[0])

enum {
#define SMTPC__FMT(id, ...) FMT_##id,
#include "bounce_mta_formats.def"
#undef SMTPC__FMT
};

#define MAX_GATES 256

/* One automaton over every gate marker; gate_format[i] is the format of pattern i. */
static smtpc__ac g_ac;
static int g_ok;
static uint8_t g_gate_format[MAX_GATES];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(void) {
  const char *patterns[MAX_GATES];
  size_t n = 0;
  for (size_t f = 0; f < NFORMATS; f++)
    for (const char *const *g = formats[f].gate; *g; g++) {
      if (n == MAX_GATES) return; /* g_ok stays 0: every format is tried, slower but right */
      g_gate_format[n] = (uint8_t)f;
      patterns[n++] = *g;
    }
  g_ok = smtpc__ac_build(&g_ac, patterns, n) == 0;
}

typedef struct hits {
  uint64_t bits[(NFORMATS + 63) / 64];
} hits;

static void on_gate(void *ud, size_t pattern, size_t end_stream, size_t end_chunk) {
  hits *h = ud;
  size_t f = g_gate_format[pattern];
  (void)end_stream, (void)end_chunk;
  h->bits[f / 64] |= (uint64_t)1 << (f % 64);
}

/* What the gate reads besides the body, gathered so that the automaton is fed long pieces
 * (a feed call has a start-up of its own, more than a short value's octets): the state carries
 * over, so feeding the pieces one after another or in one buffer finds the same markers. */
typedef struct gather {
  char buf[4096];
  size_t len;
} gather;

static void flush(smtpc__ac_scan *sc, gather *g, hits *h) {
  if (g->len) smtpc__ac_feed(&g_ac, sc, g->buf, g->len, on_gate, h);
  g->len = 0;
}

/* Text followed by a line end, so that no marker spans two pieces. */
static void feed(smtpc__ac_scan *sc, gather *g, const char *s, size_t n, hits *h) {
  if (n + 1 > sizeof g->buf - g->len) {
    flush(sc, g, h);
    if (n + 1 > sizeof g->buf) { /* a long value: fed as it is */
      smtpc__ac_feed(&g_ac, sc, s, n, on_gate, h);
      n = 0;
    }
  }
  memcpy(g->buf + g->len, s, n);
  g->buf[g->len + n] = '\n';
  g->len += n + 1;
}

/* The header fields that may hold a format's gate marker: the gate reads these values and no
 * other field (Received: lines are most of a header, Content-Type's boundary is long, and
 * neither holds what a format requires). A field whose presence alone a format requires
 * lets that format through by its name. Keep in step with the modules: a format whose
 * marker stands in another field (smtpc__bmta_hdr_has) must add it here. */
static const struct gate_field {
  const char *name;
  size_t len;
  int format; /* -1: the value is read for markers; else the format its presence lets in */
} gate_fields[] = {
    {"From", 4, -1}, {"X-Mailer", 8, -1}, {"X-Original-Mailer", 17, -1},
    {"x-amz-sns-message-id", 20, FMT_AMAZONSES}, /* SES's SNS notifications */
    {"X-Failed-Recipients", 19, FMT_EXIM},       /* Exim's list under a site's own intro */
};

static const struct gate_field *gate_field(const smtpc__bheader *h) {
  for (size_t i = 0; i < sizeof gate_fields / sizeof gate_fields[0]; i++)
    if (h->name_len == gate_fields[i].len &&
        smtpc__bstarts(h->name, h->name_len, gate_fields[i].name))
      return &gate_fields[i];
  return NULL;
}

/* The delay notice row: its markers in the head of the notice (not in a returned copy of
 * some other message further down) say so. Never claims the message. */
int smtpc__bmta_delay_notice(smtpc__bmsg *m) {
  static const char *const marks[] = {SMTPC__DELAY_MARKS, NULL};
  m->delay_notice = smtpc__bmta_any(m->body, m->body_len < 2048 ? m->body_len : 2048, marks);
  return 0;
}

int smtpc__bmta_prepare(void) {
  pthread_once(&g_once, build);
  smtpc__bmta_text_prepare();
  return g_ok ? 0 : SMTPC_ENOMEM;
}

int smtpc__bmta_formats(smtpc__bmsg *m) {
  hits h;
  pthread_once(&g_once, build);
  memset(&h, 0xff, sizeof h); /* without the automaton (no memory): try every format */
  if (g_ok) {
    smtpc__ac_scan sc;
    gather g;
    memset(&h, 0, sizeof h);
    smtpc__ac_scan_init(&sc);
    g.len = 0;
    /* the body and its line end, gathered with the fields when it fits: one scan of the lot
     * (each scan's lanes cost a start-up of their own) */
    feed(&sc, &g, m->body, m->body_len, &h);
    for (size_t i = 0; i < m->nheaders; i++) {
      const struct gate_field *f = gate_field(&m->headers[i]);
      if (f && f->format >= 0) h.bits[f->format / 64] |= (uint64_t)1 << (f->format % 64);
      else if (f) feed(&sc, &g, m->headers[i].value, m->headers[i].value_len, &h);
    }
    const smtpc_bounce *r0 = m->nrecords ? smtpc__bounce_rec(m, 0) : NULL;
    const char *rep = r0 ? r0->field[SMTPC_BOUNCE_F_REPORTING_MTA] : NULL;
    if (rep) feed(&sc, &g, rep, strlen(rep), &h);
    flush(&sc, &g, &h);
  }
  for (size_t f = 0; f < NFORMATS; f++) {
    if (!(h.bits[f / 64] >> (f % 64) & 1)) continue;
    int rc = formats[f].fn(m);
    if (rc < 0) return rc;
    if (rc == 0) continue;
    /* the format that claimed the message names it, for the records it read or amended */
    for (size_t i = 0; i < m->nrecords; i++) {
      smtpc_bounce *r = smtpc__bounce_rec(m, i);
      if (!r->field[SMTPC_BOUNCE_F_MTA] &&
          (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_MTA, formats[f].name,
                                  strlen(formats[f].name))) != 0)
        return rc;
    }
    return 1;
  }
  return 0;
}
