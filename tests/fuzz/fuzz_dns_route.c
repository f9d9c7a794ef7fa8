/* fuzz_dns_route.c -- the DNS route machine (dns_route.c) fed arbitrary answers: the input is a
 * sequence of [2-octet length][message] answering the machine's queries in the order it hands
 * them out; what the input does not cover times out. Checks: ids are small, each is answered
 * once, the machine ends, and the route it builds is within its bounds (sorted, every host with
 * an address). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static smtpc__mxq q;
  static smtpc__mxq_route_buf rb;
  unsigned ids[64], nids = 0, id, i;
  const char *name;
  int type, rounds = 0;
  uint64_t rng = 1;
  smtpc__mxq_init(&q, "a.test", size % 4, 60, 3600);
  while (!smtpc__mxq_done(&q) && rounds++ < 8) {
    nids = 0;
    while (smtpc__mxq_next(&q, &id, &name, &type)) {
      if (id > 2 * SMTPC__DNS_MAX_MX || nids == 64) abort();
      ids[nids++] = id;
    }
    if (nids == 0) abort(); /* not done, yet nothing to ask: it would hang */
    for (i = 0; i < nids; i++) {
      size_t n;
      if (size < 2) {
        smtpc__mxq_fail(&q, ids[i], SMTPC_DNS_TIMEOUT);
        continue;
      }
      n = (size_t)data[0] << 8 | data[1];
      data += 2, size -= 2;
      if (n > size) n = size;
      smtpc__mxq_answer(&q, ids[i], data, (int)n);
      if (smtpc__mxq_answer(&q, ids[i], data, (int)n) != SMTPC_EINVAL) abort(); /* once only */
      data += n, size -= n;
    }
  }
  if (!smtpc__mxq_done(&q)) abort();
  smtpc__mxq_route(&q, &rb);
  smtpc__route_shuffle(&rb.route, &rng);
  if (rb.route.nmx > SMTPC__DNS_MAX_MX) abort();
  for (i = 0; i < rb.route.nmx; i++) {
    if (rb.route.mx[i].naddrs == 0 || rb.route.mx[i].naddrs > 2 * SMTPC__DNS_MAX_ADDRS) abort();
    if (i > 0 && rb.route.mx[i].preference < rb.route.mx[i - 1].preference) abort();
  }
  if (rb.route.nmx > 0 && (rb.route.error || rb.route.null_mx)) abort();
  return 0;
}
