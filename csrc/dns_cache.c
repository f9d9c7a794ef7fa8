/* dns_cache.c -- the resolver's caches (routes by domain, addresses by host): a chained hash
 * table plus a list in insertion order, so that a full cache evicts its oldest entry. Entries
 * are intrusive (smtpc__centry at their start); expiry is checked on lookup. */
#include "dns_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *s) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211u;
  return h;
}

int smtpc__cache_init(smtpc__cache *c, size_t max, void (*drop)(smtpc__centry *e)) {
  memset(c, 0, sizeof(*c));
  c->max = max;
  c->drop = drop;
  if (max == 0) return 0;
  for (c->nbuckets = 16; c->nbuckets < max && c->nbuckets < 65536;) c->nbuckets *= 2;
  c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
  return c->buckets ? 0 : SMTPC_ENOMEM;
}

static smtpc__centry **slot_of(smtpc__cache *c, const char *key) {
  smtpc__centry **p = &c->buckets[hash_key(key) & (c->nbuckets - 1)];
  while (*p && strcmp((*p)->key, key) != 0) p = &(*p)->hnext;
  return p;
}

static void remove_at(smtpc__cache *c, smtpc__centry **slot) {
  smtpc__centry *e = *slot;
  *slot = e->hnext;
  if (e->older) e->older->newer = e->newer; else c->oldest = e->newer;
  if (e->newer) e->newer->older = e->older; else c->newest = e->older;
  c->count--;
  c->drop(e);
}

smtpc__centry *smtpc__cache_get(smtpc__cache *c, const char *key, uint64_t now) {
  smtpc__centry **slot;
  if (c->max == 0) return NULL;
  slot = slot_of(c, key);
  if (*slot == NULL) return NULL;
  if ((*slot)->expires <= now) {
    remove_at(c, slot);
    return NULL;
  }
  return *slot;
}

void smtpc__cache_put(smtpc__cache *c, smtpc__centry *e, uint64_t expires) {
  smtpc__centry **slot;
  if (c->max == 0) {
    c->drop(e);
    return;
  }
  if (*(slot = slot_of(c, e->key)) != NULL) remove_at(c, slot);
  while (c->count >= c->max) remove_at(c, slot_of(c, c->oldest->key));
  slot = slot_of(c, e->key);
  e->expires = expires;
  e->hnext = NULL;
  e->older = c->newest;
  e->newer = NULL;
  if (c->newest) c->newest->newer = e; else c->oldest = e;
  c->newest = e;
  *slot = e;
  c->count++;
}

void smtpc__cache_clear(smtpc__cache *c) {
  while (c->oldest) remove_at(c, slot_of(c, c->oldest->key));
}

void smtpc__cache_free(smtpc__cache *c) {
  smtpc__cache_clear(c);
  free(c->buckets);
  c->buckets = NULL;
}
