/*
 * answers.c -- every field smtpc_decode / smtpc_classify / smtpc_classify_lines give, one line
 * per call, over the TSV files named on the command line and a few thousand mutated strings.
 *
 * A speed change must not change an answer: build this against the library before and after
 * the change and diff the two outputs. It decides nothing by itself.
 *
 *   cc -O2 -std=c99 -Icsrc -o answers bench/decode/answers.c build/bench/libsmtpcode.a \
 *      $(pkg-config --libs libuv libcares openssl libidn2) -lpthread
 *   ./answers 6000 ../shared/corpus/sisimai-dev.tsv tests/vectors/[a-z]*.tsv > after.txt
 *
 * Each field of each TSV row is decoded alone, without and with a context; rows with the
 * corpus' columns (reply_code status command rhost diagnostic) or the held-out vectors'
 * (text command host) are also replayed as the bindings call them. The mutants come from a
 * fixed-seed generator: splices of the inputs, case flips, white space runs, inserted bytes,
 * frames around a reply, repeated texts (past the classifier's 4 KB stream buffer too).
 */
#include "smtpcode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char **g_text;
static size_t g_ntext, g_captext;

static void keep(const char *s, size_t n) {
  if (g_ntext == g_captext) {
    g_captext = g_captext ? g_captext * 2 : 4096;
    g_text = realloc(g_text, g_captext * sizeof *g_text);
  }
  g_text[g_ntext] = malloc(n + 1);
  memcpy(g_text[g_ntext], s, n);
  g_text[g_ntext++][n] = '\0';
}

/* Offsets into the text (views point into it); -1 for a NULL view. */
static void span(const char *text, smtpc_span s) {
  if (s.ptr == NULL) printf(" -");
  else printf(" %ld+%zu", (long)(s.ptr - text), s.len);
}

static const char *str(const char *s) { return s ? s : "(null)"; }

static void put_class(const smtpc_class *c) {
  printf(" reason=%d tmp=%d hard=%d retry=%d after=%d grey=%d pv=%s cmd=%s doc=%d", c->reason,
         c->temporary, c->hard_bounce, c->retry, c->retry_after, c->greylisted, str(c->provider),
         str(c->command), c->documented_code);
}

static void put(const char *what, int rc, const char *text, const smtpc_decoded *d) {
  size_t i;
  printf("%s rc=%d", what, rc);
  if (rc == 0) {
    printf(" code=%d st=%s kind=%s", d->code, d->status, str(d->kind));
    span(text, d->frame);
    span(text, d->frame_host);
    span(text, d->frame_tail);
    put_class(&d->cls);
    printf(" src=%s inf=%d n=%zu", str(d->code_source), d->code_inferred, d->nlines);
    for (i = 0; i < d->nlines; i++) span(text, d->lines[i]);
  }
  putchar('\n');
}

static smtpc_decoded g_d;

static void decode(const char *tag, const char *text, size_t len, const char *cmd, const char *host) {
  smtpc_context ctx = {cmd, host};
  int rc = smtpc_decode(text, len, cmd || host ? &ctx : NULL, &g_d);
  put(tag, rc, text, &g_d);
}

static void classify(const char *tag, int code, const char *status, const char *text, size_t len,
                     const char *cmd, const char *host) {
  smtpc_context ctx = {cmd, host};
  int rc = smtpc_classify(code, status, text, len, &ctx, &g_d);
  put(tag, rc, text, &g_d);
}

/* The text cut at line ends, then classified as lines (the engine's and the cache's call). */
static void lines(const char *text, size_t len, int code, const char *status, const char *cmd,
                  const char *host) {
  smtpc_span l[64];
  smtpc_context ctx = {cmd, host};
  smtpc_class c;
  size_t n = 0, i = 0, b = 0;
  for (; i <= len && n < 64; i++) {
    if (i == len || text[i] == '\n') {
      l[n].ptr = text + b;
      l[n++].len = i - b;
      b = i + 1;
    }
  }
  smtpc_classify_lines(code, status, l, n, &ctx, &c);
  printf("lines");
  put_class(&c);
  putchar('\n');
}

static char *field_of(char **f, int nf, int col) { return col >= 0 && col < nf && f[col][0] ? f[col] : NULL; }

static void file(const char *path) {
  FILE *fp = fopen(path, "r");
  static char line[1 << 20];
  int c_code = -1, c_status = -1, c_cmd = -1, c_host = -1, c_text = -1, head = 1;
  if (!fp) {
    perror(path);
    exit(2);
  }
  printf("# %s\n", path);
  while (fgets(line, sizeof line, fp)) {
    char *f[64];
    int nf = 0, k;
    char *p = line;
    if (line[0] == '#') continue;
    line[strcspn(line, "\r\n")] = '\0';
    for (;;) {
      char *tab = strchr(p, '\t');
      if (nf < 64) f[nf++] = p;
      if (!tab) break;
      *tab = '\0';
      p = tab + 1;
    }
    if (head) { /* a header names the columns when it holds one of these */
      for (k = 0; k < nf; k++) {
        if (!strcmp(f[k], "reply_code")) c_code = k;
        else if (!strcmp(f[k], "status")) c_status = k;
        else if (!strcmp(f[k], "command")) c_cmd = k;
        else if (!strcmp(f[k], "rhost") || !strcmp(f[k], "host")) c_host = k;
        else if (!strcmp(f[k], "diagnostic") || !strcmp(f[k], "text")) c_text = k;
      }
      head = 0;
      if (c_text >= 0 || c_cmd >= 0) continue;
    }
    for (k = 0; k < nf; k++) {
      size_t n = strlen(f[k]);
      if (n == 0) continue;
      keep(f[k], n);
      decode("field", f[k], n, NULL, NULL);
      decode("field+ctx", f[k], n, "DATA", k + 1 < nf && f[k + 1][0] ? f[k + 1] : NULL);
    }
    if (c_text >= 0 && c_text < nf) {
      const char *t = f[c_text], *cmd = field_of(f, nf, c_cmd), *host = field_of(f, nf, c_host);
      const char *st = field_of(f, nf, c_status);
      int code = c_code >= 0 && c_code < nf ? atoi(f[c_code]) : 0;
      classify("row", code, st, t, strlen(t), cmd, host);
      decode("row-decode", t, strlen(t), cmd, host);
      lines(t, strlen(t), code, st, cmd, host);
    }
  }
  fclose(fp);
}

/* xorshift64*: the same mutants on every run */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545F4914F6CDD1Dull;
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static const char *const hosts[] = {
  "gmail-smtp-in.l.google.com", "mx.google.com", "mta5.am0.yahoodns.net", "mx1.hotmail.com",
  "example-com.mail.protection.outlook.com", "mx.yandex.ru", "mxs.mail.ru", "mx01.mail.icloud.com",
  "mx.zoho.com", "mail.protonmail.ch", "mx00.gmx.net", "mx.example.jp", "a.b", "", ".", "x",
  "google.com", ".google.com", "xgoogle.com", "MX.GOOGLE.COM", "mx.google.com.", "mx.google..com",
  "a b.google.com", "mx.google.com\n", "mx.google.com x", "\tgoogle.com", "mx.outlook.com.evil.example",
  "aspmx.l.google.com", "mx.google.com.google.com", "..", "yahoo.co.jp", "mx.ocn.ad.jp"};
static const char *const cmds[] = {NULL, "RCPT", "MAIL", "DATA", "CONN", "HELO", "EHLO", "rcpt to"};
static const char *const frames[] = {
  "host mx.example.jp[192.0.2.1] said: ", "SMTP error from remote mail server after RCPT TO:<a@b>: ",
  "smtp; ", "Remote Server returned '", "mx.example.jp [192.0.2.1] did not like our RCPT TO: ",
  "... while talking to mx.google.com.: >>> RCPT To:<a@b> <<< ", "[Status: Error, ResponseCode "};
static const char ws[] = " \t\r\n\v\f";

static void mutants(size_t count) {
  static char buf[3 * 65536];
  size_t m, nbase = g_ntext;
  if (nbase == 0) return;
  printf("# mutants\n");
  for (m = 0; m < count; m++) {
    const char *src = g_text[below(nbase)];
    size_t n = strlen(src), ops = 1 + below(4), o;
    if (n > 65536) n = 65536;
    memcpy(buf, src, n);
    while (m % 40 == 0 && n < 4000 + 200 * (m % 7)) { /* past the 4 KB stream buffer */
      const char *s = g_text[below(nbase)];
      size_t sl = strlen(s);
      if (n + sl + 1 > 65536) break;
      buf[n++] = below(2) ? '\n' : ' ';
      memcpy(buf + n, s, sl);
      n += sl;
    }
    for (o = 0; o < ops; o++) {
      size_t at = below(n + 1);
      switch (below(9)) {
      case 0: /* a fragment of another input */
      case 1: {
        const char *s = g_text[below(nbase)];
        size_t sl = strlen(s), from = below(sl + 1), len = below(sl - from + 1);
        if (n + len > 65536) break;
        memmove(buf + at + len, buf + at, n - at);
        memcpy(buf + at, s + from, len);
        n += len;
        break;
      }
      case 2: /* case flips */
        for (size_t i = at; i < n && i < at + 40; i++)
          if ((buf[i] | 0x20) >= 'a' && (buf[i] | 0x20) <= 'z' && below(2)) buf[i] ^= 0x20;
        break;
      case 3: { /* a run of white space */
        size_t len = 1 + below(6);
        if (n + len > 65536) break;
        memmove(buf + at + len, buf + at, n - at);
        for (size_t i = 0; i < len; i++) buf[at + i] = ws[below(sizeof ws - 1)];
        n += len;
        break;
      }
      case 4: /* random bytes */
        if (n + 3 > 65536) break;
        memmove(buf + at + 3, buf + at, n - at);
        for (size_t i = 0; i < 3; i++) buf[at + i] = (char)(below(2) ? rnd() & 0xFF : 32 + below(95));
        n += 3;
        break;
      case 5: /* a cut */
        n = at + below(n - at + 1) / 2;
        break;
      case 6: { /* a frame before it */
        const char *fr = frames[below(sizeof frames / sizeof frames[0])];
        size_t fl = strlen(fr);
        if (n + fl > 65536) break;
        memmove(buf + fl, buf, n);
        memcpy(buf, fr, fl);
        n += fl;
        break;
      }
      case 7: /* the text again, after a line end: long inputs, several lines */
        if (2 * n + 2 > 65536) break;
        buf[n] = below(2) ? '\n' : ' ';
        memcpy(buf + n + 1, buf, n);
        n = 2 * n + 1;
        break;
      default: /* one byte deleted */
        if (at < n) memmove(buf + at, buf + at + 1, n - at - 1), n--;
        break;
      }
    }
    {
      const char *cmd = cmds[below(sizeof cmds / sizeof cmds[0])];
      const char *host = below(3) ? NULL : hosts[below(sizeof hosts / sizeof hosts[0])];
      static char hostbuf[64];
      if (host && below(3) == 0) { /* case flipped here and there */
        size_t i, hl = strlen(host) < sizeof hostbuf - 1 ? strlen(host) : sizeof hostbuf - 1;
        for (i = 0; i < hl; i++) hostbuf[i] = (char)(below(2) && (host[i] | 0x20) >= 'a' && (host[i] | 0x20) <= 'z' ? host[i] ^ 0x20 : host[i]);
        hostbuf[hl] = '\0';
        host = hostbuf;
      }
      char *t = malloc(n + 1);
      memcpy(t, buf, n);
      t[n] = '\0';
      printf("m%zu len=%zu ", m, n);
      decode("mut", t, n, cmd, host);
      /* one draw per statement: the order arguments are evaluated in differs by compiler */
      int code = below(2) ? 0 : (int)(400 + below(200));
      const char *status = below(2) ? NULL : "5.1.1";
      classify("mut-classify", code, status, t, n, cmd, host);
      if (m % 4 == 0) {
        code = below(2) ? 550 : 0;
        status = below(2) ? NULL : "4.7.1";
        lines(t, n, code, status, cmd, host);
      }
      free(t);
    }
  }
}

int main(int argc, char **argv) {
  int i;
  if (argc < 3) {
    fprintf(stderr, "usage: answers N_MUTANTS FILE.tsv...\n");
    return 2;
  }
  for (i = 2; i < argc; i++) file(argv[i]);
  mutants((size_t)strtoul(argv[1], NULL, 10));
  return 0;
}
