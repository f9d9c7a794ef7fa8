/* test_mojibake.c -- smtpc__unmojibake: UTF-8 that went through a Latin-1 or Windows-1252
 * reader is repaired, and text that did not (proper UTF-8, ASCII, other octets) is left alone.
 * The mangled forms are built here from the proper text, as such a reader builds them, so each
 * case states both ends. Also smtpc__plain_quotes: typographic quotes read as ASCII ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"
#include "smtpcode.h"

/* Windows-1252's code points for 0x80-0x9F (0: none; a Latin-1 reader gives U+0080-U+009F). */
static const unsigned cp1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static size_t put_utf8(unsigned cp, char *o) {
  if (cp < 0x80) return (size_t)(o[0] = (char)cp, 1);
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  o[0] = (char)(0xE0 | (cp >> 12));
  o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[2] = (char)(0x80 | (cp & 0x3F));
  return 3;
}

/* What a reader of `windows` (1) or Latin-1 (0) writes out as UTF-8 for the octets of s. */
static size_t mangle(const char *s, int windows, char *out) {
  size_t o = 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    unsigned cp = c;
    if (windows && c >= 0x80 && c <= 0x9F && cp1252[c - 0x80]) cp = cp1252[c - 0x80];
    o += put_utf8(cp, out + o);
  }
  return o;
}

static void repaired(const char *proper, int windows) {
  char bad[512], fixed[512];
  size_t n = mangle(proper, windows, bad), m;
  assert_true(n > strlen(proper)); /* it was mangled */
  m = smtpc__unmojibake(bad, n, fixed, sizeof fixed);
  assert_int_equal(m, strlen(proper));
  assert_memory_equal(fixed, proper, m);
}

static void repairs_both_readers(void **state) {
  (void)state;
  /* Domino's Japanese reply, a Chinese server's, a German one (one accented letter) */
  static const char *const texts[] = {
      "\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc Neko (a@b.example) \xe3\x81\xaf Domino "
      "\xe3\x83\x87\xe3\x82\xa3\xe3\x83\xac\xe3\x82\xaf\xe3\x83\x88\xe3\x83\xaa\xe3\x81\xab\xe3\x81"
      "\xaf\xe8\xa6\x8b\xe3\x81\xa4\xe3\x81\x8b\xe3\x82\x8a\xe3\x81\xbe\xe3\x81\x9b\xe3\x82\x93",
      "550 \xe6\x94\xb6\xe4\xbb\xb6\xe4\xba\xba\xe4\xb8\x8d\xe5\xad\x98\xe5\x9c\xa8",
      "550 Empf\xc3\xa4nger unbekannt",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    repaired(texts[i], 0);
    repaired(texts[i], 1);
  }
}

static void leaves_proper_text_alone(void **state) {
  char out[256];
  static const char *const texts[] = {
      "550 5.1.1 User unknown",                                           /* ASCII          */
      "550 Empf\xc3\xa4nger unbekannt",                                   /* UTF-8 German   */
      "550 \xe6\x94\xb6\xe4\xbb\xb6\xe4\xba\xba\xe4\xb8\x8d\xe5\xad\x98", /* UTF-8 Chinese  */
      "550 Empf\xe4nger unbekannt",                                       /* Latin-1 octets */
      "550 \xc3\xa9t\xc3\xa9 refus\xc3\xa9",                              /* French "été"  */
  };
  (void)state;
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    assert_int_equal(smtpc__unmojibake(texts[i], strlen(texts[i]), out, sizeof out), 0);
}

/* A text cut inside its last mangled character (a column width, a log line limit) is still
 * repaired; one whose repair does not fit the room given is left alone. */
static void truncated_and_bounded(void **state) {
  char bad[256], out[256];
  size_t n = mangle("550 \xe6\x94\xb6\xe4\xbb\xb6\xe4\xba\xba", 0, bad);
  (void)state;
  assert_int_equal(smtpc__unmojibake(bad, n - 2, out, sizeof out), 4 + 6 + 2);
  assert_memory_equal(out, "550 \xe6\x94\xb6\xe4\xbb\xb6\xe4\xba", 12);
  assert_int_equal(smtpc__unmojibake(bad, n, out, 6), 0);
}

/* decode() reads a mangled reply as the text it was: its reason is the proper text's. */
static void decode_reads_the_repaired_text(void **state) {
  char bad[256];
  smtpc_decoded d;
  size_t n = mangle("550 \xe6\x94\xb6\xe4\xbb\xb6\xe4\xba\xba\xe4\xb8\x8d\xe5\xad\x98\xe5\x9c\xa8", 1, bad);
  (void)state;
  assert_int_equal(smtpc_decode(bad, n, NULL, &d), 0);
  assert_string_equal(smtpc_reason_name(d.cls.reason), "userunknown");
}

/* Typographic quotes become ASCII quotes padded with spaces, the length unchanged; other
 * octets (an em dash shares the E2 80 lead, U+00A0 the C2 one) stay. */
static void plain_quotes(void **state) {
  char s[] = "\xe2\x80\x9cNo such user\xe2\x80\x9d \xe2\x80\x94 doesn\xe2\x80\x99t \xc2\xabx\xc2\xbb\xc2\xa0";
  const char *want = "\"  No such user\"   \xe2\x80\x94 doesn'  t \" x\" \xc2\xa0";
  (void)state;
  assert_true(smtpc__has_curly_quote(s, strlen(s)));
  assert_false(smtpc__has_curly_quote("a \xe2\x80\x94 b\xc2\xa0", 9));
  assert_false(smtpc__has_curly_quote("cut \xe2\x80", 6)); /* a sequence cut at the end */
  smtpc__plain_quotes(s, strlen(s));
  assert_int_equal(strlen(s), strlen(want));
  assert_string_equal(s, want);
}

/* Escaped quotes, as a web page or a JSON log keeps them, likewise; a lone '&' or '\\' stays. */
static void plain_escaped_quotes(void **state) {
  char s[] = "doesn&#39;t &quot;x&quot; can\\u0027t a & b \\n &amp;";
  const char *want = "doesn'    t \"     x\"      can'     t a & b \\n &amp;";
  (void)state;
  assert_true(smtpc__has_curly_quote(s, strlen(s)));
  assert_false(smtpc__has_curly_quote("a & b \\n &amp; &#3", 16));
  smtpc__plain_quotes(s, strlen(s));
  assert_string_equal(s, want);
}

/* decode() reads "doesn’t" as "doesn't": the reason of the ASCII text, the text returned as
 * the caller gave it. */
static void decode_reads_typographic_quotes(void **state) {
  const char *t = "550 Recipient\xe2\x80\x99s mailbox doesn\xe2\x80\x99t exist";
  smtpc_decoded d;
  (void)state;
  assert_int_equal(smtpc_decode(t, strlen(t), NULL, &d), 0);
  assert_string_equal(smtpc_reason_name(d.cls.reason), "userunknown");
  assert_true(d.nlines == 1 && memchr(d.lines[0].ptr, 0xE2, d.lines[0].len) != NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(repairs_both_readers),
      cmocka_unit_test(leaves_proper_text_alone),
      cmocka_unit_test(truncated_and_bounded),
      cmocka_unit_test(decode_reads_the_repaired_text),
      cmocka_unit_test(plain_quotes),
      cmocka_unit_test(plain_escaped_quotes),
      cmocka_unit_test(decode_reads_typographic_quotes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
