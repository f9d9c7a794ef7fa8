/*
 * infer.c -- the reply code a provider documents for a text that lost its own.
 *
 * decode keeps `code` as found in the text. When the text holds none, the provider was
 * recognised and its documentation pairs the words with exactly one code (rules/
 * provider_codes.def), that code is reported apart, as `code_inferred` with
 * `code_source` "provider"; `code_source` says "text" (or "given", from classify's caller)
 * when the code was there. Nothing is guessed from a status alone: the registry pairs most
 * enhanced codes with several replies (5.2.2 comes as 552 and as 550), so a status names a
 * class, not a code.
 * Runs only on the rare replies without a code, after classification; no allocation.
 */
#include <string.h>

#include "smtpcode.h"
#include "internal.h"

enum {
  IV_NONE = 0,
#define PROVIDER(id, name) IV_##id,
#include "rules/providers.def"
#undef PROVIDER
  IV_COUNT
};

static const char *const iv_name[] = {
  NULL,
#define PROVIDER(id, name) name,
#include "rules/providers.def"
#undef PROVIDER
};

typedef struct pcode {
  unsigned char provider;
  short code;
  const char *status;
  const char *phrase;
} pcode;

static const pcode pcodes[] = {
#define PCODE(pv, code, status, phrase) {IV_##pv, code, status, phrase},
#include "rules/provider_codes.def"
#undef PCODE
};

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int white(int c) { return c == ' ' || c == '\t'; }

/* Does the lower-case phrase occur in p[0..n), ignoring case and treating a run of white space
 * in the text as one space? */
static int holds(const char *p, size_t n, const char *phrase) {
  size_t i;
  for (i = 0; i < n; i++) {
    size_t j = i;
    const char *q = phrase;
    while (*q && j < n) {
      if (*q == ' ' && white(p[j])) {
        while (j < n && white(p[j])) j++;
        q++;
      } else if (lower((unsigned char)p[j]) == *q) {
        j++;
        q++;
      } else {
        break;
      }
    }
    if (*q == '\0') return 1;
  }
  return 0;
}

void smtpc__infer_code(smtpc_decoded *d, int given) {
  size_t i, k;
  int pv = IV_NONE, found = 0;
  d->code_inferred = 0;
  if (d->code) {
    d->code_source = given ? "given" : "text";
    return;
  }
  d->code_source = NULL;
  if (d->cls.provider == NULL) return;
  for (i = 1; i < IV_COUNT; i++)
    if (strcmp(iv_name[i], d->cls.provider) == 0) pv = (int)i;
  if (pv == IV_NONE) return;
  for (i = 0; i < sizeof pcodes / sizeof pcodes[0]; i++) {
    const pcode *e = &pcodes[i];
    if (e->provider != pv) continue;
    /* a status in hand must be the documented one */
    if (d->status[0] && strcmp(d->status, e->status) != 0) continue;
    for (k = 0; k < d->nlines; k++) {
      if (!holds(d->lines[k].ptr, d->lines[k].len, e->phrase)) continue;
      if (found && found != e->code) { /* two documented codes fit: infer nothing */
        d->code_inferred = 0;
        return;
      }
      found = e->code;
      break;
    }
  }
  if (found) {
    d->code_inferred = found;
    d->code_source = "provider";
  }
}
