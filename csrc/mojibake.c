/*
 * mojibake.c -- UTF-8 text that was read once as Latin-1 or Windows-1252 and written out again
 * as UTF-8 ("ãƒ¦ãƒ¼ã‚¶ãƒ¼" for "ユーザー", "mÃ¶chten" for "möchten"), turned back into what it
 * was. Replies reach decode() through logs, spreadsheets and CSV exports, and a tool that
 * guessed the wrong charset on the way leaves every non-ASCII word in this form, where no
 * phrase can match it. The repair is the one ftfy makes for this case: map each code point
 * back to the single octet the wrong charset gave it, and keep the result only when those
 * octets are well-formed UTF-8 with multi-octet sequences in them. Proper text almost never
 * passes that test ("Empfänger" gives the octets E4 6E, which UTF-8 refuses).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* Windows-1252's octets 0x80-0x9F: the code point each stands for (0 where it has none, and
 * Latin-1 readers give the C1 control U+0080-U+009F itself, which maps back directly). */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* The octet a Latin-1 or Windows-1252 reader turned into code point cp; -1 when none did. */
static int octet_of(uint32_t cp) {
  int k;
  if (cp < 0x100) return (int)cp;
  for (k = 0; k < 32; k++)
    if (cp1252_high[k] == cp) return 0x80 + k;
  return -1;
}

/* Is s[0..n) well-formed UTF-8 with at least `want` multi-octet sequences? A sequence cut
 * short at the very end (a text truncated by whoever stored it) is forgiven. */
static int utf8_with_sequences(const unsigned char *s, size_t n, size_t want) {
  size_t i = 0, seq = 0;
  uint32_t cp;
  while (i < n) {
    size_t l = smtpc__utf8_decode(s + i, n - i, &cp);
    if (l == 0) {
      size_t k = 1;
      if (s[i] < 0xC2 || s[i] > 0xF4) return 0;
      while (i + k < n && (s[i + k] & 0xC0) == 0x80) k++;
      if (i + k != n) return 0; /* malformed inside: not what a mis-read left */
      break;
    }
    seq += l > 1;
    i += l;
  }
  return seq >= want;
}

size_t smtpc__unmojibake(const char *in, size_t n, char *out, size_t cap) {
  const unsigned char *s = (const unsigned char *)in;
  size_t i = 0, o = 0;
  /* every mis-read multi-octet sequence starts with U+00C2-U+00F4, which UTF-8 writes as C3 xx */
  if (n < 4 || !memchr(in, 0xC3, n)) return 0;
  while (i < n) {
    uint32_t cp;
    size_t l = smtpc__utf8_decode(s + i, n - i, &cp);
    int b;
    if (l == 0) return 0; /* not UTF-8 at all: nothing to undo */
    b = octet_of(cp);
    if (b >= 0) {
      if (o + 1 > cap) return 0;
      out[o++] = (char)b;
    } else { /* U+FFFD and the like: kept as they are */
      if (o + l > cap) return 0;
      memcpy(out + o, in + i, l);
      o += l;
    }
    i += l;
  }
  return utf8_with_sequences((const unsigned char *)out, o, 1) ? o : 0;
}

/* Typographic and escaped quotes: a reply copied out of a web page, a word processor or a
 * rendered non-delivery report comes with ‘ ’ “ ” (and „ ‟ ‚ ‛, primes, « ») where the server
 * wrote ' and "; one shown by a web page or kept in a JSON log, with the quote escaped
 * ("doesn&#39;t", "&quot;IP is rejected&quot;", "doesn\u0027t"). Each becomes its ASCII quote
 * followed by spaces, the same number of octets, so "doesn’t exist" reads as "doesn't exist"
 * does (the matcher folds quotes and runs of white space into one space) and every offset into
 * the text stays where it was. */
static const struct {
  const char *seq;
  unsigned char len, dbl;
} escaped[] = {
    {"&#39;", 5, 0},   {"&#x27;", 6, 0},  {"&#X27;", 6, 0},  {"&apos;", 6, 0},  {"&rsquo;", 7, 0},
    {"&lsquo;", 7, 0}, {"&quot;", 6, 1},  {"&#34;", 5, 1},   {"&#x22;", 6, 1},  {"&#X22;", 6, 1},
    {"&ldquo;", 7, 1}, {"&rdquo;", 7, 1}, {"\\u0027", 6, 0}, {"\\u2019", 6, 0}, {"\\u2018", 6, 0},
    {"\\u0022", 6, 1}, {"\\u201c", 6, 1}, {"\\u201d", 6, 1},
};

/* The length of the quote at s[i] (0: none); *dbl = 1 for a double quote. */
static int quote_at(const unsigned char *s, size_t n, size_t i, int *dbl) {
  if (s[i] == 0xE2 && i + 2 < n && s[i + 1] == 0x80 &&
      ((s[i + 2] >= 0x98 && s[i + 2] <= 0x9F) || s[i + 2] == 0xB2 || s[i + 2] == 0xB3)) {
    /* U+201C-U+201F and U+2033 are double quotes; the rest single ones */
    *dbl = (s[i + 2] >= 0x9C && s[i + 2] <= 0x9F) || s[i + 2] == 0xB3;
    return 3;
  }
  if (s[i] == 0xC2 && i + 1 < n && (s[i + 1] == 0xAB || s[i + 1] == 0xBB)) {
    *dbl = 1;
    return 2;
  }
  if (s[i] == '&' || s[i] == '\\')
    for (size_t k = 0; k < sizeof escaped / sizeof escaped[0]; k++)
      if (i + escaped[k].len <= n && !memcmp(s + i, escaped[k].seq, escaped[k].len)) {
        *dbl = escaped[k].dbl;
        return escaped[k].len;
      }
  return 0;
}

size_t smtpc__quote_before(const char *in, size_t i) {
  static const unsigned char lens[] = {2, 3, 5, 6, 7}; /* the lengths quote_at() returns */
  const unsigned char *s = (const unsigned char *)in;
  int dbl;
  for (size_t k = 0; k < sizeof lens; k++)
    if (i >= lens[k] && quote_at(s, i, i - lens[k], &dbl) == lens[k]) return lens[k];
  return 0;
}

int smtpc__has_curly_quote(const char *in, size_t n) {
  static const unsigned char leads[] = {0xE2, 0xC2, '&', '\\'};
  const unsigned char *s = (const unsigned char *)in;
  for (size_t k = 0; k < sizeof leads; k++) {
    const unsigned char *p = s, *e = s + n, *c;
    int dbl;
    while (p < e && (c = memchr(p, leads[k], (size_t)(e - p))) != NULL) {
      if (quote_at(s, n, (size_t)(c - s), &dbl)) return 1;
      p = c + 1;
    }
  }
  return 0;
}

void smtpc__plain_quotes(char *text, size_t n) {
  unsigned char *s = (unsigned char *)text;
  size_t i = 0;
  while (i < n) {
    int dbl, l = quote_at(s, n, i, &dbl);
    if (l == 0) {
      i++;
      continue;
    }
    s[i] = dbl ? '"' : '\'';
    memset(s + i + 1, ' ', (size_t)l - 1);
    i += (size_t)l;
  }
}
