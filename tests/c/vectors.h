/* vectors.h -- read the shared TSV vectors of tests/vectors/ (header-only, for the C tests).
 * Lines starting with '#' are comments; the first other line names the columns. Fields are
 * unescaped: \r \n \t \\ and \xHH. */
#ifndef SMTPC_TEST_VECTORS_H
#define SMTPC_TEST_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VEC_MAX_COLS 16

typedef struct {
  char *field[VEC_MAX_COLS];
  size_t len[VEC_MAX_COLS];
  int ncols;
} vec_row;

typedef struct {
  char *names[VEC_MAX_COLS];
  int ncols;
  vec_row *rows;
  int nrows;
} vec_table;

static int vec_hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Unescape in place; returns the new length. */
static size_t vec_unescape(char *s) {
  char *r = s, *w = s;
  while (*r) {
    if (*r == '\\' && r[1]) {
      r++;
      switch (*r) {
        case 'r': *w++ = '\r'; r++; break;
        case 'n': *w++ = '\n'; r++; break;
        case 't': *w++ = '\t'; r++; break;
        case '\\': *w++ = '\\'; r++; break;
        case 'x':
          if (vec_hex(r[1]) >= 0 && vec_hex(r[2]) >= 0) {
            *w++ = (char)(vec_hex(r[1]) * 16 + vec_hex(r[2]));
            r += 3;
            break;
          }
          /* fall through */
        default: *w++ = '\\'; break;
      }
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

static vec_table *vec_load(const char *name) {
  char path[1024], line[65536];
  FILE *f;
  vec_table *t = calloc(1, sizeof *t);
  snprintf(path, sizeof path, "%s/%s", SMTPC_VECTORS, name);
  f = fopen(path, "rb");
  if (f == NULL || t == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  while (fgets(line, sizeof line, f)) {
    char *p = line, *tab;
    vec_row row;
    size_t l = strlen(line);
    if (line[0] == '#' || l <= 1) continue;
    if (line[l - 1] == '\n') line[--l] = '\0';
    memset(&row, 0, sizeof row);
    for (;;) {
      tab = strchr(p, '\t');
      if (tab) *tab = '\0';
      if (row.ncols < VEC_MAX_COLS) {
        row.field[row.ncols] = strdup(p);
        row.len[row.ncols] = vec_unescape(row.field[row.ncols]);
        row.ncols++;
      }
      if (!tab) break;
      p = tab + 1;
    }
    if (t->ncols == 0) {
      memcpy(t->names, row.field, sizeof row.field);
      t->ncols = row.ncols;
      continue;
    }
    t->rows = realloc(t->rows, sizeof(vec_row) * (size_t)(t->nrows + 1));
    t->rows[t->nrows++] = row;
  }
  fclose(f);
  return t;
}

/* Field of a row by column name ("" when the row is short); *len gets its length. */
static const char *vec_get(const vec_table *t, const vec_row *r, const char *col, size_t *len) {
  int i;
  for (i = 0; i < t->ncols; i++) {
    if (strcmp(t->names[i], col) == 0) {
      if (i >= r->ncols) break;
      if (len) *len = r->len[i];
      return r->field[i];
    }
  }
  if (len) *len = 0;
  return "";
}

static void vec_free(vec_table *t) {
  int i, j;
  for (i = 0; i < t->nrows; i++)
    for (j = 0; j < t->rows[i].ncols; j++) free(t->rows[i].field[j]);
  for (j = 0; j < t->ncols; j++) free(t->names[j]);
  free(t->rows);
  free(t);
}

#endif
