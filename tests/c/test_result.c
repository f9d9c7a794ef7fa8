/* test_result.c -- smtpc_result_dup/smtpc_result_free: a copy keeps every field after the
 * original's memory is gone (here: overwritten), and shares no pointer with it. Runs under
 * ASan/valgrind in the sanitizer and valgrind runs, which catch overruns of the one block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtpcode.h"

/* The original's storage, all of it in one buffer that the tests scribble over. */
typedef struct src {
  char address[32];
  char line0[40], line1[40];
  smtpc_span lines[2];
  char mx[32], mx_addr[16], detail[32], provider[16];
  char transcript[48];
} src;

static smtpc_result make(src *s) {
  smtpc_result r;
  memset(&r, 0, sizeof r);
  memcpy(s->address, "us\0er@example.test", 18); /* an embedded NUL: only len counts */
  strcpy(s->line0, "5.1.1 <user@example.test>: unknown");
  strcpy(s->line1, "second line");
  s->lines[0].ptr = s->line0;
  s->lines[0].len = strlen(s->line0);
  s->lines[1].ptr = s->line1;
  s->lines[1].len = 6; /* a view shorter than its buffer: "second" */
  strcpy(s->mx, "mx1.example.test");
  strcpy(s->mx_addr, "127.0.0.1");
  strcpy(s->detail, "some detail");
  strcpy(s->provider, "google");
  memcpy(s->transcript, "S: 220 hi\r\n\0C: EHLO x\r\n", 23);
  r.tag = 77;
  r.address = s->address;
  r.address_len = 18;
  r.verdict = SMTPC_VERDICT_UNDELIVERABLE;
  r.reason = SMTPC_REASON_USERUNKNOWN;
  r.reply.code = 550;
  strcpy(r.reply.status, "5.1.1");
  r.reply.nlines = 2;
  r.reply.lines = s->lines;
  r.reply.size = 99;
  r.cls.reason = SMTPC_REASON_USERUNKNOWN;
  r.cls.hard_bounce = 1;
  r.cls.provider = s->provider;
  r.mx = s->mx;
  r.mx_addr = s->mx_addr;
  r.catch_all = 0;
  r.tls = 1;
  r.greylisted = 0;
  r.error = SMTPC_ETIMEOUT;
  r.detail = s->detail;
  r.duration = 1.25;
  r.transcript = s->transcript;
  r.transcript_len = 23;
  return r;
}

static int inside(const void *p, const src *s) {
  return (const char *)p >= (const char *)s && (const char *)p < (const char *)(s + 1);
}

static void test_dup_copies_everything(void **state) {
  src *s = malloc(sizeof *s);
  smtpc_result r, *c;
  (void)state;
  assert_non_null(s);
  r = make(s);
  c = smtpc_result_dup(&r);
  assert_non_null(c);
  memset(s, 'X', sizeof *s); /* the engine's memory is gone after the callback */
  free(s);
  assert_int_equal(c->tag, 77);
  assert_int_equal(c->address_len, 18);
  assert_memory_equal(c->address, "us\0er@example.test", 18);
  assert_int_equal(c->address[18], '\0');
  assert_int_equal(c->verdict, SMTPC_VERDICT_UNDELIVERABLE);
  assert_int_equal(c->reason, SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(c->reply.code, 550);
  assert_string_equal(c->reply.status, "5.1.1");
  assert_int_equal(c->reply.size, 99);
  assert_int_equal(c->reply.nlines, 2);
  assert_int_equal(c->reply.lines[0].len, strlen("5.1.1 <user@example.test>: unknown"));
  assert_memory_equal(c->reply.lines[0].ptr, "5.1.1 <user@example.test>: unknown",
                      c->reply.lines[0].len);
  assert_int_equal(c->reply.lines[1].len, 6);
  assert_string_equal(c->reply.lines[1].ptr, "second"); /* NUL-terminated at the view's end */
  assert_int_equal(c->cls.reason, SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(c->cls.hard_bounce, 1);
  assert_string_equal(c->cls.provider, "google");
  assert_string_equal(c->mx, "mx1.example.test");
  assert_string_equal(c->mx_addr, "127.0.0.1");
  assert_string_equal(c->detail, "some detail");
  assert_int_equal(c->catch_all, 0);
  assert_int_equal(c->tls, 1);
  assert_int_equal(c->error, SMTPC_ETIMEOUT);
  assert_true(c->duration == 1.25);
  assert_int_equal(c->transcript_len, 23);
  assert_memory_equal(c->transcript, "S: 220 hi\r\n\0C: EHLO x\r\n", 23);
  smtpc_result_free(c);
}

static void test_dup_shares_no_pointer(void **state) {
  src s;
  smtpc_result r, *c;
  (void)state;
  r = make(&s);
  c = smtpc_result_dup(&r);
  assert_non_null(c);
  assert_false(inside(c->address, &s));
  assert_false(inside(c->reply.lines, &s));
  assert_false(inside(c->reply.lines[0].ptr, &s));
  assert_false(inside(c->reply.lines[1].ptr, &s));
  assert_false(inside(c->mx, &s));
  assert_false(inside(c->mx_addr, &s));
  assert_false(inside(c->detail, &s));
  assert_false(inside(c->cls.provider, &s));
  assert_false(inside(c->transcript, &s));
  /* one block: every view lies after the header */
  assert_true((const char *)c->reply.lines > (const char *)c);
  assert_true(c->address > (const char *)c->reply.lines);
  smtpc_result_free(c);
}

static void test_dup_absent_fields_stay_absent(void **state) {
  smtpc_result r, *c;
  src s;
  (void)state;
  r = make(&s);
  r.mx = r.mx_addr = r.detail = r.cls.provider = NULL;
  r.transcript = NULL;
  r.transcript_len = 0;
  r.reply.code = 0; /* no reply: its lines are not kept, whatever they say */
  r.reply.status[0] = '\0';
  c = smtpc_result_dup(&r);
  assert_non_null(c);
  assert_null(c->mx);
  assert_null(c->mx_addr);
  assert_null(c->detail);
  assert_null(c->cls.provider);
  assert_null(c->transcript);
  assert_int_equal(c->transcript_len, 0);
  assert_int_equal(c->reply.nlines, 0);
  assert_null(c->reply.lines);
  assert_memory_equal(c->address, "us\0er@example.test", 18);
  smtpc_result_free(c);
}

static void test_dup_empty_address_and_null(void **state) {
  smtpc_result r, *c;
  (void)state;
  memset(&r, 0, sizeof r);
  r.address = "";
  r.address_len = 0;
  r.catch_all = -1;
  c = smtpc_result_dup(&r);
  assert_non_null(c);
  assert_non_null(c->address);
  assert_int_equal(c->address_len, 0);
  assert_string_equal(c->address, "");
  assert_int_equal(c->catch_all, -1);
  smtpc_result_free(c);
  assert_null(smtpc_result_dup(NULL));
  smtpc_result_free(NULL);
}

/* A full-size reply: many long lines, all kept. */
static void test_dup_many_lines(void **state) {
  enum { N = 100 };
  static char text[N][500];
  smtpc_span lines[N];
  smtpc_result r, *c;
  size_t i;
  (void)state;
  memset(&r, 0, sizeof r);
  for (i = 0; i < N; i++) {
    memset(text[i], 'a' + (int)(i % 26), sizeof text[i]);
    lines[i].ptr = text[i];
    lines[i].len = sizeof text[i];
  }
  r.address = "a@b";
  r.address_len = 3;
  r.reply.code = 250;
  r.reply.nlines = N;
  r.reply.lines = lines;
  c = smtpc_result_dup(&r);
  assert_non_null(c);
  for (i = 0; i < N; i++) memset(text[i], 0, sizeof text[i]);
  assert_int_equal(c->reply.nlines, N);
  for (i = 0; i < N; i++) {
    assert_int_equal(c->reply.lines[i].len, 500);
    assert_int_equal(c->reply.lines[i].ptr[0], 'a' + (int)(i % 26));
    assert_int_equal(c->reply.lines[i].ptr[499], 'a' + (int)(i % 26));
    assert_int_equal(c->reply.lines[i].ptr[500], '\0');
  }
  smtpc_result_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dup_copies_everything),
    cmocka_unit_test(test_dup_shares_no_pointer),
    cmocka_unit_test(test_dup_absent_fields_stay_absent),
    cmocka_unit_test(test_dup_empty_address_and_null),
    cmocka_unit_test(test_dup_many_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
