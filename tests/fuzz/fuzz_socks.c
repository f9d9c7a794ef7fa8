/* fuzz_socks.c -- libFuzzer target for the SOCKS5 machine and the proxy URL parser.
 * Input: byte 0 picks credentials/target kind, byte 1 the read size; the rest is what a
 * proxy sends. The machine must end open, failed or waiting, never read or write out of
 * bounds, and keep its output within what the RFCs allow for the state it is in. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const urls[] = {"socks5://127.0.0.1:1080", "socks5h://u:p@127.0.0.1:1080"};
  static const char *const targets[] = {"127.0.0.1", "mx1.example.test", "2001:db8::25"};
  smtpc_proxy p, q;
  smtpc_socks *s;
  size_t off = 2, chunk;
  int rc = 0;
  if (size < 2) return 0;
  (void)smtpc_proxy_parse((const char *)data + 2, size - 2, &q); /* the URL parser too */
  if (smtpc_proxy_parse(urls[data[0] & 1], strlen(urls[data[0] & 1]), &p) != 0) abort();
  s = smtpc_socks_new(&p, targets[(data[0] >> 1) % 3], 25, NULL);
  if (s == NULL) abort();
  chunk = (size_t)(data[1] % 16) + 1;
  while (off < size && rc == 0) {
    size_t n = size - off < chunk ? size - off : chunk, used = 0, outlen;
    const char *out;
    rc = smtpc_socks_feed(s, (const char *)data + off, n, &used);
    if (used > n || (rc == 0 && used != n)) abort(); /* only an open tunnel leaves bytes */
    out = smtpc_socks_output(s, &outlen);
    if (outlen > 600 || (outlen && out == NULL)) abort();
    smtpc_socks_consume(s);
    off += used;
    if (rc == 1) break;
  }
  if (rc == 0) rc = smtpc_socks_eof(s);
  if (rc != 1 && rc != 0 && smtpc_socks_state(s) != rc) abort();
  smtpc_socks_free(s);
  return 0;
}
