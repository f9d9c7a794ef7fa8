/*
 * ac.c -- Aho-Corasick automaton compiled to a dense DFA (see ac.h for the contract).
 *
 * Build: a trie in the same table that later holds the DFA (missing edges are 0xFFFF), then
 * one breadth-first pass that fills every missing edge from the failure state, so a scan is a
 * single table lookup per byte, and links each state to the nearest suffix state that ends a
 * pattern (the "dictionary" link) so matches are reported without walking failure chains.
 */
#include "ac.h"

#include <stdlib.h>
#include <string.h>

#define NONE 0xFFFFu

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static unsigned char fold(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return (unsigned char)(c + 32);
  if (is_space(c)) return ' ';
  return c;
}

void smtpc__ac_free(smtpc__ac *ac) {
  free(ac->delta);
  free(ac->first);
  free(ac->dict);
  free(ac->same);
  free(ac->hasout);
  free(ac->plen);
  memset(ac, 0, sizeof *ac);
}

int smtpc__ac_build(smtpc__ac *ac, const char *const *patterns, size_t n) {
  size_t i, total = 1;
  unsigned c, nc = 1, s, maxstates;
  int32_t *fail = NULL;
  unsigned *queue = NULL;
  size_t qh = 0, qt = 0;

  memset(ac, 0, sizeof *ac);
  /* Alphabet: one class per folded byte that occurs in a pattern. */
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)patterns[i];
    for (; *p; p++) {
      unsigned char f = fold(*p);
      if (ac->cls[f] == 0) ac->cls[f] = (uint8_t)nc++;
      total++;
    }
  }
  for (c = 0; c < 256; c++) ac->cls[c] = ac->cls[fold((unsigned char)c)];
  ac->nclass = nc;
  if (total >= NONE) return -1;
  maxstates = (unsigned)total;

  ac->delta = malloc((size_t)maxstates * nc * sizeof *ac->delta);
  ac->first = malloc(maxstates * sizeof *ac->first);
  ac->dict = malloc(maxstates * sizeof *ac->dict);
  ac->hasout = calloc(maxstates, 1);
  ac->same = malloc((n ? n : 1) * sizeof *ac->same);
  ac->plen = malloc((n ? n : 1) * sizeof *ac->plen);
  fail = malloc(maxstates * sizeof *fail);
  queue = malloc(maxstates * sizeof *queue);
  if (!ac->delta || !ac->first || !ac->dict || !ac->hasout || !ac->same || !ac->plen || !fail ||
      !queue)
    goto oom;
  memset(ac->delta, 0xFF, (size_t)maxstates * nc * sizeof *ac->delta);
  for (s = 0; s < maxstates; s++) ac->first[s] = ac->dict[s] = -1;
  ac->nstates = 1;
  ac->npatterns = n;

  /* Trie. Patterns with equal text share a node; `same` chains them. */
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)patterns[i];
    s = 0;
    for (; *p; p++) {
      uint16_t *e = &ac->delta[(size_t)s * nc + ac->cls[*p]];
      if (*e == NONE) *e = (uint16_t)ac->nstates++;
      s = *e;
    }
    ac->plen[i] = (uint16_t)strlen(patterns[i]);
    ac->same[i] = ac->first[s];
    ac->first[s] = (int32_t)i;
  }

  /* Breadth-first: failure links, dictionary links, completed transitions. */
  fail[0] = 0;
  for (c = 0; c < nc; c++) {
    uint16_t *e = &ac->delta[c];
    if (*e == NONE) *e = 0;
    else if (*e != 0) { fail[*e] = 0; queue[qt++] = *e; }
  }
  while (qh < qt) {
    unsigned r = queue[qh++];
    unsigned f = (unsigned)fail[r];
    ac->dict[r] = ac->first[f] >= 0 ? (int32_t)f : ac->dict[f];
    ac->hasout[r] = ac->first[r] >= 0 || ac->dict[r] >= 0;
    for (c = 0; c < nc; c++) {
      uint16_t *e = &ac->delta[(size_t)r * nc + c];
      uint16_t via = ac->delta[(size_t)f * nc + c];
      if (*e == NONE) *e = via;
      else { fail[*e] = via; queue[qt++] = *e; }
    }
  }
  free(fail);
  free(queue);
  return 0;

oom:
  free(fail);
  free(queue);
  smtpc__ac_free(ac);
  return -1;
}

void smtpc__ac_feed(const smtpc__ac *ac, smtpc__ac_scan *sc, const char *p, size_t len,
                    smtpc__ac_cb cb, void *ud) {
  const unsigned char *u = (const unsigned char *)p;
  const uint16_t *delta = ac->delta;
  const uint8_t *cls = ac->cls;
  unsigned nc = ac->nclass, s = sc->state, spcls = cls[' '];
  int lastsp = sc->lastsp;
  size_t i, pos = sc->pos;

  for (i = 0; i < len; i++) {
    unsigned k = cls[u[i]];
    if (k == spcls && spcls != 0) {
      if (lastsp) continue;
      lastsp = 1;
    } else {
      lastsp = 0;
    }
    s = delta[(size_t)s * nc + k];
    pos++;
    if (ac->hasout[s]) {
      int32_t t = ac->first[s] >= 0 ? (int32_t)s : ac->dict[s];
      while (t >= 0) {
        int32_t pat;
        for (pat = ac->first[t]; pat >= 0; pat = ac->same[pat]) cb(ud, (size_t)pat, pos, i + 1);
        t = ac->dict[t];
      }
    }
  }
  sc->state = s;
  sc->lastsp = lastsp;
  sc->pos = pos;
}
