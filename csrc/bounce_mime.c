/*
 * bounce_mime.c -- header fields and the MIME tree of one message (RFC 5322, 2045-2047, 2231
 * not needed by bounces): unfolding, encoded words, quoted-printable, base64, and charsets to
 * UTF-8 through iconv (the C library's converter: ISO-2022-JP, Shift_JIS, EUC-JP, ...).
 * Everything decoded goes to the parser's arena; the message bytes are never changed.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_core.h"

static int is_wsp(char c) { return c == ' ' || c == '\t'; }

/* ---- charsets -------------------------------------------------------------------------------- */

/* Names mail uses -> the name glibc's iconv knows, choosing the vendor supersets that Japanese
 * and Korean mail really uses (NEC/IBM extensions in Shift_JIS, EUC-JP). */
static const char *iconv_name(const char *cs) {
  static const struct { const char *mail, *iconv; } alias[] = {
      {"shift_jis", "CP932"},   {"shift-jis", "CP932"},       {"sjis", "CP932"},
      {"x-sjis", "CP932"},      {"windows-31j", "CP932"},     {"cp932", "CP932"},
      {"euc-jp", "EUC-JP-MS"},  {"x-euc-jp", "EUC-JP-MS"},    {"iso-2022-jp", "ISO-2022-JP-2"},
      {"ks_c_5601-1987", "CP949"}, {"euc-kr", "CP949"},       {"gb2312", "GB18030"},
      {"gbk", "GB18030"},       {"x-unknown", "ISO-8859-1"}, {"unknown-8bit", "ISO-8859-1"},
      /* UTF-7 under the names Microsoft's mailers give it (RFC 1642's "unicode-1-1-utf-7" in the
       * Windows SMTP service's and Hotmail's DSNs, and .NET's others), unknown to glibc */
      {"unicode-1-1-utf-7", "UTF-7"}, {"x-unicode-1-1-utf-7", "UTF-7"},
      {"unicode-2-0-utf-7", "UTF-7"}, {"x-unicode-2-0-utf-7", "UTF-7"},
      {"csunicode11utf7", "UTF-7"},
  };
  for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
    if (!strcmp(cs, alias[i].mail)) return alias[i].iconv;
  return cs;
}

static iconv_t get_iconv(smtpc_bounce_parser *p, const char *cs) {
  for (size_t i = 0; i < SMTPC__ICONV_CACHE; i++)
    if (p->iconv[i].cd != (iconv_t)-1 && !strcmp(p->iconv[i].name, cs)) {
      iconv(p->iconv[i].cd, NULL, NULL, NULL, NULL); /* back to the initial shift state */
      return p->iconv[i].cd;
    }
  iconv_t cd = iconv_open("UTF-8", iconv_name(cs));
  if (cd == (iconv_t)-1) return cd;
  size_t k = p->iconv_next++ % SMTPC__ICONV_CACHE;
  if (p->iconv[k].cd != (iconv_t)-1) iconv_close(p->iconv[k].cd);
  p->iconv[k].cd = cd;
  size_t l = strlen(cs);
  if (l >= sizeof p->iconv[k].name) l = sizeof p->iconv[k].name - 1;
  memcpy(p->iconv[k].name, cs, l);
  p->iconv[k].name[l] = '\0';
  return cd;
}

/* No octet >= 0x80 and no ESC in s[0..n)? Eight octets a step. */
static int plain_ascii(const char *s, size_t n) {
  const uint64_t high = 0x8080808080808080u, ones = 0x0101010101010101u, esc = 0x1b * ones;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w, x;
    memcpy(&w, s + i, 8);
    x = w ^ esc; /* a zero octet where s holds ESC */
    if ((w & high) || ((x - ones) & ~x & high)) return 0;
  }
  for (; i < n; i++)
    if ((unsigned char)s[i] >= 0x80 || s[i] == 0x1b) return 0;
  return 1;
}

/* s[0..n) -> UTF-8 with LF line ends. Text without 8-bit octets or ESC needs no converter:
 * that is nearly every bounce, so the common case is one copying pass. */
/* The charset s[0..n) is read in (lower-cased into cs) and whether it needs a converter. */
static int want_converter(const char *charset, const char *s, size_t n, char cs[32]) {
  size_t k = 0;
  for (; charset && charset[k] && k < 31; k++) cs[k] = (char)smtpc__blower((unsigned char)charset[k]);
  cs[k] = '\0';
  /* undeclared ISO-2022-JP (older Japanese MTAs write it with no MIME header at all) */
  if (!cs[0] && memchr(s, 0x1b, n) && smtpc__bmemmem(s, n, "\x1b$B", 3)) strcpy(cs, "iso-2022-jp");
  int convert = cs[0] && strcmp(cs, "utf-8") && strcmp(cs, "us-ascii") && strcmp(cs, "utf8");
  if (convert) convert = !plain_ascii(s, n); /* a declared charset over it needs no converter */
  /* UTF-7 is all 7-bit, yet encoded */
  if (!strcmp(cs, "utf-7") || !strcmp(iconv_name(cs), "UTF-7")) convert = 1;
  return convert;
}

/* Could converting a text in `charset` be noted ("unknown charset")? Only when iconv does not
 * know the charset the text may turn out to be in (the declared one, or ISO-2022-JP found in an
 * undeclared text); UTF-8 and ASCII are never converted. */
static int charset_unknown(smtpc_bounce_parser *p, const char *charset) {
  char cs[32];
  want_converter(charset, "", 0, cs);
  if (!cs[0]) strcpy(cs, "iso-2022-jp");
  if (!strcmp(cs, "utf-8") || !strcmp(cs, "us-ascii") || !strcmp(cs, "utf8")) return 0;
  return get_iconv(p, cs) == (iconv_t)-1;
}

/* What smtpc__butf8 notes about s[0..n), for a text nobody reads: no conversion made. */
static void charset_note(smtpc_bounce_parser *p, const char *charset, const char *s, size_t n) {
  char cs[32];
  if (want_converter(charset, s, n, cs) && get_iconv(p, cs) == (iconv_t)-1)
    smtpc__bnote(p, "unknown charset %s", cs);
}

/* Does s[0..n) convert from cs without an octet cs does not define? */
static int converts_cleanly(smtpc_bounce_parser *p, const char *cs, const char *s, size_t n) {
  iconv_t cd = get_iconv(p, cs);
  if (cd == (iconv_t)-1) return 0;
  char buf[1024], *in = (char *)s;
  size_t inleft = n;
  while (inleft) {
    char *out = buf;
    size_t outleft = sizeof buf;
    if (iconv(cd, &in, &inleft, &out, &outleft) != (size_t)-1) break;
    if (errno != E2BIG) return 0;
  }
  return 1;
}

/* ISO-2022-JP is 7-bit: a text labelled so with 8-bit octets and no escape sequence at all was
 * written in another Japanese charset (au's notices label EUC-JP text so: the corpus's
 * lhost-ezweb-02). UTF-8 if it is valid UTF-8, else EUC-JP if it converts without a stray octet,
 * else Shift_JIS; NULL when the label may be right. */
static const char *mislabelled_jis(smtpc_bounce_parser *p, const char *cs, const char *s, size_t n) {
  if (strcmp(cs, "iso-2022-jp") != 0 || memchr(s, 0x1b, n)) return NULL;
  if (smtpc__utf8_valid((const unsigned char *)s, n)) return "utf-8";
  return converts_cleanly(p, "euc-jp", s, n) ? "euc-jp" : "shift_jis";
}

char *smtpc__butf8(smtpc_bounce_parser *p, const char *charset, const char *s, size_t n,
                   size_t *out_len) {
  char cs[32];
  int convert = want_converter(charset, s, n, cs);
  const char *sniffed = convert ? mislabelled_jis(p, cs, s, n) : NULL;
  if (sniffed) {
    smtpc__bnote(p, "charset %s read as %s", cs, sniffed);
    strcpy(cs, sniffed);
    convert = strcmp(cs, "utf-8") != 0;
  }
  const char *src = s;
  size_t srclen = n;
  char *conv = NULL;
  if (convert) {
    iconv_t cd = get_iconv(p, cs);
    if (cd == (iconv_t)-1) {
      smtpc__bnote(p, "unknown charset %s", cs);
    } else {
      size_t cap = 4 * n + 16;
      conv = smtpc__balloc(p, cap);
      if (!conv) return NULL;
      char *in = (char *)s, *out = conv;
      size_t inleft = n, outleft = cap;
      if (!strcmp(cs, "iso-2022-jp")) {
        /* Japanese mail is mostly ASCII before its first escape sequence, and the converter
         * (freshly reset: ASCII, no G2 set) gives those octets back as they are, one by one
         * at tens of instructions each: copied here instead, the converter starts at the
         * first ESC in the same state. SO and SI (0x0E, 0x0F) stop the copy too. */
        size_t k = 0;
        while (k < n && (unsigned char)s[k] < 0x80 && s[k] != 0x1b && s[k] != 0x0e && s[k] != 0x0f) k++;
        memcpy(out, in, k);
        in += k, out += k;
        inleft -= k, outleft -= k;
      }
      while (inleft) {
        if (iconv(cd, &in, &inleft, &out, &outleft) != (size_t)-1) break;
        if (errno == E2BIG || outleft < 4) break;
        /* an octet the charset does not define: keep it and go on */
        *out++ = *in++;
        outleft--;
        inleft--;
        iconv(cd, NULL, NULL, NULL, NULL);
      }
      iconv(cd, NULL, NULL, &out, &outleft);
      src = conv;
      srclen = (size_t)(out - conv);
    }
  }
  char *d = smtpc__balloc(p, srclen + 1);
  if (!d) return NULL;
  size_t j = 0, i = 0;
  while (i < srclen) { /* copy runs between CRs; CRLF and CR become LF */
    const char *cr = memchr(src + i, '\r', srclen - i);
    size_t e = cr ? (size_t)(cr - src) : srclen;
    memcpy(d + j, src + i, e - i);
    j += e - i;
    i = e;
    if (cr) {
      d[j++] = '\n';
      i += (i + 1 < srclen && src[i + 1] == '\n') ? 2 : 1;
    }
  }
  d[j] = '\0';
  *out_len = j;
  return d;
}

/* ---- transfer encodings ---------------------------------------------------------------------- */

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62; /* '-' and '_': the URL-safe alphabet some MTAs use */
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Returns the decoded length, or -1 - (offset of the first bad octet). With out NULL, only
 * checks. */
static long b64decode(const char *s, size_t n, char *out) {
  unsigned acc = 0;
  int bits = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '=') break;
    if (c == '\r' || c == '\n' || c == ' ' || c == '\t') continue;
    int v = b64val(c);
    if (v < 0) return -1 - (long)i;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out) out[k] = (char)((acc >> bits) & 0xff);
      k++;
    }
  }
  return (long)k;
}

/* Quoted-printable; header = 1 for the "Q" encoding of RFC 2047 ('_' is a space). Lenient: a
 * '=' not followed by two hex digits or a line end stays as it is, as readers do. */
static size_t qpdecode(const char *s, size_t n, char *out, int header) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!header) { /* the octets up to the next '=' are themselves: one copy */
      const char *eq = memchr(s + i, '=', n - i);
      size_t e = eq ? (size_t)(eq - s) : n;
      memcpy(out + k, s + i, e - i);
      k += e - i;
      if ((i = e) == n) break;
    }
    char c = s[i];
    if (c == '=' && i + 2 < n + 0 && smtpc__bhexval((unsigned char)s[i + 1]) >= 0 &&
        smtpc__bhexval((unsigned char)s[i + 2]) >= 0) {
      out[k++] = (char)(smtpc__bhexval((unsigned char)s[i + 1]) * 16 + smtpc__bhexval((unsigned char)s[i + 2]));
      i += 2;
    } else if (c == '=' && !header) {
      size_t j = i + 1;
      while (j < n && is_wsp(s[j])) j++; /* trailing white space before a soft break */
      if (j < n && (s[j] == '\r' || s[j] == '\n')) {
        if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') j++;
        i = j;
      } else if (j == n) {
        i = j;
      } else {
        out[k++] = c;
      }
    } else if (c == '_' && header) {
      out[k++] = ' ';
    } else {
      out[k++] = c;
    }
  }
  return k;
}

/* smtpc__bnext_line, for a text known to hold no CR (most mail is stored with LF line ends):
 * one memchr a line instead of two. */
static int next_line(const char *msg, size_t end, size_t *pos, size_t *line, size_t *line_len,
                     int nocr) {
  if (!nocr) return smtpc__bnext_line(msg, end, pos, line, line_len);
  size_t i = *pos;
  if (i >= end) return 0;
  const char *nl = smtpc__bchr(msg + i, end - i, '\n');
  size_t j = nl ? (size_t)(nl - msg) : end;
  *line = i;
  *line_len = j - i;
  *pos = j < end ? j + 1 : j;
  return 1;
}

/* ---- header fields --------------------------------------------------------------------------- */

/* RFC 2047 encoded words in v[0..n) decoded to UTF-8 (white space between two words dropped). */
static char *decode_words(smtpc_bounce_parser *p, const char *v, size_t n, size_t *out_len) {
  char *d = smtpc__balloc(p, 4 * n + 8);
  if (!d) return NULL;
  size_t k = 0, i = 0, pending_ws = 0;
  int last_was_word = 0;
  while (i < n) {
    const char *q;
    if (v[i] == '=' && i + 1 < n && v[i + 1] == '?') {
      /* =?charset?X?text?= */
      size_t cs0 = i + 2, cs1 = cs0;
      while (cs1 < n && v[cs1] != '?' && cs1 - cs0 < 40) cs1++;
      if (cs1 + 2 < n && v[cs1 + 2] == '?' && (q = smtpc__bmemmem(v + cs1 + 3, n - cs1 - 3, "?=", 2))) {
        char enc = (char)smtpc__blower((unsigned char)v[cs1 + 1]);
        const char *t = v + cs1 + 3;
        size_t tl = (size_t)(q - t);
        char cs[41];
        size_t csl = cs1 - cs0;
        memcpy(cs, v + cs0, csl);
        cs[csl] = '\0';
        char *star = strchr(cs, '*'); /* RFC 2231 language suffix */
        if (star) *star = '\0';
        char *raw = smtpc__balloc(p, tl + 1);
        if (!raw) return NULL;
        long rl = -1;
        if (enc == 'b') rl = b64decode(t, tl, raw);
        else if (enc == 'q') rl = (long)qpdecode(t, tl, raw, 1);
        if (rl >= 0) {
          size_t ul;
          char *u = smtpc__butf8(p, cs, raw, (size_t)rl, &ul);
          if (!u) return NULL;
          if (!last_was_word && pending_ws && k < 4 * n) d[k++] = ' ';
          if (k + ul > 4 * n) ul = 4 * n - k;
          memcpy(d + k, u, ul);
          k += ul;
          pending_ws = 0;
          last_was_word = 1;
          i = (size_t)(q - v) + 2;
          continue;
        }
      }
    }
    if (is_wsp(v[i])) {
      pending_ws++;
      i++;
      continue;
    }
    if (k + 2 > 4 * n) break;
    if (pending_ws) d[k++] = ' ';
    pending_ws = 0;
    last_was_word = 0;
    d[k++] = v[i++];
  }
  d[k] = '\0';
  *out_len = k;
  return d;
}

/* The first "=?" in v[0..n) (where an encoded word may start), NULL when none. Searched by its
 * '?': values full of '=' (DKIM signatures, base64 parameters) hold few '?'. */
static const char *word_start(const char *v, size_t n) {
  for (const char *q = n > 1 ? memchr(v + 1, '?', n - 1) : NULL; q;
       q = q + 1 < v + n ? memchr(q + 1, '?', (size_t)(v + n - q - 1)) : NULL)
    if (q[-1] == '=') return q - 1;
  return NULL;
}

/* Where the first ESC or "=?" of p->src at or after `from` is ('=' of "=?"; srclen when none).
 * Fields are read in order, so one search serves every field up to the mark: most messages
 * have none, or a few in one Subject. */
static size_t word_mark(smtpc_bounce_parser *p, size_t from) {
  if (from >= p->mark_from && from <= p->mark) return p->mark;
  const char *s = p->src + from;
  size_t n = p->srclen - from;
  const char *e = memchr(s, 0x1b, n);
  size_t lim = e ? (size_t)(e - s) : n; /* an "=?" counts only before the ESC */
  const char *w = word_start(s, lim);
  p->mark_from = from;
  p->mark = from + (w ? (size_t)(w - s) : lim);
  return p->mark;
}

/* val is bheaders' arena copy of the unfolded value, with room for a NUL after it. With
 * plain, its source holds no ESC and no "=?" (unfolding joins lines with a space, so it
 * makes neither): nothing to decode. */
static int push_header(smtpc_bounce_parser *p, const char *name, size_t nl, char *val,
                       size_t vl, int plain) {
  if (p->nhdr == p->caphdr) {
    size_t cap = p->caphdr ? p->caphdr * 2 : 64;
    smtpc__bheader *h = realloc(p->hdr, cap * sizeof *h);
    if (!h) return SMTPC_ENOMEM;
    p->hdr = h;
    p->caphdr = cap;
  }
  smtpc__bheader *h = &p->hdr[p->nhdr];
  h->name = name; /* a view: every reader compares name_len octets */
  h->name_len = nl;
  if (!plain && (word_start(val, vl) || memchr(val, 0x1b, vl))) {
    size_t n;
    char *v = memchr(val, 0x1b, vl) ? smtpc__butf8(p, "iso-2022-jp", val, vl, &n)
                                    : smtpc__bstrdup(p, val, vl);
    if (!v) return SMTPC_ENOMEM;
    if (!(v = decode_words(p, v, strlen(v), &n))) return SMTPC_ENOMEM;
    h->value = v;
    h->value_len = n;
  } else {
    val[vl] = '\0'; /* the copy is the value: no second one */
    h->value = val;
    h->value_len = vl;
  }
  p->nhdr++;
  return 0;
}

/* The octets of a field name (RFC 5322 ftext: printable ASCII but ':'). */
static const unsigned char ftext[256] = {
#define F1(c) ((c) > 32 && (c) < 127 && (c) != ':')
#define F4(c) F1(c), F1(c + 1), F1(c + 2), F1(c + 3)
#define F16(c) F4(c), F4(c + 4), F4(c + 8), F4(c + 12)
    F16(0), F16(16), F16(32), F16(48), F16(64), F16(80), F16(96), F16(112),
#undef F16
#undef F4
#undef F1
};

static int header_name(const char *s, size_t n, size_t *nl) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  /* four octets a step while all four are ftext (names are ten octets or more, mostly) */
  while (i + 4 <= n && (ftext[u[i]] & ftext[u[i + 1]] & ftext[u[i + 2]] & ftext[u[i + 3]])) i += 4;
  while (i < n && ftext[u[i]]) i++;
  if (i == 0 || i >= n || s[i] != ':') {
    /* "Name :" with a space before the colon is seen in old MTAs' DSNs */
    size_t j = i;
    while (j < n && is_wsp(s[j])) j++;
    if (i == 0 || j >= n || s[j] != ':') return 0;
    *nl = i;
    return (int)(j + 1);
  }
  *nl = i;
  return (int)(i + 1);
}

/* Is the field at msg[a..b) plain: read from the message itself, and no ESC or "=?" in its
 * octets? (A decoded text is looked at value by value in push_header.) */
static int plain_field(smtpc_bounce_parser *p, const char *msg, int inmsg, size_t a, size_t b) {
  if (!inmsg) return 0;
  size_t off = (size_t)(msg - p->src);
  return word_mark(p, off + a) >= off + b;
}

int smtpc__bheaders(smtpc_bounce_parser *p, const char *msg, size_t end, size_t *pos,
                    size_t base) {
  size_t first = p->nhdr;
  size_t at = *pos, line, ll;
  int started = 0;
  const char *name = NULL;
  size_t nl = 0;
  char *val = NULL;
  size_t vl = 0, vcap = 0;
  /* a text inside the message (the message itself, a returned message not encoded) has its
   * properties; a decoded one is looked at line by line */
  int inmsg = (uintptr_t)msg >= (uintptr_t)p->src && (uintptr_t)msg <= (uintptr_t)(p->src + p->srclen);
  int rc = 0;
  size_t field = 0; /* where the field being read starts in msg */
  /* lines split by one memchr each when no CR can end them (converted text has none) */
  int nocr = inmsg ? p->nocr : at >= end || !memchr(msg + at, '\r', end - at);
  while (1) {
    size_t here = at;
    if (!next_line(msg, end, &at, &line, &ll, nocr)) break;
    const char *s = msg + line;
    if (ll == 0) break; /* the empty line: body follows */
    if (is_wsp(s[0]) && name) {
      /* folded: one space for the fold, like the unfolding of RFC 5322 2.2.3 */
      size_t a = 0;
      while (a < ll && is_wsp(s[a])) a++;
      if (vl + 1 + (ll - a) >= vcap) { /* room for push_header's NUL too */
        size_t cap = (vl + 1 + ll - a) * 2 + 64;
        char *nv = smtpc__balloc(p, cap);
        if (!nv) return SMTPC_ENOMEM;
        memcpy(nv, val, vl);
        val = nv;
        vcap = cap;
      }
      if (vl && a < ll) val[vl++] = ' ';
      memcpy(val + vl, s + a, ll - a);
      vl += ll - a;
      continue;
    }
    size_t nlen;
    int v0 = header_name(s, ll, &nlen);
    if (!v0) {
      if (!started && ll > 5 && !memcmp(s, "From ", 5)) continue; /* mbox separator */
      if (is_wsp(s[0]) && !started) continue;                      /* stray fold      */
      at = here; /* not a header: the body starts here without an empty line */
      break;
    }
    if (name && (rc = push_header(p, name, nl, val, vl, plain_field(p, msg, inmsg, field, here))))
      return rc;
    field = here;
    if (p->nhdr - first >= p->lim.max_headers) return smtpc__bfail(p, SMTPC_ETOOMANYHEADERS, base + line);
    started = 1;
    name = s;
    nl = nlen;
    size_t a = (size_t)v0;
    while (a < ll && is_wsp(s[a])) a++;
    size_t b = ll;
    while (b > a && is_wsp(s[b - 1])) b--;
    vcap = (b - a) + 64;
    val = smtpc__balloc(p, vcap);
    if (!val) return SMTPC_ENOMEM;
    memcpy(val, s + a, b - a);
    vl = b - a;
  }
  if (name) {
    while (vl && is_wsp(val[vl - 1])) vl--;
    if ((rc = push_header(p, name, nl, val, vl, plain_field(p, msg, inmsg, field, at)))) return rc;
  }
  *pos = at;
  return 0;
}

/* ---- Content-Type ---------------------------------------------------------------------------- */

typedef struct ctype {
  char type[64];
  char boundary[80];
  char charset[32];
  char report[40];
} ctype;
/* multipart()'s Horspool shifts, at most the length of "--" boundary, are octets */
typedef char boundary_shift_fits[sizeof ((ctype *)0)->boundary + 1 <= 255 ? 1 : -1];

/* The value of the parameter at v[j..n) (j just after its name) into out, lower-cased unless
 * keep; 0 when no '=' follows the name (not this parameter: the search goes on). */
static int param_value(const char *v, size_t n, size_t j, char *out, size_t cap, int keep) {
  while (j < n && is_wsp(v[j])) j++;
  if (j >= n || v[j] != '=') return 0;
  j++;
  while (j < n && is_wsp(v[j])) j++;
  size_t o = 0;
  if (j < n && v[j] == '"') {
    j++;
    while (j < n && v[j] != '"' && o < cap - 1) {
      if (v[j] == '\\' && j + 1 < n) j++;
      out[o++] = v[j++];
    }
  } else {
    while (j < n && v[j] != ';' && !is_wsp(v[j]) && o < cap - 1) out[o++] = v[j++];
  }
  out[o] = '\0';
  if (!keep)
    for (size_t t = 0; t < o; t++) out[t] = (char)smtpc__blower((unsigned char)out[t]);
  return 1;
}

/* boundary, charset and report-type in one pass over the value: a name counts where it starts
 * the value or follows ';' or white space, and the first one followed by '=' gives the value. */
static void params(const char *v, size_t n, ctype *ct) {
  static const struct {
    const char *name;
    size_t len;
    size_t off, cap;
    int keep;
  } want[] = {
      {"boundary", 8, offsetof(ctype, boundary), sizeof ct->boundary, 1},
      {"charset", 7, offsetof(ctype, charset), sizeof ct->charset, 0},
      {"report-type", 11, offsetof(ctype, report), sizeof ct->report, 0},
  };
  static const unsigned char delim[256] = {[';'] = 1, [' '] = 1, ['\t'] = 1};
  int found = 0;
  for (size_t i = 0; i < n && found != 7; i++) {
    if (i > 0 && !delim[(unsigned char)v[i - 1]]) {
      while (i < n && !delim[(unsigned char)v[i]]) i++; /* to the next delimiter ... */
      continue;                                         /* ... and the octet after it */
    }
    int w; /* the names start with three different letters: the one that can match here */
    switch (smtpc__blower((unsigned char)v[i])) {
    case 'b': w = 0; break;
    case 'c': w = 1; break;
    case 'r': w = 2; break;
    default: continue;
    }
    if (found & (1 << w) || i + want[w].len >= n || !smtpc__bstarts(v + i, n - i, want[w].name))
      continue;
    if (param_value(v, n, i + want[w].len, (char *)ct + want[w].off, want[w].cap, want[w].keep))
      found |= 1 << w;
  }
}

static void parse_ctype(const char *v, size_t n, const char *deflt, ctype *ct) {
  /* every field is read as a string only: empty strings, not 216 zero octets a part */
  ct->type[0] = ct->boundary[0] = ct->charset[0] = ct->report[0] = '\0';
  size_t k = 0;
  if (v) {
    size_t i = 0;
    while (i < n && is_wsp(v[i])) i++;
    while (i < n && v[i] != ';' && !is_wsp(v[i]) && k < sizeof ct->type - 1)
      ct->type[k++] = (char)smtpc__blower((unsigned char)v[i++]);
    params(v, n, ct);
  }
  ct->type[k] = '\0';
  if (!k || !strchr(ct->type, '/')) strcpy(ct->type, deflt);
}

/* ---- the tree -------------------------------------------------------------------------------- */

static int add_part(smtpc_bounce_parser *p, const ctype *ct, size_t hfirst, size_t hn,
                    const char *text, size_t len, int depth, int in822) {
  if (p->npart == p->cappart) {
    size_t cap = p->cappart ? p->cappart * 2 : 16;
    smtpc__bpart *np = realloc(p->part, cap * sizeof *np);
    if (!np) return SMTPC_ENOMEM;
    p->part = np;
    size_t *nh = realloc(p->part_hfirst, cap * sizeof *nh);
    if (!nh) return SMTPC_ENOMEM;
    p->part_hfirst = nh;
    p->cappart = cap;
  }
  smtpc__bpart *pt = &p->part[p->npart];
  pt->type = smtpc__bstrdup(p, ct->type, strlen(ct->type));
  pt->charset = smtpc__bstrdup(p, ct->charset, strlen(ct->charset));
  if (!pt->type || !pt->charset) return SMTPC_ENOMEM;
  pt->headers = NULL;
  pt->nheaders = hn;
  pt->text = text;
  pt->len = len;
  pt->depth = depth;
  pt->in_rfc822 = in822;
  p->part_hfirst[p->npart++] = hfirst;
  return 0;
}

/* The parts whose text the parser reads: the body (the first text/plain, else the first
 * text/html: html_fallback), delivery-status and feedback-report parts, outside a returned
 * message (bounce.c view(), bounce_dsn.c). */
static int read_type(const char *type) {
  return !strcmp(type, "text/plain") || !strcmp(type, "message/delivery-status") ||
         !strcmp(type, "message/global-delivery-status") ||
         !strcmp(type, "message/feedback-report");
}

static int wanted_text(const char *type) {
  return !strncmp(type, "text/", 5) || !strncmp(type, "message/", 8) ||
         !strcmp(type, "application/json");
}

/* Content-Transfer-Encoding undone. Returns NULL with *bad set for a malformed part. */
static const char *undo_cte(smtpc_bounce_parser *p, const char *cte, size_t ctel, const char *s,
                            size_t n, size_t *out_len, long *bad) {
  *bad = -1;
  if (cte && smtpc__bstarts(cte, ctel, "base64")) {
    char *d = smtpc__balloc(p, n / 4 * 3 + 4);
    if (!d) return NULL;
    long k = b64decode(s, n, d);
    if (k < 0) {
      *bad = -1 - k;
      return NULL;
    }
    *out_len = (size_t)k;
    return d;
  }
  if (cte && smtpc__bstarts(cte, ctel, "quoted-printable")) {
    char *d = smtpc__balloc(p, n + 1);
    if (!d) return NULL;
    *out_len = qpdecode(s, n, d, 0);
    return d;
  }
  *out_len = n;
  return s;
}

static int entity(smtpc_bounce_parser *p, const char *buf, size_t start, size_t end, size_t base,
                  int depth, int in822, const char *deflt);

static int multipart(smtpc_bounce_parser *p, const char *buf, size_t pos, size_t end,
                     size_t base, int depth, int in822, const ctype *ct) {
  size_t bl = strlen(ct->boundary);
  const char *child = !strcmp(ct->type, "multipart/digest") ? "message/rfc822" : "text/plain";
  size_t part_start = 0, nparts = 0;
  int open = 0, closed = 0;
  /* A boundary line is "--" boundary at a line start. "--" boundary is looked for as one
   * string (Horspool: the text is read in steps of up to its length, not octet by octet, nor
   * '-' by '-': prose and base64 alike are mostly skipped), and kept when it starts a line.
   * Lines end at LF, CR LF or a lone CR, as next_line() splits them. */
  char needle[sizeof ct->boundary + 2];
  needle[0] = needle[1] = '-';
  memcpy(needle + 2, ct->boundary, bl);
  const size_t k = bl + 2;
  uint8_t skip[256]; /* every shift fits an octet (boundary_shift_fits) */
  memset(skip, (int)k, sizeof skip);
  for (size_t i = 0; i + 1 < k; i++) skip[(unsigned char)needle[i]] = (uint8_t)(k - 1 - i);
  for (size_t from = pos; from + k <= end;) {
    /* the next "--" boundary at or after from */
    size_t q = from;
    for (;;) {
      unsigned char last = (unsigned char)buf[q + k - 1];
      if (last == (unsigned char)needle[k - 1] && !memcmp(buf + q, needle, k - 1)) break;
      q += skip[last];
      if (q + k > end) break;
    }
    if (q + k > end) break;
    from = q + 1;
    if (q > pos && buf[q - 1] != '\n' && buf[q - 1] != '\r') continue;
    size_t j, at;
    const char *nl = smtpc__bchr(buf + q, end - q, '\n'), *cr;
    j = nl ? (size_t)(nl - buf) : end;
    if (!p->nocr && (cr = memchr(buf + q, '\r', j - q)) != NULL) j = (size_t)(cr - buf);
    size_t ll = j - q;
    const char *s = buf + q;
    size_t r = bl + 2;
    int close = ll >= r + 2 && s[r] == '-' && s[r + 1] == '-';
    if (close) r += 2;
    while (r < ll && is_wsp(s[r])) r++;
    if (r != ll) continue;
    at = j; /* past the line end: CR LF is one */
    if (at < end && buf[at] == '\r') at++;
    if (at < end && buf[at] == '\n' && (at == j || buf[at - 1] == '\r')) at++;
    if (open) {
      /* the part ends where the line before this one does (without its line end) */
      size_t prev_end = q == part_start ? q : q - (buf[q - 1] == '\n' && q >= 2 && buf[q - 2] == '\r' ? 2 : 1);
      int rc = entity(p, buf, part_start, prev_end, base, depth + 1, in822, child);
      if (rc < 0) return rc;
      nparts++;
    }
    if (close) {
      closed = 1;
      break;
    }
    open = 1;
    part_start = from = at;
  }
  if (open && !closed) {
    smtpc__bnote(p, "no closing boundary at octet %zu", base + end);
    int rc = entity(p, buf, part_start, end, base, depth + 1, in822, child);
    if (rc < 0) return rc;
    nparts++;
  }
  if (!nparts) {
    /* a multipart without its boundary: what is there is still text to read */
    smtpc__bnote(p, "multipart without its boundary at octet %zu", base + pos);
    ctype t = *ct;
    strcpy(t.type, "text/plain");
    size_t n;
    char *u = smtpc__butf8(p, t.charset, buf + pos, end - pos, &n);
    if (!u) return SMTPC_ENOMEM;
    return add_part(p, &t, p->nhdr, 0, u, n, depth, in822);
  }
  return 0;
}

static int entity(smtpc_bounce_parser *p, const char *buf, size_t start, size_t end, size_t base,
                  int depth, int in822, const char *deflt) {
  if (++p->nparts_seen > p->lim.max_parts) return smtpc__bfail(p, SMTPC_ETOOMANYPARTS, base + start);
  size_t hfirst = p->nhdr, pos = start;
  int rc = smtpc__bheaders(p, buf, end, &pos, base);
  if (rc < 0) return rc;
  size_t hn = p->nhdr - hfirst, vl = 0, ctel = 0;
  const smtpc__bheader *h = hn ? p->hdr + hfirst : NULL;
  const char *v = smtpc__bheader_get(h, hn, "Content-Type", &vl);
  const char *cte = smtpc__bheader_get(h, hn, "Content-Transfer-Encoding", &ctel);
  ctype ct;
  parse_ctype(v, vl, deflt, &ct);
  if (!strncmp(ct.type, "multipart/", 10) && ct.boundary[0]) {
    if ((size_t)depth + 1 > p->lim.max_depth) return smtpc__bfail(p, SMTPC_ETOODEEP, base + start);
    return multipart(p, buf, pos, end, base, depth, in822, &ct);
  }
  int is822 = !strcmp(ct.type, "message/rfc822") || !strcmp(ct.type, "message/global") ||
              !strcmp(ct.type, "text/rfc822-headers") ||
              !strcmp(ct.type, "message/global-headers");
  const char *text = "";
  size_t len = 0;
  if (wanted_text(ct.type) || is822) {
    long bad;
    size_t rawl;
    /* Only some parts' text is read (read_type); a returned message's headers are parsed
     * once. Other parts are not decoded: they keep an empty text, and only what decoding
     * them would have noted is noted (bad base64, an unknown charset). */
    int read = !is822 && !in822 && read_type(ct.type);
    /* the first HTML part of the bounce's own is kept to be read if the tree turns out to hold
     * no text/plain (html_fallback): where it has one, decoding the HTML is wasted work */
    if (!is822 && !in822 && !strcmp(ct.type, "text/html") && p->html_part == (size_t)-1) {
      p->html_part = p->npart;
      p->html_raw = buf + pos;
      p->html_rawlen = end - pos;
      p->html_cte = cte;
      p->html_ctel = ctel;
    }
    if (!read && !(is822 && !p->have_orig && !in822) && !charset_unknown(p, ct.charset)) {
      if (cte && smtpc__bstarts(cte, ctel, "base64") && (bad = b64decode(buf + pos, end - pos, NULL)) < 0) {
        smtpc__bnote(p, "part %zu (%s) skipped: bad base64 at octet %zu", p->nparts_seen, ct.type,
                     base + pos + (size_t)(-1 - bad));
        if (p->html_part == p->npart) p->html_part = (size_t)-1; /* not added: the next may be */
        return 0;
      }
      if (is822 && (size_t)depth + 1 > p->lim.max_depth) return smtpc__bfail(p, SMTPC_ETOODEEP, base + start);
      return add_part(p, &ct, hfirst, hn, "", 0, depth, is822 || in822);
    }
    const char *raw = undo_cte(p, cte, ctel, buf + pos, end - pos, &rawl, &bad);
    if (!raw && bad < 0) return SMTPC_ENOMEM;
    if (!raw) {
      smtpc__bnote(p, "part %zu (%s) skipped: bad base64 at octet %zu", p->nparts_seen, ct.type,
                   base + pos + (size_t)bad);
      if (p->html_part == p->npart) p->html_part = (size_t)-1;
      return 0;
    }
    if (is822) {
      /* the returned message: only its header fields matter, and only the first one's */
      if ((size_t)depth + 1 > p->lim.max_depth) return smtpc__bfail(p, SMTPC_ETOODEEP, base + start);
      if (!p->have_orig && !in822) {
        /* read up to the text's end: the fields stop at the first empty line all the same */
        size_t of = p->nhdr, hp = 0;
        size_t ob = raw == buf + pos ? base + pos : base + pos; /* offsets of decoded text are approximate */
        if ((rc = smtpc__bheaders(p, raw, rawl, &hp, ob)) < 0) return rc;
        p->orig_first = of;
        p->orig_n = p->nhdr - of;
        p->have_orig = p->orig_n > 0;
      }
      if (charset_unknown(p, ct.charset)) { /* what converting its header would have noted */
        size_t at = 0, line, ll;
        while (smtpc__bnext_line(raw, rawl, &at, &line, &ll))
          if (ll == 0) break;
        charset_note(p, ct.charset, raw, at);
      }
      return add_part(p, &ct, hfirst, hn, "", 0, depth, 1);
    }
    if (!read) {
      charset_note(p, ct.charset, raw, rawl);
      return add_part(p, &ct, hfirst, hn, "", 0, depth, in822);
    }
    char *u = smtpc__butf8(p, ct.charset, raw, rawl, &len);
    if (!u) return SMTPC_ENOMEM;
    text = u;
  }
  return add_part(p, &ct, hfirst, hn, text, len, depth, in822);
}

/* A bounce that comes as HTML alone: with no text/plain of the bounce's own in the tree, its
 * first HTML part is read as the text it shows (bounce_html.c), for the modules to read as a
 * body (bounce.c view()). Not beside a delivery-status part: the report holds the records, and
 * the HTML beside it (AOL's, 58 KB each in the corpus) changed none of them while it cost the
 * whole corpus 4% of its speed. */
static int html_fallback(smtpc_bounce_parser *p) {
  size_t i = p->html_part, rawl, len;
  long bad;
  if (i >= p->npart) return 0;
  for (size_t k = 0; k < p->npart; k++) {
    const char *t = p->part[k].type;
    if (!p->part[k].in_rfc822 && (!strcmp(t, "text/plain") || !strcmp(t, "message/delivery-status") ||
                                  !strcmp(t, "message/global-delivery-status")))
      return 0;
  }
  const char *raw = undo_cte(p, p->html_cte, p->html_ctel, p->html_raw, p->html_rawlen, &rawl, &bad);
  if (!raw) return bad < 0 ? SMTPC_ENOMEM : 0; /* bad base64: entity() noted it */
  char *u = smtpc__butf8(p, p->part[i].charset, raw, rawl, &len);
  if (u) u = smtpc__bhtml_text(p, u, len, &len);
  if (!u) return SMTPC_ENOMEM;
  p->part[i].text = u;
  p->part[i].len = len;
  return 0;
}

int smtpc__bmime(smtpc_bounce_parser *p) {
  const char *msg = p->src;
  size_t n = p->srclen;
  p->nocr = !memchr(msg, '\r', n);
  p->mark_from = 1, p->mark = 0; /* nothing known yet (mark < mark_from) */
  /* the line bound first, over the raw octets, before any work: memchr from LF to LF, and
   * only a long stretch is looked at for CRs (a CR-only message is one long stretch). A
   * message no longer than the bound has no line longer than it. */
  for (size_t at = 0; n > p->lim.max_line && at < n;) {
    const char *nl = memchr(msg + at, '\n', n - at);
    size_t e = nl ? (size_t)(nl - msg) : n;
    if (e - at > p->lim.max_line) {
      size_t ls = at;
      for (size_t i = at; i < e; i++) {
        if (msg[i] == '\r') ls = i + 1;
        else if (i - ls >= p->lim.max_line) return smtpc__bfail(p, SMTPC_EMSGLINE, ls);
      }
    }
    at = e + 1;
  }
  size_t pos = 0;
  int rc = smtpc__bheaders(p, msg, n, &pos, 0);
  if (rc < 0) return rc;
  p->top_nhdr = p->nhdr;
  /* the top entity again, now as a body: its header fields are hdr[0..top_nhdr) */
  size_t vl = 0, ctel = 0;
  const char *v = smtpc__bheader_get(p->hdr, p->top_nhdr, "Content-Type", &vl);
  const char *cte = smtpc__bheader_get(p->hdr, p->top_nhdr, "Content-Transfer-Encoding", &ctel);
  ctype ct;
  parse_ctype(v, vl, "text/plain", &ct);
  p->nparts_seen = 1;
  if (!strncmp(ct.type, "multipart/", 10) && ct.boundary[0]) {
    rc = multipart(p, msg, pos, n, 0, 0, 0, &ct);
    return rc < 0 ? rc : html_fallback(p);
  }
  long bad;
  size_t rawl, len;
  const char *raw = undo_cte(p, cte, ctel, msg + pos, n - pos, &rawl, &bad);
  if (!raw && bad < 0) return SMTPC_ENOMEM;
  if (!raw) {
    smtpc__bnote(p, "body skipped: bad base64 at octet %zu", pos + (size_t)bad);
    return 0;
  }
  if (!wanted_text(ct.type)) return add_part(p, &ct, 0, p->top_nhdr, "", 0, 0, 0);
  char *u = smtpc__butf8(p, ct.charset, raw, rawl, &len);
  if (u && !strcmp(ct.type, "text/html")) u = smtpc__bhtml_text(p, u, len, &len);
  if (!u) return SMTPC_ENOMEM;
  return add_part(p, &ct, 0, p->top_nhdr, u, len, 0, 0);
}
