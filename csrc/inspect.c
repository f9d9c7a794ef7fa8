/* inspect.c -- what an address tells besides SMTP: a disposable (throw-away) domain, a role
 * local part, a free mailbox provider, and the well-known domain a mistyped one stands for.
 *
 * The data are generated tables (inspect_lists.c, from tools/update-lists): hash sets, so
 * each look-up is one FNV-1a hash and one or two compares, with no allocation. A domain is
 * disposable when it or any domain above it (not the bare top-level domain) is on the list:
 * throw-away services hand out subdomains freely (x7.mailinator.com).
 *
 * Typo suggestions are a weighted Damerau-Levenshtein distance (optimal string alignment)
 * against the most used mail domains (tools/lists/popular.txt), taken apart: the first label
 * (the name the typist had in mind: "gmial") and the suffix (".con", ".co.jpp"), each with its
 * own bound, the name's growing with its length. Costs are in half edits: a transposition, a
 * neighbouring key on a QWERTY keyboard and a doubled or undoubled letter cost 1, any other
 * insertion, deletion or substitution 2. A suggestion needs one candidate strictly closer
 * than every other, and a typed domain that is not itself a known provider. The DNS fact
 * comes from the caller: a domain with a mail route is real and never corrected. */
#include "inspect_lists.h"
#include "internal.h"

#include <string.h>

/* ---- hash sets ---------------------------------------------------------------------------- */

/* FNV-1a 32 over s[0..n) taken last to first, as tools/update-lists hashes the entries: one
 * pass from the end of a domain goes through the hash of every parent domain. */
#define FNV_BASIS 0x811C9DC5u
#define FNV_PRIME 0x01000193u
static uint32_t set_hash(const char *s, size_t n) {
  uint32_t h = FNV_BASIS;
  while (n > 0) h = (h ^ (unsigned char)s[--n]) * FNV_PRIME;
  return h;
}

/* The entry e equals s[0..n): compared octet by octet, never past e's NUL (a memcmp of n
 * octets could read beyond the last entry of the blob). */
static int entry_is(const char *e, const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (e[i] != s[i] || e[i] == '\0') return 0;
  return e[n] == '\0';
}

/* s must be lower case already; h is set_hash(s, n). */
static int set_has_hashed(const smtpc__strset *set, uint32_t h, const char *s, size_t n) {
  const uint32_t off_mask = (1u << SMTPC__SET_OFF_BITS) - 1;
  uint32_t i = h & set->mask, slot;
  uint32_t tag = (h >> (32 - SMTPC__SET_TAG_BITS)) << SMTPC__SET_OFF_BITS;
  while ((slot = set->slots[i]) != 0) {
    if ((slot & ~off_mask) == tag && entry_is(set->blob + (slot & off_mask) - 1, s, n)) return 1;
    i = (i + 1) & set->mask;
  }
  return 0;
}

static int set_has(const smtpc__strset *set, const char *s, size_t n) {
  return set_has_hashed(set, set_hash(s, n), s, n);
}

/* Lower-case ASCII copy into buf (SMTPC_ADDR_DOMAIN_SIZE); 0 when too long or empty. */
static size_t lower_copy(char *buf, const char *s, size_t n) {
  size_t i;
  if (s == NULL || n == 0 || n > SMTPC_ADDR_MAX_DOMAIN) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  buf[n] = '\0';
  return n;
}

/* A domain's hashes, taken in one pass from its end: the whole name's, and those of the
 * names a disposable domain can be (the name and its parents, not the bare top-level
 * domain), shortest first. */
typedef struct domain_hashes {
  uint32_t whole;
  size_t nparents;
  uint32_t hash[SMTPC_ADDR_DOMAIN_SIZE]; /* one an octet at most: smtpc_is_disposable_domain */
  unsigned char at[SMTPC_ADDR_DOMAIN_SIZE]; /* takes "a..b" too; where that name starts */
} domain_hashes;

/* d is lower case with no trailing dot, n <= SMTPC_ADDR_MAX_DOMAIN. */
static void hash_domain(const char *d, size_t n, domain_hashes *dh) {
  uint32_t h = FNV_BASIS;
  int dotted = 0; /* a dot seen: the name from here on is not a bare top-level domain */
  size_t k = 0;
  while (n > 0) {
    unsigned char c = (unsigned char)d[--n];
    h = (h ^ c) * FNV_PRIME;
    dotted |= c == '.';
    /* kept when a label starts here, written either way (no branch): k <= the labels so far */
    dh->hash[k] = h;
    dh->at[k] = (unsigned char)n;
    k += (size_t)(dotted & ((n == 0) | (d[n ? n - 1 : 0] == '.')));
  }
  dh->nparents = k;
  dh->whole = h;
}

/* The domain (as hashed into dh) or a parent of it is listed. */
static int disposable_hashed(const char *d, size_t n, const domain_hashes *dh) {
  size_t k;
  for (k = 0; k < dh->nparents; k++)
    if (set_has_hashed(&smtpc__disposable, dh->hash[k], d + dh->at[k], n - dh->at[k])) return 1;
  return 0;
}

int smtpc_is_disposable_domain(const char *domain, size_t len) {
  char buf[SMTPC_ADDR_DOMAIN_SIZE];
  domain_hashes dh;
  if (len && domain && domain[len - 1] == '.') len--;
  if ((len = lower_copy(buf, domain, len)) == 0) return 0;
  hash_domain(buf, len, &dh);
  return disposable_hashed(buf, len, &dh);
}

int smtpc_is_free_provider(const char *domain, size_t len) {
  char buf[SMTPC_ADDR_DOMAIN_SIZE];
  if (len && domain && domain[len - 1] == '.') len--;
  if ((len = lower_copy(buf, domain, len)) == 0) return 0;
  return set_has(&smtpc__free, buf, len);
}

int smtpc_is_role_local(const char *local, size_t len) {
  char buf[SMTPC_ADDR_DOMAIN_SIZE];
  const char *plus;
  uint32_t h = FNV_BASIS;
  size_t i;
  if (local == NULL || len == 0 || local[0] == '"') return 0; /* quoted: no role name */
  if ((plus = memchr(local, '+', len)) != NULL) len = (size_t)(plus - local); /* sub-address */
  if (len == 0 || len > SMTPC_ADDR_MAX_DOMAIN) return 0;
  for (i = len; i-- > 0;) { /* lower-cased and hashed in one pass, from the end as set_hash */
    unsigned char c = (unsigned char)local[i];
    c = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    buf[i] = (char)c;
    h = (h ^ c) * FNV_PRIME;
  }
  return set_has_hashed(&smtpc__role, h, buf, len);
}

/* ---- typo distance -------------------------------------------------------------------- */

/* Key positions on a QWERTY keyboard: row (1-4) * 64 + x in quarter keys, since the rows are
 * staggered (q is half a key right of 1, a a quarter right of q, z half right of a); 0 = no
 * key. Two keys are neighbours on one row at x +-4, on the next row within 3 quarters. */
#define K(row, col, shift) (uint16_t)((row) * 64 + 4 * (col) + (shift))
static const uint16_t keys[128] = {
  ['1'] = K(1, 0, 0), ['2'] = K(1, 1, 0), ['3'] = K(1, 2, 0), ['4'] = K(1, 3, 0),
  ['5'] = K(1, 4, 0), ['6'] = K(1, 5, 0), ['7'] = K(1, 6, 0), ['8'] = K(1, 7, 0),
  ['9'] = K(1, 8, 0), ['0'] = K(1, 9, 0), ['-'] = K(1, 10, 0),
  ['q'] = K(2, 0, 2), ['w'] = K(2, 1, 2), ['e'] = K(2, 2, 2), ['r'] = K(2, 3, 2),
  ['t'] = K(2, 4, 2), ['y'] = K(2, 5, 2), ['u'] = K(2, 6, 2), ['i'] = K(2, 7, 2),
  ['o'] = K(2, 8, 2), ['p'] = K(2, 9, 2),
  ['a'] = K(3, 0, 3), ['s'] = K(3, 1, 3), ['d'] = K(3, 2, 3), ['f'] = K(3, 3, 3),
  ['g'] = K(3, 4, 3), ['h'] = K(3, 5, 3), ['j'] = K(3, 6, 3), ['k'] = K(3, 7, 3),
  ['l'] = K(3, 8, 3),
  ['z'] = K(4, 0, 5), ['x'] = K(4, 1, 5), ['c'] = K(4, 2, 5), ['v'] = K(4, 3, 5),
  ['b'] = K(4, 4, 5), ['n'] = K(4, 5, 5), ['m'] = K(4, 6, 5),
};
#undef K

static unsigned key_of(unsigned char c) { return c < 128 ? keys[c] : 0; }

/* Two key positions (key_of) are neighbours; worked out without a branch, since the
 * distance below asks for every pair of differing letters. */
static int near(unsigned pa, unsigned pb) {
  int dy = (int)(pa >> 6) - (int)(pb >> 6), dx = (int)(pa & 63) - (int)(pb & 63);
  return (pa != 0) & (pb != 0) &
         (((dy == 0) & ((dx == 4) | (dx == -4))) | (((dy == 1) | (dy == -1)) & (dx >= -3) & (dx <= 3)));
}

#define MAXLEN 40 /* popular domains are shorter; typed ones within 2 octets of one */

static int min2(int a, int b) { return a < b ? a : b; }

/* Weighted optimal-string-alignment distance of a (typed) and b (target); anything above
 * bound is reported as bound + 1. */
static int distance(const char *a, size_t n, const char *b, size_t m, int bound) {
  int rows[3][MAXLEN + 1], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  int ins[MAXLEN + 1];
  unsigned kb[MAXLEN + 1];
  size_t i, j;
  int prev_best = 0; /* a transposition reaches back two rows: stop when both are over */
  /* what depends on the target letter alone, once: its key, and the cost of inserting it
   * where the typist left it out (cheap when it was a double: gmal) */
  for (j = 1; j <= m; j++) {
    kb[j] = key_of((unsigned char)b[j - 1]);
    ins[j] = (j >= 2 && b[j - 1] == b[j - 2]) ? 1 : 2;
  }
  for (j = 0; j <= m; j++) prev[j] = 2 * (int)j;
  for (i = 1; i <= n; i++) {
    int best;
    unsigned char ca = (unsigned char)a[i - 1];
    unsigned ka = key_of(ca);
    /* deleting a typed letter: cheap when it doubles its neighbour (gmaill) */
    int del_i = (i >= 2 && a[i - 1] == a[i - 2]) ? 1 : 2;
    cur[0] = prev[0] + del_i;
    best = cur[0];
    for (j = 1; j <= m; j++) {
      int sub = ca == (unsigned char)b[j - 1] ? 0 : 2 - near(ka, kb[j]);
      int d = min2(prev[j - 1] + sub, min2(prev[j] + del_i, cur[j - 1] + ins[j]));
      if (i >= 2 && j >= 2) {
        int swapped = (a[i - 1] == b[j - 2]) & (a[i - 2] == b[j - 1]) & (a[i - 1] != a[i - 2]);
        d = min2(d, swapped ? prev2[j - 2] + 1 : d);
      }
      cur[j] = d;
      best = min2(best, d);
    }
    if (best > bound && prev_best > bound) return bound + 1;
    prev_best = best;
    {
      int *t = prev2;
      prev2 = prev;
      prev = cur;
      cur = t;
    }
  }
  return prev[m] > bound ? bound + 1 : prev[m];
}

static uint32_t letters(const char *s, size_t n) {
  uint32_t m = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    m |= c >= 'a' && c <= 'z' ? 1u << (c - 'a') : c >= '0' && c <= '9' ? 1u << 26 : 1u << 27;
  }
  return m;
}

/* Letters one first label has and the other lacks, counted both ways in one SWAR pass
 * (no loop, no compiler builtin): a's extra letters in the low word, b's in the high word;
 * returns the larger count. */
static int letters_apart(uint32_t a, uint32_t b) {
  uint64_t x = (uint64_t)(a & ~b) | (uint64_t)(b & ~a) << 32;
  unsigned lo, hi;
  x = x - ((x >> 1) & 0x5555555555555555u);
  x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Fu;
  x *= 0x01010101u; /* byte 3: the low word's sum, byte 7: the high word's */
  lo = (unsigned)(x >> 24) & 0xFF;
  hi = (unsigned)(x >> 56);
  return (int)(lo > hi ? lo : hi);
}

/* How far a typo may be from its target, in half edits: in the first label (the name the
 * typist had in mind) a bound that grows with the name, since short names have many real
 * neighbours (sony.com is not a slip for sina.com); in the suffix (".com", ".co.jp") one
 * edit; in all, three half edits. */
static int label_bound(size_t len) { return 1 + (len > 3) + (len > 5); } /* 1, 2 or 3 */
#define SUFFIX_BOUND 2
#define TOTAL_BOUND 3

/* Letter counts of a label (a-z, 0-9, '-', anything else). */
#define NBAG 38
static int bag_slot(unsigned char c) {
  return c >= 'a' && c <= 'z' ? c - 'a' : c >= '0' && c <= '9' ? 26 + c - '0' : c == '-' ? 36 : 37;
}

/* A lower bound on the edits between two labels: letters one has and the other lacks. Each
 * edit but a transposition adds at most one and removes at most one. typed holds the typed
 * label's letter counts and tn its length; only s's letters are walked. */
static int bag_distance(const unsigned char typed[NBAG], size_t tn, const char *s, size_t n) {
  unsigned char left[NBAG];
  size_t i, matched = 0;
  memcpy(left, typed, NBAG);
  for (i = 0; i < n; i++) {
    int k = bag_slot((unsigned char)s[i]), have = left[k] != 0; /* no branch: a coin toss */
    left[k] = (unsigned char)(left[k] - have);
    matched += (size_t)have;
  }
  return (int)(tn - matched > n - matched ? tn - matched : n - matched);
}

/* Cost of typing d (first label dl octets) for the target p, or TOTAL_BOUND + 1. sfx holds
 * the typed suffix's cost against each distinct target suffix, -1 until measured. */
static int typo_cost(const char *d, size_t n, size_t dl, const unsigned char bag[NBAG],
                     signed char sfx[SMTPC__MAX_SUFFIXES], const smtpc__popular_domain *p) {
  size_t pl = p->label, sn = n - dl, pn = p->len - pl; /* suffix lengths, with the dot */
  int c1, c2, bag_cost, bound = label_bound(pl);
  /* the letter counts first: the bound can only shrink below */
  if ((bag_cost = bag_distance(bag, dl, p->name, pl)) > bound) return TOTAL_BOUND + 1;
  /* the suffix next: it is short, most often the same, and shared by many targets; every
   * octet of length difference costs a half edit at least */
  if ((c2 = sfx[p->suffix]) < 0) {
    if (sn == pn && memcmp(d + dl, p->name + pl, sn) == 0) c2 = 0;
    else if (sn + SUFFIX_BOUND < pn || pn + SUFFIX_BOUND < sn) c2 = SUFFIX_BOUND + 1;
    else c2 = distance(d + dl + 1, sn - 1, p->name + pl + 1, pn - 1, SUFFIX_BOUND);
    sfx[p->suffix] = (signed char)c2; /* at most SUFFIX_BOUND + 1 */
  }
  if (c2 > SUFFIX_BOUND) return TOTAL_BOUND + 1;
  if (bound > TOTAL_BOUND - c2) bound = TOTAL_BOUND - c2;
  if (bag_cost > bound) return TOTAL_BOUND + 1;
  c1 = distance(d, dl, p->name, pl, bound);
  if (c1 > bound) return TOTAL_BOUND + 1;
  return c1 + c2;
}

/* The index of the clearly closest target within limit half edits, or -1. d is lower case
 * ASCII. */
static long closest(const char *d, size_t n, int limit) {
  const char *dot = memchr(d, '.', n);
  uint32_t mask;
  long best = -1;
  int best_cost = 99, second = 99;
  size_t k, dl, lo, hi, pl, i, ns = 0;
  unsigned char bag[NBAG], survivors[256]; /* popular.txt holds at most 255 (the generator) */
  signed char sfx[SMTPC__MAX_SUFFIXES];
  if (n > MAXLEN || dot == NULL) return -1;
  dl = (size_t)(dot - d);
  /* targets whose first label is within its bound in length: every octet of length
   * difference costs a half edit at least. pl + label_bound(pl) grows with pl, and
   * pl - label_bound(pl) never shrinks, so the lengths in reach are one run. */
  for (lo = dl > 3 ? dl - 3 : 0; lo + (size_t)label_bound(lo) < dl;) lo++;
  for (hi = dl + 3; hi - (size_t)label_bound(hi) > dl;) hi--;
  if (hi > 40) hi = 40;
  if (smtpc__popular_from[lo] == smtpc__popular_from[hi + 1]) return -1;
  mask = letters(d, dl);
  memset(bag, 0, sizeof bag);
  for (k = 0; k < dl; k++) bag[bag_slot((unsigned char)d[k])]++;
  memset(sfx, -1, sizeof sfx);
  /* The cheap bounds (whole lengths; letters one label has and the other lacks, each costing
   * a half edit at least) are taken for every target without a branch, listing the
   * survivors: nearly every target fails them, and a branch on each would be mispredicted
   * often. One run of targets a label length, so the bound is the run's. */
  for (pl = lo; pl <= hi; pl++) {
    int lb = label_bound(pl);
    for (k = smtpc__popular_from[pl]; k < smtpc__popular_from[pl + 1]; k++) {
      const smtpc__popular_domain *p = &smtpc__popular[k];
      size_t pn = p->len;
      survivors[ns] = (unsigned char)k;
      ns += (pn + 2 >= n) & (n + 2 >= pn) & (letters_apart(p->mask, mask) <= lb);
    }
  }
  for (i = 0; i < ns; i++) {
    int c = typo_cost(d, n, dl, bag, sfx, &smtpc__popular[survivors[i]]);
    if (c > TOTAL_BOUND) continue;
    if (c < best_cost) {
      second = best_cost;
      best_cost = c;
      best = (long)survivors[i];
    } else if (c < second) {
      second = c;
    }
  }
  if (best < 0 || best_cost == 0 || best_cost > limit || second <= best_cost) return -1;
  return best;
}

/* Known mailbox providers are real: never corrected, whatever they are close to. Disposable
 * domains may be: the lists carry typo domains (gmial.com) that catch mistyped mail. */
static int known_lc(const char *d, size_t n) { return set_has(&smtpc__free, d, n); }

int smtpc_suggest_domain(const char *domain, size_t len, char out[SMTPC_ADDR_DOMAIN_SIZE]) {
  char buf[SMTPC_ADDR_DOMAIN_SIZE];
  long k;
  if (len && domain && domain[len - 1] == '.') len--;
  if ((len = lower_copy(buf, domain, len)) == 0 || known_lc(buf, len)) return 0;
  if ((k = closest(buf, len, TOTAL_BOUND)) < 0) return 0;
  if (out) memcpy(out, smtpc__popular[k].name, (size_t)smtpc__popular[k].len + 1);
  return 1;
}

/* ---- the whole address ------------------------------------------------------------------ */

void smtpc__inspect_domain(const char *d, size_t n, smtpc__domain_facts *f) {
  domain_hashes dh;
  size_t k;
  /* one hashing pass serves both tables; the generator keeps the two lists apart (no free
   * provider is, or is under, a disposable domain), so a free provider needs no disposable
   * look-ups */
  hash_domain(d, n, &dh);
  /* The slots these look-ups read are mostly out of cache (the disposable table is 1 MiB):
   * ask for all of them at once. */
  PREFETCH(&smtpc__free.slots[dh.whole & smtpc__free.mask]);
  for (k = 0; k < dh.nparents; k++)
    PREFETCH(&smtpc__disposable.slots[dh.hash[k] & smtpc__disposable.mask]);
  f->free_provider = (unsigned char)set_has_hashed(&smtpc__free, dh.whole, d, n);
  f->disposable = (unsigned char)(!f->free_provider && disposable_hashed(d, n, &dh));
  f->typo = -2;
  f->known = 1;
}

void smtpc__inspect_with(smtpc__domain_facts *f, const char *d, size_t n, const char *local,
                         size_t ln, int route, smtpc_inspection *out) {
  out->role = smtpc_is_role_local(local, ln);
  out->free_provider = f->free_provider;
  out->disposable = f->disposable;
  out->suggestion[0] = '\0';
  if (route != SMTPC_ROUTE_OK && !f->free_provider) {
    /* a listed disposable domain is a mail service of its own: only a single slip of a
     * popular domain (gmial.com) is worth a suggestion, not a mere likeness (yopmail.com) */
    long t;
    if (f->typo == -2) f->typo = (short)closest(d, n, f->disposable ? 1 : TOTAL_BOUND);
    t = f->typo;
    if (t >= 0) {
      size_t dn = smtpc__popular[t].len;
      if (ln + 1 + dn <= SMTPC_ADDR_MAX_ADDRESS) {
        memcpy(out->suggestion, local, ln);
        out->suggestion[ln] = '@';
        memcpy(out->suggestion + ln + 1, smtpc__popular[t].name, dn + 1);
      }
    }
  }
}

void smtpc_inspect_address(const smtpc_address *a, int route, smtpc_inspection *out) {
  smtpc__domain_facts f;
  size_t n = strlen(a->ascii_domain);
  out->disposable = out->role = out->free_provider = 0;
  out->suggestion[0] = '\0';
  if (a->literal) return; /* [192.0.2.1]: no domain to look up */
  smtpc__inspect_domain(a->ascii_domain, n, &f);
  smtpc__inspect_with(&f, a->ascii_domain, n, a->local_part, strlen(a->local_part), route, out);
}

int smtpc_inspect(const char *s, size_t len, int route, smtpc_inspection *out) {
  smtpc_address a;
  int rc;
  if (out == NULL) return SMTPC_EINVAL;
  if (s == NULL || (rc = smtpc_parse_address(s, len, &a, NULL)) != 0) {
    memset(out, 0, sizeof *out); /* nothing is said about an invalid address */
    return s == NULL ? SMTPC_EINVAL : rc;
  }
  smtpc_inspect_address(&a, route, out);
  return 0;
}

/* ---- the verdict policy -------------------------------------------------------------------- */

int smtpc_disposable_policy_from_name(const char *name, size_t len) {
  if (name == NULL) return -1;
  if (len == 5 && memcmp(name, "risky", 5) == 0) return SMTPC_DISPOSABLE_RISKY;
  if (len == 13 && memcmp(name, "undeliverable", 13) == 0) return SMTPC_DISPOSABLE_UNDELIVERABLE;
  return -1;
}

int smtpc_verdict_with_inspection(int verdict, const smtpc_inspection *in, int policy) {
  if (in == NULL || !in->disposable) return verdict;
  if (policy == SMTPC_DISPOSABLE_UNDELIVERABLE) return SMTPC_VERDICT_UNDELIVERABLE;
  return verdict == SMTPC_VERDICT_DELIVERABLE ? SMTPC_VERDICT_RISKY : verdict;
}

size_t smtpc_inspect_table_size(int which) {
  switch (which) {
  case 0: return smtpc__disposable.count;
  case 1: return smtpc__free.count;
  case 2: return smtpc__role.count;
  case 3: return smtpc__npopular;
  default: return 0;
  }
}
