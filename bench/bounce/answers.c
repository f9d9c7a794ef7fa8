/*
 * answers.c -- every field of every record smtpc_bounce_* gives for each message file named on
 * the command line, in a stable text form.
 *
 * A speed change must not change an answer: build this against the library before and after
 * the change and diff the two outputs. It decides nothing by itself.
 *
 *   cc -O2 -std=c99 -Icsrc -o answers bench/bounce/answers.c build/bench/libsmtpcode.a \
 *      $(pkg-config --libs libuv libcares openssl libidn2) -lpthread
 *   ./answers ../shared/corpus/bounces/[a-z]*.eml tests/vectors/bounce/[a-z]*.eml \
 *      tests/fuzz/corpus/bounce/[a-z]* > after.txt
 *
 * Each file is parsed four ways with one reused parser: whole (smtpc_bounce_parse), fed in
 * 7-byte and 1-byte chunks (streaming must not change an answer), and whole under the tight
 * limits the fuzzer uses (the limit paths). A file under a fuzz corpus directory is also
 * parsed as fuzz_bounce reads it: the first octet picks the limits and the chunk size.
 */
#include "smtpcode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const char *s) { return s ? s : "(null)"; }

/* A field's text with control octets and backslashes escaped, so one record is one line. */
static void text(const char *s) {
  if (!s) {
    printf("(null)");
    return;
  }
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f || c == '\\') printf("\\x%02x", c);
    else putchar(c);
  }
}

static void put(const char *how, smtpc_bounce_parser *p, int rc) {
  uint64_t off = 0;
  int err = smtpc_bounce_error(p, &off);
  printf("%s rc=%d err=%d at=%llu count=%zu\n", how, rc, err, (unsigned long long)off,
         smtpc_bounce_count(p));
  for (size_t i = 0; i < smtpc_bounce_count(p); i++) {
    const smtpc_bounce *r = smtpc_bounce_record(p, i);
    const smtpc_class *c = &r->cls;
    printf(" [%zu] code=%d reason=%d tmp=%d hard=%d retry=%d after=%d grey=%d pv=%s cmd=%s doc=%d\n",
           i, r->reply_code, c->reason, c->temporary, c->hard_bounce, c->retry, c->retry_after,
           c->greylisted, str(c->provider), str(c->command), c->documented_code);
    for (int f = 0; f < SMTPC_BOUNCE_NFIELDS; f++) {
      if (!r->field[f]) continue;
      printf("  %s=", smtpc_bounce_field_name(f));
      text(r->field[f]);
      putchar('\n');
    }
  }
}

static int fed(smtpc_bounce_parser *p, const char *msg, size_t len, size_t chunk) {
  int rc = 0;
  smtpc_bounce_reset(p);
  for (size_t off = 0; off < len && rc == 0; off += chunk)
    rc = smtpc_bounce_feed(p, msg + off, len - off < chunk ? len - off : chunk);
  return rc == 0 ? smtpc_bounce_finish(p) : rc;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

int main(int argc, char **argv) {
  smtpc_bounce_limits tight = {4096, 200, 20, 8, 3, 4};
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL), *t = smtpc_bounce_new(&tight);
  for (int i = 1; i < argc; i++) {
    size_t len;
    char *msg = slurp(argv[i], &len);
    if (!msg) {
      perror(argv[i]);
      return 2;
    }
    printf("# %s\n", argv[i]);
    put("whole", p, smtpc_bounce_parse(p, msg, len));
    put("by7", p, fed(p, msg, len, 7));
    put("by1", p, fed(p, msg, len, 1));
    put("tight", t, smtpc_bounce_parse(t, msg, len));
    if (strstr(argv[i], "fuzz/corpus/") && len > 0) { /* as fuzz_bounce.c reads it */
      unsigned sel = (unsigned char)msg[0];
      size_t chunk = (sel >> 1) ? (sel >> 1) : len;
      smtpc_bounce_parser *q = (sel & 1) ? t : p;
      put("fuzz", q, fed(q, msg + 1, len - 1, chunk));
    }
    free(msg);
  }
  smtpc_bounce_free(p);
  smtpc_bounce_free(t);
  return 0;
}
