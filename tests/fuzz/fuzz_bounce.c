/* fuzz_bounce.c -- the bounce parser and the mbox splitter over arbitrary bytes: no overrun (the
 * input is copied to an exact-size heap block so ASan sees any), no leak, a clean error or a
 * count; every record's texts are NUL-terminated strings and its reason is a known one. The
 * first octet picks tight limits, so the limit paths are fuzzed too, and the chunk size the
 * message is fed in (streaming must not depend on it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned sel = data[0];
  smtpc_bounce_limits lim = {0};
  if (sel & 1) {
    lim.max_line = 200;
    lim.max_headers = 20;
    lim.max_parts = 8;
    lim.max_depth = 3;
    lim.max_records = 4;
    lim.max_message = 4096;
  }
  size_t chunk = (sel >> 1) ? (sel >> 1) : size;
  char *msg = malloc(size - 1 ? size - 1 : 1);
  if (!msg) return 0;
  memcpy(msg, data + 1, size - 1);
  smtpc_bounce_parser *p = smtpc_bounce_new(&lim);
  if (!p) {
    free(msg);
    return 0;
  }
  for (int round = 0; round < 2; round++) { /* the parser is reused: nothing may leak across */
    smtpc_bounce_reset(p);
    int rc = 0;
    for (size_t off = 0; off < size - 1 && rc == 0; off += chunk)
      rc = smtpc_bounce_feed(p, msg + off, size - 1 - off < chunk ? size - 1 - off : chunk);
    if (rc == 0) rc = smtpc_bounce_finish(p);
    if (rc >= 0) {
      if ((size_t)rc != smtpc_bounce_count(p)) abort();
      for (int i = 0; i < rc; i++) {
        const smtpc_bounce *r = smtpc_bounce_record(p, (size_t)i);
        if (!r || r->cls.reason < 0 || r->cls.reason >= SMTPC_REASON_COUNT) abort();
        for (int f = 0; f < SMTPC_BOUNCE_NFIELDS; f++)
          if (r->field[f] && strlen(r->field[f]) > (size_t)16 << 20) abort();
      }
    } else {
      uint64_t off;
      if (smtpc_bounce_error(p, &off) != rc || off > size) abort();
    }
  }
  smtpc_bounce_free(p);
  /* the same bytes as an mbox */
  smtpc_mbox *mb = smtpc_mbox_new();
  if (mb) {
    size_t total = 0;
    for (size_t off = 0; off <= size - 1; off += chunk) {
      size_t n = size - 1 - off < chunk ? size - 1 - off : chunk;
      if (smtpc_mbox_feed(mb, msg + off, n, off + n >= size - 1) < 0) break;
      const char *m;
      size_t ml;
      while (smtpc_mbox_next(mb, &m, &ml) == 1) total += ml;
      if (off + n >= size - 1) break;
    }
    if (total > size) abort(); /* unquoting only removes octets */
    smtpc_mbox_free(mb);
  }
  free(msg);
  return 0;
}
