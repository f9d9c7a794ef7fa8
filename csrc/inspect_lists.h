/* inspect_lists.h -- the tables tools/update-lists generates into inspect_lists.c; internal. */
#ifndef SMTPC_INSPECT_LISTS_H
#define SMTPC_INSPECT_LISTS_H

#include <stddef.h>
#include <stdint.h>

/* An open-addressing hash set of lower-case ASCII strings: slots[h & mask] holds 1 + the
 * offset of a NUL-terminated entry in blob, or 0 for an empty slot (linear probing; the
 * generator keeps the load at or under one half, so a miss ends after a probe or two). The
 * hash is FNV-1a 32 over the entry's octets, the same in the generator and in inspect.c. */
typedef struct smtpc__strset {
  const char *blob;
  const uint32_t *slots;
  uint32_t mask;
  uint32_t count;
} smtpc__strset;

/* A typo target: the domain, its length and which letters it has (bit 0 'a' .. bit 25 'z',
 * bit 26 any digit, bit 27 anything else): one edit changes at most two bits, so a mask far
 * from the typed domain's rules the candidate out before any distance is computed. */
typedef struct smtpc__popular_domain {
  const char *name;
  unsigned char len;
  uint32_t mask;
} smtpc__popular_domain;

extern const smtpc__strset smtpc__disposable, smtpc__free, smtpc__role;
extern const smtpc__popular_domain smtpc__popular[];
extern const size_t smtpc__npopular;

#endif
