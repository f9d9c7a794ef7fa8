/* bounce_html.c -- the text an HTML body shows, for the bounces that come as text/html alone
 * (no text/plain beside it), so that the MTA modules read them as they read plain bodies.
 *
 * Not an HTML parser: the bounce's words are what matter, and their line structure, which the
 * modules split on. So: tags go; the ones that break a line in a browser (br, p, div, tr, li,
 * headings, ...) leave a line end; cells leave a space; the content of head, script, style and
 * title goes with them; comments go; character references are decoded (the five XML ones,
 * &nbsp; as a space, numeric ones as UTF-8). The source's own line ends are kept: HTML
 * bounces are written as their plain versions with tags around the lines.
 * A '<' that opens no tag ("< 5 tries", a bare "<bob@example.net>" an MTA pasted in without
 * escaping it) stays text. The output is never longer than the input plus one octet. */
#include <string.h>

#include "bounce_core.h"

#define MAX_TAG 4096 /* octets from '<' to '>'; tags with long style attributes fit */

static int alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int alnum(int c) { return alpha(c) || (c >= '0' && c <= '9'); }

/* Elements after which a browser starts a new line (name lower-cased, nl octets). Tags are
 * half of an HTML bounce's octets: a switch on the first letter, not a walk over the names. */
static int breaks_line(const char *name, size_t nl) {
#define IS(lit) (nl == sizeof lit - 1 && !memcmp(name, lit, nl))
  switch (name[0]) {
  case 'a': return IS("address");
  case 'b': return IS("br") || IS("body") || IS("blockquote");
  case 'c': return IS("center");
  case 'd': return IS("div") || IS("dl") || IS("dt") || IS("dd");
  case 'h': return (nl == 2 && name[1] >= '1' && name[1] <= '6') || IS("hr") || IS("html");
  case 'l': return IS("li");
  case 'o': return IS("ol");
  case 'p': return IS("p") || IS("pre");
  case 't': return IS("tr") || IS("table");
  case 'u': return IS("ul");
  default: return 0;
  }
#undef IS
}

/* Elements whose content is not shown. */
static int hides_content(const char *name, size_t nl) {
  return (nl == 4 && !memcmp(name, "head", 4)) || (nl == 6 && !memcmp(name, "script", 6)) ||
         (nl == 5 && !memcmp(name, "style", 5)) || (nl == 5 && !memcmp(name, "title", 5));
}

/* A character reference at s[0] == '&': its length, with what it stands for written to o
 * (*olen octets); 0 when it is none, and the '&' is text. The output is never longer than the
 * reference ("&#1;" is 4 octets for 1, "&#x10FFFF;" 10 for 4). */
static size_t reference(const char *s, size_t n, char *o, size_t *olen) {
  static const struct { const char *name; char c; } named[] = {
      {"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}, {"nbsp;", ' '}};
  if (n >= 2 && s[1] == '#') {
    size_t i = 2;
    int hex = i < n && smtpc__blower(s[i]) == 'x';
    uint32_t cp = 0;
    if (hex) i++;
    size_t first = i;
    for (; i < n && i - first < 8; i++) {
      int d = smtpc__bhexval(s[i]);
      if (d < 0 || (!hex && d > 9)) break;
      cp = cp * (hex ? 16 : 10) + (uint32_t)d;
    }
    if (i == first || i >= n || s[i] != ';') return 0;
    /* NUL, surrogates and what Unicode lacks are no text: a replacement character instead */
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
    *olen = smtpc__utf8_encode(cp, o);
    return i + 1;
  }
  for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
    size_t l = strlen(named[k].name);
    size_t j = 0;
    while (j < l && 1 + j < n && smtpc__blower(s[1 + j]) == named[k].name[j]) j++;
    if (j == l) {
      o[0] = named[k].c;
      *olen = 1;
      return 1 + l;
    }
  }
  return 0;
}

/* Where the element `name`'s content ends: just past its end tag "</name ...>", or n. */
static size_t skip_content(const char *s, size_t n, size_t from, const char *name) {
  size_t l = strlen(name);
  for (size_t i = from; i + 2 + l <= n; i++) {
    const char *lt = memchr(s + i, '<', n - i);
    if (!lt) break;
    i = (size_t)(lt - s);
    if (i + 2 + l > n) break;
    if (s[i + 1] != '/') continue;
    size_t j = 0;
    while (j < l && smtpc__blower(s[i + 2 + j]) == name[j]) j++;
    if (j < l || (i + 2 + l < n && alnum(s[i + 2 + l]))) continue;
    const char *gt = memchr(s + i, '>', n - i);
    return gt ? (size_t)(gt - s) + 1 : n;
  }
  return n;
}

char *smtpc__bhtml_text(smtpc_bounce_parser *p, const char *s, size_t n, size_t *out_len) {
  char *o = smtpc__balloc(p, n + 1);
  size_t k = 0, i = 0;
  if (!o) return NULL;
  while (i < n) {
    /* text up to the next '<' or '&' is copied as it is */
    const char *lt = memchr(s + i, '<', n - i);
    size_t stop = lt ? (size_t)(lt - s) : n;
    const char *amp = memchr(s + i, '&', stop - i);
    if (amp) stop = (size_t)(amp - s);
    memcpy(o + k, s + i, stop - i);
    k += stop - i;
    i = stop;
    if (i >= n) break;
    char c = s[i];
    if (c == '&') {
      size_t ol = 0, used = reference(s + i, n - i, o + k, &ol);
      if (used) {
        k += ol;
        i += used;
        continue;
      }
    } else if (c == '<' && i + 3 < n && !memcmp(s + i, "<!--", 4)) {
      const char *e = smtpc__bmemmem(s + i + 4, n - i - 4, "-->", 3);
      i = e ? (size_t)(e - s) + 3 : n;
      continue;
    } else if (c == '<' && i + 1 < n && (alpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!')) {
      /* a tag ends within MAX_TAG octets or is no tag: a '<' with no '>' after it must not send
       * every later '<' to the end of the part again (quadratic; bench/bounce/hostile.py) */
      const char *gt = memchr(s + i, '>', n - i < MAX_TAG ? n - i : MAX_TAG);
      size_t j = i + 1 + (s[i + 1] == '/' || s[i + 1] == '!'), nl = 0;
      char name[12];
      while (j < n && alnum(s[j]) && nl < sizeof name - 1) name[nl++] = (char)smtpc__blower(s[j++]);
      name[nl] = '\0';
      /* an address in angle brackets, not a tag: "<bob@example.net>" stays text */
      if (gt && !memchr(s + i, ' ', (size_t)(gt - s) - i) && memchr(s + i, '@', (size_t)(gt - s) - i))
        gt = NULL;
      if (gt) {
        size_t end = (size_t)(gt - s) + 1;
        if (s[i + 1] != '/' && hides_content(name, nl)) end = skip_content(s, n, end, name);
        else if (nl && breaks_line(name, nl)) o[k++] = '\n';
        else if (nl == 2 && name[0] == 't' && (name[1] == 'd' || name[1] == 'h')) o[k++] = ' ';
        i = end;
        continue;
      }
    }
    o[k++] = c;
    i++;
  }
  o[k] = '\0';
  *out_len = k;
  return o;
}
