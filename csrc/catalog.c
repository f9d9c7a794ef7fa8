/*
 * catalog.c -- what a reply code, an enhanced status code or a reason name means, why it
 * happens and what to do about it, in English and in Japanese.
 *
 * The text is data, in catalog/ *.def X-macro tables:
 *   codes.def    reply codes (RFC 5321 and extensions, codes seen in the wild, client-side numbers)
 *   digits.def   what each digit position of a reply code means (used for codes not listed)
 *   status.def   the IANA enhanced status code registry: class, subject and detail rows, the
 *                class sentences a detail takes, and class-specific causes and fixes
 *   reasons.def  every reason name of SMTPC_REASON_MAP
 * Every entry has four parts: a title, a description (what the reply means), causes (why it
 * happens) and fixes (what the sender does about it), the layout of the Japanese guide this
 * catalog grew from (原因 / 対処法).
 * This file only finds rows and, where the key needs it, composes an entry from the meaning of
 * the key's parts (the digits of a code, the class and detail of a status) into out->buf.
 * Composition never truncates: a field that would not fit falls back to a shorter form made of
 * whole static strings, so the output is always valid UTF-8 and never overflows.
 */
#include <string.h>

#include "smtpcode.h"

enum { LANG_EN = 0, LANG_JA = 1, LANG_COUNT };

typedef struct smtpc__text {
  const char *title;
  const char *desc;
  const char *causes; /* NULL for rows that have none (digit 2, status subject) */
  const char *fixes;
} smtpc__text;

/* Which class sentences (SMTPC_STATUS_NOTE) are true for a detail, used in status.def. */
enum { FIT_NONE = 0, FIT_2 = 1 << 2, FIT_4 = 1 << 4, FIT_5 = 1 << 5 };

/* ---- tables -------------------------------------------------------------------------------- */

/* Reply codes, with a direct index by number. An enum constant per code makes a duplicate row
 * in codes.def a compile error instead of a silently shadowed entry. */
enum {
#define SMTPC_CODE(c, et, ed, ec, ef, jt, jd, jc, jf) CODE_IDX_##c,
#include "catalog/codes.def"
#undef SMTPC_CODE
  CODE_COUNT
};

static const struct {
  char key[4];
  smtpc__text t[LANG_COUNT];
} codes[CODE_COUNT] = {
#define SMTPC_CODE(c, et, ed, ec, ef, jt, jd, jc, jf) {#c, {{et, ed, ec, ef}, {jt, jd, jc, jf}}},
#include "catalog/codes.def"
#undef SMTPC_CODE
};

/* 0 = not listed, else index + 1. */
static const unsigned short code_index[600] = {
#define SMTPC_CODE(c, et, ed, ec, ef, jt, jd, jc, jf) [c] = CODE_IDX_##c + 1,
#include "catalog/codes.def"
#undef SMTPC_CODE
};

static const smtpc__text digit1[6][LANG_COUNT] = {
#define SMTPC_DIGIT1(d, et, ed, ec, ef, jt, jd, jc, jf) [d] = {{et, ed, ec, ef}, {jt, jd, jc, jf}},
#include "catalog/digits.def"
#undef SMTPC_DIGIT1
};

static const smtpc__text digit2[10][LANG_COUNT] = {
#define SMTPC_DIGIT2(d, et, ed, jt, jd) [d] = {{et, ed, NULL, NULL}, {jt, jd, NULL, NULL}},
#include "catalog/digits.def"
#undef SMTPC_DIGIT2
};

/* The sense RFC 5321 gives a third digit after a second one ([second][third]); NULL where it
 * gives none. */
static const char *const digit3[10][10][LANG_COUNT] = {
#define SMTPC_DIGIT3(s, t, en, ja) [s][t] = {en, ja},
#include "catalog/digits.def"
#undef SMTPC_DIGIT3
};

static const smtpc__text status_class[6][LANG_COUNT] = {
#define SMTPC_STATUS_CLASS(c, et, ed, ec, ef, jt, jd, jc, jf) [c] = {{et, ed, ec, ef}, {jt, jd, jc, jf}},
#include "catalog/status.def"
#undef SMTPC_STATUS_CLASS
};

/* The class's sentences a detail takes: [class][1] where the detail fits them (FIT_n), [class][0]
 * where it does not (class 2 with a detail that names a failure). */
static const struct {
  const char *desc, *fixes;
} status_note[6][2][LANG_COUNT] = {
#define SMTPC_STATUS_NOTE(c, fit, ed, ef, jd, jf) [c][fit] = {{ed, ef}, {jd, jf}},
#include "catalog/status.def"
#undef SMTPC_STATUS_NOTE
};

/* Subjects are indexed directly: the registry has 0..7, and any subject past the table is
 * simply "not registered". */
static const smtpc__text status_subject[10][LANG_COUNT] = {
#define SMTPC_STATUS_SUBJECT(s, et, ed, jt, jd) [s] = {{et, ed, NULL, NULL}, {jt, jd, NULL, NULL}},
#include "catalog/status.def"
#undef SMTPC_STATUS_SUBJECT
};

/* A duplicate (subject, detail) row in status.def is a compile error, as for codes. */
enum {
#define SMTPC_STATUS(s, d, fit, et, ed, ec, ef, jt, jd, jc, jf) STATUS_ROW_##s##_##d,
#include "catalog/status.def"
#undef SMTPC_STATUS
  STATUS_COUNT
};

/* About 80 rows: a linear scan costs less than keeping a second index in step. */
static const struct {
  unsigned short subject, detail, fit;
  smtpc__text t[LANG_COUNT];
} statuses[STATUS_COUNT] = {
#define SMTPC_STATUS(s, d, fit, et, ed, ec, ef, jt, jd, jc, jf) \
  {s, d, fit, {{et, ed, ec, ef}, {jt, jd, jc, jf}}},
#include "catalog/status.def"
#undef SMTPC_STATUS
};

/* What one class of a detail means where the generic detail text would blur it (4.1.1 is a
 * lookup that failed for now, 5.1.1 a mailbox that does not exist). A duplicate row is a
 * compile error. */
enum {
#define SMTPC_STATUS_AS(c, s, d, ec, ef, jc, jf) STATUS_AS_##c##_##s##_##d,
#include "catalog/status.def"
#undef SMTPC_STATUS_AS
  STATUS_AS_COUNT
};

static const struct {
  unsigned short cls, subject, detail;
  const char *causes[LANG_COUNT], *fixes[LANG_COUNT];
} status_as[STATUS_AS_COUNT] = {
#define SMTPC_STATUS_AS(c, s, d, ec, ef, jc, jf) {c, s, d, {ec, jc}, {ef, jf}},
#include "catalog/status.def"
#undef SMTPC_STATUS_AS
};

static const char *const reason_names[SMTPC_REASON_COUNT] = {
#define SMTPC__XX(id, name) name,
  SMTPC_REASON_MAP(SMTPC__XX)
#undef SMTPC__XX
};

static const smtpc__text reasons[SMTPC_REASON_COUNT][LANG_COUNT] = {
#define SMTPC_REASON_TEXT(id, et, ed, ec, ef, jt, jd, jc, jf) \
  [SMTPC_REASON_##id] = {{et, ed, ec, ef}, {jt, jd, jc, jf}},
#include "catalog/reasons.def"
#undef SMTPC_REASON_TEXT
};

/* The few phrases that glue composed entries together. */
static const struct {
  const char *sep;          /* between sentences */
  const char *open, *close; /* around a qualifier in a title */
  const char *nonstd;       /* title qualifier for a second digit 6-9 */
  const char *code_pre, *code_post;
  const char *digit2_other; /* second digit 6-9: no standard meaning */
  const char *digit3_none;  /* third digit with no meaning after its second digit */
  const char *status_pre, *status_post;
  const char *follow_class_subject, *follow_class, *follow_subject, *follow_none;
  const char *no_class_title;
  const char *no_class_causes;
  const char *no_class_action;
} phrase[LANG_COUNT] = {
  {" ", " (", ")", ", non-standard code",
   "Reply code ", " is not in this catalog; what follows is what its digits mean.",
   "The second digit has no meaning defined by the SMTP standards (they define 0 to 5): the "
   "server uses a private or mistaken code. It is read here as the catch-all mail system "
   "category, but the reply text says more than the number.",
   "The third digit only tells apart replies of the same category; RFC 5321 gives this one no "
   "meaning of its own, so the reply text says what the server meant.",
   "Enhanced status code ", " is not in the IANA registry (or not yet in this catalog).",
   "What follows is what its class and subject mean.",
   "Its subject is not registered either; what follows is what its class means.",
   "What follows is what its subject means.",
   "Its subject is not registered either, so only the reply text can tell what it means.",
   "Unregistered enhanced status code",
   "The code alone does not tell; the reply text that came with it does.",
   "Without its class digit a status code does not say whether the failure is permanent: look "
   "at the reply code or class that came with it (4 means retry later, 5 means do not retry "
   "unchanged)."},
  {"", "（", "）", "、規格外のコード",
   "応答コード ", " はこのカタログに載っていません。以下は各桁が一般に表す意味です。",
   "2 桁目の数字は SMTP の規格では意味が定められていません（定められているのは 0〜5 です）。"
   "サーバー独自のコードか誤ったコードです。ここでは最も広い「メールシステム」の分類として扱いますが、"
   "番号よりも応答文の内容を確認してください。",
   "3 桁目は同じ分類の応答を区別するための数字で、この組み合わせには RFC 5321 で決まった意味が"
   "ありません。サーバーが何を伝えたかったかは応答文で確認してください。",
   "拡張ステータスコード ", " は IANA の登録簿（またはこのカタログ）に載っていません。",
   "以下はクラスとサブジェクトが一般に表す意味です。",
   "サブジェクトも登録されていないため、以下はクラスが表す意味のみです。",
   "以下はサブジェクトが一般に表す意味です。",
   "サブジェクトも登録されていないため、意味は応答文から判断するしかありません。",
   "未登録の拡張ステータスコード",
   "コードだけでは判断できません。一緒に返された応答文を確認してください。",
   "クラス（先頭の数字）がないため、恒久的なエラーか一時的なエラーかはこのコードだけでは"
   "判断できません。一緒に返された応答コードやクラスを確認してください（4 なら時間をおいて再送、"
   "5 ならそのまま再送しても失敗します）。"},
};

/* ---- composing into out->buf ---------------------------------------------------------------- */

typedef struct smtpc__sb {
  char *buf;
  size_t cap;
  size_t len;
} smtpc__sb;

/* Joins the non-NULL pieces into one NUL-terminated string in b and returns it, or returns
 * NULL and leaves b as it was when the whole string does not fit. */
static const char *sb_join(smtpc__sb *b, const char *const *pieces, size_t n) {
  size_t start = b->len, i, total = 0;
  for (i = 0; i < n; i++) {
    if (pieces[i] != NULL) total += strlen(pieces[i]);
  }
  if (total >= b->cap - b->len) return NULL;
  for (i = 0; i < n; i++) {
    size_t k;
    if (pieces[i] == NULL) continue;
    k = strlen(pieces[i]);
    memcpy(b->buf + b->len, pieces[i], k);
    b->len += k;
  }
  b->buf[b->len++] = '\0';
  return b->buf + start;
}

#define SB_JOIN(b, ...) \
  sb_join((b), (const char *const[]){__VA_ARGS__}, \
          sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* The joined string, or `fallback` when it does not fit. */
static const char *join_or(const char *joined, const char *fallback) {
  return joined != NULL ? joined : fallback;
}

/* ---- keys ------------------------------------------------------------------------------------ */

static int parse_lang(const char *lang) {
  if (lang == NULL || strcmp(lang, "en") == 0) return LANG_EN;
  if (strcmp(lang, "ja") == 0) return LANG_JA;
  return -1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* 1-3 digits, no leading zero except a lone "0" (RFC 3463). Returns the value or -1. */
static int parse_part(const char *s, size_t len) {
  size_t i;
  int v = 0;
  if (len < 1 || len > 3 || (len > 1 && s[0] == '0')) return -1;
  for (i = 0; i < len; i++) {
    if (!is_digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* "c.s.d" with c in 2/4/5, or "X.s.d" (class-less; cls = 0). Returns 0 or -1. */
static int parse_status(const char *k, size_t len, int *cls, int *subject, int *detail) {
  const char *dot;
  if (len < 5 || k[1] != '.') return -1;
  if (k[0] == '2' || k[0] == '4' || k[0] == '5') *cls = k[0] - '0';
  else if (k[0] == 'X' || k[0] == 'x') *cls = 0;
  else return -1;
  dot = memchr(k + 2, '.', len - 2);
  if (dot == NULL) return -1;
  *subject = parse_part(k + 2, (size_t)(dot - (k + 2)));
  *detail = parse_part(dot + 1, (size_t)(k + len - (dot + 1)));
  return (*subject < 0 || *detail < 0) ? -1 : 0;
}

static int find_reason(const char *k, size_t len) {
  int i;
  size_t j;
  for (i = 0; i < SMTPC_REASON_COUNT; i++) {
    const char *n = reason_names[i];
    if (strlen(n) != len) continue;
    for (j = 0; j < len; j++) {
      char c = k[j];
      if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
      if (c != n[j]) break;
    }
    if (j == len) return i;
  }
  return -1;
}

static void set(smtpc_explanation *out, const smtpc__text *t) {
  out->title = t->title;
  out->description = t->desc;
  out->causes = t->causes;
  out->fixes = t->fixes;
  out->action = t->fixes;
}

/* ---- the kinds of key ------------------------------------------------------------------------ */

static int explain_code(int code, int lang, smtpc_explanation *out) {
  const smtpc__text *d1, *d2;
  const char *d3;
  smtpc__sb b;
  int nonstd;
  char *key = out->buf;
  key[0] = (char)('0' + code / 100);
  key[1] = (char)('0' + code / 10 % 10);
  key[2] = (char)('0' + code % 10);
  key[3] = '\0';
  out->key = key;
  if (code_index[code] != 0) {
    set(out, &codes[code_index[code] - 1].t[lang]);
    out->key = codes[code_index[code] - 1].key;
    return 0;
  }
  /* Not listed: say what the digits mean. digits.def covers every first digit 1-5 and the
   * second digits 0-5; 6-9 have no standard meaning, and are read as the catch-all x5z
   * (mail system) with a note saying so. The third digit has a sense only where RFC 5321
   * gives the pair one (x52 storage, x03 bad sequence ...). */
  d1 = &digit1[code / 100][lang];
  d2 = &digit2[code / 10 % 10][lang];
  d3 = digit3[code / 10 % 10][code % 10][lang];
  nonstd = d2->title == NULL;
  if (nonstd) d2 = &digit2[5][lang];
  if (d3 == NULL) d3 = phrase[lang].digit3_none;
  b.buf = out->buf + 4;
  b.cap = sizeof out->buf - 4;
  b.len = 0;
  out->title = join_or(SB_JOIN(&b, d1->title, phrase[lang].open, d2->title,
                               nonstd ? phrase[lang].nonstd : NULL, phrase[lang].close),
                       d1->title);
  out->description =
      join_or(SB_JOIN(&b, phrase[lang].code_pre, key, phrase[lang].code_post, phrase[lang].sep,
                      d1->desc, phrase[lang].sep, nonstd ? phrase[lang].digit2_other : d2->desc,
                      phrase[lang].sep, d3),
              d1->desc);
  out->causes = d1->causes;
  out->fixes = out->action = d1->fixes;
  return 0;
}

/* "5.1.1": the detail, with the class's sentences only where they are true of the detail
 * (FIT_n in status.def) and the class's own causes and fixes where status.def has them. */
static void explain_detail(int cls, const smtpc__text *row, unsigned fit, int subject, int detail,
                           int lang, smtpc__sb *b, smtpc_explanation *out) {
  const char *sep = phrase[lang].sep, *causes = row->causes, *fixes = row->fixes;
  int fits = (fit & (1u << cls)) != 0;
  const char *note_desc = status_note[cls][fits][lang].desc;
  const char *note_fixes = status_note[cls][fits][lang].fixes;
  size_t i;
  for (i = 0; i < sizeof status_as / sizeof status_as[0]; i++) {
    if (status_as[i].cls == cls && status_as[i].subject == subject &&
        status_as[i].detail == detail) {
      causes = status_as[i].causes[lang];
      fixes = status_as[i].fixes[lang];
      break;
    }
  }
  out->title = row->title;
  out->description =
      note_desc != NULL ? join_or(SB_JOIN(b, row->desc, sep, note_desc), row->desc) : row->desc;
  out->causes = causes;
  out->fixes = note_fixes != NULL ? join_or(SB_JOIN(b, fixes, sep, note_fixes), fixes) : fixes;
  out->action = out->fixes;
}

static int explain_status(int cls, int subject, int detail, int lang, smtpc_explanation *out) {
  const smtpc__text *row = NULL, *subj = NULL, *klass = NULL;
  const char *sep = phrase[lang].sep;
  unsigned fit = 0;
  smtpc__sb b;
  size_t i;
  int n;

  /* "X.999.999" is the longest key: 10 octets with the NUL. */
  n = 0;
  out->buf[n++] = cls != 0 ? (char)('0' + cls) : 'X';
  out->buf[n++] = '.';
  if (subject >= 100) out->buf[n++] = (char)('0' + subject / 100);
  if (subject >= 10) out->buf[n++] = (char)('0' + subject / 10 % 10);
  out->buf[n++] = (char)('0' + subject % 10);
  out->buf[n++] = '.';
  if (detail >= 100) out->buf[n++] = (char)('0' + detail / 100);
  if (detail >= 10) out->buf[n++] = (char)('0' + detail / 10 % 10);
  out->buf[n++] = (char)('0' + detail % 10);
  out->buf[n++] = '\0';
  out->key = out->buf;
  b.buf = out->buf + n;
  b.cap = sizeof out->buf - (size_t)n;
  b.len = 0;

  for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
    if (statuses[i].subject == subject && statuses[i].detail == detail) {
      row = &statuses[i].t[lang];
      fit = statuses[i].fit;
      break;
    }
  }
  if ((size_t)subject < sizeof status_subject / sizeof status_subject[0] &&
      status_subject[subject][lang].title != NULL)
    subj = &status_subject[subject][lang];
  if (cls != 0) klass = &status_class[cls][lang];

  if (row != NULL && klass == NULL) { /* "X.1.1": the detail as the registry states it */
    set(out, row);
  } else if (row != NULL) {
    explain_detail(cls, row, fit, subject, detail, lang, &b, out);
  } else if (klass != NULL) { /* unregistered "5.9.9": class, and subject when known */
    if (subj != NULL) {
      out->title = join_or(
          SB_JOIN(&b, klass->title, phrase[lang].open, subj->title, phrase[lang].close),
          klass->title);
      out->description =
          join_or(SB_JOIN(&b, phrase[lang].status_pre, out->key, phrase[lang].status_post, sep,
                          phrase[lang].follow_class_subject, sep, subj->desc, sep, klass->desc),
                  klass->desc);
    } else {
      out->title = klass->title;
      out->description =
          join_or(SB_JOIN(&b, phrase[lang].status_pre, out->key, phrase[lang].status_post, sep,
                          phrase[lang].follow_class, sep, klass->desc),
                  klass->desc);
    }
    out->causes = klass->causes;
    out->fixes = out->action = klass->fixes;
  } else { /* unregistered "X.9.9": subject when known */
    out->title = subj != NULL ? subj->title : phrase[lang].no_class_title;
    out->description =
        subj != NULL
            ? join_or(SB_JOIN(&b, phrase[lang].status_pre, out->key, phrase[lang].status_post,
                              sep, phrase[lang].follow_subject, sep, subj->desc),
                      subj->desc)
            : join_or(SB_JOIN(&b, phrase[lang].status_pre, out->key, phrase[lang].status_post,
                              sep, phrase[lang].follow_none),
                      phrase[lang].follow_none);
    out->causes = phrase[lang].no_class_causes;
    out->fixes = out->action = phrase[lang].no_class_action;
  }
  return 0;
}

/* "5xx", "5" (a reply code class) or "5.x.x" (a status class). Returns 0, or -1 when the key
 * is not a class key. */
static int explain_class(const char *k, size_t len, int lang, smtpc_explanation *out) {
  int c;
  if (len < 1 || k[0] < '1' || k[0] > '5') return -1;
  c = k[0] - '0';
  if (len == 1 || (len == 3 && (k[1] == 'x' || k[1] == 'X') && (k[2] == 'x' || k[2] == 'X'))) {
    set(out, &digit1[c][lang]);
    memcpy(out->buf, k, 1);
    memcpy(out->buf + 1, "xx", 3);
    out->key = out->buf;
    return 0;
  }
  if (len == 5 && k[1] == '.' && k[3] == '.' && (k[2] == 'x' || k[2] == 'X') &&
      (k[4] == 'x' || k[4] == 'X') && status_class[c][lang].title != NULL) {
    set(out, &status_class[c][lang]);
    memcpy(out->buf, k, 1);
    memcpy(out->buf + 1, ".x.x", 5);
    out->key = out->buf;
    return 0;
  }
  return -1;
}

/* ---- public ---------------------------------------------------------------------------------- */

int smtpc_explain_code(int code, const char *lang, smtpc_explanation *out) {
  int l = parse_lang(lang);
  if (out == NULL) return SMTPC_EINVAL;
  if (l < 0) return SMTPC_EBADLANG;
  if (code >= 1 && code <= 5) { /* the class, as the key "5" */
    char k = (char)('0' + code);
    return explain_class(&k, 1, l, out);
  }
  if (code < 100 || code > 599) return SMTPC_EBADKEY;
  return explain_code(code, l, out);
}

int smtpc_explain(const char *key, size_t keylen, const char *lang, smtpc_explanation *out) {
  int l = parse_lang(lang), cls, subject, detail, r;
  if (out == NULL) return SMTPC_EINVAL;
  if (l < 0) return SMTPC_EBADLANG;
  if (key == NULL || keylen == 0) return SMTPC_EBADKEY;

  if (keylen == 3 && is_digit(key[0]) && is_digit(key[1]) && is_digit(key[2])) {
    if (key[0] < '1' || key[0] > '5') return SMTPC_EBADKEY;
    return explain_code((key[0] - '0') * 100 + (key[1] - '0') * 10 + (key[2] - '0'), l, out);
  }
  if (parse_status(key, keylen, &cls, &subject, &detail) == 0)
    return explain_status(cls, subject, detail, l, out);
  if (explain_class(key, keylen, l, out) == 0) return 0;

  r = find_reason(key, keylen);
  if (r < 0 || reasons[r][l].title == NULL) return SMTPC_EBADKEY;
  set(out, &reasons[r][l]);
  out->key = reason_names[r];
  return 0;
}
