/* test_decode.c -- smtpc_decode / smtpc_classify over tests/vectors/decode.tsv, plus the
 * guarantees the vectors cannot show (views into the input, bounded lines, bad arguments). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtpcode.h"
#include "vectors.h"

/* First in the group, so the tables are built here: by several threads at once, as a server
 * whose workers all load the library would. Each call answers 0, later calls too, and the
 * classifier then has its phrases (a 5.0.0 reply whose reason only the text can give). */
static void *init_thread(void *arg) {
  *(int *)arg = smtpc_library_init();
  return NULL;
}

static void library_init_is_idempotent_across_threads(void **state) {
  pthread_t th[8];
  int rc[8], i;
  smtpc_decoded d;
  static const char reply[] = "550 5.0.0 <x@example.org>... User unknown";
  (void)state;
  for (i = 0; i < 8; i++) assert_int_equal(pthread_create(&th[i], NULL, init_thread, &rc[i]), 0);
  for (i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(rc[i], 0);
  }
  assert_int_equal(smtpc_library_init(), 0);
  assert_int_equal(smtpc_decode(reply, sizeof reply - 1, NULL, &d), 0);
  assert_string_equal(smtpc_reason_name(d.cls.reason), "userunknown");
}

static void decode_vectors(void **state) {
  vec_table *t = vec_load("decode.tsv");
  int i;
  (void)state;
  assert_true(t->nrows >= 25);
  for (i = 0; i < t->nrows; i++) {
    const vec_row *row = &t->rows[i];
    const char *id = row->field[0];
    size_t len, tlen, j, used = 0;
    const char *in = vec_get(t, row, "input", &len);
    const char *err = vec_get(t, row, "error", NULL);
    const char *want_text = vec_get(t, row, "text", &tlen);
    const char *reason = vec_get(t, row, "reason", NULL);
    char text[4096];
    smtpc_decoded d;
    int rc = smtpc_decode(in, len, NULL, &d);
    if (err[0]) {
      if (rc >= 0 || strcmp(smtpc_err_name(rc), err) != 0) fail_msg("%s: want %s got %d", id, err, rc);
      continue;
    }
    if (rc != 0) fail_msg("%s: %s", id, smtpc_strerror(rc));
    if (d.code != atoi(vec_get(t, row, "code", NULL))) fail_msg("%s: code %d", id, d.code);
    if (strcmp(d.status, vec_get(t, row, "status", NULL)) != 0) fail_msg("%s: status %s", id, d.status);
    if (strcmp(d.kind, vec_get(t, row, "kind", NULL)) != 0) fail_msg("%s: kind %s", id, d.kind);
    if (d.cls.temporary != atoi(vec_get(t, row, "temporary", NULL))) fail_msg("%s: temporary %d", id, d.cls.temporary);
    if (d.nlines != (size_t)atoi(vec_get(t, row, "nlines", NULL))) fail_msg("%s: nlines %zu", id, d.nlines);
    for (j = 0; j < d.nlines; j++) {
      /* every line is a view into the input */
      assert_true(d.lines[j].ptr >= in && d.lines[j].ptr + d.lines[j].len <= in + len);
      if (j) text[used++] = '\n';
      memcpy(text + used, d.lines[j].ptr, d.lines[j].len);
      used += d.lines[j].len;
    }
    if (used != tlen || memcmp(text, want_text, tlen) != 0) fail_msg("%s: text [%.*s]", id, (int)used, text);
    if (strcmp(reason, "*") != 0 && strcmp(smtpc_reason_name(d.cls.reason), reason) != 0)
      fail_msg("%s: reason %s", id, smtpc_reason_name(d.cls.reason));
  }
  vec_free(t);
}

static void too_many_lines_is_an_error(void **state) {
  char buf[SMTPC_DECODE_MAX_LINES * 8 + 64];
  size_t i, n = 0;
  smtpc_decoded d;
  (void)state;
  for (i = 0; i < SMTPC_DECODE_MAX_LINES + 1; i++) n += (size_t)sprintf(buf + n, "550-x\n");
  assert_int_equal(smtpc_decode(buf, n, NULL, &d), SMTPC_ETOOMANYLINES);
}

static void classify_overrides_and_validates(void **state) {
  smtpc_decoded d;
  (void)state;
  assert_int_equal(smtpc_classify(550, "5.1.1", "User unknown", 12, NULL, &d), 0);
  assert_int_equal(d.code, 550);
  assert_string_equal(d.status, "5.1.1");
  assert_int_equal(d.cls.reason, SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(d.cls.hard_bounce, 1);
  assert_int_equal(smtpc_classify(0, NULL, "452 4.2.2 Mailbox full", 22, NULL, &d), 0);
  assert_int_equal(d.code, 452);
  assert_int_equal(d.cls.temporary, 1);
  assert_int_equal(smtpc_classify(451, NULL, NULL, 0, NULL, &d), 0);
  assert_string_equal(d.kind, "transient");
  assert_int_equal(smtpc_classify(0, NULL, "", 0, NULL, &d), SMTPC_EEMPTY);
  assert_int_equal(smtpc_classify(600, NULL, "x", 1, NULL, &d), SMTPC_EINVAL);
  assert_int_equal(smtpc_classify(550, "5.1", "x", 1, NULL, &d), SMTPC_EBADSTATUS);
}

static void reason_names_round_trip(void **state) {
  int i;
  (void)state;
  for (i = 0; i < SMTPC_REASON_COUNT; i++) {
    const char *n = smtpc_reason_name(i);
    assert_non_null(n);
    assert_int_equal(smtpc_reason_from_name(n, strlen(n)), i);
  }
  assert_null(smtpc_reason_name(SMTPC_REASON_COUNT));
  assert_int_equal(smtpc_reason_from_name("nosuch", 6), -1);
  assert_int_equal(smtpc_reason_from_name("userunknownx", 11), SMTPC_REASON_USERUNKNOWN);
}

static void arbitrary_bytes_never_crash(void **state) {
  /* every byte value at every position of a short reply: no crash, no read past the end */
  unsigned char buf[12];
  smtpc_decoded d;
  size_t pos;
  int v;
  (void)state;
  for (pos = 0; pos < sizeof buf; pos++) {
    for (v = 0; v < 256; v++) {
      unsigned char *heap = malloc(sizeof buf);
      memcpy(buf, "550-5.1.1 x\n", sizeof buf);
      buf[pos] = (unsigned char)v;
      memcpy(heap, buf, sizeof buf);
      (void)smtpc_decode((const char *)heap, sizeof buf, NULL, &d);
      free(heap);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(library_init_is_idempotent_across_threads),
    cmocka_unit_test(decode_vectors),
    cmocka_unit_test(too_many_lines_is_an_error),
    cmocka_unit_test(classify_overrides_and_validates),
    cmocka_unit_test(reason_names_round_trip),
    cmocka_unit_test(arbitrary_bytes_never_crash),
  };
  return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
