/* l_bounce.c -- the bounce parser for Lua (csrc/bounce*.c), and reading mailboxes around it.
 *
 *   smtpcode.parse_bounce(message) --> {record, ...}  ({} for a message that is no bounce)
 *                                  --> nil, message, code, offset  beyond a limit
 *   smtpcode.bounces(path[, on_error]) --> iterator over records (for b in smtpcode.bounces(p))
 *                                      --> nil, message  when path cannot be read
 * A record is a table with the fields of smtpc_bounce_field_name (absent ones nil), plus
 * reply_code, reason, hard_bounce, retry, temporary, provider.
 * path: an mbox (mboxo/mboxrd), a single message, a Maildir (cur/ and new/) or a folder of
 * message files; gzip'd files are read through zlib. A message beyond the parser's limits
 * calls on_error(label, message) and is skipped; without on_error it raises an error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "lsmtpcode.h"

#define ITER_MT "smtpcode.bounce_iter"
#define CHUNK 65536

static void push_record(lua_State *L, const smtpc_bounce *r) {
  lua_createtable(L, 0, SMTPC_BOUNCE_NFIELDS + 6);
  for (int i = 0; i < SMTPC_BOUNCE_NFIELDS; i++) {
    if (!r->field[i]) continue;
    lua_pushstring(L, r->field[i]);
    lua_setfield(L, -2, smtpc_bounce_field_name(i));
  }
  if (r->reply_code) {
    lua_pushinteger(L, r->reply_code);
    lua_setfield(L, -2, "reply_code");
  }
  lua_pushstring(L, smtpc_reason_name(r->cls.reason));
  lua_setfield(L, -2, "reason");
  lua_pushboolean(L, r->cls.hard_bounce);
  lua_setfield(L, -2, "hard_bounce");
  lua_pushboolean(L, r->cls.retry);
  lua_setfield(L, -2, "retry");
  lua_pushboolean(L, r->cls.temporary);
  lua_setfield(L, -2, "temporary");
  if (r->cls.provider) {
    lua_pushstring(L, r->cls.provider);
    lua_setfield(L, -2, "provider");
  }
}

/* nil, "message (at offset N)", "CODE", N */
static int push_error(lua_State *L, smtpc_bounce_parser *p, int rc) {
  uint64_t off = 0;
  smtpc_bounce_error(p, &off);
  lua_pushnil(L);
  lua_pushfstring(L, "%s (at offset %d)", smtpc_strerror(rc), (int)off);
  lua_pushstring(L, smtpc_err_name(rc));
  lua_pushnumber(L, (lua_Number)off);
  return 4;
}

static int l_parse_bounce(lua_State *L) {
  size_t len;
  const char *msg = luaL_checklstring(L, 1, &len);
  smtpc_bounce_parser *p = smtpc_bounce_new(NULL);
  if (!p) return lsmtpc_fail(L, smtpc_strerror(SMTPC_ENOMEM));
  int rc = smtpc_bounce_parse(p, msg, len);
  if (rc < 0) {
    int n = push_error(L, p, rc);
    smtpc_bounce_free(p);
    return n;
  }
  lua_createtable(L, rc, 0);
  for (int i = 0; i < rc; i++) {
    push_record(L, smtpc_bounce_record(p, (size_t)i));
    lua_rawseti(L, -2, i + 1);
  }
  smtpc_bounce_free(p);
  return 1;
}

/* ---- the iterator --------------------------------------------------------------------------- */

typedef struct iter {
  char **files;          /* files still to read (a folder's), or the one file */
  size_t nfiles, next_file;
  gzFile gz;             /* the file being read (zlib reads plain files as they are) */
  char *label;
  int mbox;              /* the current file is an mbox */
  int nmsg;
  smtpc_mbox *mb;
  smtpc_bounce_parser *p;
  size_t nrec, next_rec; /* records of the current message still to hand out */
  char *whole;           /* a single message being read whole */
  size_t wlen, wcap;
} iter;

static void iter_close_file(iter *it) {
  if (it->gz) gzclose(it->gz);
  it->gz = NULL;
  smtpc_mbox_free(it->mb);
  it->mb = NULL;
}

static int iter_gc(lua_State *L) {
  iter *it = luaL_checkudata(L, 1, ITER_MT);
  iter_close_file(it);
  for (size_t i = 0; i < it->nfiles; i++) free(it->files[i]);
  free(it->files);
  it->files = NULL;
  it->nfiles = 0;
  smtpc_bounce_free(it->p);
  it->p = NULL;
  free(it->whole);
  it->whole = NULL;
  free(it->label);
  it->label = NULL;
  return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_file(iter *it, const char *path) {
  char **f = realloc(it->files, (it->nfiles + 1) * sizeof *f);
  if (!f) return -1;
  it->files = f;
  if (!(f[it->nfiles] = strdup(path))) return -1;
  it->nfiles++;
  return 0;
}

/* The regular files of dir, sorted; -1 when it cannot be listed. */
static int add_dir(iter *it, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  size_t first = it->nfiles;
  struct dirent *e;
  char path[4096];
  struct stat st;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && add_file(it, path) < 0) break;
  }
  closedir(d);
  qsort(it->files + first, it->nfiles - first, sizeof *it->files, cmp);
  return 0;
}

/* Open the next file; 0 when there is none left, -1 on a read error (message pushed). */
static int open_next(lua_State *L, iter *it) {
  while (it->next_file < it->nfiles) {
    const char *path = it->files[it->next_file++];
    it->gz = gzopen(path, "rb");
    if (!it->gz) {
      lua_pushfstring(L, "%s: %s", path, strerror(errno));
      return -1;
    }
    gzbuffer(it->gz, CHUNK);
    free(it->label);
    it->label = strdup(path);
    it->nmsg = 0;
    char head[5];
    int n = gzread(it->gz, head, 5);
    gzrewind(it->gz);
    it->mbox = n == 5 && !memcmp(head, "From ", 5);
    if (it->mbox && !(it->mb = smtpc_mbox_new())) return luaL_error(L, "out of memory");
    return 1;
  }
  return 0;
}

/* The next message of the open file into *msg; 0 at its end. */
static int next_message(lua_State *L, iter *it, const char **msg, size_t *len) {
  char buf[CHUNK];
  if (it->mbox) {
    for (;;) {
      if (smtpc_mbox_next(it->mb, msg, len) == 1) return 1;
      if (!it->gz) return 0;
      int n = gzread(it->gz, buf, sizeof buf);
      if (n < 0) return luaL_error(L, "%s: read error", it->label);
      if (smtpc_mbox_feed(it->mb, buf, (size_t)n, n == 0) < 0) return luaL_error(L, "out of memory");
      if (n == 0) {
        gzclose(it->gz);
        it->gz = NULL;
      }
    }
  }
  if (!it->gz) return 0;
  it->wlen = 0;
  int n;
  while ((n = gzread(it->gz, buf, sizeof buf)) > 0) {
    if (it->wlen + (size_t)n > it->wcap) {
      size_t cap = it->wcap ? it->wcap * 2 : CHUNK * 4;
      while (cap < it->wlen + (size_t)n) cap *= 2;
      char *w = realloc(it->whole, cap);
      if (!w) return luaL_error(L, "out of memory");
      it->whole = w;
      it->wcap = cap;
    }
    memcpy(it->whole + it->wlen, buf, (size_t)n);
    it->wlen += (size_t)n;
  }
  gzclose(it->gz);
  it->gz = NULL;
  if (n < 0) return luaL_error(L, "%s: read error", it->label);
  *msg = it->whole ? it->whole : "";
  *len = it->wlen;
  return 1;
}

static int iter_call(lua_State *L) {
  iter *it = luaL_checkudata(L, lua_upvalueindex(1), ITER_MT);
  for (;;) {
    if (it->next_rec < it->nrec) {
      push_record(L, smtpc_bounce_record(it->p, it->next_rec++));
      return 1;
    }
    const char *msg;
    size_t len;
    if (!it->gz && !it->mb) {
      int rc = open_next(L, it);
      if (rc < 0) return lua_error(L);
      if (rc == 0) return 0; /* done: the for loop ends */
    }
    if (!next_message(L, it, &msg, &len)) {
      iter_close_file(it);
      continue;
    }
    it->nmsg++;
    int rc = smtpc_bounce_parse(it->p, msg, len);
    it->nrec = rc > 0 ? (size_t)rc : 0;
    it->next_rec = 0;
    if (rc < 0) {
      uint64_t off = 0;
      smtpc_bounce_error(it->p, &off);
      lua_pushvalue(L, lua_upvalueindex(2));
      if (it->mbox) lua_pushfstring(L, "%s#%d", it->label, it->nmsg);
      else lua_pushstring(L, it->label);
      lua_pushfstring(L, "%s (at offset %d)", smtpc_strerror(rc), (int)off);
      if (lua_isnil(L, -3)) {
        lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
        return lua_error(L);
      }
      lua_call(L, 2, 0);
    }
  }
}

static int l_bounces(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  iter *it = lua_newuserdata(L, sizeof *it);
  memset(it, 0, sizeof *it);
  luaL_getmetatable(L, ITER_MT);
  lua_setmetatable(L, -2);
  if (!(it->p = smtpc_bounce_new(NULL))) return lsmtpc_fail(L, smtpc_strerror(SMTPC_ENOMEM));
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  if (S_ISDIR(st.st_mode)) {
    char sub[4096];
    int maildir = 0;
    for (int i = 0; i < 2; i++) {
      snprintf(sub, sizeof sub, "%s/%s", path, i ? "new" : "cur");
      if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
        maildir = 1;
        add_dir(it, sub);
      }
    }
    if (!maildir && add_dir(it, path) < 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, strerror(errno));
      return 2;
    }
  } else if (add_file(it, path) < 0) {
    return lsmtpc_fail(L, smtpc_strerror(SMTPC_ENOMEM));
  }
  lua_pushvalue(L, 2); /* on_error (or nil) */
  lua_pushcclosure(L, iter_call, 2);
  return 1;
}

static const luaL_Reg bounce_functions[] = {
  {"parse_bounce", l_parse_bounce},
  {"bounces", l_bounces},
  {NULL, NULL},
};

void lsmtpc_open_bounce(lua_State *L) {
  if (luaL_newmetatable(L, ITER_MT)) {
    lua_pushcfunction(L, iter_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lsmtpc_setfuncs(L, bounce_functions);
}
