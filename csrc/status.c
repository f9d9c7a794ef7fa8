/* status.c -- RFC 3463 enhanced status codes: "class.subject.detail", class 2, 4 or 5,
 * subject and detail of one to three digits. Parsing only; their meanings live in the
 * catalog (catalog/status.def). */
#include <string.h>

#include "smtpcode.h"
#include "internal.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int smtpc_status_parse(const char *s, size_t len, char out[SMTPC_STATUS_SIZE]) {
  unsigned part[3] = {0, 0, 0};
  size_t i = 0;
  int p;
  if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return SMTPC_EBADSTATUS;
  part[0] = (unsigned)(s[0] - '0');
  i = 2;
  for (p = 1; p < 3; p++) {
    size_t start = i;
    while (i < len && is_digit(s[i]) && i - start < 3) part[p] = part[p] * 10 + (unsigned)(s[i++] - '0');
    if (i == start) return SMTPC_EBADSTATUS;
    if (p == 1) {
      if (i >= len || s[i] != '.') return SMTPC_EBADSTATUS;
      i++;
    }
  }
  /* "5.1.1234" or "5.1.1.2" (an IP address, a version) is not a status code. */
  if (i < len && (is_digit(s[i]) || s[i] == '.')) {
    if (s[i] == '.' && (i + 1 >= len || !is_digit(s[i + 1]))) {
      /* "5.1.1." at a sentence end is fine */
    } else {
      return SMTPC_EBADSTATUS;
    }
  }
  if (out) {
    /* canonical form: no leading zeros; bounded by the 3-digit parts */
    int n = 0;
    out[n++] = (char)('0' + part[0]);
    for (p = 1; p < 3; p++) {
      unsigned v = part[p]; /* at most 999 */
      out[n++] = '.';
      if (v >= 100) out[n++] = (char)('0' + v / 100);
      if (v >= 10) out[n++] = (char)('0' + v / 10 % 10);
      out[n++] = (char)('0' + v % 10);
    }
    out[n] = '\0';
  }
  return (int)i;
}

/* Find a status code anywhere in text, as bounce texts write it when it is not at the start
 * ("(#5.1.1 - chkusr)", "[5.7.1]"): not preceded by a digit, a dot or a letter. When cls is
 * not 0 only a status of that class counts. Returns 1 and fills out, or 0. */
int smtpc__status_find(const char *text, size_t len, char cls, char out[SMTPC_STATUS_SIZE]) {
  size_t i;
  const char *dot;
  /* jump from dot to dot (memchr is fast): a status is "c." with c one place before a dot */
  for (i = 0; i + 5 <= len; i++) {
    char c;
    if ((dot = memchr(text + i + 1, '.', len - i - 1)) == NULL) break;
    i = (size_t)(dot - text) - 1;
    if (i + 5 > len) break;
    c = text[i];
    if (c != '2' && c != '4' && c != '5') continue;
    if (cls && c != cls) continue;
    if (i > 0) {
      char b = text[i - 1];
      if (is_digit(b) || b == '.' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) continue;
    }
    if (smtpc_status_parse(text + i, len - i, out) > 0) return 1;
  }
  return 0;
}
