/*
 * ac.h -- internal Aho-Corasick matcher (case-insensitive, whitespace-folding).
 *
 * Built once from a list of patterns into a dense DFA over a reduced alphabet: every byte that
 * occurs in some pattern gets its own class (upper and lower case letters share one), every
 * other byte falls into class 0, which no pattern contains. White space (SP, HT, CR, LF, VT, FF)
 * and the quotes (" ' `) are one class, and a run of it counts as a single space (states entered
 * by a space loop on further spaces), in patterns as in text, so phrases match across folded or
 * wrapped lines and inside quoted text.
 * Scanning allocates nothing; the automaton is read-only after build and safe to share between
 * threads.
 */
#ifndef SMTPC_AC_H
#define SMTPC_AC_H

#include <stddef.h>
#include <stdint.h>

#define SMTPC__AC_OUT 0x8000u  /* flag in a transition: the target state reports matches */

typedef struct smtpc__ac {
  uint8_t cls[256];    /* byte -> class                                               */
  const uint16_t *col[256]; /* byte -> its class's column of delta: col[b][state] is the
                               next state, maybe | SMTPC__AC_OUT (layout: ac.c)       */
  unsigned nclasses;
  unsigned nstates;    /* numbered breadth-first: shallow (often visited) states first */
  uint16_t *delta;     /* the columns, one after the other                            */
  uint32_t *out_at;    /* per state (and one more): where its matches start in outs   */
  uint32_t *outs;      /* every state's matches (pattern numbers), state after state  */
  uint16_t *plen;      /* per pattern: its length in bytes                            */
  size_t npatterns;
} smtpc__ac;

/* Called for each match: pattern index, end offset (one past the last byte) in the whole
 * stream fed so far, and end offset in the current chunk. */
typedef void (*smtpc__ac_cb)(void *ud, size_t pattern, size_t end_stream, size_t end_chunk);

/* Scanner state carried across chunks, so several lines scan as one stream. */
typedef struct smtpc__ac_scan {
  unsigned state;
  size_t pos;          /* bytes fed so far */
} smtpc__ac_scan;

/* Build from n patterns (NUL-terminated; matched case-insensitively; a pattern must not
 * contain runs of white space). Returns 0 or -1 (out of memory / more than 32767 states). */
int smtpc__ac_build(smtpc__ac *ac, const char *const *patterns, size_t n);
void smtpc__ac_free(smtpc__ac *ac);

static inline void smtpc__ac_scan_init(smtpc__ac_scan *s) {
  s->state = 0;
  s->pos = 0;
}

/* Feed bytes; calls cb for every match. */
void smtpc__ac_feed(const smtpc__ac *ac, smtpc__ac_scan *s, const char *p, size_t len,
                    smtpc__ac_cb cb, void *ud);

#endif
