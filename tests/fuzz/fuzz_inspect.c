/* fuzz_inspect.c -- libFuzzer target for smtpc_inspect and the single look-ups: no crash, no
 * over-read; an invalid address says nothing; a suggestion is a valid address whose domain is
 * a known provider, and is never made for a domain with a mail route. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  smtpc_inspection x, y;
  char out[SMTPC_ADDR_DOMAIN_SIZE];
  const char *s = (const char *)data;
  int rc = smtpc_inspect(s, size, SMTPC_ROUTE_UNKNOWN, &x);
  /* the look-ups take any bytes */
  (void)smtpc_is_disposable_domain(s, size);
  (void)smtpc_is_free_provider(s, size);
  (void)smtpc_is_role_local(s, size);
  (void)smtpc_suggest_domain(s, size, out);
  if (rc != 0) {
    if (x.disposable || x.role || x.free_provider || x.suggestion[0]) abort();
    return 0;
  }
  if (x.suggestion[0]) {
    smtpc_address a;
    const char *at = strrchr(x.suggestion, '@');
    if (smtpc_parse_address(x.suggestion, strlen(x.suggestion), &a, NULL) != 0) abort();
    if (at == NULL || !smtpc_is_free_provider(at + 1, strlen(at + 1))) abort();
  }
  if (smtpc_inspect(s, size, SMTPC_ROUTE_OK, &y) != 0 || y.suggestion[0]) abort();
  if (y.disposable != x.disposable || y.role != x.role || y.free_provider != x.free_provider)
    abort();
  return 0;
}
