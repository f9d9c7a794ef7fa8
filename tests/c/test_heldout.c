/* test_heldout.c -- smtpc_decode on text the classifier was not built from (issue 10):
 * tests/vectors/heldout.tsv (thresholds, every miss printed) and tests/vectors/framing.tsv
 * (code, status, command and host found inside relaying MTAs' framing; text as views). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtpcode.h"
#include "vectors.h"

static const char *nz(const char *s) { return s && s[0] ? s : NULL; }

/* 1 for a held-back row ('h<set>x-' id: drawn at random before its set was scored, never given a
 * rule; see heldout.tsv's header and tests/python/test_heldout.py); 2 for another row of the
 * seventeenth set on ('h17-' ...: a rule only where a second real text was found); else 0. */
static int row_kind(const char *id) {
  const char *p = id;
  int set = 0;
  if (*p++ != 'h' || *p < '0' || *p > '9') return 0;
  while (*p >= '0' && *p <= '9') set = set * 10 + (*p++ - '0');
  if (p[0] == 'x' && p[1] == '-') return 1;
  return p[0] == '-' && set >= 17 ? 2 : 0;
}

/* The rows of the first sixteen sets with rules for their misses hold 95% / 99%; the held-back
 * rows a floor under their last measured figure (63.0% / 93.9% over 1005 rows), 62% / 90%, and so
 * do the other rows of the seventeenth set on (72.9% / 97.0% over 775 rows). See
 * tests/python/test_heldout.py for why the floor moved. */
static void held_out(void **state) {
  vec_table *t = vec_load("heldout.tsv");
  int i, n[3] = {0, 0, 0}, reason_ok[3] = {0, 0, 0}, hard_ok[3] = {0, 0, 0};
  (void)state;
  for (i = 0; i < t->nrows; i++) {
    const vec_row *row = &t->rows[i];
    int k = row_kind(row->field[0]);
    size_t len;
    const char *text = vec_get(t, row, "text", &len);
    smtpc_context ctx = {nz(vec_get(t, row, "command", NULL)), nz(vec_get(t, row, "host", NULL))};
    smtpc_decoded d;
    int ok_reason, ok_hard;
    assert_int_equal(smtpc_decode(text, len, &ctx, &d), 0);
    ok_reason = strcmp(smtpc_reason_name(d.cls.reason), vec_get(t, row, "reason", NULL)) == 0;
    ok_hard = d.cls.hard_bounce == atoi(vec_get(t, row, "hard_bounce", NULL));
    n[k]++;
    reason_ok[k] += ok_reason;
    hard_ok[k] += ok_hard;
    /* a held-back row's miss by its id alone: those rows are measured, not read */
    if (!ok_reason || !ok_hard) {
      if (k == 1)
        print_message("miss %s\n", row->field[0]);
      else
        print_message("miss %s: want %s got %s hb=%d\n", row->field[0], vec_get(t, row, "reason", NULL),
                      smtpc_reason_name(d.cls.reason), d.cls.hard_bounce);
    }
    if (d.cls.hard_bounce) assert_false(d.cls.retry);
  }
  print_message("held-out with rules %d: reasons %d, hard bounce %d; held back %d: reasons %d, hard bounce %d; "
                "sets 17 on %d: reasons %d, hard bounce %d\n",
                n[0], reason_ok[0], hard_ok[0], n[1], reason_ok[1], hard_ok[1], n[2], reason_ok[2], hard_ok[2]);
  assert_true(n[0] >= 150 && n[1] >= 90 && n[2] >= 60);
  assert_true(reason_ok[0] * 100 >= n[0] * 95);
  assert_true(hard_ok[0] * 100 >= n[0] * 99);
  for (i = 1; i < 3; i++) {
    assert_true(reason_ok[i] * 100 >= n[i] * 62);
    assert_true(hard_ok[i] * 100 >= n[i] * 90);
  }
  vec_free(t);
}

static void framing(void **state) {
  vec_table *t = vec_load("framing.tsv");
  int i;
  (void)state;
  assert_true(t->nrows >= 20);
  for (i = 0; i < t->nrows; i++) {
    const vec_row *row = &t->rows[i];
    const char *id = row->field[0];
    size_t len, j, used = 0, hl;
    const char *in = vec_get(t, row, "input", &len);
    const char *want_cmd = vec_get(t, row, "command", NULL);
    const char *want_host = vec_get(t, row, "host", &hl);
    char text[4096];
    smtpc_decoded d;
    if (smtpc_decode(in, len, NULL, &d) != 0) fail_msg("%s: decode failed", id);
    if (d.code != atoi(vec_get(t, row, "code", NULL))) fail_msg("%s: code %d", id, d.code);
    if (strcmp(d.status, vec_get(t, row, "status", NULL)) != 0) fail_msg("%s: status %s", id, d.status);
    if (want_cmd[0] ? (d.cls.command == NULL || strcmp(d.cls.command, want_cmd) != 0) : d.cls.command != NULL)
      fail_msg("%s: command %s", id, d.cls.command ? d.cls.command : "(none)");
    if (d.frame_host.len != hl || (hl && memcmp(d.frame_host.ptr, want_host, hl) != 0))
      fail_msg("%s: host %.*s", id, (int)d.frame_host.len, d.frame_host.ptr ? d.frame_host.ptr : "");
    /* the frame, the host and every line are views into the input */
    if (d.frame.len) assert_true(d.frame.ptr >= in && d.frame.ptr + d.frame.len <= in + len);
    if (d.frame_host.len) assert_true(d.frame_host.ptr >= in && d.frame_host.ptr + d.frame_host.len <= in + len);
    for (j = 0; j < d.nlines; j++) {
      assert_true(d.lines[j].ptr >= in && d.lines[j].ptr + d.lines[j].len <= in + len);
      assert_true(used + d.lines[j].len + 1 < sizeof text);
      if (j) text[used++] = '\n';
      memcpy(text + used, d.lines[j].ptr, d.lines[j].len);
      used += d.lines[j].len;
    }
    text[used] = '\0';
    if (strcmp(text, vec_get(t, row, "text", NULL)) != 0) fail_msg("%s: text '%s'", id, text);
  }
  vec_free(t);
}

/* code_source / code_inferred: tests/vectors/inferred_codes.tsv (Google's documented pairs). */
static void inferred_codes(void **state) {
  vec_table *t = vec_load("inferred_codes.tsv");
  int i;
  (void)state;
  assert_true(t->nrows >= 15);
  for (i = 0; i < t->nrows; i++) {
    const vec_row *row = &t->rows[i];
    const char *id = row->field[0], *want_src = vec_get(t, row, "code_source", NULL);
    size_t len;
    const char *text = vec_get(t, row, "text", &len);
    smtpc_context ctx = {NULL, nz(vec_get(t, row, "host", NULL))};
    smtpc_decoded d;
    if (smtpc_decode(text, len, &ctx, &d) != 0) fail_msg("%s: decode failed", id);
    if (d.code != atoi(vec_get(t, row, "code", NULL))) fail_msg("%s: code %d", id, d.code);
    if (d.code_inferred != atoi(vec_get(t, row, "code_inferred", NULL)))
      fail_msg("%s: code_inferred %d", id, d.code_inferred);
    if (want_src[0] ? (d.code_source == NULL || strcmp(d.code_source, want_src) != 0) : d.code_source != NULL)
      fail_msg("%s: code_source %s", id, d.code_source ? d.code_source : "(none)");
  }
  vec_free(t);
  /* a code the caller gives is "given", and nothing is inferred beside it */
  {
    smtpc_decoded d;
    const char *txt = "The email account that you tried to reach does not exist. - gsmtp";
    assert_int_equal(smtpc_classify(550, NULL, txt, strlen(txt), NULL, &d), 0);
    assert_string_equal(d.code_source, "given");
    assert_int_equal(d.code_inferred, 0);
    assert_int_equal(smtpc_classify(0, "5.1.1", txt, strlen(txt), NULL, &d), 0);
    assert_string_equal(d.code_source, "provider");
    assert_int_equal(d.code_inferred, 550);
    assert_int_equal(d.code, 0);
  }
}

/* Framing is looked for only while no code was found: a reply that starts with its code keeps
 * later codes in its text; a code needs text after it and a boundary before it; only failure
 * codes (4xx/5xx) start a framed reply. */
static void framing_edges(void **state) {
  static const struct { const char *in; int code; size_t nlines; } cases[] = {
    {"550 5.1.1 see host x[1.2.3.4] said: 450 4.7.1 later", 550, 1},
    {"said: 550", 0, 1},
    {"said: 55 x", 0, 1},
    {"#550", 0, 1},
    {"ref#550 x", 0, 1},
    {"x '550 '", 550, 1},
    {"[550 ]", 550, 1},
    {"host [", 0, 1},
    {"talking to ", 0, 1},
    {"(in reply to RCPT TO command)", 0, 1},
    {"a: 450-4.7.1 b 450 4.7.1 c", 450, 2},
    {">>> RCPT To:<a>\n<<< 250 ok\n<<< 550 no", 550, 1},
    {"queued as 4512 and 550x", 0, 1},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    smtpc_decoded d;
    assert_int_equal(smtpc_decode(cases[i].in, strlen(cases[i].in), NULL, &d), 0);
    if (d.code != cases[i].code || d.nlines != cases[i].nlines)
      fail_msg("'%s': code %d, %zu lines", cases[i].in, d.code, d.nlines);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(held_out),
    cmocka_unit_test(framing),
    cmocka_unit_test(inferred_codes),
    cmocka_unit_test(framing_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
