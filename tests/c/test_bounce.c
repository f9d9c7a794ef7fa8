/* test_bounce.c -- the bounce parser over tests/vectors/bounces.tsv, plus what the vectors
 * cannot show: every limit with its offset, streaming (any chunking gives the same records),
 * parser reuse, the mbox splitter, and bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtpcode.h"
#include "bounce_vectors.h"

static void vectors_whole(void **state) {
  (void)state;
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  bvec_replay(p, "bounces.tsv", 40, 1u << 30);
  smtpc_bounce_free(p);
}

/* Streaming: one octet at a time gives the same records (and reuses one parser throughout). */
static void vectors_bytewise(void **state) {
  (void)state;
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  bvec_replay(p, "bounces.tsv", 40, 1);
  bvec_replay(p, "bounces.tsv", 40, 7);
  smtpc_bounce_free(p);
}

static int parse_str(smtpc_bounce_parser *p, const char *s, uint64_t *off) {
  int rc = smtpc_bounce_parse(p, s, strlen(s));
  smtpc_bounce_error(p, off);
  return rc;
}

static void limit_line(void **state) {
  (void)state;
  smtpc_bounce_limits lim = {.max_line = 100};
  smtpc_bounce_parser *p = smtpc_bounce_new(&lim);
  char msg[400];
  memset(msg, 0, sizeof msg);
  strcpy(msg, "From: a@example.com\nSubject: x\n\n");
  size_t at = strlen(msg);
  memset(msg + at, 'y', 150);
  uint64_t off;
  assert_int_equal(parse_str(p, msg, &off), SMTPC_EMSGLINE);
  assert_int_equal(off, at); /* the line that is too long starts there */
  /* the same message is fine with the default bound, and the parser is reusable */
  smtpc_bounce_free(p);
  p = smtpc_bounce_new(NULL);
  assert_int_equal(parse_str(p, msg, &off), 0);
  smtpc_bounce_free(p);
}

static void limit_headers(void **state) {
  (void)state;
  smtpc_bounce_limits lim = {.max_headers = 5};
  smtpc_bounce_parser *p = smtpc_bounce_new(&lim);
  const char *msg = "A: 1\nB: 2\nC: 3\nD: 4\nE: 5\nF: 6\nG: 7\n\nbody\n";
  uint64_t off;
  assert_int_equal(parse_str(p, msg, &off), SMTPC_ETOOMANYHEADERS);
  assert_int_equal(off, 25); /* "F: 6": five fields are allowed, the sixth is one too many */
  assert_int_equal(parse_str(p, "A: 1\nB: 2\nC: 3\nD: 4\nE: 5\n\nbody\n", &off), 0);
  smtpc_bounce_free(p);
}

static void limit_depth_and_parts(void **state) {
  (void)state;
  /* multiparts nested 40 deep */
  char *msg = malloc(1 << 16), *w = msg;
  w += sprintf(w, "Content-Type: multipart/mixed; boundary=b0\n\n");
  for (int i = 1; i < 40; i++) w += sprintf(w, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i - 1, i);
  w += sprintf(w, "--b39\n\ntext\n");
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  uint64_t off;
  assert_int_equal(parse_str(p, msg, &off), SMTPC_ETOODEEP);
  assert_true(off > 0 && off < strlen(msg));
  /* 300 sibling parts */
  w = msg;
  w += sprintf(w, "Content-Type: multipart/mixed; boundary=z\n\n");
  for (int i = 0; i < 300; i++) w += sprintf(w, "--z\n\npart %d\n", i);
  w += sprintf(w, "--z--\n");
  assert_int_equal(parse_str(p, msg, &off), SMTPC_ETOOMANYPARTS);
  assert_true(off > 0);
  /* within a raised bound it parses (and is no bounce) */
  smtpc_bounce_limits lim = {.max_parts = 1000};
  smtpc_bounce_free(p);
  p = smtpc_bounce_new(&lim);
  assert_int_equal(parse_str(p, msg, &off), 0);
  smtpc_bounce_free(p);
  free(msg);
}

static void size_cut_with_note(void **state) {
  (void)state;
  size_t len;
  char *msg = bvec_slurp("dsn-two-recipients.eml", &len);
  smtpc_bounce_limits lim = {.max_message = len - 200}; /* cuts into the returned headers */
  smtpc_bounce_parser *p = smtpc_bounce_new(&lim);
  assert_int_equal(smtpc_bounce_parse(p, msg, len), 2);
  const smtpc_bounce *r = smtpc_bounce_record(p, 0);
  assert_non_null(r->field[SMTPC_BOUNCE_F_NOTE]);
  assert_non_null(strstr(r->field[SMTPC_BOUNCE_F_NOTE], "size limit"));
  smtpc_bounce_free(p);
  free(msg);
}

/* More recipients than max_records: the first ones are kept, a note says the rest were
 * dropped, and the parse succeeds, in an RFC 3464 report as in an MTA's own format (a qmail
 * body): a long list of recipients is not a memory failure. */
static void limit_records_keeps_what_fits(void **state) {
  (void)state;
  static const char *const msgs[] = {
      "From: MAILER-DAEMON@example.org\nSubject: Undelivered\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
      "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
      "Final-Recipient: rfc822; u1@example.com\nAction: failed\nStatus: 5.1.1\n\n"
      "Final-Recipient: rfc822; u2@example.com\nAction: failed\nStatus: 5.1.1\n\n"
      "Final-Recipient: rfc822; u3@example.com\nAction: failed\nStatus: 5.1.1\n\n"
      "Final-Recipient: rfc822; u4@example.com\nAction: failed\nStatus: 5.1.1\n\n--B--\n",
      "From: MAILER-DAEMON@example.org\nSubject: failure notice\n\n"
      "Hi. This is the qmail-send program at example.org.\n"
      "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
      "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
      "<u1@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
      "<u2@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
      "<u3@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
      "<u4@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"};
  smtpc_bounce_limits lim = {.max_records = 2};
  smtpc_bounce_parser *p = smtpc_bounce_new(&lim);
  for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
    uint64_t off;
    assert_int_equal(parse_str(p, msgs[i], &off), 2);
    assert_string_equal(smtpc_bounce_record(p, 0)->field[SMTPC_BOUNCE_F_RECIPIENT], "u1@example.com");
    assert_string_equal(smtpc_bounce_record(p, 1)->field[SMTPC_BOUNCE_F_RECIPIENT], "u2@example.com");
    const char *note = smtpc_bounce_record(p, 0)->field[SMTPC_BOUNCE_F_NOTE];
    assert_non_null(note);
    assert_non_null(strstr(note, "records beyond 2 dropped"));
  }
  smtpc_bounce_free(p);
}

/* Many folded fields in a delivery-status part: each field's unfolded value costs memory in
 * proportion to itself. The buffer for a new field was once twice the last one's, so 60 folded
 * fields asked malloc for 2^60 octets and the parse failed with ENOMEM (fuzz_bounce found it
 * at 30 fields, a gigabyte, in a 3.8 KB message). */
static void folded_fields_memory_is_linear(void **state) {
  (void)state;
  char msg[16384];
  size_t n = (size_t)snprintf(msg, sizeof msg,
                              "From: MAILER-DAEMON@example.org\nSubject: Undelivered\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                              "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
                              "Final-Recipient: rfc822; u1@example.com\nAction: failed\nStatus: 5.1.1\n");
  for (int i = 0; i < 60; i++)
    n += (size_t)snprintf(msg + n, sizeof msg - n, "X-Field-%d: first\n  second\n", i);
  n += (size_t)snprintf(msg + n, sizeof msg - n, "Diagnostic-Code: smtp; 550 5.1.1 user\n  unknown\n\n--B--\n");
  assert_true(n < sizeof msg);
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  uint64_t off;
  assert_int_equal(parse_str(p, msg, &off), 1);
  assert_string_equal(smtpc_bounce_record(p, 0)->field[SMTPC_BOUNCE_F_DIAGNOSTIC], "550 5.1.1 user unknown");
  smtpc_bounce_free(p);
}

static void bad_arguments(void **state) {
  (void)state;
  assert_int_equal(smtpc_bounce_feed(NULL, "x", 1), SMTPC_EINVAL);
  assert_int_equal(smtpc_bounce_finish(NULL), SMTPC_EINVAL);
  assert_null(smtpc_bounce_record(NULL, 0));
  assert_int_equal(smtpc_bounce_count(NULL), 0);
  assert_null(smtpc_bounce_field_name(-1));
  assert_null(smtpc_bounce_field_name(SMTPC_BOUNCE_NFIELDS));
  assert_string_equal(smtpc_bounce_field_name(SMTPC_BOUNCE_F_RECIPIENT), "recipient");
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  assert_int_equal(smtpc_bounce_feed(p, NULL, 3), SMTPC_EINVAL);
  assert_int_equal(smtpc_bounce_parse(p, "", 0), 0); /* an empty message is no bounce */
  assert_int_equal(smtpc_bounce_parse(p, "\x00\xff\r\r\n--", 6), 0);
  assert_null(smtpc_bounce_record(p, 0));
  smtpc_bounce_free(p);
  smtpc_bounce_free(NULL);
}

/* ---- mbox ---- */

static const char MBOX[] =
    "From MAILER-DAEMON Mon Nov  6 10:00:00 2023\n"
    "Subject: one\n"
    "\n"
    ">From the start, quoted\n"
    ">>From twice quoted\n"
    "From inside a paragraph is no separator\n"
    "\n"
    "From someone Mon Nov  6 10:00:01 2023\n"
    "Subject: two\n"
    "\n"
    "second body\n";

static void mbox_split(size_t chunk) {
  smtpc_mbox *mb = smtpc_mbox_new();
  const char *want[] = {"Subject: one\n\nFrom the start, quoted\n>From twice quoted\n"
                        "From inside a paragraph is no separator\n",
                        "Subject: two\n\nsecond body\n"};
  int got = 0;
  size_t len = strlen(MBOX);
  for (size_t off = 0; off < len || off == 0; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    assert_int_equal(smtpc_mbox_feed(mb, MBOX + off, n, off + n >= len), 0);
    const char *m;
    size_t ml;
    while (smtpc_mbox_next(mb, &m, &ml) == 1) {
      assert_true(got < 2);
      assert_int_equal(ml, strlen(want[got]));
      assert_memory_equal(m, want[got], ml);
      got++;
    }
    if (off + n >= len) break;
  }
  assert_int_equal(got, 2);
  smtpc_mbox_free(mb);
}

static void mbox_whole(void **state) {
  (void)state;
  mbox_split(1u << 20);
}

static void mbox_chunks(void **state) {
  (void)state;
  for (size_t c = 1; c < 20; c++) mbox_split(c);
}

static void mbox_single_message(void **state) {
  (void)state;
  smtpc_mbox *mb = smtpc_mbox_new();
  const char *m;
  size_t ml;
  assert_int_equal(smtpc_mbox_feed(mb, "Subject: x\n\nno From line\n", 25, 1), 0);
  assert_int_equal(smtpc_mbox_next(mb, &m, &ml), 1);
  assert_int_equal(ml, 25);
  assert_int_equal(smtpc_mbox_next(mb, &m, &ml), 0);
  smtpc_mbox_free(mb);
  /* an empty mailbox is no message (found by fuzz_bounce: nothing fed, then eof) */
  mb = smtpc_mbox_new();
  assert_int_equal(smtpc_mbox_feed(mb, "", 0, 1), 0);
  assert_int_equal(smtpc_mbox_next(mb, &m, &ml), 0);
  smtpc_mbox_free(mb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vectors_whole),     cmocka_unit_test(vectors_bytewise),
      cmocka_unit_test(limit_line),        cmocka_unit_test(limit_headers),
      cmocka_unit_test(limit_depth_and_parts), cmocka_unit_test(size_cut_with_note),
      cmocka_unit_test(limit_records_keeps_what_fits), cmocka_unit_test(folded_fields_memory_is_linear),
      cmocka_unit_test(bad_arguments),     cmocka_unit_test(mbox_whole),
      cmocka_unit_test(mbox_chunks),       cmocka_unit_test(mbox_single_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
