/* test_address.c -- the mailbox parser against tests/vectors/addresses.tsv, plus the properties
 * that matter for safety: no control character ever gets through, normalised output parses back
 * to itself, failures leave nothing behind, and the parser never reads past `len`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtpcode.h"
#include "vectors.h"

static int has_flag(const char *flags, const char *flag) {
  size_t n = strlen(flag);
  const char *p = flags;
  while ((p = strstr(p, flag)) != NULL) {
    if ((p == flags || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    p += n;
  }
  return 0;
}

/* Nothing that leaves the parser may hold a C0 control or DEL (UTF-8 controls are checked by
 * the vectors and by test_unicode_controls). */
static void assert_clean(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    assert_false(c < 0x20 || c == 0x7F);
  }
}

static void check_roundtrip(const smtpc_address *a) {
  smtpc_address again;
  int kind = -1;
  assert_int_equal(smtpc_parse_address(a->address, strlen(a->address), &again, &kind), 0);
  assert_int_equal(kind, SMTPC_ADDR_OK);
  assert_string_equal(again.address, a->address);
  assert_string_equal(again.ascii_domain, a->ascii_domain);
  assert_int_equal(smtpc_parse_address(a->ascii_address, strlen(a->ascii_address), &again, &kind),
                   0);
  assert_string_equal(again.address, a->ascii_address);
}

static void test_vectors(void **state) {
  vec_table *t = vec_load("addresses.tsv");
  int i, nok = 0, nbad = 0;
  (void)state;
  assert_true(t->nrows >= 150);
  for (i = 0; i < t->nrows; i++) {
    const vec_row *r = &t->rows[i];
    size_t len;
    const char *in = vec_get(t, r, "input", &len);
    const char *want = vec_get(t, r, "kind", NULL);
    const char *flags = vec_get(t, r, "flags", NULL);
    smtpc_address a;
    int kind = -1, rc;

    rc = smtpc_parse_address(in, len, &a, &kind);
    if (strcmp(smtpc_address_kind_name(kind), want) != 0)
      fail_msg("row %d (%s): got kind %s at %zu, want %s", i + 1, in,
               smtpc_address_kind_name(kind), a.error_offset, want);
    if (strcmp(want, "ok") == 0) {
      nok++;
      assert_int_equal(rc, 0);
      assert_string_equal(a.address, vec_get(t, r, "address", NULL));
      assert_string_equal(a.local_part, vec_get(t, r, "local_part", NULL));
      assert_string_equal(a.domain, vec_get(t, r, "domain", NULL));
      assert_string_equal(a.ascii_domain, vec_get(t, r, "ascii_domain", NULL));
      assert_int_equal(a.literal, has_flag(flags, "literal"));
      assert_int_equal(a.smtputf8, has_flag(flags, "smtputf8"));
      assert_int_equal(a.utf8_local, has_flag(flags, "utf8_local"));
      assert_true(strlen(a.local_part) <= SMTPC_ADDR_MAX_LOCAL);
      assert_true(strlen(a.address) <= SMTPC_ADDR_MAX_ADDRESS);
      assert_true(strlen(a.ascii_address) <= SMTPC_ADDR_MAX_ADDRESS);
      assert_clean(a.address);
      assert_clean(a.ascii_address);
      check_roundtrip(&a);
    } else {
      nbad++;
      assert_int_equal(rc, SMTPC_EBADADDRESS);
      if (a.error_offset != strtoul(vec_get(t, r, "offset", NULL), NULL, 10))
        fail_msg("row %d (%s): kind %s at offset %zu, want %s", i + 1, in, want, a.error_offset,
                 vec_get(t, r, "offset", NULL));
    }
  }
  assert_true(nok >= 50 && nbad >= 50);
  vec_free(t);
}

static void test_ascii_address(void **state) {
  smtpc_address a;
  (void)state;
  assert_int_equal(smtpc_parse_address("Pelé@Bücher.de", strlen("Pelé@Bücher.de"), &a, NULL), 0);
  assert_string_equal(a.address, "Pelé@bücher.de");
  assert_string_equal(a.ascii_address, "Pelé@xn--bcher-kva.de");
  assert_int_equal(a.utf8_local, 1);
  assert_int_equal(smtpc_parse_address("joe@Bücher.de", strlen("joe@Bücher.de"), &a, NULL), 0);
  assert_string_equal(a.ascii_address, "joe@xn--bcher-kva.de");
  assert_int_equal(a.smtputf8, 1);
  assert_int_equal(a.utf8_local, 0);
}

static void test_kind_tables(void **state) {
  int k, j;
  (void)state;
  assert_string_equal(smtpc_address_kind_name(SMTPC_ADDR_OK), "ok");
  assert_string_equal(smtpc_address_kind_name(SMTPC_ADDR_ECONSECUTIVE_DOTS), "consecutive_dots");
  assert_string_equal(smtpc_address_kind_name(SMTPC_ADDR_ECONTROL_CHAR), "control_char");
  assert_string_equal(smtpc_address_kind_name(SMTPC_ADDR_EINVALID_UTF8), "invalid_utf8");
  for (k = 0; k < SMTPC_ADDR_KIND_COUNT; k++) {
    assert_non_null(smtpc_address_kind_name(k));
    assert_non_null(smtpc_address_kind_message(k));
    assert_true(strlen(smtpc_address_kind_message(k)) > 5);
    for (j = 0; j < k; j++)
      assert_string_not_equal(smtpc_address_kind_name(j), smtpc_address_kind_name(k));
  }
  assert_null(smtpc_address_kind_name(-1));
  assert_null(smtpc_address_kind_name(SMTPC_ADDR_KIND_COUNT));
  assert_null(smtpc_address_kind_message(SMTPC_ADDR_KIND_COUNT));
}

static void test_bad_arguments(void **state) {
  smtpc_address a;
  int kind = -1;
  (void)state;
  assert_int_equal(smtpc_parse_address("a@b.c", 5, NULL, &kind), SMTPC_EINVAL);
  assert_int_equal(smtpc_parse_address(NULL, 3, &a, &kind), SMTPC_EINVAL);
  assert_int_equal(smtpc_parse_address(NULL, 0, &a, &kind), SMTPC_EBADADDRESS);
  assert_int_equal(kind, SMTPC_ADDR_EEMPTY);
}

/* A failed parse clears every field, so a caller that ignores the return value sends nothing. */
static void test_failure_clears(void **state) {
  smtpc_address a;
  int kind;
  (void)state;
  memset(&a, 'x', sizeof a);
  assert_int_equal(smtpc_parse_address("a\r\n@b.com", 10, &a, &kind), SMTPC_EBADADDRESS);
  assert_string_equal(a.address, "");
  assert_string_equal(a.ascii_address, "");
  assert_string_equal(a.local_part, "");
  assert_string_equal(a.domain, "");
  assert_string_equal(a.ascii_domain, "");
  assert_int_equal(a.literal + a.smtputf8 + a.utf8_local, 0);
}

/* Only `len` octets count: the input need not be NUL-terminated, and what follows is ignored. */
static void test_length_bound(void **state) {
  const char buf[] = {'a', '@', 'e', 'x', '.', 'c', 'o', 'm', '\r', '\n'};
  char *heap;
  smtpc_address a;
  int kind;
  (void)state;
  assert_int_equal(smtpc_parse_address(buf, 8, &a, &kind), 0);
  assert_string_equal(a.address, "a@ex.com");
  assert_int_equal(smtpc_parse_address(buf, sizeof buf, &a, &kind), SMTPC_EBADADDRESS);
  assert_int_equal(kind, SMTPC_ADDR_ECONTROL_CHAR);
  /* exact-size heap copies so that ASan sees any read past the end */
  heap = malloc(3);
  memcpy(heap, "\"a\\", 3);
  assert_int_equal(smtpc_parse_address(heap, 3, &a, &kind), SMTPC_EBADADDRESS);
  assert_int_equal(kind, SMTPC_ADDR_EUNBALANCED_QUOTE);
  memcpy(heap, "a@\xc3", 3);
  assert_int_equal(smtpc_parse_address(heap, 3, &a, &kind), SMTPC_EBADADDRESS);
  assert_int_equal(kind, SMTPC_ADDR_EINVALID_UTF8);
  memcpy(heap, "a@[", 3);
  assert_int_equal(smtpc_parse_address(heap, 3, &a, &kind), SMTPC_EBADADDRESS);
  assert_int_equal(kind, SMTPC_ADDR_EBAD_LITERAL);
  free(heap);
}

/* Every C0 control and DEL, at every position of addresses of each shape, quoted or not. */
static void test_ascii_controls_everywhere(void **state) {
  static const char *const bases[] = {
    "user@example.com", "\"a b\"@example.com", "\"a\\\\b\"@example.com", "u@[192.0.2.1]",
    "u@[IPv6:2001:db8::1]", "pelé@bücher.de",
  };
  char buf[64];
  size_t b, pos;
  int c;
  (void)state;
  for (b = 0; b < sizeof bases / sizeof bases[0]; b++) {
    size_t n = strlen(bases[b]);
    for (pos = 0; pos <= n; pos++) {
      for (c = 0; c < 0x80; c++) {
        smtpc_address a;
        int kind;
        if (c >= 0x20 && c != 0x7F) continue;
        memcpy(buf, bases[b], pos);
        buf[pos] = (char)c;
        memcpy(buf + pos + 1, bases[b] + pos, n - pos);
        assert_int_equal(smtpc_parse_address(buf, n + 1, &a, &kind), SMTPC_EBADADDRESS);
        /* inside a UTF-8 sequence the octet breaks the encoding first */
        if (kind != SMTPC_ADDR_ECONTROL_CHAR) assert_int_equal(kind, SMTPC_ADDR_EINVALID_UTF8);
      }
    }
  }
}

/* The Unicode controls the issue names, and others of their kind, in each part. */
static void test_unicode_controls(void **state) {
  static const char *const cps[] = {
    "\xc2\x80", "\xc2\x85", "\xc2\x9f", "\xc2\xad", "\xd8\x9c", "\xe2\x80\x8b", "\xe2\x80\x8c",
    "\xe2\x80\x8d", "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xa8", "\xe2\x80\xa9",
    "\xe2\x80\xaa", "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8",
    "\xe2\x81\xa9", "\xef\xbb\xbf", "\xf3\xa0\x80\x81", "\xf3\xa0\x81\xbf",
  };
  static const char *const fmt[] = {"a%sb@example.com", "\"a%sb\"@example.com", "ab@ex%sample.com",
                                    "%s@example.com", "ab@example.com%s"};
  char buf[64];
  size_t i, f;
  (void)state;
  for (i = 0; i < sizeof cps / sizeof cps[0]; i++) {
    for (f = 0; f < sizeof fmt / sizeof fmt[0]; f++) {
      smtpc_address a;
      int kind;
      snprintf(buf, sizeof buf, fmt[f], cps[i]);
      assert_int_equal(smtpc_parse_address(buf, strlen(buf), &a, &kind), SMTPC_EBADADDRESS);
      assert_int_equal(kind, SMTPC_ADDR_ECONTROL_CHAR);
    }
  }
}

/* Random strings built from address-shaped tokens (and a few hostile ones): never a crash or an
 * over-read (run under ASan with SMTPCODE_SANITIZE=ON), and whatever is accepted is clean and
 * parses back to itself. */
static void test_random_inputs(void **state) {
  static const char *const tokens[] = {
    "a", "Z", "9", "ab", "x.y", ".", ".", "@", "@", "@", "\"", "\\", "[", "]", ":", "::", "-",
    "_", " ", "+", "IPv6:", "192.0.2.1", "1", "f", "xn--", "xn--bcher-kva", "\xc3\xbc", "\xe4\xbe\x8b",
    "\xef\xbd\x85", "\xef\xbc\x8e", "\xe3\x80\x82", "\xe2\x80\xae", "\xe2\x80\x8d", "\xc2\xa0",
    "\r\n", "\n", "\t", "\x7f", "\xff", "\xc3", "com", "EXAMPLE", "example", ".com",
  };
  uint32_t seed = 12345;
  int iter, accepted = 0;
  (void)state;
  for (iter = 0; iter < 100000; iter++) {
    char buf[128];
    size_t n = 0, ntok, i;
    smtpc_address a;
    int kind;
    seed = seed * 1103515245u + 12345u;
    ntok = (seed >> 16) % 12;
    for (i = 0; i < ntok; i++) {
      const char *t;
      size_t tl;
      seed = seed * 1103515245u + 12345u;
      t = tokens[(seed >> 16) % (sizeof tokens / sizeof tokens[0])];
      tl = strlen(t);
      if (n + tl > sizeof buf) break;
      memcpy(buf + n, t, tl);
      n += tl;
    }
    if (smtpc_parse_address(buf, n, &a, &kind) == 0) {
      accepted++;
      assert_int_equal(kind, SMTPC_ADDR_OK);
      assert_clean(a.address);
      assert_clean(a.ascii_address);
      assert_null(strstr(a.address, "\xe2\x80\xae"));
      assert_null(strstr(a.address, "\xe2\x80\x8d"));
      check_roundtrip(&a);
    } else {
      assert_true(kind > SMTPC_ADDR_OK && kind < SMTPC_ADDR_KIND_COUNT);
      assert_true(a.error_offset <= n);
    }
  }
  assert_true(accepted > 100); /* the generator does reach valid addresses */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_vectors),
    cmocka_unit_test(test_ascii_address),
    cmocka_unit_test(test_kind_tables),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_failure_clears),
    cmocka_unit_test(test_length_bound),
    cmocka_unit_test(test_ascii_controls_everywhere),
    cmocka_unit_test(test_unicode_controls),
    cmocka_unit_test(test_random_inputs),
  };
  return cmocka_run_group_tests_name("address", tests, NULL, NULL);
}
