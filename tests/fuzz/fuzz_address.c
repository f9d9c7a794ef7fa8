/* fuzz_address.c -- libFuzzer target for smtpc_parse_address: no crash, no over-read, and an
 * accepted address is clean, within the RFC 5321 limits, and a fixed point of the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  smtpc_address a, b;
  int kind;
  size_t i;
  if (smtpc_parse_address((const char *)data, size, &a, &kind) != 0) {
    if (kind <= SMTPC_ADDR_OK || kind >= SMTPC_ADDR_KIND_COUNT || a.error_offset > size) abort();
    return 0;
  }
  for (i = 0; a.address[i]; i++)
    if ((unsigned char)a.address[i] < 0x20 || a.address[i] == 0x7F) abort();
  for (i = 0; a.ascii_address[i]; i++)
    if ((unsigned char)a.ascii_address[i] < 0x20 || a.ascii_address[i] == 0x7F) abort();
  if (strlen(a.address) > 254 || strlen(a.ascii_address) > 254 || strlen(a.local_part) > 64) abort();
  if (smtpc_parse_address(a.address, strlen(a.address), &b, &kind) != 0) abort();
  if (strcmp(a.address, b.address) != 0 || strcmp(a.ascii_address, b.ascii_address) != 0) abort();
  if (a.smtputf8 != b.smtputf8 || a.utf8_local != b.utf8_local || a.literal != b.literal) abort();
  if (smtpc_parse_address(a.ascii_address, strlen(a.ascii_address), &b, &kind) != 0) abort();
  if (strcmp(a.ascii_address, b.address) != 0) abort();
  return 0;
}
