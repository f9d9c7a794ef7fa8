/* address.c -- RFC 5321 Mailbox parser with RFC 6531 UTF-8 and IDNA2008 domains.
 *
 * The parse runs in passes over a bounded input (SMTPC_ADDR_MAX_INPUT octets):
 *   1. every octet: strict UTF-8, and no control or invisible format character anywhere
 *      (address_chars.def). After this pass nothing that can end or disguise an SMTP
 *      command line is left, whatever the later passes do.
 *   2. the local part: Dot-string, or Quoted-string which is then written back in its
 *      shortest form (unquoted when it is a valid Dot-string; otherwise quoted with only
 *      the escapes RFC 5321 needs), so that parsing a normalised address gives it back.
 *   3. the domain: an address literal (IPv4, or IPv6 in RFC 5321's grammar, written back
 *      in RFC 5952 form), or labels: ASCII labels are LDH and lower-cased, "xn--" labels are
 *      checked by libidn2, non-ASCII labels are mapped to A-labels by libidn2 (IDNA2008,
 *      non-transitional, UTS #46 mapping) and back to U-labels for the UTF-8 form.
 *   4. the limits of RFC 5321 on the forms that would be sent.
 * No global state: everything lives on the stack or in *out; libidn2 is thread-safe. */
#include "internal.h"

#include <idn2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- kinds ------------------------------------------------------------------------------ */

static const char *const kind_names[] = {
  "ok",
#define SMTPC__XX(id, name, msg) #name,
  SMTPC_ADDR_KIND_MAP(SMTPC__XX)
#undef SMTPC__XX
};

static const char *const kind_messages[] = {
  "valid address",
#define SMTPC__XX(id, name, msg) msg,
  SMTPC_ADDR_KIND_MAP(SMTPC__XX)
#undef SMTPC__XX
};

const char *smtpc_address_kind_name(int kind) {
  if (kind < 0 || kind >= SMTPC_ADDR_KIND_COUNT) return NULL;
  return kind_names[kind];
}

const char *smtpc_address_kind_message(int kind) {
  if (kind < 0 || kind >= SMTPC_ADDR_KIND_COUNT) return NULL;
  return kind_messages[kind];
}

/* ---- characters ------------------------------------------------------------------------- */

enum { CH_PLAIN = 0, CH_CONTROL, CH_SPACE };

static const struct {
  uint32_t first, last;
  unsigned char cls;
} special_chars[] = {
#define XX(first, last, cls) {first, last, CH_##cls},
#include "address_chars.def"
#undef XX
};

static int char_class(uint32_t cp) {
  size_t lo = 0, hi = sizeof special_chars / sizeof special_chars[0];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < special_chars[mid].first) hi = mid;
    else if (cp > special_chars[mid].last) lo = mid + 1;
    else return special_chars[mid].cls;
  }
  return CH_PLAIN;
}

/* RFC 5322 atext and LDH, ASCII part, as bit sets over the 128 ASCII codes: one shift and one
 * test per octet, since these run for every octet of every address. atext: A-Z a-z 0-9 and
 * ! # $ % & ' * + - / = ? ^ _ ` { | } ~ ; LDH: A-Z a-z 0-9 and - . */
static const uint64_t atext_set[2] = {0xa3ffacfa00000000u, 0x7fffffffc7fffffeu};
static const uint64_t ldh_set[2] = {0x03ff200000000000u, 0x07fffffe07fffffeu};

static int in_set(const uint64_t set[2], unsigned char c) {
  return c < 128 && (set[c >> 6] >> (c & 63) & 1);
}

static int is_atext(unsigned char c) { return in_set(atext_set, c); }

static int is_ldh(unsigned char c) { return in_set(ldh_set, c); }

/* Every octet of s[0..n) is printable ASCII (0x20-0x7E): eight octets a step, with the usual
 * word tricks (a byte with its top bit set; a byte below 0x20; a byte equal to 0x7F). Nearly
 * every address is plain ASCII, and then the UTF-8 and control checks have nothing to find. */
static int plain_ascii(const unsigned char *s, size_t n) {
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    memcpy(&x, s + i, 8);
    y = x ^ (0x7F * ones);
    if ((x | ((x - 0x20 * ones) & ~x) | ((y - ones) & ~y)) & high) return 0;
  }
  for (; i < n; i++)
    if (s[i] < 0x20 || s[i] >= 0x7F) return 0;
  return 1;
}

static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ---- parser state ----------------------------------------------------------------------- */

typedef struct parser {
  const unsigned char *s;
  size_t len;
  size_t errpos;
  int plain; /* the input is printable ASCII and libidn2 wrote nothing: then the result is
                input octets (letters lower-cased) and ASCII punctuation, clean by making */
} parser;

/* Growable-by-nothing text buffer: appends fail once cap would be exceeded. */
typedef struct text {
  char *buf;
  size_t len, cap; /* cap excludes the NUL */
} text;

static int text_put(text *t, const void *p, size_t n) {
  if (n > t->cap - t->len) return -1;
  memcpy(t->buf + t->len, p, n);
  t->len += n;
  t->buf[t->len] = '\0';
  return 0;
}

static int fail(parser *p, int kind, size_t pos) {
  p->errpos = pos;
  return kind;
}

/* Pass 1: UTF-8 and controls over the whole input. */
static int scan_chars(parser *p) {
  size_t i = 0;
  if ((p->plain = plain_ascii(p->s, p->len)) != 0) return 0;
  while (i < p->len) {
    uint32_t cp;
    size_t n;
    if (p->s[i] < 0x80) { /* ASCII: the controls are C0 and DEL, no table needed */
      if (p->s[i] < 0x20 || p->s[i] == 0x7F) return fail(p, SMTPC_ADDR_ECONTROL_CHAR, i);
      i++;
      continue;
    }
    n = smtpc__utf8_decode(p->s + i, p->len - i, &cp);
    if (n == 0) return fail(p, SMTPC_ADDR_EINVALID_UTF8, i);
    if (char_class(cp) == CH_CONTROL) return fail(p, SMTPC_ADDR_ECONTROL_CHAR, i);
    i += n;
  }
  return 0;
}

/* A Dot-string (RFC 5321 with RFC 6531's UTF-8 atext) over s[0..n); `base` is its offset in
 * the input, for error positions. */
static int check_dot_string(parser *p, const unsigned char *s, size_t n, size_t base) {
  size_t i = 0;
  if (n == 0) return fail(p, SMTPC_ADDR_EEMPTY_LOCAL, base);
  if (s[0] == '.') return fail(p, SMTPC_ADDR_ELEADING_DOT, base);
  while (i < n) {
    if (s[i] == '.') {
      if (s[i - 1] == '.') return fail(p, SMTPC_ADDR_ECONSECUTIVE_DOTS, base + i);
      i++;
    } else if (s[i] >= 0x80) {
      uint32_t cp;
      size_t k = smtpc__utf8_decode(s + i, n - i, &cp);
      if (k == 0 || char_class(cp) != CH_PLAIN) return fail(p, SMTPC_ADDR_EBAD_CHAR, base + i);
      i += k;
    } else if (is_atext(s[i])) {
      i++;
    } else {
      return fail(p, SMTPC_ADDR_EBAD_CHAR, base + i);
    }
  }
  if (s[n - 1] == '.') return fail(p, SMTPC_ADDR_ETRAILING_DOT, base + n - 1);
  return 0;
}

/* Pass 2: the local part. On success *at is the offset of the '@' and `local` holds the
 * normalised local part. */
static int parse_local(parser *p, text *local, size_t *at) {
  const unsigned char *s = p->s;
  size_t i, n = 0;
  unsigned char content[SMTPC_ADDR_MAX_INPUT];
  int k;

  if (s[0] != '"') {
    const unsigned char *end = memchr(s, '@', p->len);
    size_t e = end ? (size_t)(end - s) : p->len;
    if ((k = check_dot_string(p, s, e, 0)) != 0) return k;
    if (end == NULL) return fail(p, SMTPC_ADDR_ENO_AT, p->len);
    *at = e;
    if (text_put(local, s, e) < 0) return fail(p, SMTPC_ADDR_ELOCAL_TOO_LONG, 0);
    return 0;
  }

  /* Quoted-string: qtextSMTP is any printable character but '"' and '\' (controls are gone
   * already); quoted-pairSMTP is '\' and printable ASCII. */
  for (i = 1;; i++) {
    if (i >= p->len) return fail(p, SMTPC_ADDR_EUNBALANCED_QUOTE, 0);
    if (s[i] == '"') break;
    if (s[i] == '\\') {
      if (i + 1 >= p->len) return fail(p, SMTPC_ADDR_EUNBALANCED_QUOTE, 0);
      if (s[i + 1] < 0x20 || s[i + 1] > 0x7E) return fail(p, SMTPC_ADDR_EBAD_ESCAPE, i);
      i++;
    }
    content[n++] = s[i];
  }
  i++; /* past the closing quote */
  if (i == p->len) return fail(p, SMTPC_ADDR_ENO_AT, i);
  if (s[i] != '@') return fail(p, SMTPC_ADDR_ETEXT_AFTER_QUOTE, i);
  /* RFC 5321 lets "" through; a mailbox nobody can name is not worth probing. */
  if (n == 0) return fail(p, SMTPC_ADDR_EEMPTY_LOCAL, 0);
  *at = i;

  {
    parser scratch = *p;
    if (check_dot_string(&scratch, content, n, 0) == 0) {
      if (text_put(local, content, n) < 0) return fail(p, SMTPC_ADDR_ELOCAL_TOO_LONG, 0);
      return 0;
    }
  }
  if (text_put(local, "\"", 1) < 0) return fail(p, SMTPC_ADDR_ELOCAL_TOO_LONG, 0);
  for (i = 0; i < n; i++) {
    if ((content[i] == '"' || content[i] == '\\') && text_put(local, "\\", 1) < 0)
      return fail(p, SMTPC_ADDR_ELOCAL_TOO_LONG, 0);
    if (text_put(local, content + i, 1) < 0) return fail(p, SMTPC_ADDR_ELOCAL_TOO_LONG, 0);
  }
  if (text_put(local, "\"", 1) < 0) return fail(p, SMTPC_ADDR_ELOCAL_TOO_LONG, 0);
  return 0;
}

/* ---- address literals ------------------------------------------------------------------- */

/* Snum "." Snum "." Snum "." Snum, Snum = 1*3DIGIT with a value 0..255. */
static int parse_ipv4(const unsigned char *s, size_t n, unsigned char out[4]) {
  size_t i = 0;
  int part;
  for (part = 0; part < 4; part++) {
    unsigned v = 0, digits = 0;
    if (part > 0) {
      if (i >= n || s[i] != '.') return -1;
      i++;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 3) {
      v = v * 10 + (unsigned)(s[i] - '0');
      i++;
      digits++;
    }
    if (digits == 0 || v > 255) return -1;
    out[part] = (unsigned char)v;
  }
  return i == n ? 0 : -1;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* RFC 5321 IPv6-addr: IPv6-full, IPv6-comp, IPv6v4-full, IPv6v4-comp. Its "::" stands for at
 * least two groups (stricter than inet_pton, which lets "::" stand for one). */
static int parse_ipv6(const unsigned char *s, size_t n, uint16_t w[8]) {
  uint16_t g[8];
  int ng = 0, gap = -1, k;
  size_t i = 0;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  }
  while (i < n) {
    size_t j = i;
    unsigned v = 0;
    while (j < n && s[j] != ':' && s[j] != '.') j++;
    if (j < n && s[j] == '.') { /* the IPv4 tail: must end the address */
      unsigned char v4[4];
      if (ng > 6 || parse_ipv4(s + i, n - i, v4) < 0) return -1;
      g[ng++] = (uint16_t)(v4[0] << 8 | v4[1]);
      g[ng++] = (uint16_t)(v4[2] << 8 | v4[3]);
      i = n;
      break;
    }
    if (j == i || j - i > 4 || ng >= 8) return -1;
    for (; i < j; i++) {
      int h = hexval(s[i]);
      if (h < 0) return -1;
      v = v << 4 | (unsigned)h;
    }
    g[ng++] = (uint16_t)v;
    if (i == n) break;
    /* s[i] == ':' */
    if (i + 1 < n && s[i + 1] == ':') {
      if (gap >= 0) return -1;
      gap = ng;
      i += 2;
    } else {
      i++;
      if (i == n) return -1; /* trailing single colon */
    }
  }
  if (gap < 0) {
    if (ng != 8) return -1;
    memcpy(w, g, sizeof g);
    return 0;
  }
  if (ng > 6) return -1;
  for (k = 0; k < 8; k++) w[k] = 0;
  for (k = 0; k < gap; k++) w[k] = g[k];
  for (k = gap; k < ng; k++) w[8 - (ng - k)] = g[k];
  return 0;
}

/* RFC 5952 text: lower case, no leading zeros, the longest run (>= 2) of zero groups as "::"
 * (the first on a tie), and dotted quad for IPv4-mapped addresses. Writes at most 46 octets. */
static void format_ipv6(const uint16_t w[8], char *out, size_t cap) {
  int best = -1, bestlen = 1, k, len = 0;
  size_t o = 0;
  for (k = 0; k < 8; k++) {
    if (w[k] == 0) {
      len++;
      if (len > bestlen) { bestlen = len; best = k - len + 1; }
    } else {
      len = 0;
    }
  }
  if (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0xFFFF) {
    snprintf(out, cap, "::ffff:%u.%u.%u.%u", w[6] >> 8, w[6] & 0xFF, w[7] >> 8, w[7] & 0xFF);
    return;
  }
  out[0] = '\0';
  for (k = 0; k < 8; k++) {
    if (k == best) {
      o += (size_t)snprintf(out + o, cap - o, "::");
      k += bestlen - 1;
      continue;
    }
    o += (size_t)snprintf(out + o, cap - o, "%s%x", (k == 0 || k == best + bestlen) ? "" : ":",
                          w[k]);
  }
}

/* "[" ( IPv4 / "IPv6:" IPv6 ) "]"; the General-address-literal tags IANA has registered are
 * none besides IPv6, so any other "tag:" is refused. */
static int parse_literal(parser *p, size_t base, text *domain) {
  const unsigned char *d = p->s + base;
  size_t n = p->len - base;
  char buf[64];
  if (n < 3 || d[n - 1] != ']') return fail(p, SMTPC_ADDR_EBAD_LITERAL, base);
  d++;
  n -= 2;
  if (n > 5 && lower(d[0]) == 'i' && lower(d[1]) == 'p' && lower(d[2]) == 'v' && d[3] == '6' &&
      d[4] == ':') { /* ABNF strings are case-insensitive: "ipv6:" is the same tag */
    uint16_t w[8];
    if (parse_ipv6(d + 5, n - 5, w) < 0) return fail(p, SMTPC_ADDR_EBAD_LITERAL, base);
    memcpy(buf, "[IPv6:", 6);
    format_ipv6(w, buf + 6, sizeof buf - 8);
    strcat(buf, "]");
  } else {
    unsigned char v4[4];
    if (parse_ipv4(d, n, v4) < 0) return fail(p, SMTPC_ADDR_EBAD_LITERAL, base);
    snprintf(buf, sizeof buf, "[%u.%u.%u.%u]", v4[0], v4[1], v4[2], v4[3]);
  }
  text_put(domain, buf, strlen(buf)); /* at most 53 octets: always fits */
  return 0;
}

/* ---- domain names ----------------------------------------------------------------------- */

/* An ASCII label as DNS wants it: LDH, 1..63 octets, no hyphen at either end. RFC 5321 allows
 * "--" in the third and fourth places, so "r3---sn-abc" (which exists) passes; only "xn--"
 * labels are held to IDNA's rules, by libidn2. `pos`: the label's offset in the input. */
static int check_ldh_label(parser *p, const unsigned char *s, size_t n, size_t pos) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!is_ldh(s[i])) return fail(p, SMTPC_ADDR_EBAD_DOMAIN_CHAR, pos + i);
  if (n > SMTPC_ADDR_MAX_LABEL) return fail(p, SMTPC_ADDR_ELABEL_TOO_LONG, pos);
  if (s[0] == '-' || s[n - 1] == '-') return fail(p, SMTPC_ADDR_EHYPHEN_LABEL, pos);
  return 0;
}

/* One label through libidn2: a non-ASCII label becomes an A-label (ascii) and the U-label that
 * A-label stands for (utf8: mapped, so lower-cased and NFC); an "xn--" label is checked and
 * kept as it is, lower-cased, in both forms. Labels go one by one so that a full stop other
 * than "." (U+3002, U+FF0E...), which UTS #46 would turn into a separator, is refused instead
 * of silently changing the domain's shape. */
static int idna_label(parser *p, const unsigned char *s, size_t n, size_t pos, int is_alabel,
                      text *ascii, text *utf8) {
  char in[SMTPC_ADDR_MAX_INPUT + 1];
  uint8_t *a = NULL;
  char *u = NULL;
  size_t alen;
  int rc, k = 0;

  p->plain = 0;
  memcpy(in, s, n);
  in[n] = '\0';
  rc = idn2_lookup_u8((const uint8_t *)in, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc == IDN2_MALLOC) return SMTPC_ENOMEM;
  /* libidn2 encodes into a label-sized buffer: "big output" means the A-label is too long */
  if (rc == IDN2_TOO_BIG_LABEL || rc == IDN2_TOO_BIG_DOMAIN || rc == IDN2_PUNYCODE_BIG_OUTPUT)
    return fail(p, SMTPC_ADDR_ELABEL_TOO_LONG, pos);
  if (rc != IDN2_OK) return fail(p, SMTPC_ADDR_EIDNA, pos);
  alen = strlen((const char *)a);
  if (memchr(a, '.', alen) != NULL) k = fail(p, SMTPC_ADDR_EBAD_DOMAIN_CHAR, pos);
  else if (alen == 0) k = fail(p, SMTPC_ADDR_EIDNA, pos); /* mapped to nothing */
  else if ((k = check_ldh_label(p, a, alen, pos)) != 0) p->errpos = pos;
  if (k == 0) {
    if (is_alabel) {
      if (text_put(ascii, a, alen) < 0 || text_put(utf8, a, alen) < 0)
        k = fail(p, SMTPC_ADDR_EDOMAIN_TOO_LONG, pos);
    } else {
      uint8_t *back = NULL;
      rc = idn2_to_unicode_8z8z((const char *)a, &u, 0);
      /* the U-label must stand for the same A-label: a label that maps onto an "xn--" string
       * ("xn--...ｘl..." with full-width letters) is taken as that A-label by libidn2, whose
       * decoding need not be a valid U-label (fuzz_address: the address did not parse again) */
      if (rc == IDN2_OK)
        rc = idn2_lookup_u8((const uint8_t *)u, &back, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
      if (rc == IDN2_MALLOC) k = SMTPC_ENOMEM;
      else if (rc != IDN2_OK || strcmp((const char *)back, (const char *)a) != 0)
        k = fail(p, SMTPC_ADDR_EIDNA, pos);
      else if (text_put(ascii, a, alen) < 0 || text_put(utf8, u, strlen(u)) < 0)
        k = fail(p, SMTPC_ADDR_EDOMAIN_TOO_LONG, pos);
      idn2_free(back);
    }
  }
  idn2_free(a);
  idn2_free(u);
  return k;
}

static int parse_label(parser *p, size_t start, size_t end, int nonascii, text *ascii,
                       text *utf8) {
  const unsigned char *s = p->s + start;
  size_t n = end - start, i;
  if (!nonascii) {
    /* check_ldh_label and the lower-casing in one pass (LDH octets lower-case with | 0x20:
     * digits and '-' have that bit already) */
    unsigned char low[SMTPC_ADDR_MAX_LABEL];
    for (i = 0; i < n; i++) {
      if (!is_ldh(s[i])) return fail(p, SMTPC_ADDR_EBAD_DOMAIN_CHAR, start + i);
      if (i < SMTPC_ADDR_MAX_LABEL) low[i] = (unsigned char)(s[i] | 0x20);
    }
    if (n > SMTPC_ADDR_MAX_LABEL) return fail(p, SMTPC_ADDR_ELABEL_TOO_LONG, start);
    if (s[0] == '-' || s[n - 1] == '-') return fail(p, SMTPC_ADDR_EHYPHEN_LABEL, start);
    if (n > 4 && memcmp(low, "xn--", 4) == 0)
      return idna_label(p, low, n, start, 1, ascii, utf8);
    if (text_put(ascii, low, n) < 0 || text_put(utf8, low, n) < 0)
      return fail(p, SMTPC_ADDR_EDOMAIN_TOO_LONG, start);
    return 0;
  }
  if (s[0] == '-' || s[n - 1] == '-') return fail(p, SMTPC_ADDR_EHYPHEN_LABEL, start);
  /* UTS #46 without STD3 rules would let "_" or a no-break space through: hold the ASCII
   * part to LDH here, and leave the rest to IDNA. */
  for (i = 0; i < n;) {
    uint32_t cp;
    size_t k2 = smtpc__utf8_decode(s + i, n - i, &cp);
    if (k2 == 0 || (cp < 0x80 && !is_ldh((unsigned char)cp)) || char_class(cp) != CH_PLAIN)
      return fail(p, SMTPC_ADDR_EBAD_DOMAIN_CHAR, start + i);
    i += k2;
  }
  return idna_label(p, s, n, start, 0, ascii, utf8);
}

/* Pass 3: the domain, from `base` to the end of the input. */
static int parse_domain(parser *p, size_t base, text *ascii, text *utf8, int *literal) {
  const unsigned char *s = p->s;
  size_t i = base, last_label = base, last_out = 0;
  int k;
  if (base == p->len) return fail(p, SMTPC_ADDR_EEMPTY_DOMAIN, base);
  if (s[base] == '[') {
    *literal = 1;
    if ((k = parse_literal(p, base, utf8)) != 0) return k;
    text_put(ascii, utf8->buf, utf8->len);
    return 0;
  }
  {
    const unsigned char *at = memchr(s + base, '@', p->len - base);
    if (at != NULL) return fail(p, SMTPC_ADDR_EMULTIPLE_AT, (size_t)(at - s));
  }
  for (;;) {
    size_t e = i;
    int nonascii = 0;
    if (p->plain) /* printable ASCII throughout: only the dot to find */
      while (e < p->len && s[e] != '.') e++;
    else
      while (e < p->len && s[e] != '.') nonascii |= s[e++] >= 0x80;
    if (e == i) return fail(p, SMTPC_ADDR_EEMPTY_LABEL, i);
    if (i != base && (text_put(ascii, ".", 1) < 0 || text_put(utf8, ".", 1) < 0))
      return fail(p, SMTPC_ADDR_EDOMAIN_TOO_LONG, base);
    last_label = i;
    last_out = ascii->len;
    if ((k = parse_label(p, i, e, nonascii, ascii, utf8)) != 0) return k;
    if (e == p->len) break;
    i = e + 1;
    if (i == p->len) return fail(p, SMTPC_ADDR_EEMPTY_LABEL, i); /* trailing dot */
  }
  /* RFC 3696 2: a top-level domain is never all-numeric; "a@192.0.2.1" is a mistake for the
   * literal, and would be looked up as a name. */
  for (i = last_out; i < ascii->len; i++)
    if (ascii->buf[i] < '0' || ascii->buf[i] > '9') return 0;
  return fail(p, SMTPC_ADDR_ENUMERIC_TLD, last_label);
}

/* ---- the whole address ------------------------------------------------------------------ */

static int join(text *t, const text *local, const text *domain) {
  return text_put(t, local->buf, local->len) < 0 || text_put(t, "@", 1) < 0 ||
         text_put(t, domain->buf, domain->len) < 0;
}

static int parse_all(parser *p, smtpc_address *out) {
  text local = {out->local_part, 0, SMTPC_ADDR_MAX_LOCAL};
  text ascii = {out->ascii_domain, 0, SMTPC_ADDR_MAX_DOMAIN};
  text utf8 = {out->domain, 0, SMTPC_ADDR_MAX_DOMAIN};
  text addr = {out->address, 0, SMTPC_ADDR_MAX_ADDRESS};
  text aaddr = {out->ascii_address, 0, SMTPC_ADDR_MAX_ADDRESS};
  size_t at = 0, i;
  int k;

  if (p->len == 0) return fail(p, SMTPC_ADDR_EEMPTY, 0);
  if (p->len > SMTPC_ADDR_MAX_INPUT) return fail(p, SMTPC_ADDR_ETOO_LONG, SMTPC_ADDR_MAX_INPUT);
  if ((k = scan_chars(p)) != 0) return k;
  if ((k = parse_local(p, &local, &at)) != 0) return k;
  if ((k = parse_domain(p, at + 1, &ascii, &utf8, &out->literal)) != 0) return k;
  if (join(&addr, &local, &utf8)) return fail(p, SMTPC_ADDR_ETOO_LONG, 0);
  if (p->plain) { /* libidn2 wrote nothing: the two domain forms are one text */
    memcpy(out->ascii_address, out->address, addr.len + 1);
    aaddr.len = addr.len;
  } else if (join(&aaddr, &local, &ascii)) {
    return fail(p, SMTPC_ADDR_ETOO_LONG, 0);
  }

  /* Belt and braces: what leaves here goes into command lines. libidn2 produced part of it,
   * so check the result as strictly as the input. Printable ASCII (nearly always) is clean
   * and needs no SMTPUTF8 at once. */
  if (p->plain) return 0;
  if (plain_ascii((const unsigned char *)out->address, addr.len) &&
      plain_ascii((const unsigned char *)out->ascii_address, aaddr.len))
    return 0;
  {
    parser check = {(const unsigned char *)out->address, addr.len, 0, 0};
    if (scan_chars(&check) != 0) return fail(p, SMTPC_ADDR_ECONTROL_CHAR, 0);
    for (i = 0; i < aaddr.len; i++) {
      unsigned char c = (unsigned char)out->ascii_address[i];
      if (c < 0x20 || c == 0x7F) return fail(p, SMTPC_ADDR_ECONTROL_CHAR, 0);
    }
  }
  /* Flags describe the normalised result, so that they survive a second parse: a domain written
   * in full-width letters is plain ASCII once mapped. */
  for (i = 0; i < addr.len; i++)
    if ((unsigned char)out->address[i] >= 0x80) out->smtputf8 = 1;
  for (i = 0; i < local.len; i++)
    if ((unsigned char)out->local_part[i] >= 0x80) out->utf8_local = 1;
  return 0;
}

int smtpc_parse_address(const char *s, size_t len, smtpc_address *out, int *kind) {
  parser p;
  int k;
  if (kind != NULL) *kind = SMTPC_ADDR_OK;
  if (out == NULL || (s == NULL && len > 0)) return SMTPC_EINVAL;
  /* Empty strings and zero flags, not a memset of the whole 1 KiB: the parse writes every
   * string with its NUL, and callers read up to the NUL. A failure clears it all below. */
  out->address[0] = out->ascii_address[0] = out->local_part[0] = '\0';
  out->domain[0] = out->ascii_domain[0] = '\0';
  out->literal = out->smtputf8 = out->utf8_local = 0;
  out->error_offset = 0;
  p.s = (const unsigned char *)(s != NULL ? s : "");
  p.len = len;
  p.errpos = 0;
  p.plain = 0;
  k = parse_all(&p, out);
  if (k == 0) return 0;
  /* Nothing half-parsed is left behind for a caller that ignores the return value. */
  memset(out, 0, sizeof *out);
  if (k < 0) return k;
  out->error_offset = p.errpos;
  if (kind != NULL) *kind = k;
  return SMTPC_EBADADDRESS;
}
