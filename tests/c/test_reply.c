/* test_reply.c -- the reply reader: shared stream vectors at every split point, limits, sticky
 * errors, and the zero-copy parser's views. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtpcode.h"
#include "vectors.h"

/* Feed `len` bytes in the pieces given by cut points and describe what came out:
 * "220:1,250:4" plus "!NAME@offset" when the stream failed. */
static void run_stream(const char *s, size_t len, const size_t *cuts, int ncuts, char *out, size_t cap) {
  smtpc_reader *r = smtpc_reader_new(NULL);
  size_t from = 0, used = 0;
  int i, rc = 0;
  assert_non_null(r);
  out[0] = '\0';
  for (i = 0; i <= ncuts && rc >= 0; i++) {
    size_t to = i < ncuts ? cuts[i] : len;
    smtpc_reply rep;
    rc = smtpc_reader_feed(r, s + from, to - from);
    from = to;
    while (rc >= 0 && (rc = smtpc_reader_next(r, &rep)) == 1) {
      used += (size_t)snprintf(out + used, cap - used, "%s%d:%zu", used ? "," : "", rep.code, rep.nlines);
    }
  }
  if (rc < 0) {
    uint64_t at = 0;
    assert_int_equal(smtpc_reader_error(r, &at), rc);
    snprintf(out + used, cap - used, "!%s@%llu", smtpc_err_name(rc), (unsigned long long)at);
  }
  smtpc_reader_free(r);
}

static void expected_of(const vec_table *t, const vec_row *row, char *out, size_t cap) {
  const char *err = vec_get(t, row, "error", NULL);
  int n = snprintf(out, cap, "%s", vec_get(t, row, "replies", NULL));
  if (err[0]) snprintf(out + n, cap - (size_t)n, "!%s@%s", err, vec_get(t, row, "error_offset", NULL));
}

static void stream_vectors_every_split(void **state) {
  vec_table *t = vec_load("streams.tsv");
  int i;
  (void)state;
  assert_true(t->nrows >= 10);
  for (i = 0; i < t->nrows; i++) {
    size_t len, a, b;
    const char *s = vec_get(t, &t->rows[i], "stream", &len);
    char want[512], got[512];
    expected_of(t, &t->rows[i], want, sizeof want);
    for (a = 0; a <= len; a++) { /* one cut at every point */
      size_t cuts[1] = {a};
      run_stream(s, len, cuts, 1, got, sizeof got);
      if (strcmp(want, got) != 0) fail_msg("%s split at %zu: want %s got %s", t->rows[i].field[0], a, want, got);
    }
    for (a = 0; a <= len; a++) { /* two cuts: every pair */
      for (b = a; b <= len; b++) {
        size_t cuts[2] = {a, b};
        run_stream(s, len, cuts, 2, got, sizeof got);
        if (strcmp(want, got) != 0) fail_msg("%s split at %zu,%zu: want %s got %s", t->rows[i].field[0], a, b, want, got);
      }
    }
    { /* byte by byte */
      size_t cuts[1024];
      int n = 0;
      for (a = 1; a < len && n < 1024; a++) cuts[n++] = a;
      run_stream(s, len, cuts, n, got, sizeof got);
      assert_string_equal(want, got);
    }
  }
  vec_free(t);
}

static void views_point_into_buffer(void **state) {
  const char *s = "250-first line\r\n250-2.0.0 second\r\n250 2.0.0 third\r\n";
  smtpc_span lines[SMTPC_MAX_LINES_DEFAULT];
  smtpc_reply rep;
  long n = smtpc_parse_reply(s, strlen(s), NULL, &rep, lines, NULL);
  (void)state;
  assert_int_equal(n, (long)strlen(s));
  assert_int_equal(rep.code, 250);
  assert_int_equal(rep.nlines, 3);
  assert_ptr_equal(rep.lines[0].ptr, s + 4);
  assert_int_equal(rep.lines[0].len, strlen("first line"));
  assert_memory_equal(rep.lines[1].ptr, "second", 6);
  assert_int_equal(rep.lines[1].len, 6);
  assert_string_equal(rep.status, "2.0.0");
  assert_int_equal(rep.size, strlen(s));
}

static void status_taken_only_at_line_start(void **state) {
  const char *s = "550 user 5.1.1 unknown\r\n";
  smtpc_span lines[SMTPC_MAX_LINES_DEFAULT];
  smtpc_reply rep;
  (void)state;
  assert_true(smtpc_parse_reply(s, strlen(s), NULL, &rep, lines, NULL) > 0);
  assert_string_equal(rep.status, "");
  assert_int_equal(rep.lines[0].len, strlen("user 5.1.1 unknown"));
}

static void line_limit(void **state) {
  smtpc_limits lim = {64, 0, 0};
  smtpc_reader *r = smtpc_reader_new(&lim);
  char line[200];
  smtpc_reply rep;
  uint64_t at;
  (void)state;
  memset(line, 'a', sizeof line);
  memcpy(line, "250 ", 4);
  /* 63 octets plus LF fits exactly; one more does not */
  line[63] = '\n';
  assert_int_equal(smtpc_reader_feed(r, line, 64), 0);
  assert_int_equal(smtpc_reader_next(r, &rep), 1);
  assert_int_equal(rep.lines[0].len, 59);
  line[63] = 'a';
  assert_int_equal(smtpc_reader_feed(r, line, 100), 0);
  assert_int_equal(smtpc_reader_next(r, &rep), SMTPC_ELINETOOLONG);
  assert_int_equal(smtpc_reader_error(r, &at), SMTPC_ELINETOOLONG);
  assert_int_equal(at, 64 + 64);
  /* sticky: feeding and reading keep failing */
  assert_int_equal(smtpc_reader_feed(r, "250 ok\r\n", 8), SMTPC_ELINETOOLONG);
  assert_int_equal(smtpc_reader_next(r, &rep), SMTPC_ELINETOOLONG);
  smtpc_reader_free(r);
}

static void line_limit_without_line_end(void **state) {
  /* an endless line is reported as soon as it passes the bound, not when it ends */
  smtpc_limits lim = {64, 0, 0};
  smtpc_reader *r = smtpc_reader_new(&lim);
  char chunk[16];
  smtpc_reply rep;
  int i, rc = 0;
  (void)state;
  memcpy(chunk, "250 ", 4);
  memset(chunk + 4, 'x', 12);
  assert_int_equal(smtpc_reader_feed(r, chunk, 16), 0);
  for (i = 0; i < 10 && rc == 0; i++) {
    memset(chunk, 'x', 16);
    if ((rc = smtpc_reader_next(r, &rep)) == 0) rc = smtpc_reader_feed(r, chunk, 16);
  }
  assert_int_equal(rc, SMTPC_ELINETOOLONG);
  assert_true(smtpc_reader_pending(r) <= 96);
  smtpc_reader_free(r);
}

static void line_count_limit(void **state) {
  smtpc_limits lim = {0, 4, 0};
  smtpc_reader *r = smtpc_reader_new(&lim);
  smtpc_reply rep;
  uint64_t at;
  const char *ok = "250-1\r\n250-2\r\n250-3\r\n250 4\r\n";
  const char *bad = "250-1\r\n250-2\r\n250-3\r\n250-4\r\n250 5\r\n";
  (void)state;
  assert_int_equal(smtpc_reader_feed(r, ok, strlen(ok)), 0);
  assert_int_equal(smtpc_reader_next(r, &rep), 1);
  assert_int_equal(rep.nlines, 4);
  assert_int_equal(smtpc_reader_feed(r, bad, strlen(bad)), 0);
  assert_int_equal(smtpc_reader_next(r, &rep), SMTPC_ETOOMANYLINES);
  assert_int_equal(smtpc_reader_error(r, &at), SMTPC_ETOOMANYLINES);
  assert_int_equal(at, strlen(ok) + 28); /* the fifth line of the second reply */
  smtpc_reader_free(r);
}

static void endless_multiline_is_bounded(void **state) {
  smtpc_reader *r = smtpc_reader_new(NULL);
  smtpc_reply rep;
  int i, rc = 0;
  (void)state;
  for (i = 0; i < 100000 && rc == 0; i++) {
    rc = smtpc_reader_feed(r, "250-more and more and more\r\n", 28);
    if (rc == 0) rc = smtpc_reader_next(r, &rep);
  }
  assert_int_equal(rc, SMTPC_ETOOMANYLINES);
  assert_true(i <= SMTPC_MAX_LINES_DEFAULT + 1);
  smtpc_reader_free(r);
}

static void reply_size_limit(void **state) {
  smtpc_limits lim = {100, 100, 300};
  smtpc_reader *r = smtpc_reader_new(&lim);
  smtpc_reply rep;
  char line[64];
  int i, rc = 0;
  (void)state;
  memset(line, 'y', sizeof line);
  memcpy(line, "250-", 4);
  line[62] = '\r';
  line[63] = '\n';
  for (i = 0; i < 10 && rc == 0; i++) {
    rc = smtpc_reader_feed(r, line, 64);
    if (rc == 0) rc = smtpc_reader_next(r, &rep);
  }
  assert_int_equal(rc, SMTPC_ETOOBIG);
  smtpc_reader_free(r);
}

static void huge_single_feed_is_refused(void **state) {
  smtpc_reader *r = smtpc_reader_new(NULL);
  size_t n = 8u << 20;
  char *big = malloc(n);
  (void)state;
  memset(big, 'z', n);
  memcpy(big, "250 ", 4);
  assert_int_equal(smtpc_reader_feed(r, big, n), SMTPC_ETOOBIG);
  assert_true(smtpc_reader_pending(r) == 0);
  free(big);
  smtpc_reader_free(r);
}

static void pending_counts_partial(void **state) {
  smtpc_reader *r = smtpc_reader_new(NULL);
  smtpc_reply rep;
  (void)state;
  assert_int_equal(smtpc_reader_feed(r, "250 ok\r\n250-par", 15), 0);
  assert_int_equal(smtpc_reader_next(r, &rep), 1);
  assert_int_equal(smtpc_reader_next(r, &rep), 0);
  assert_int_equal(smtpc_reader_pending(r), 7);
  smtpc_reader_free(r);
}

static void status_parse_forms(void **state) {
  char st[SMTPC_STATUS_SIZE];
  (void)state;
  assert_int_equal(smtpc_status_parse("5.1.1", 5, st), 5);
  assert_string_equal(st, "5.1.1");
  assert_int_equal(smtpc_status_parse("4.7.030 x", 9, st), 7);
  assert_string_equal(st, "4.7.30");
  assert_int_equal(smtpc_status_parse("2.0.0.", 6, st), 5);
  assert_int_equal(smtpc_status_parse("5.7.1.2", 7, st), SMTPC_EBADSTATUS);
  assert_int_equal(smtpc_status_parse("3.1.1", 5, st), SMTPC_EBADSTATUS);
  assert_int_equal(smtpc_status_parse("5.1", 3, st), SMTPC_EBADSTATUS);
  assert_int_equal(smtpc_status_parse("5..1", 4, st), SMTPC_EBADSTATUS);
  assert_int_equal(smtpc_status_parse("5.1.1234", 8, st), SMTPC_EBADSTATUS);
  assert_int_equal(smtpc_status_parse("5.999.999", 9, st), 9);
  assert_string_equal(st, "5.999.999");
}

static void error_names_and_messages(void **state) {
  (void)state;
  assert_string_equal(smtpc_err_name(SMTPC_EBADCODE), "BADCODE");
  assert_string_equal(smtpc_strerror(SMTPC_ECODECHANGE), "reply code changed inside a multi-line reply");
  assert_string_equal(smtpc_strerror(0), "success");
  assert_string_equal(smtpc_strerror(-10000), "unknown error");
  assert_string_equal(smtpc_strerror(5), "unknown error");
  assert_true(SMTPC_ENOMEM == -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(stream_vectors_every_split),
    cmocka_unit_test(views_point_into_buffer),
    cmocka_unit_test(status_taken_only_at_line_start),
    cmocka_unit_test(line_limit),
    cmocka_unit_test(line_limit_without_line_end),
    cmocka_unit_test(line_count_limit),
    cmocka_unit_test(endless_multiline_is_bounded),
    cmocka_unit_test(reply_size_limit),
    cmocka_unit_test(huge_single_feed_is_refused),
    cmocka_unit_test(pending_counts_partial),
    cmocka_unit_test(status_parse_forms),
    cmocka_unit_test(error_names_and_messages),
  };
  return cmocka_run_group_tests_name("reply", tests, NULL, NULL);
}
