/*
 * ac.c -- Aho-Corasick automaton compiled to a dense DFA (see ac.h for the contract).
 *
 * Build: a trie in a scratch table (missing edges are -1); one breadth-first pass that
 * numbers the states in BFS order, computes failure links, fills every missing edge from the
 * failure state (a scan is then one table lookup per byte) and links each state to the
 * nearest suffix state that ends a pattern (the "dictionary" link); the links then become one
 * flat list of pattern numbers per state, so a match is reported without walking any chain.
 * The "reports matches" bit rides in the transition itself, so the scan loop touches only the
 * transition table until something matches.
 * The table is stored by column: all states' transitions on one byte class, then the next
 * class. A scan spends most bytes in shallow states, which BFS numbers first, so their
 * transitions on the common classes share a few cache lines; stored by state (a row of every
 * class per state), each state visited costs a line of its own, and a scan with the
 * classifier's 1.4 MB table was about 20% slower (bench/decode corpus, same machine).
 */
#include "ac.h"

#include <stdlib.h>
#include <string.h>

#define MAXSTATES 0x7FFFu

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Quotes count as white space: a reply is often quoted whole ("Remote server returned '550
 * ...'", JSON and CSV logs), and a quote before its first word must not hide that word from a
 * pattern that starts at a word (" ip is "). An apostrophe inside a word ("isn't") becomes a
 * space in the patterns too, so those still match. */
static unsigned char fold(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return (unsigned char)(c + 32);
  if (is_space(c) || c == '"' || c == '\'' || c == '`') return ' ';
  return c;
}

void smtpc__ac_free(smtpc__ac *ac) {
  free(ac->delta);
  free(ac->out_at);
  free(ac->outs);
  free(ac->plen);
  memset(ac, 0, sizeof *ac);
}

int smtpc__ac_build(smtpc__ac *ac, const char *const *patterns, size_t n) {
  size_t i, total = 1;
  unsigned c, nc = 1, s, maxstates, nstates = 1, qh = 0, qt = 0, sp;
  size_t stride;
  int32_t *tr = NULL, *fail = NULL, *first = NULL, *dict = NULL, *same = NULL;
  unsigned *queue = NULL, *newid = NULL;
  uint8_t *bysp = NULL;
  int rc = -1;

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
  ac->nclasses = nc;
  maxstates = (unsigned)(total < MAXSTATES ? total : MAXSTATES);

  tr = malloc((size_t)maxstates * nc * sizeof *tr);
  fail = malloc(maxstates * sizeof *fail);
  first = malloc(maxstates * sizeof *first);
  dict = malloc(maxstates * sizeof *dict);
  queue = malloc(maxstates * sizeof *queue);
  newid = malloc(maxstates * sizeof *newid);
  bysp = calloc(maxstates, 1);
  same = malloc((n ? n : 1) * sizeof *same);
  ac->plen = malloc((n ? n : 1) * sizeof *ac->plen);
  if (!tr || !fail || !first || !dict || !queue || !newid || !bysp || !same || !ac->plen)
    goto done;
  memset(tr, 0xFF, (size_t)maxstates * nc * sizeof *tr);
  for (s = 0; s < maxstates; s++) first[s] = dict[s] = -1;
  ac->npatterns = n;

  /* Trie. Patterns with equal text share a node; `same` chains them. */
  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)patterns[i];
    s = 0;
    for (; *p; p++) {
      int32_t *e;
      /* a run of white space in a pattern is one space, as in the text scanned */
      if (ac->cls[*p] == sp && sp != 0 && p != (const unsigned char *)patterns[i] &&
          ac->cls[p[-1]] == sp)
        continue;
      e = &tr[(size_t)s * nc + ac->cls[*p]];
      if (*e < 0) {
        if (nstates >= maxstates) goto done;
        bysp[nstates] = ac->cls[*p] == sp && sp != 0;
        *e = (int32_t)nstates++;
      }
      s = (unsigned)*e;
    }
    ac->plen[i] = (uint16_t)strlen(patterns[i]);
    same[i] = first[s];
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
  /* A column holds every state at its number and, again at number | SMTPC__AC_OUT, each
   * state that reports matches: a scan then indexes with the transition as loaded, flag and
   * all, one load per byte and no masking (about 4% fewer instructions per decode, for some
   * 1.3 MB more resident memory with the classifier's phrases; the numbers between stay
   * untouched). The stride is no power of two, so columns do not share cache sets. */
  stride = SMTPC__AC_OUT + nstates + 40;
  ac->delta = calloc((size_t)nc * stride, sizeof *ac->delta);
  for (c = 0; c < 256; c++) ac->col[c] = ac->delta + (size_t)ac->cls[c] * stride;
  ac->out_at = malloc((nstates + 1) * sizeof *ac->out_at);
  if (!ac->delta || !ac->out_at) goto done;
  /* Each state's matches as one list, in the order the links give them: the patterns ending
   * at the state itself (equal texts newest first, as the trie chained them), then those at
   * its dictionary link, and so on. The scan then reads one short run of pattern numbers per
   * match instead of following three arrays' links. queue[] holds the old numbers in new
   * (BFS) order. */
  for (i = 0, s = 0; s < nstates; s++) {
    int32_t q = first[queue[s]] >= 0 ? (int32_t)queue[s] : dict[queue[s]], pat;
    ac->out_at[s] = (uint32_t)i;
    for (; q >= 0; q = dict[q])
      for (pat = first[q]; pat >= 0; pat = same[pat]) i++;
  }
  if (i > UINT32_MAX) goto done;
  ac->out_at[nstates] = (uint32_t)i;
  ac->outs = malloc((i ? i : 1) * sizeof *ac->outs);
  if (!ac->outs) goto done;
  for (i = 0, s = 0; s < nstates; s++) {
    int32_t q = first[queue[s]] >= 0 ? (int32_t)queue[s] : dict[queue[s]], pat;
    for (; q >= 0; q = dict[q])
      for (pat = first[q]; pat >= 0; pat = same[pat]) ac->outs[i++] = (uint32_t)pat;
  }
  for (s = 0; s < nstates; s++) {
    unsigned ns = newid[s], twin = first[s] >= 0 || dict[s] >= 0 ? ns | SMTPC__AC_OUT : ns;
    for (c = 0; c < nc; c++) {
      unsigned t = (unsigned)tr[(size_t)s * nc + c];
      unsigned out = first[t] >= 0 || dict[t] >= 0 ? SMTPC__AC_OUT : 0;
      ac->delta[(size_t)c * stride + ns] = ac->delta[(size_t)c * stride + twin] =
        (uint16_t)(newid[t] | out);
    }
    /* a state entered by a space stays put on more space, without reporting again: runs of
     * white space fold */
    if (bysp[s])
      ac->delta[(size_t)sp * stride + ns] = ac->delta[(size_t)sp * stride + twin] = (uint16_t)ns;
  }
  rc = 0;

done: /* the scratch tables go either way; the automaton only on failure */
  free(tr);
  free(fail);
  free(first);
  free(dict);
  free(same);
  free(queue);
  free(newid);
  free(bysp);
  if (rc) smtpc__ac_free(ac);
  return rc;
}

/* Report every pattern that ends in state s, at byte i of the chunk. */
static void report(const smtpc__ac *ac, unsigned s, size_t base, size_t i, smtpc__ac_cb cb,
                   void *ud) {
  const uint32_t *p = ac->outs + ac->out_at[s], *e = ac->outs + ac->out_at[s + 1];
  for (; p < e; p++) cb(ud, *p, base + i + 1, i + 1);
}

/* One state after another over u[from, to), reporting as it goes; returns the last state. */
static unsigned feed_serial(const smtpc__ac *ac, unsigned s, const unsigned char *u, size_t from,
                            size_t to, size_t base, smtpc__ac_cb cb, void *ud) {
  const uint16_t *const *col = ac->col;
  uint16_t t = (uint16_t)s; /* 16-bit, as in scan4 */
  size_t i;
  for (i = from; i < to; i++) {
    t = col[u[i]][t];
    if (t & SMTPC__AC_OUT) report(ac, t & ~SMTPC__AC_OUT, base, i, cb, ud);
  }
  return t & ~SMTPC__AC_OUT;
}

/* Lanes. Each byte costs one table load that depends on the previous one, and the table is
 * larger than a core's L2 cache, so a serial scan waits on memory most of the time. A longer
 * chunk is therefore cut into LANES segments scanned side by side, giving the CPU independent
 * loads to overlap. Lane k > 0 starts from the root OVERLAP bytes before its segment, which
 * puts it in the right state whenever fewer than OVERLAP bytes of a pattern prefix are pending
 * there (nearly always). The DFA is deterministic, so that is checked exactly rather than
 * assumed: when the lane's state at its segment start differs from the state the previous
 * segment ended in, or its match buffer overflowed, the segment is scanned again serially.
 * Matches of lanes k > 0 are buffered and reported after the lanes before them, so the
 * callback sees exactly the calls, in the same order, that a serial scan makes. Four lanes
 * measured fastest on the classifier's corpus (2, 3, 5, 6 and 8 were slower).
 * OVERLAP and LANES_MIN by callgrind, with no difference in time above the noise of a shared
 * machine (bench/decode, bench/bounce): the warm-up is three lanes' wasted lookups, and with
 * the diagnostics of 50-300 octets the classifier mostly scans, OVERLAP 24 cost more than the
 * rare mismatch that 12 lets through (then lane and true state run side by side until they
 * agree, a few bytes); 12 and 64 took 4% off smtpc_classify's instructions (0, 4, 8 and 16,
 * and lanes from 32 or 48 octets, did less; from 96 did more, but leaves more texts on one
 * chain of dependent loads, which an instruction count does not see). */
#define LANES 4
#define OVERLAP 12
#define LANES_MIN 64 /* shorter chunks are scanned serially */
typedef char lanes_min_covers_overlap[LANES_MIN >= 2 * OVERLAP ? 1 : -1];
#define LANE_HITS 16

typedef struct lane {
  size_t i, begin, end;   /* next byte; segment [begin, end)                      */
  size_t start;           /* where scan4 started the lane (begin - OVERLAP)      */
  unsigned s, entry;      /* current state; state on reaching begin              */
  unsigned nhit;          /* buffered matches; LANE_HITS + 1 means overflow       */
  uint32_t hit_at[LANE_HITS];
  uint16_t hit_state[LANE_HITS];
} lane;

static void hold(lane *l, size_t at, unsigned s) {
  if (l->nhit < LANE_HITS) {
    l->hit_at[l->nhit] = (uint32_t)at;
    l->hit_state[l->nhit++] = (uint16_t)s;
  } else {
    l->nhit = LANE_HITS + 1;
  }
}

/* A step of scan4 at which some lane entered a reporting state: lane 0 reports, the others
 * buffer. Kept out of line and rare: inline, its stores into ln[] made the compiler keep the
 * loop's pointers and counters in memory (three stack increments and four reloads per step). */
__attribute__((noinline)) static void lanes_out(const smtpc__ac *ac, lane *ln, size_t j,
                                                unsigned s0, unsigned s1, unsigned s2,
                                                unsigned s3, size_t base, smtpc__ac_cb cb,
                                                void *ud) {
  if (s0 & SMTPC__AC_OUT) report(ac, s0 & ~SMTPC__AC_OUT, base, j, cb, ud);
  if (s1 & SMTPC__AC_OUT) hold(&ln[1], ln[1].start + j, s1 & ~SMTPC__AC_OUT);
  if (s2 & SMTPC__AC_OUT) hold(&ln[2], ln[2].start + j, s2 & ~SMTPC__AC_OUT);
  if (s3 & SMTPC__AC_OUT) hold(&ln[3], ln[3].start + j, s3 & ~SMTPC__AC_OUT);
}

/* The four lanes side by side, written out so the four states live in registers: first the
 * warm-up (lanes 1..3 run up to their segment start, lane 0 reports as it goes), then all four
 * for as many steps as lanes 0..2 have bytes (the last lane has as many or a few more). Lane 0
 * starts at u; lane k reads d_k bytes further on. */
static void scan4(const smtpc__ac *ac, const unsigned char *u, lane *ln, size_t steps,
                  size_t base, smtpc__ac_cb cb, void *ud) {
  const uint16_t *const *col = ac->col;
  /* the states as 16-bit values, as the table holds them: as unsigned, gcc copied each one
   * loaded to test the flags (four more instructions a step) */
  uint16_t s0 = (uint16_t)ln[0].s, s1 = 0, s2 = 0, s3 = 0;
  const size_t d1 = ln[1].start, d2 = ln[2].start, d3 = ln[3].start;
  const unsigned char *q = u, *warm = u + OVERLAP, *end;
  size_t j, n3 = ln[3].end - d3; /* the last lane's bytes: steps or a few more */
  if (steps > n3) steps = n3;
  end = u + steps;
  for (; q < warm; q++) {
    s0 = col[q[0]][s0];
    s1 = col[q[d1]][s1];
    s2 = col[q[d2]][s2];
    s3 = col[q[d3]][s3];
    if (s0 & SMTPC__AC_OUT) report(ac, s0 & ~SMTPC__AC_OUT, base, (size_t)(q - u), cb, ud);
  }
  ln[1].entry = s1 & ~SMTPC__AC_OUT;
  ln[2].entry = s2 & ~SMTPC__AC_OUT;
  ln[3].entry = s3 & ~SMTPC__AC_OUT;
  /* unrolled twice (gcc and clang honour this pragma): a loop test and an increment fewer a
   * step; unrolled by hand, with one flag test for both steps, gcc ran out of registers */
#pragma GCC unroll 2
  for (; q < end; q++) {
    s0 = col[q[0]][s0];
    s1 = col[q[d1]][s1];
    s2 = col[q[d2]][s2];
    s3 = col[q[d3]][s3];
    if ((s0 | s1 | s2 | s3) & SMTPC__AC_OUT)
      lanes_out(ac, ln, (size_t)(q - u), s0, s1, s2, s3, base, cb, ud);
  }
  j = (size_t)(q - u);
  ln[0].s = s0 & ~SMTPC__AC_OUT;
  ln[1].s = s1 & ~SMTPC__AC_OUT;
  ln[2].s = s2 & ~SMTPC__AC_OUT;
  ln[3].s = s3 & ~SMTPC__AC_OUT;
  ln[0].i = j;
  ln[1].i = d1 + j;
  ln[2].i = d2 + j;
  ln[3].i = d3 + j;
}

void smtpc__ac_feed(const smtpc__ac *ac, smtpc__ac_scan *sc, const char *p, size_t len,
                    smtpc__ac_cb cb, void *ud) {
  const unsigned char *u = (const unsigned char *)p;
  lane ln[LANES];
  size_t seg, steps, base = sc->pos;
  unsigned k;

  /* below LANES_MIN bytes the lanes' extra work outweighs what they save */
  if (len < LANES_MIN || len > UINT32_MAX) {
    sc->state = feed_serial(ac, sc->state, u, 0, len, base, cb, ud);
    sc->pos += len;
    return;
  }
  /* Equal work per lane: lane 0 scans its segment, the others OVERLAP bytes more; the last
   * lane takes the up to LANES - 1 bytes left over, so that the others end with the loop of
   * scan4 and only it goes on alone (a loop of varying length is a mispredicted branch). With
   * len >= LANES_MIN >= 2 * OVERLAP every segment is non-empty and starts at least OVERLAP
   * bytes in. */
  steps = (len + (LANES - 1) * OVERLAP) / LANES;
  seg = steps - OVERLAP;
  ln[0].i = ln[0].begin = 0;
  ln[0].end = steps;
  ln[0].s = ln[0].entry = sc->state;
  ln[0].nhit = 0;
  for (k = 1; k < LANES; k++) {
    ln[k].begin = ln[k - 1].end;
    ln[k].end = k + 1 == LANES ? len : ln[k].begin + seg;
    ln[k].i = ln[k].start = ln[k].begin - OVERLAP;
    ln[k].s = 0;
    ln[k].nhit = 0;
  }
  scan4(ac, u, ln, steps, base, cb, ud);
  /* lane 0 finishes alone; then each later lane, in order, is checked, finished, reported */
  ln[0].s = feed_serial(ac, ln[0].s, u, ln[0].i, ln[0].end, base, cb, ud);
  for (k = 1; k < LANES; k++) {
    unsigned h = 0;
    size_t i = ln[k].begin;
    if (ln[k].nhit > LANE_HITS) {
      ln[k].s = feed_serial(ac, ln[k - 1].s, u, ln[k].begin, ln[k].end, base, cb, ud);
      continue;
    }
    if (ln[k].entry != ln[k - 1].s) {
      /* The lane started in the wrong state: scan from the segment start in the right one
       * until the two agree, which they do once the pending pattern prefix that the lane
       * could not see has ended (a few bytes, mostly). From there the lane's own matches
       * stand; without agreement, the rest is scanned serially. */
      unsigned t = ln[k - 1].s, e = ln[k].entry;
      const uint16_t *const *col = ac->col;
      while (i < ln[k].i && ((t ^ e) & ~SMTPC__AC_OUT)) {
        t = col[u[i]][t];
        e = col[u[i]][e];
        if (t & SMTPC__AC_OUT) report(ac, t & ~SMTPC__AC_OUT, base, i, cb, ud);
        i++;
      }
      if ((t ^ e) & ~SMTPC__AC_OUT) {
        ln[k].s = feed_serial(ac, t & ~SMTPC__AC_OUT, u, i, ln[k].end, base, cb, ud);
        continue;
      }
      while (h < ln[k].nhit && ln[k].hit_at[h] < i) h++; /* reported above */
    }
    for (; h < ln[k].nhit; h++) report(ac, ln[k].hit_state[h], base, ln[k].hit_at[h], cb, ud);
    ln[k].s = feed_serial(ac, ln[k].s, u, ln[k].i, ln[k].end, base, cb, ud);
  }
  sc->state = ln[LANES - 1].s;
  sc->pos += len;
}
