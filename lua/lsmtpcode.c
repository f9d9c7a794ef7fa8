/*
 * lsmtpcode.c -- the Lua module `smtpcode` (Lua 5.1/LuaJIT to 5.4).
 *
 * A thin binding: it converts Lua values to C arguments and C results to tables; every decision
 * is made by the C core. Expected failures return `nil, message`; wrong argument types raise.
 * The reader is a userdata with the metatable "smtpcode.reader".
 */
#include <string.h>

#include "lsmtpcode.h"

#define READER_MT "smtpcode.reader"

int lsmtpc_fail(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

static void set_str(lua_State *L, const char *k, const char *v) {
  if (v == NULL) return; /* absent fields stay nil */
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void push_lines(lua_State *L, const smtpc_span *lines, size_t n) {
  size_t i;
  luaL_Buffer b;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, lines[i].ptr, lines[i].len);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "lines");
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    if (i) luaL_addchar(&b, '\n');
    luaL_addlstring(&b, lines[i].ptr, lines[i].len);
  }
  luaL_pushresult(&b);
  lua_setfield(L, -2, "text");
}

static void push_fields(lua_State *L, int code, const char *status, const char *kind, const smtpc_class *c) {
  if (code) set_int(L, "code", code);
  if (status[0]) set_str(L, "status", status);
  set_str(L, "kind", kind);
  set_bool(L, "temporary", c->temporary);
  set_str(L, "reason", smtpc_reason_name(c->reason));
  set_bool(L, "hard_bounce", c->hard_bounce);
  set_bool(L, "retry", c->retry);
  if (c->retry_after > 0) set_int(L, "retry_after", c->retry_after);
  set_bool(L, "greylisted", c->greylisted);
  set_str(L, "provider", c->provider);
  set_str(L, "command", c->command);
}

void lsmtpc_push_decoded(lua_State *L, const smtpc_decoded *d) {
  lua_createtable(L, 0, 16);
  push_fields(L, d->code, d->status, d->kind, &d->cls);
  set_str(L, "code_source", d->code_source);
  if (d->code_inferred) set_int(L, "code_inferred", d->code_inferred);
  push_lines(L, d->lines, d->nlines);
}

/* Reads {command=, host=} from the table at idx (absent or nil = no context). The strings stay
 * referenced by the table, which the caller keeps on the stack. */
static const smtpc_context *get_context(lua_State *L, int idx, smtpc_context *ctx) {
  memset(ctx, 0, sizeof *ctx);
  if (lua_isnoneornil(L, idx)) return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "command");
  ctx->command = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "host");
  ctx->host = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1);
  return ctx;
}

/* smtpcode.decode(text [, {command=, host=}]) -> reply | nil, err */
static int l_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  smtpc_context ctx;
  smtpc_decoded d;
  int rc = smtpc_decode(text, len, get_context(L, 2, &ctx), &d);
  if (rc < 0) return lsmtpc_fail(L, smtpc_strerror(rc));
  lsmtpc_push_decoded(L, &d);
  return 1;
}

/* smtpcode.classify(code|nil, status|nil, text|nil [, {command=, host=}]) -> reply | nil, err */
static int l_classify(lua_State *L) {
  lua_Integer code = luaL_optinteger(L, 1, 0);
  const char *status = luaL_optstring(L, 2, NULL);
  size_t len = 0;
  const char *text = luaL_optlstring(L, 3, "", &len);
  smtpc_context ctx;
  smtpc_decoded d;
  int rc;
  if (code < 0 || code > 999) return lsmtpc_fail(L, smtpc_strerror(SMTPC_EINVAL));
  rc = smtpc_classify((int)code, status, text, len, get_context(L, 4, &ctx), &d);
  if (rc < 0) return lsmtpc_fail(L, smtpc_strerror(rc));
  lsmtpc_push_decoded(L, &d);
  return 1;
}

/* smtpcode.explain(key [, lang]) -> {key=, title=, description=, causes=, fixes=, action=}
 * | nil, err (action is the same text as fixes) */
static int l_explain(lua_State *L) {
  smtpc_explanation e;
  const char *lang = luaL_optstring(L, 2, "en");
  size_t klen;
  const char *key;
  int rc;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, 1);
    if (n != (lua_Number)(int)n) return lsmtpc_fail(L, smtpc_strerror(SMTPC_EBADKEY));
    rc = smtpc_explain_code((int)n, lang, &e);
  } else {
    key = luaL_checklstring(L, 1, &klen);
    rc = smtpc_explain(key, klen, lang, &e);
  }
  if (rc < 0) return lsmtpc_fail(L, smtpc_strerror(rc));
  lua_createtable(L, 0, 6);
  set_str(L, "key", e.key);
  set_str(L, "title", e.title);
  set_str(L, "description", e.description);
  set_str(L, "causes", e.causes);
  set_str(L, "fixes", e.fixes);
  set_str(L, "action", e.action);
  return 1;
}

/* smtpcode.reasons() -> {"undefined", "authfailure", ...} (a new table each call) */
static int l_reasons(lua_State *L) {
  int i;
  lua_createtable(L, SMTPC_REASON_COUNT, 0);
  for (i = 0; i < SMTPC_REASON_COUNT; i++) {
    lua_pushstring(L, smtpc_reason_name(i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* reader */

typedef struct {
  smtpc_reader *r;
} lreader;

static lreader *check_reader(lua_State *L) {
  lreader *lr = (lreader *)luaL_checkudata(L, 1, READER_MT);
  if (lr->r == NULL) luaL_error(L, "reader is closed");
  return lr;
}

static size_t opt_limit(lua_State *L, int idx, const char *name) {
  lua_Integer v;
  lua_getfield(L, idx, name);
  v = luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  if (v < 0) luaL_error(L, "%s must not be negative", name);
  return (size_t)v;
}

/* smtpcode.reader([{max_line=, max_lines=, max_reply=}]) -> reader */
static int l_reader(lua_State *L) {
  smtpc_limits lim;
  lreader *lr;
  memset(&lim, 0, sizeof lim);
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lim.max_line = opt_limit(L, 1, "max_line");
    lim.max_lines = opt_limit(L, 1, "max_lines");
    lim.max_reply = opt_limit(L, 1, "max_reply");
  }
  lr = (lreader *)lua_newuserdata(L, sizeof *lr);
  lr->r = NULL;
  luaL_getmetatable(L, READER_MT);
  lua_setmetatable(L, -2);
  lr->r = smtpc_reader_new(&lim);
  if (lr->r == NULL) return luaL_error(L, "out of memory");
  return 1;
}

static int reader_error(lua_State *L, const smtpc_reader *r) {
  uint64_t at = 0;
  int err = smtpc_reader_error(r, &at);
  lua_pushnil(L);
  lua_pushfstring(L, "%s at offset %d", smtpc_strerror(err), (int)at);
  return 2;
}

/* reader:feed(bytes) -> true | nil, err */
static int lreader_feed(lua_State *L) {
  lreader *lr = check_reader(L);
  size_t len;
  const char *buf = luaL_checklstring(L, 2, &len);
  int rc = smtpc_reader_feed(lr->r, buf, len);
  if (rc == SMTPC_ENOMEM) return luaL_error(L, "out of memory");
  if (rc < 0) return reader_error(L, lr->r);
  lua_pushboolean(L, 1);
  return 1;
}

static int lreader_iter(lua_State *L) {
  lreader *lr = check_reader(L);
  smtpc_reply rep;
  smtpc_class cls;
  int rc = smtpc_reader_next(lr->r, &rep);
  if (rc == 0) return 0;
  if (rc < 0) return luaL_error(L, "smtpcode reader: %s", smtpc_strerror(rc));
  smtpc_classify_lines(rep.code, rep.status, rep.lines, rep.nlines, NULL, &cls);
  lua_createtable(L, 0, 14);
  push_fields(L, rep.code, rep.status, smtpc_kind(rep.code, rep.status), &cls);
  push_lines(L, rep.lines, rep.nlines);
  return 1;
}

/* reader:replies() -> iterator over the complete replies not yet returned; a malformed stream
 * raises inside the loop (check reader:error() to avoid that). */
static int lreader_replies(lua_State *L) {
  check_reader(L);
  lua_pushcfunction(L, lreader_iter);
  lua_pushvalue(L, 1);
  return 2;
}

/* reader:error() -> nil | message, offset */
static int lreader_error(lua_State *L) {
  lreader *lr = check_reader(L);
  uint64_t at = 0;
  int err = smtpc_reader_error(lr->r, &at);
  if (err == 0) return 0;
  lua_pushstring(L, smtpc_strerror(err));
  lua_pushinteger(L, (lua_Integer)at);
  return 2;
}

/* reader:pending() -> octets fed but not yet returned */
static int lreader_pending(lua_State *L) {
  lreader *lr = check_reader(L);
  lua_pushinteger(L, (lua_Integer)smtpc_reader_pending(lr->r));
  return 1;
}

static int lreader_gc(lua_State *L) {
  lreader *lr = (lreader *)luaL_checkudata(L, 1, READER_MT);
  smtpc_reader_free(lr->r);
  lr->r = NULL;
  return 0;
}

static int lreader_tostring(lua_State *L) {
  lreader *lr = (lreader *)luaL_checkudata(L, 1, READER_MT);
  lua_pushfstring(L, "smtpcode.reader (%p)", (void *)lr);
  return 1;
}

static const luaL_Reg reader_methods[] = {
  {"feed", lreader_feed},
  {"replies", lreader_replies},
  {"error", lreader_error},
  {"pending", lreader_pending},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"decode", l_decode},
  {"classify", l_classify},
  {"explain", l_explain},
  {"reasons", l_reasons},
  {"reader", l_reader},
  {NULL, NULL},
};

SMTPC_API int luaopen_smtpcode(lua_State *L);

int luaopen_smtpcode(lua_State *L) {
  if (luaL_newmetatable(L, READER_MT)) {
    lua_createtable(L, 0, 4);
    lsmtpc_setfuncs(L, reader_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lreader_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lreader_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);

  lua_createtable(L, 0, 16);
  lsmtpc_setfuncs(L, functions);
  lua_pushstring(L, SMTPC_VERSION);
  lua_setfield(L, -2, "version");
  lsmtpc_open_address(L);
  lsmtpc_open_dns(L);
  lsmtpc_open_verify(L);
  lsmtpc_open_plan(L);
  lsmtpc_open_mxq(L);
  lsmtpc_open_bounce(L);
  lsmtpc_open_inspect(L);
  return 1;
}
