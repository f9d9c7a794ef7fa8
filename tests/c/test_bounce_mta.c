/* test_bounce_mta.c -- the MTA-specific bounce bodies (csrc/bounce_mta_*.c) over
 * tests/vectors/bounces_mta.tsv, fed whole and byte by byte; and what vectors cannot show:
 * every prefix of every sample and the samples with CR line ends parse without harm, and each
 * record of a bounce names a recipient. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtpcode.h"
#include "bounce_vectors.h"

static void check_vectors(size_t chunk) {
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  bvec_replay(p, "bounces_mta.tsv", 60, chunk);
  smtpc_bounce_free(p);
}

static void vectors_whole(void **state) {
  (void)state;
  check_vectors((size_t)1 << 30);
}

static void vectors_bytewise(void **state) {
  (void)state;
  check_vectors(1);
}

/* Every sample file of the MTA vectors, once. */
static int each_sample(void (*fn)(smtpc_bounce_parser *, const char *, char *, size_t)) {
  vec_table *t = vec_load("bounces_mta.tsv");
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  char last[256] = "";
  int n = 0;
  assert_non_null(p);
  for (int i = 0; i < t->nrows; i++) {
    const char *file = vec_get(t, &t->rows[i], "file", NULL);
    if (!strcmp(file, last)) continue;
    snprintf(last, sizeof last, "%s", file);
    size_t len;
    char *msg = bvec_slurp(file, &len);
    fn(p, file, msg, len);
    free(msg);
    n++;
  }
  smtpc_bounce_free(p);
  vec_free(t);
  return n;
}

static void check_records(smtpc_bounce_parser *p, const char *file, int n) {
  if (n < 0) fail_msg("%s: %s", file, smtpc_strerror(n));
  for (int i = 0; i < n; i++) {
    const smtpc_bounce *r = smtpc_bounce_record(p, (size_t)i);
    assert_non_null(r);
    if (!r->field[SMTPC_BOUNCE_F_RECIPIENT]) fail_msg("%s #%d: no recipient", file, i + 1);
    if (!r->field[SMTPC_BOUNCE_F_MTA]) fail_msg("%s #%d: no mta", file, i + 1);
  }
}

/* A message cut anywhere (a truncated mailbox, a size limit) is still read safely: the modules
 * meet half lines, markers without their lists, lists without their ends. */
static void prefixes_of(smtpc_bounce_parser *p, const char *file, char *msg, size_t len) {
  for (size_t cut = 0; cut <= len; cut += cut < 200 ? 1 : 3)
    check_records(p, file, smtpc_bounce_parse(p, msg, cut));
}

static void every_prefix(void **state) {
  (void)state;
  assert_true(each_sample(prefixes_of) >= 15);
}

/* The same bounces with old Mac line ends (CR only) give the same number of records. */
static void cr_only_of(smtpc_bounce_parser *p, const char *file, char *msg, size_t len) {
  int want = smtpc_bounce_parse(p, msg, len);
  char *cr = malloc(len + 1);
  size_t k = 0;
  assert_non_null(cr);
  for (size_t i = 0; i < len; i++) {
    if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') continue;
    cr[k++] = msg[i] == '\n' ? '\r' : msg[i];
  }
  int got = smtpc_bounce_parse(p, cr, k);
  check_records(p, file, got);
  if (got != want) fail_msg("%s: %d records with CR line ends, %d with LF", file, got, want);
  free(cr);
}

static void cr_line_ends(void **state) {
  (void)state;
  assert_true(each_sample(cr_only_of) >= 15);
}

/* Marker sentences alone, without any list under them, are not a bounce of anyone. */
static void markers_without_lists(void **state) {
  (void)state;
  static const char *const bodies[] = {
      "This message was created automatically by mail delivery software.\n"
      "The following address(es) failed:\n",
      "Hi. This is the qmail-send program at example.net.\n"
      "I'm afraid I wasn't able to deliver your message to the following addresses.\n",
      "There was an error delivering your mail to\n",
      "Delivery to the following recipient failed permanently:\n\n----- Original message -----\n",
      "   ----- Transcript of session follows -----\n   ----- Unsent message follows -----\n",
      "{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[",
      "{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[{\"emailAddress\":\"",
      "Your message\n did not reach the following recipient(s):\n",
      /* the start sentence on a boundary line: the list ends where it begins (fuzz finding) */
      "This message was created automatically by mail delivery software.\n"
      "------ This is a copy of the message. The following address(es) failed:\n  x@example.com\n",
  };
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  char msg[1024];
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    int n = snprintf(msg, sizeof msg,
                     "From: Mailer-Daemon@mailer-daemon@googlemail.com\n"
                     "X-Mailer: Amazon WorkMail\nx-amz-sns-message-id: 1\n"
                     "Subject: failure notice\n\n%s", bodies[i]);
    int got = smtpc_bounce_parse(p, msg, (size_t)n);
    if (got != 0) fail_msg("body %zu: %d records from a list-less notice", i, got);
  }
  smtpc_bounce_free(p);
}

/* Growing buffer for the big messages below. */
typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  char tmp[512];
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  assert_true(k > 0 && (size_t)k < sizeof tmp);
  if (b->n + (size_t)k + 1 > b->cap) {
    b->cap = (b->n + (size_t)k + 1) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->n, tmp, (size_t)k + 1);
  b->n += (size_t)k;
}

/* Thousands of recipients, and one recipient with an endless explanation: every recipient is
 * kept, the explanation is cut (a diagnostic is a reply, not a book), and the work stays
 * bounded (no timing here: ctest's timeout is the guard against quadratic behaviour). */
static void big_lists(void **state) {
  (void)state;
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  sbuf b = {0};
  put(&b, "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
          "Subject: Mail delivery failed: returning message to sender\n\n"
          "This message was created automatically by mail delivery software.\n"
          "A message that you sent could not be delivered to one or more of its\n"
          "recipients. This is a permanent error. The following address(es) failed:\n\n");
  for (int i = 0; i < 3000; i++)
    put(&b, "  user%d@example.com\n    SMTP error from remote mail server after RCPT TO:"
            "<user%d@example.com>:\n    550 5.1.1 No such user\n", i, i);
  int n = smtpc_bounce_parse(p, b.p, b.n);
  assert_int_equal(n, 3000);
  assert_string_equal(smtpc_bounce_record(p, 2999)->field[SMTPC_BOUNCE_F_RECIPIENT],
                      "user2999@example.com");
  assert_int_equal(smtpc_bounce_record(p, 2999)->reply_code, 550);

  b.n = 0;
  put(&b, "From: MAILER-DAEMON@mail.example.net\nSubject: failure notice\n\n"
          "Hi. This is the qmail-send program at mail.example.net.\n"
          "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
          "<someone@example.com>:\nRemote host said: 550-5.7.1 first line\n");
  for (int i = 0; i < 100000; i++) put(&b, "550-5.7.1 and more words, line %d\n", i);
  put(&b, "550 5.7.1 last line\n\n--- Below this line is a copy of the message.\n");
  n = smtpc_bounce_parse(p, b.p, b.n);
  assert_int_equal(n, 1);
  const smtpc_bounce *r = smtpc_bounce_record(p, 0);
  assert_int_equal(r->reply_code, 550);
  assert_non_null(r->field[SMTPC_BOUNCE_F_DIAGNOSTIC]);
  assert_true(strlen(r->field[SMTPC_BOUNCE_F_DIAGNOSTIC]) < 4096 + 512);
  free(b.p);
  smtpc_bounce_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vectors_whole),
      cmocka_unit_test(vectors_bytewise),
      cmocka_unit_test(every_prefix),
      cmocka_unit_test(cr_line_ends),
      cmocka_unit_test(markers_without_lists),
      cmocka_unit_test(big_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
