/* fuzz_reply.c -- the reply reader fed arbitrary bytes in an arbitrary chunking.
 * The first byte picks the chunk size; the same stream parsed whole by smtpc_parse_reply must
 * give the same replies as the chunked reader (the split-point property, fuzzed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  smtpc_limits lim = {256, 16, 2048};
  smtpc_reader *r;
  smtpc_reply rep;
  smtpc_span lines[SMTPC_MAX_LINES_DEFAULT];
  size_t chunk, off = 0, whole_off = 0;
  int rc = 0;
  if (size < 1) return 0;
  chunk = (size_t)(data[0] % 17) + 1;
  data++;
  size--;
  r = smtpc_reader_new(&lim);
  if (r == NULL) return 0;
  while (off < size && rc >= 0) {
    size_t n = size - off < chunk ? size - off : chunk;
    rc = smtpc_reader_feed(r, (const char *)data + off, n);
    off += n;
    while (rc >= 0 && (rc = smtpc_reader_next(r, &rep)) == 1) {
      /* the zero-copy parser must agree with the reader on the same bytes */
      smtpc_reply w;
      long used = smtpc_parse_reply((const char *)data + whole_off, size - whole_off, &lim, &w, lines, NULL);
      size_t i;
      if (used <= 0 || (size_t)used != rep.size || w.code != rep.code || w.nlines != rep.nlines ||
          strcmp(w.status, rep.status) != 0)
        abort();
      for (i = 0; i < rep.nlines; i++) {
        if (w.lines[i].len != rep.lines[i].len || memcmp(w.lines[i].ptr, rep.lines[i].ptr, w.lines[i].len) != 0) abort();
      }
      whole_off += (size_t)used;
    }
  }
  smtpc_reader_free(r);
  return 0;
}
