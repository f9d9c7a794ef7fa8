/* inspect_lists.h -- the tables tools/update-lists generates into inspect_lists.c; internal. */
#ifndef SMTPC_INSPECT_LISTS_H
#define SMTPC_INSPECT_LISTS_H

#include <stddef.h>
#include <stdint.h>

/* An open-addressing hash set of lower-case ASCII strings: slots[h & mask] holds, in its low
 * SMTPC__SET_OFF_BITS, 1 + the offset of a NUL-terminated entry in blob (0: an empty slot),
 * and above them the top SMTPC__SET_TAG_BITS of the entry's hash, so that a probe rejects
 * other entries without reading the blob (linear probing; the generator keeps the load at or
 * under one half). The hash is FNV-1a 32 over the entry's octets taken last to first, the
 * same in the generator and in inspect.c: one pass from a domain's end hashes every parent
 * domain on the way. */
#define SMTPC__SET_TAG_BITS 10
#define SMTPC__SET_OFF_BITS 22
typedef struct smtpc__strset {
  const char *blob;
  const uint32_t *slots;
  uint32_t mask;
  uint32_t count;
} smtpc__strset;

/* A typo target: the domain, its length, the length of its first label, which of the distinct
 * suffixes follows that label ("com" for gmail.com and hotmail.com alike: the typo search
 * measures a typed suffix against each distinct one once), and which letters the first label
 * has (bit 0 'a' .. bit 25 'z', bit 26 any digit, bit 27 anything else): each letter one label
 * has and the other lacks costs an edit, so masks far apart rule the candidate out before any
 * distance is computed. */
#define SMTPC__MAX_SUFFIXES 64
typedef struct smtpc__popular_domain {
  const char *name;
  unsigned char len;
  unsigned char label;  /* length of the first label: every target has a dot */
  unsigned char suffix; /* 0 .. SMTPC__MAX_SUFFIXES - 1, the same for the same suffix text */
  uint32_t mask;
} smtpc__popular_domain;

extern const smtpc__strset smtpc__disposable, smtpc__free, smtpc__role;
extern const smtpc__popular_domain smtpc__popular[];
extern const size_t smtpc__npopular;
/* The targets are sorted by first-label length: [n] is the index of the first whose first
 * label has n octets or more (n = 0..41; smtpc__npopular when none). */
extern const unsigned char smtpc__popular_from[42];

#endif
