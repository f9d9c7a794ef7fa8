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

/* The strings every decoded table uses -- its field names, the reason names and the kinds --
 * made into Lua strings once per Lua state and kept in a registry table, indexed by the S_*
 * numbers below. Setting a field from a ready string skips lua_setfield's lookup of the C
 * string on every call (the decode bench pays for some twenty such lookups per reply). */
enum {
  S_CODE = 1, S_STATUS, S_KIND, S_TEMPORARY, S_REASON, S_HARD_BOUNCE, S_RETRY, S_RETRY_AFTER,
  S_GREYLISTED, S_PROVIDER, S_COMMAND, S_LINES, S_TEXT, S_HOST, S_CODE_SOURCE, S_CODE_INFERRED,
  S_KINDS, /* the five kinds, in kind_names order */
  S_REASONS = S_KINDS + 5, /* then every reason name, by reason number */
  S_COUNT = S_REASONS + SMTPC_REASON_COUNT
};

static const char *const field_names[] = {
  NULL, "code", "status", "kind", "temporary", "reason", "hard_bounce", "retry", "retry_after",
  "greylisted", "provider", "command", "lines", "text", "host", "code_source", "code_inferred"};

/* the values smtpc_kind() returns */
static const char *const kind_names[] = {"success", "intermediate", "transient", "permanent",
                                         "unknown"};

static const char strings_key = 0; /* its address is the registry key */

/* Push the string table (made on first use) and return its stack index. */
static int push_strings(lua_State *L) {
  int i;
  lua_pushlightuserdata(L, (void *)&strings_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, S_COUNT, 0);
    for (i = 1; i < S_KINDS; i++) {
      lua_pushstring(L, field_names[i]);
      lua_rawseti(L, -2, i);
    }
    for (i = 0; i < 5; i++) {
      lua_pushstring(L, kind_names[i]);
      lua_rawseti(L, -2, S_KINDS + i);
    }
    for (i = 0; i < SMTPC_REASON_COUNT; i++) {
      lua_pushstring(L, smtpc_reason_name(i));
      lua_rawseti(L, -2, S_REASONS + i);
    }
    lua_pushlightuserdata(L, (void *)&strings_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  return lua_gettop(L);
}

/* A kind string as one of the cached ones: its S_ index, or 0 when it is not one of them. */
static int kind_index(const char *kind) {
  int i;
  for (i = 0; i < 5; i++)
    if (kind[0] == kind_names[i][0] && strcmp(kind, kind_names[i]) == 0) return S_KINDS + i;
  return 0;
}

/* t[strings[k]] = strings[v], t[strings[k]] = the C string / integer / boolean; the table is at
 * the top of the stack. These are fresh tables without metatables, so rawset is what
 * lua_setfield would do. */
static void cset_cached(lua_State *L, int strs, int k, int v) {
  lua_rawgeti(L, strs, k);
  lua_rawgeti(L, strs, v);
  lua_rawset(L, -3);
}

static void cset_str(lua_State *L, int strs, int k, const char *v) {
  if (v == NULL) return; /* absent fields stay nil */
  lua_rawgeti(L, strs, k);
  lua_pushstring(L, v);
  lua_rawset(L, -3);
}

static void cset_bool(lua_State *L, int strs, int k, int v) {
  lua_rawgeti(L, strs, k);
  lua_pushboolean(L, v);
  lua_rawset(L, -3);
}

static void cset_int(lua_State *L, int strs, int k, lua_Integer v) {
  lua_rawgeti(L, strs, k);
  lua_pushinteger(L, v);
  lua_rawset(L, -3);
}

static void push_lines(lua_State *L, int strs, const smtpc_span *lines, size_t n) {
  size_t i;
  luaL_Buffer b;
  lua_rawgeti(L, strs, S_LINES);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, lines[i].ptr, lines[i].len);
    lua_rawseti(L, -2, (int)i + 1);
  }
  if (n == 1) {
    /* one line: the text is that same string (fields keep the order lines, text) */
    lua_rawgeti(L, -1, 1);
    lua_insert(L, -3);
    lua_rawset(L, -4);
    lua_rawgeti(L, strs, S_TEXT);
    lua_insert(L, -2);
    lua_rawset(L, -3);
    return;
  }
  lua_rawset(L, -3);
  lua_rawgeti(L, strs, S_TEXT);
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    if (i) luaL_addchar(&b, '\n');
    luaL_addlstring(&b, lines[i].ptr, lines[i].len);
  }
  luaL_pushresult(&b);
  lua_rawset(L, -3);
}

static void push_fields(lua_State *L, int strs, int code, const char *status, const char *kind,
                        const smtpc_class *c) {
  int ki = kind ? kind_index(kind) : 0;
  if (code) cset_int(L, strs, S_CODE, code);
  if (status[0]) cset_str(L, strs, S_STATUS, status);
  if (ki) cset_cached(L, strs, S_KIND, ki);
  else cset_str(L, strs, S_KIND, kind);
  cset_bool(L, strs, S_TEMPORARY, c->temporary);
  if (c->reason >= 0 && c->reason < SMTPC_REASON_COUNT)
    cset_cached(L, strs, S_REASON, S_REASONS + c->reason);
  else
    cset_str(L, strs, S_REASON, smtpc_reason_name(c->reason));
  cset_bool(L, strs, S_HARD_BOUNCE, c->hard_bounce);
  cset_bool(L, strs, S_RETRY, c->retry);
  if (c->retry_after > 0) cset_int(L, strs, S_RETRY_AFTER, c->retry_after);
  cset_bool(L, strs, S_GREYLISTED, c->greylisted);
  cset_str(L, strs, S_PROVIDER, c->provider);
  cset_str(L, strs, S_COMMAND, c->command);
}

/* fields, then lines and text, into a new table left on top of the stack; strs is the index
 * of the string table (decode and classify hold it as their upvalue: no registry lookup) */
static void push_reply(lua_State *L, int strs, int code, const char *status, const char *kind,
                       const smtpc_class *c, const smtpc_span *lines, size_t n,
                       const char *code_source, int code_inferred) {
  lua_createtable(L, 0, 16);
  push_fields(L, strs, code, status, kind, c);
  cset_str(L, strs, S_CODE_SOURCE, code_source);
  if (code_inferred) cset_int(L, strs, S_CODE_INFERRED, code_inferred);
  push_lines(L, strs, lines, n);
}

static void push_decoded(lua_State *L, int strs, const smtpc_decoded *d) {
  push_reply(L, strs, d->code, d->status, d->kind, &d->cls, d->lines, d->nlines,
             d->code_source, d->code_inferred);
}

void lsmtpc_push_decoded(lua_State *L, const smtpc_decoded *d) {
  int strs = push_strings(L);
  push_decoded(L, strs, d);
  lua_remove(L, strs);
}

#define UP_STRINGS lua_upvalueindex(1)

/* Reads {command=, host=} from the table at idx (absent or nil = no context). The strings stay
 * referenced by the table, which the caller keeps on the stack. */
static const smtpc_context *get_context(lua_State *L, int idx, smtpc_context *ctx) {
  const int strs = UP_STRINGS;
  memset(ctx, 0, sizeof *ctx);
  if (lua_isnoneornil(L, idx)) return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_rawgeti(L, strs, S_COMMAND);
  lua_gettable(L, idx);
  ctx->command = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1);
  lua_rawgeti(L, strs, S_HOST);
  lua_gettable(L, idx);
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
  push_decoded(L, UP_STRINGS, &d);
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
  push_decoded(L, UP_STRINGS, &d);
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
  {
    int strs = push_strings(L);
    push_reply(L, strs, rep.code, rep.status, smtpc_kind(rep.code, rep.status), &cls, rep.lines,
               rep.nlines, rep.code ? "text" : NULL, 0);
    lua_remove(L, strs);
  }
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

static const luaL_Reg functions[] = { /* decode and classify: closures, see luaopen_smtpcode */
  {"explain", l_explain},
  {"reasons", l_reasons},
  {"reader", l_reader},
  {NULL, NULL},
};

SMTPC_API int luaopen_smtpcode(lua_State *L);

int luaopen_smtpcode(lua_State *L) {
  /* the tables otherwise built by the first decode or bounce, in a request (OpenResty loads
   * this in init_by_lua, so they are built once, in the master, before the workers fork) */
  if (smtpc_library_init() < 0) return luaL_error(L, "smtpcode: %s", smtpc_strerror(SMTPC_ENOMEM));
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
  push_strings(L);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_decode, 1);
  lua_setfield(L, -3, "decode");
  lua_pushcclosure(L, l_classify, 1);
  lua_setfield(L, -2, "classify");
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
