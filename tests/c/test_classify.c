/* test_classify.c -- the classifier: held-out provider replies (tests/vectors/classify.tsv),
 * evidence order, command context, greylisting and retry advice, hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "smtpcode.h"
#include "vectors.h"

static int classify_text(int code, const char *status, const char *text, const char *command,
                         const char *host, smtpc_decoded *d) {
  smtpc_context ctx = {command, host};
  return smtpc_classify(code, status, text, strlen(text), &ctx, d);
}

static const char *nz(const char *s) { return s && s[0] ? s : NULL; }

static void held_out_vectors(void **state) {
  vec_table *t = vec_load("classify.tsv");
  int i, bad = 0;
  (void)state;
  assert_true(t->nrows >= 50);
  for (i = 0; i < t->nrows; i++) {
    const vec_row *row = &t->rows[i];
    const char *id = row->field[0];
    smtpc_decoded d;
    const char *prov = vec_get(t, row, "provider", NULL);
    int rc = classify_text(atoi(vec_get(t, row, "code", NULL)), nz(vec_get(t, row, "status", NULL)),
                           vec_get(t, row, "text", NULL), nz(vec_get(t, row, "command", NULL)),
                           nz(vec_get(t, row, "host", NULL)), &d);
    if (rc != 0) { print_message("%s: rc %d\n", id, rc); bad++; continue; }
#define CHECK(cond, ...) do { if (!(cond)) { print_message(__VA_ARGS__); bad++; } } while (0)
    CHECK(strcmp(smtpc_reason_name(d.cls.reason), vec_get(t, row, "reason", NULL)) == 0,
          "%s: reason %s\n", id, smtpc_reason_name(d.cls.reason));
    CHECK(d.cls.hard_bounce == atoi(vec_get(t, row, "hard_bounce", NULL)), "%s: hard_bounce %d\n", id, d.cls.hard_bounce);
    CHECK(d.cls.temporary == atoi(vec_get(t, row, "temporary", NULL)), "%s: temporary %d\n", id, d.cls.temporary);
    CHECK(d.cls.greylisted == atoi(vec_get(t, row, "greylisted", NULL)), "%s: greylisted %d\n", id, d.cls.greylisted);
    CHECK(d.cls.retry_after == atoi(vec_get(t, row, "retry_after", NULL)), "%s: retry_after %d\n", id, d.cls.retry_after);
    if (prov[0]) CHECK(d.cls.provider && strcmp(d.cls.provider, prov) == 0, "%s: provider %s\n", id, d.cls.provider ? d.cls.provider : "(none)");
    /* temporary failures are always worth a retry; hard bounces never */
    if (d.cls.temporary) CHECK(d.cls.retry, "%s: temporary without retry\n", id);
    if (d.cls.hard_bounce) CHECK(!d.cls.retry, "%s: hard bounce with retry\n", id);
  }
  vec_free(t);
  if (bad) fail_msg("%d mismatches", bad);
}

static int reason_of(int code, const char *status, const char *text, const char *command, const char *host) {
  smtpc_decoded d;
  assert_int_equal(classify_text(code, status, text, command, host, &d), 0);
  return d.cls.reason;
}

/* The same status means different things per provider: Gmail's 4.7.27 is SPF, not the
 * registry's null-MX sender; Microsoft's 5.1.10 is an unknown recipient, not a null MX. */
static void provider_meanings(void **state) {
  (void)state;
  assert_int_equal(reason_of(421, "4.7.27", "rate limited", "DATA", "alt1.gmail-smtp-in.l.google.com"),
                   SMTPC_REASON_AUTHFAILURE);
  assert_int_equal(reason_of(550, "5.7.27", "Sender address has null MX", NULL, "mx.example.org"),
                   SMTPC_REASON_NOTACCEPT);
  /* ...but answering MAIL FROM it refuses the sender (RFC 7505 section 4.2), not the
   * recipient: "rejected", no hard bounce. */
  assert_int_equal(reason_of(550, "5.7.27", "Sender address has null MX", "MAIL", "mx.example.org"),
                   SMTPC_REASON_REJECTED);
  assert_int_equal(reason_of(550, "5.1.10", "not found", "RCPT", "x.mail.protection.outlook.com"),
                   SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(reason_of(550, "5.1.10", "not found", "RCPT", "mx.example.org"), SMTPC_REASON_NOTACCEPT);
  assert_int_equal(reason_of(550, "5.7.612", "Access denied", "RCPT", "x.mail.protection.outlook.com"),
                   SMTPC_REASON_BLOCKED);
  /* a provider recognised by its marker alone */
  {
    smtpc_decoded d;
    assert_int_equal(classify_text(550, "5.7.1", "blah - gsmtp", NULL, NULL, &d), 0);
    assert_non_null(d.cls.provider);
    assert_string_equal(d.cls.provider, "google");
    /* host suffix match needs a label boundary */
    assert_int_equal(classify_text(550, "5.1.1", "x", NULL, "notgoogle.com", &d), 0);
    assert_null(d.cls.provider);
    assert_int_equal(classify_text(550, "5.1.1", "x", NULL, "GMAIL-SMTP-IN.L.GOOGLE.COM", &d), 0);
    assert_non_null(d.cls.provider);
  }
}

/* Phrases beat the status code, the status code beats the reply code. */
static void evidence_order(void **state) {
  (void)state;
  assert_int_equal(reason_of(550, "5.1.1", "Mailbox full", "RCPT", NULL), SMTPC_REASON_MAILBOXFULL);
  assert_int_equal(reason_of(550, "5.1.1", "Rejected", "RCPT", NULL), SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(reason_of(552, "5.3.4", "", "DATA", NULL), SMTPC_REASON_EMAILTOOLARGE);
  assert_int_equal(reason_of(552, NULL, "", "RCPT", NULL), SMTPC_REASON_MAILBOXFULL);
  assert_int_equal(reason_of(550, NULL, "", "RCPT", NULL), SMTPC_REASON_UNDEFINED);
  /* words that no rule places are "onhold"; only a reply without words is "undefined" */
  assert_int_equal(reason_of(550, NULL, "xyzzy plugh", "RCPT", NULL), SMTPC_REASON_ONHOLD);
  /* a phrase split over folded lines still matches */
  assert_int_equal(reason_of(550, NULL, "Relay   access\r\n denied", "RCPT", NULL), SMTPC_REASON_NORELAYING);
  /* case does not matter */
  assert_int_equal(reason_of(550, NULL, "USER UNKNOWN", "RCPT", NULL), SMTPC_REASON_USERUNKNOWN);
}

/* The command the reply answered changes the meaning. */
static void command_context(void **state) {
  (void)state;
  assert_int_equal(reason_of(550, NULL, "User unknown", "RCPT", NULL), SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(reason_of(550, NULL, "User unknown", "DATA", NULL), SMTPC_REASON_FILTERED);
  assert_int_equal(reason_of(550, "5.1.1", "User unknown", "DATA", NULL), SMTPC_REASON_USERUNKNOWN);
  assert_int_equal(reason_of(550, "5.1.2", "Domain not found", "MAIL", NULL), SMTPC_REASON_REJECTED);
  assert_int_equal(reason_of(550, NULL, "Access denied", "MAIL", NULL), SMTPC_REASON_REJECTED);
  assert_int_equal(reason_of(554, NULL, "", "CONN", NULL), SMTPC_REASON_BLOCKED);
  assert_int_equal(reason_of(550, NULL, "Rejected", "EHLO", NULL), SMTPC_REASON_BLOCKED);
}

static void bounce_and_retry(void **state) {
  smtpc_decoded d;
  (void)state;
  assert_int_equal(classify_text(550, "5.1.1", "User unknown", "RCPT", NULL, &d), 0);
  assert_true(d.cls.hard_bounce && !d.cls.temporary && !d.cls.retry);
  assert_int_equal(classify_text(450, "4.1.1", "User unknown", "RCPT", NULL, &d), 0);
  assert_true(!d.cls.hard_bounce && d.cls.temporary && d.cls.retry);
  assert_int_equal(classify_text(552, "5.2.2", "Mailbox full", "RCPT", NULL, &d), 0);
  assert_true(!d.cls.hard_bounce && d.cls.retry);
  assert_int_equal(classify_text(554, "5.7.1", "Message content rejected, spam detected", "DATA", NULL, &d), 0);
  assert_true(!d.cls.hard_bounce && !d.cls.retry);
  /* no code: the status class decides temporariness */
  assert_int_equal(classify_text(0, "4.4.1", "connect to x[192.0.2.1]:25: Connection timed out", NULL, NULL, &d), 0);
  assert_true(d.cls.temporary && d.cls.retry);
  assert_int_equal(classify_text(250, "2.1.5", "Ok", "RCPT", NULL, &d), 0);
  assert_int_equal(d.cls.reason, SMTPC_REASON_DELIVERED);
  assert_true(!d.cls.retry && !d.cls.hard_bounce && !d.cls.temporary);
  /* "retry in N" sets retry_after for an ordinary temporary failure too */
  assert_int_equal(classify_text(451, "4.3.0", "Server busy, retry in 90 seconds", NULL, NULL, &d), 0);
  assert_int_equal(d.cls.retry_after, 90);
  assert_false(d.cls.greylisted);
  /* a permanent failure never counts as greylisting, whatever the words */
  assert_int_equal(classify_text(550, "5.7.1", "Greylisted forever", "RCPT", NULL, &d), 0);
  assert_false(d.cls.greylisted);
  /* hours, and an absurd delay capped at a day */
  assert_int_equal(classify_text(450, "4.7.1", "Greylisted, try again in 2 hours", "RCPT", NULL, &d), 0);
  assert_int_equal(d.cls.retry_after, 7200);
  assert_int_equal(classify_text(450, "4.7.1", "Greylisted, retry in 9999999 minutes", "RCPT", NULL, &d), 0);
  assert_int_equal(d.cls.retry_after, 86400);
  /* milter-greylist writes the delay as hh:mm:ss */
  assert_int_equal(classify_text(451, "4.7.1", "Greylisting in action, please come back in 00:10:30", "RCPT", NULL, &d), 0);
  assert_true(d.cls.greylisted);
  assert_int_equal(d.cls.retry_after, 630);
}

static void kind_table(void **state) {
  (void)state;
  assert_string_equal(smtpc_kind(250, ""), "success");
  assert_string_equal(smtpc_kind(354, NULL), "intermediate");
  assert_string_equal(smtpc_kind(421, "5.0.0"), "transient");
  assert_string_equal(smtpc_kind(0, "5.1.1"), "permanent");
  assert_string_equal(smtpc_kind(0, "4.2.2"), "transient");
  assert_string_equal(smtpc_kind(0, ""), "unknown");
  assert_string_equal(smtpc_kind(0, NULL), "unknown");
  assert_string_equal(smtpc_kind(999, NULL), "unknown");
}

/* Hostile input: NULL views, binary bytes, empty and very long lines, absurd codes. */
static void hostile_lines(void **state) {
  smtpc_class c;
  smtpc_span lines[4];
  static char big[200000];
  char bin[256];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bin; i++) bin[i] = (char)i;
  memset(big, 'a', sizeof big);
  memcpy(big + sizeof big - 20, "mailbox full", 12);
  lines[0].ptr = NULL; lines[0].len = 5;
  lines[1].ptr = bin; lines[1].len = sizeof bin;
  lines[2].ptr = big; lines[2].len = sizeof big;
  lines[3].ptr = ""; lines[3].len = 0;
  smtpc_classify_lines(550, "5.9.9", lines, 4, NULL, &c);
  assert_int_equal(c.reason, SMTPC_REASON_MAILBOXFULL);
  smtpc_classify_lines(-7, "x", lines, 0, NULL, &c);
  assert_int_equal(c.reason, SMTPC_REASON_UNDEFINED);
  assert_false(c.temporary);
  smtpc_classify_lines(12345, "9.9.9", NULL, 0, NULL, &c);
  assert_int_equal(c.reason, SMTPC_REASON_UNDEFINED);
  {
    smtpc_context ctx = {"", ""};
    smtpc_classify_lines(450, NULL, lines + 3, 1, &ctx, &c);
    assert_true(c.temporary && c.retry);
  }
}

/* Concurrent first use: the lazy build runs once and every thread sees the same answer. */
static void *worker(void *arg) {
  int *out = arg, i;
  for (i = 0; i < 2000; i++) {
    smtpc_decoded d;
    smtpc_context ctx = {"RCPT", "mx.example.org"};
    const char *t = "<a@example.org>: Recipient address rejected: User unknown";
    if (smtpc_classify(550, "5.1.1", t, strlen(t), &ctx, &d) != 0 ||
        d.cls.reason != SMTPC_REASON_USERUNKNOWN) { *out = 1; return NULL; }
  }
  *out = 0;
  return NULL;
}

static void threads(void **state) {
  pthread_t th[8];
  int res[8], i;
  (void)state;
  for (i = 0; i < 8; i++) assert_int_equal(pthread_create(&th[i], NULL, worker, &res[i]), 0);
  for (i = 0; i < 8; i++) { pthread_join(th[i], NULL); assert_int_equal(res[i], 0); }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads), /* first, so the lazy build races */
    cmocka_unit_test(held_out_vectors),
    cmocka_unit_test(provider_meanings),
    cmocka_unit_test(evidence_order),
    cmocka_unit_test(command_context),
    cmocka_unit_test(bounce_and_retry),
    cmocka_unit_test(kind_table),
    cmocka_unit_test(hostile_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
