/* fuzz_dns.c -- the DNS answer walker (dns_msg.c) fed arbitrary messages: every record view it
 * hands out stays inside the message, and names it expands normalise without overflow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rr(void *ctx, const unsigned char *m, int len, const unsigned char *rd, int rdlen, uint32_t ttl) {
  (void)ctx;
  (void)ttl;
  if (rd < m || rd + rdlen > m + len) abort();
  if (rdlen >= 3) {
    char *s = NULL;
    long el;
    if (ares_expand_name(rd + 2, m, len, &s, &el) == ARES_SUCCESS) {
      char out[256];
      smtpc__dns_name_norm(s, strlen(s), out);
      ares_free_string(s);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint32_t ttl, neg;
  if (size > 65535) return 0;
  smtpc__dns_walk(data, (int)size, "a.test", 15, on_rr, NULL, &ttl, &neg); /* MX */
  smtpc__dns_walk(data, (int)size, "a.test", 1, on_rr, NULL, &ttl, &neg);  /* A */
  return 0;
}
