/*
 * ac.c -- Aho-Corasick automaton compiled to a dense DFA (see ac.h for the contract).
 *
 * Build: a trie in a scratch table (missing edges are -1); one breadth-first pass that
 * numbers the states in BFS order (so the rows a scan visits most, near the root, share
 * cache lines), computes failure links, fills every missing edge from the failure state (a
 * scan is then one table lookup per byte) and links each state to the nearest suffix state
 * that ends a pattern (the "dictionary" link) so matches are reported without walking
 * failure chains. The "reports matches" bit rides in the transition itself, so the scan loop
 * touches only the transition table until something matches.
 *
 * Root skip: at the root, a byte pair that begins no pattern leaves the automaton where one
 * root step on the second byte would (the first byte's state, if any, has no edge for the
 * second, so its filled edge is the root's), and reports nothing (every pattern is 2 bytes
 * or longer). So the scan runs a loop of independent pair look-ups over such bytes and walks
 * the table, one dependent load per byte, only from a pair that may begin a match. Mail text
 * rarely holds one: most of it is read at the speed of the pair loop. (A pattern may start
 * with white space: the root's space state loops on space as the root itself goes there.)
 * Off when a pattern is shorter than 2 octets.
 *
 * Several at a time: when every pattern has k + 1 octets or more (k = 2 .. 4), the loop looks
 * only at every k-th position, in a table of the pairs a pattern has at offsets 0 .. k - 1
 * (plus two spaces when one of its octets 1 .. k - 1 is a space, as a space matches a run of
 * them). A match starting at q puts one of those pairs at each of q .. q + k - 1, one of which
 * is looked at; so where the loop stops at j, no match (nor any part of one still open at the
 * end of the piece) starts before j - k + 1, and the automaton goes on from the root there.
 */
#include "ac.h"

#include <stdlib.h>
#include <string.h>

#define MAXSTATES 0x7FFFu

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
  free(ac->plen);
  free(ac->pair);
  memset(ac, 0, sizeof *ac);
}

int smtpc__ac_build(smtpc__ac *ac, const char *const *patterns, size_t n) {
  size_t i, total = 1;
  unsigned c, nc = 1, s, maxstates, nstates = 1, qh = 0, qt = 0, shift = 0, sp;
  int32_t *tr = NULL, *fail = NULL, *first = NULL, *dict = NULL;
  unsigned *queue = NULL, *newid = NULL;
  uint8_t *bysp = NULL;

  memset(ac, 0, sizeof *ac);
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)patterns[i];
    for (; *p; p++) {
      unsigned char f = fold(*p);
      if (ac->cls[f] == 0) ac->cls[f] = (uint8_t)nc++;
      total++;
    }
  }
  for (c = 0; c < 256; c++) ac->cls[c] = ac->cls[fold((unsigned char)c)];
  sp = ac->cls[' '];
  while ((1u << shift) < nc) shift++;
  ac->shift = shift;
  maxstates = (unsigned)(total < MAXSTATES ? total : MAXSTATES);

  tr = malloc((size_t)maxstates * nc * sizeof *tr);
  fail = malloc(maxstates * sizeof *fail);
  first = malloc(maxstates * sizeof *first);
  dict = malloc(maxstates * sizeof *dict);
  queue = malloc(maxstates * sizeof *queue);
  newid = malloc(maxstates * sizeof *newid);
  bysp = calloc(maxstates, 1);
  ac->same = malloc((n ? n : 1) * sizeof *ac->same);
  ac->plen = malloc((n ? n : 1) * sizeof *ac->plen);
  if (!tr || !fail || !first || !dict || !queue || !newid || !bysp || !ac->same || !ac->plen)
    goto fail;
  memset(tr, 0xFF, (size_t)maxstates * nc * sizeof *tr);
  for (s = 0; s < maxstates; s++) first[s] = dict[s] = -1;
  ac->npatterns = n;

  /* Trie. Patterns with equal text share a node; `same` chains them. */
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)patterns[i];
    s = 0;
    for (; *p; p++) {
      int32_t *e = &tr[(size_t)s * nc + ac->cls[*p]];
      if (*e < 0) {
        if (nstates >= maxstates) goto fail;
        bysp[nstates] = ac->cls[*p] == sp && sp != 0;
        *e = (int32_t)nstates++;
      }
      s = (unsigned)*e;
    }
    ac->plen[i] = (uint16_t)strlen(patterns[i]);
    ac->same[i] = first[s];
    first[s] = (int32_t)i;
  }

  /* Breadth-first: numbering, failure and dictionary links, completed transitions. */
  newid[0] = 0;
  qt = 0;
  queue[qt++] = 0;
  fail[0] = 0;
  while (qh < qt) {
    unsigned r = queue[qh++];
    unsigned f = (unsigned)fail[r];
    if (r != 0) dict[r] = first[f] >= 0 ? (int32_t)f : dict[f];
    for (c = 0; c < nc; c++) {
      int32_t *e = &tr[(size_t)r * nc + c];
      int32_t via = r == 0 ? 0 : tr[(size_t)f * nc + c];
      if (*e < 0) {
        *e = via;
      } else {
        fail[*e] = r == 0 ? 0 : via;
        newid[*e] = qt;
        queue[qt++] = (unsigned)*e;
      }
    }
  }

  ac->nstates = nstates;
  ac->delta = calloc((size_t)nstates << shift, sizeof *ac->delta);
  ac->first = malloc(nstates * sizeof *ac->first);
  ac->dict = malloc(nstates * sizeof *ac->dict);
  if (!ac->delta || !ac->first || !ac->dict) goto fail;
  for (s = 0; s < nstates; s++) {
    unsigned ns = newid[s];
    ac->first[ns] = first[s];
    ac->dict[ns] = dict[s] >= 0 ? (int32_t)newid[dict[s]] : -1;
    for (c = 0; c < nc; c++) {
      unsigned t = (unsigned)tr[(size_t)s * nc + c];
      unsigned out = first[t] >= 0 || dict[t] >= 0 ? SMTPC__AC_OUT : 0;
      ac->delta[((size_t)ns << shift) | c] = (uint16_t)(newid[t] | out);
    }
    /* a state entered by a space stays put on more space: runs of white space fold */
    if (bysp[s]) ac->delta[((size_t)ns << shift) | sp] = (uint16_t)ns;
  }
  ac->pair = calloc((size_t)1 << (2 * shift), 1);
  if (!ac->pair) goto fail;
  ac->step = 4;
  for (i = 0; i < n; i++) {
    size_t len = strlen(patterns[i]);
    if (len < 2) {
      free(ac->pair);
      ac->pair = NULL;
      break;
    }
    if (len - 1 < ac->step) ac->step = (unsigned)(len - 1);
  }
  for (i = 0; ac->pair && i < n; i++) {
    /* bit 0: a first pair (one at a time); bit 1: a pair at offset 0 .. step - 1 */
    const unsigned char *p = (const unsigned char *)patterns[i];
    ac->pair[(unsigned)ac->cls[p[0]] << shift | ac->cls[p[1]]] |= 1;
    for (unsigned o = 0; ac->step > 1 && o < ac->step; o++) {
      ac->pair[(unsigned)ac->cls[p[o]] << shift | ac->cls[p[o + 1]]] |= 2;
      if (o > 0 && ac->cls[p[o]] == sp) ac->pair[sp << shift | sp] |= 2;
    }
  }
  free(tr);
  free(fail);
  free(first);
  free(dict);
  free(queue);
  free(newid);
  free(bysp);
  return 0;

fail:
  free(tr);
  free(fail);
  free(first);
  free(dict);
  free(queue);
  free(newid);
  free(bysp);
  smtpc__ac_free(ac);
  return -1;
}

void smtpc__ac_feed(const smtpc__ac *ac, smtpc__ac_scan *sc, const char *p, size_t len,
                    smtpc__ac_cb cb, void *ud) {
  const unsigned char *u = (const unsigned char *)p;
  const uint16_t *delta = ac->delta;
  const uint8_t *cls = ac->cls, *pair = ac->pair;
  unsigned shift = ac->shift, s = sc->state;
  size_t i;

  for (i = 0; i < len; i++) {
    if (s == 0 && pair) { /* see "Root skip" and "Two at a time" above */
      if (ac->step > 1) {
        size_t from = i, k = ac->step;
        while (i + k < len && !(pair[(unsigned)cls[u[i]] << shift | cls[u[i + 1]]] & 2)) i += k;
        i = i - from >= k - 1 ? i - (k - 1) : from;
      } else {
        while (i + 1 < len && !(pair[(unsigned)cls[u[i]] << shift | cls[u[i + 1]]] & 1)) i++;
      }
    }
    unsigned t = delta[(s << shift) | cls[u[i]]];
    s = t & ~SMTPC__AC_OUT;
    if (t & SMTPC__AC_OUT) {
      int32_t q = ac->first[s] >= 0 ? (int32_t)s : ac->dict[s];
      while (q >= 0) {
        int32_t pat;
        for (pat = ac->first[q]; pat >= 0; pat = ac->same[pat])
          cb(ud, (size_t)pat, sc->pos + i + 1, i + 1);
        q = ac->dict[q];
      }
    }
  }
  sc->state = s;
  sc->pos += len;
}
