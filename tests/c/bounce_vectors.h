/* bounce_vectors.h -- replaying a bounce vector table (tests/vectors/bounces*.tsv) through the
 * parser, for test_bounce.c and test_bounce_mta.c (header-only, cmocka, after vectors.h). A
 * table row names a sample file under tests/vectors/bounce/, a record (0: the message as a
 * whole, whose only field is "count") and a field with the value the record must carry. */
#ifndef SMTPC_TEST_BOUNCE_VECTORS_H
#define SMTPC_TEST_BOUNCE_VECTORS_H

#include "vectors.h"

/* A sample message, whole and NUL-terminated (malloc'd); fails the test when unreadable. */
static char *bvec_slurp(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/bounce/%s", SMTPC_VECTORS, name);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

/* The value of a record's field as the tables write it ("-" for none). */
static const char *bvec_value_of(const smtpc_bounce *r, const char *field, char *tmp) {
  for (int i = 0; i < SMTPC_BOUNCE_NFIELDS; i++)
    if (!strcmp(smtpc_bounce_field_name(i), field)) return r->field[i] ? r->field[i] : "-";
  if (!strcmp(field, "reply_code"))
    return r->reply_code ? (sprintf(tmp, "%d", r->reply_code), tmp) : "-";
  if (!strcmp(field, "reason")) return smtpc_reason_name(r->cls.reason);
  if (!strcmp(field, "hard_bounce")) return r->cls.hard_bounce ? "1" : "0";
  fail_msg("unknown field %s in the bounce vectors", field);
  return NULL;
}

/* Every row of table, each sample fed to p in pieces of chunk octets (one parser throughout,
 * reset between samples: streaming and reuse are part of what is checked). The table must
 * have at least min_rows rows, so an emptied table cannot pass. */
static void bvec_replay(smtpc_bounce_parser *p, const char *table, int min_rows, size_t chunk) {
  vec_table *t = vec_load(table);
  char last[256] = "";
  int nrec = 0;
  assert_non_null(p);
  assert_true(t->nrows >= min_rows);
  for (int i = 0; i < t->nrows; i++) {
    const vec_row *row = &t->rows[i];
    const char *file = vec_get(t, row, "file", NULL);
    int rec = atoi(vec_get(t, row, "record", NULL));
    const char *field = vec_get(t, row, "field", NULL), *want = vec_get(t, row, "value", NULL);
    if (strcmp(file, last)) {
      size_t len;
      char *msg = bvec_slurp(file, &len);
      smtpc_bounce_reset(p);
      for (size_t off = 0; off < len; off += chunk)
        assert_int_equal(smtpc_bounce_feed(p, msg + off, len - off < chunk ? len - off : chunk), 0);
      nrec = smtpc_bounce_finish(p);
      free(msg);
      if (nrec < 0) fail_msg("%s: %s", file, smtpc_strerror(nrec));
      snprintf(last, sizeof last, "%s", file);
    }
    if (rec == 0) {
      if (!strcmp(field, "count") && nrec != atoi(want))
        fail_msg("%s: %d records, want %s", file, nrec, want);
      continue;
    }
    if (rec > nrec) fail_msg("%s: no record %d", file, rec);
    char tmp[32];
    const char *got = bvec_value_of(smtpc_bounce_record(p, (size_t)rec - 1), field, tmp);
    if (strcmp(got, want)) fail_msg("%s #%d %s: got \"%s\", want \"%s\"", file, rec, field, got, want);
  }
  vec_free(t);
}

#endif
