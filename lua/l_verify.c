/*
 * l_verify.c -- smtpcode.verify(addresses, opts) for Lua 5.1/LuaJIT .. 5.4.
 *
 *   for r in smtpcode.verify({"a@example.test", ...}, {mail_from = "...", helo = "..."}) do
 *     print(r.address, r.verdict, r.reason)
 *   end
 *
 * verify returns an iterator object (callable userdata; in Lua 5.4 also the loop's closing
 * value, so `break` cancels at once) or nil, err for bad options. `addresses` is an array or an
 * iterator function returning strings; it is read lazily, keeping a bounded window pending.
 * Each iterator owns a private libuv loop and verifier; results are copied out of the result
 * callback into a queue and turned into tables afterwards. __gc (and :close()) cancel pending
 * addresses and close every handle before the memory goes.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lsmtpcode.h"

#define VERIFY_MT "smtpcode.verify"

/* Results copied out of the callback (smtpc_result_dup), waiting to be returned. */
typedef struct qnode {
  struct qnode *next;
  smtpc_result *r;
} qnode;

typedef struct {
  uv_loop_t *loop;
  smtpc_verifier *v;
  qnode *head, *tail;
  int input_ref;      /* registry ref of the array or function; LUA_NOREF when exhausted */
  int input_is_table;
  size_t next_index;  /* 1-based position in the array */
  size_t window;
  uint64_t tag;
  int ended, closed, nomem;
} lverify;

static void on_result(smtpc_verifier *v, const smtpc_result *r, void *data) {
  lverify *s = data;
  qnode *n = malloc(sizeof *n);
  (void)v;
  if (n == NULL || (n->r = smtpc_result_dup(r)) == NULL) {
    free(n);
    s->nomem = 1;
    return;
  }
  n->next = NULL;
  if (s->tail) s->tail->next = n;
  else s->head = n;
  s->tail = n;
}

static void on_closed(smtpc_verifier *v) {
  lverify *s = smtpc_verifier_data(v);
  s->closed = 1;
}

static void close_stray(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void shutdown_engine(lua_State *L, lverify *s) {
  qnode *n;
  if (s->v) {
    smtpc_verifier_close(s->v, on_closed);
    while (!s->closed && uv_run(s->loop, UV_RUN_ONCE)) {
    }
    s->v = NULL;
  }
  if (s->loop) {
    if (uv_loop_close(s->loop) == UV_EBUSY) { /* defence: never free a loop with handles */
      uv_walk(s->loop, close_stray, NULL);
      uv_run(s->loop, UV_RUN_NOWAIT);
      if (uv_loop_close(s->loop) == 0) free(s->loop);
    } else {
      free(s->loop);
    }
    s->loop = NULL;
  }
  while ((n = s->head) != NULL) {
    s->head = n->next;
    smtpc_result_free(n->r);
    free(n);
  }
  s->tail = NULL;
  if (s->input_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->input_ref);
    s->input_ref = LUA_NOREF;
  }
}

static void set_str(lua_State *L, const char *k, const char *v, size_t n) {
  if (v == NULL) return;
  lua_pushlstring(L, v, n);
  lua_setfield(L, -2, k);
}

void lsmtpc_push_result(lua_State *L, const smtpc_result *it) {
  const char *verdict = smtpc_verdict_name(it->verdict);
  const char *reason = smtpc_reason_name(it->reason);
  lua_createtable(L, 0, 18);
  set_str(L, "address", it->address, it->address_len);
  set_str(L, "verdict", verdict ? verdict : "unknown", strlen(verdict ? verdict : "unknown"));
  set_str(L, "reason", reason ? reason : "undefined", strlen(reason ? reason : "undefined"));
  if (it->reply.code) {
    smtpc_decoded *d = malloc(sizeof *d);
    size_t i;
    if (d != NULL) {
      memset(d, 0, sizeof *d);
      d->code = it->reply.code;
      d->code_source = "text"; /* read off the wire */
      memcpy(d->status, it->reply.status, SMTPC_STATUS_SIZE);
      d->kind = smtpc_kind(it->reply.code, it->reply.status);
      d->cls = it->cls;
      d->nlines = it->reply.nlines < SMTPC_DECODE_MAX_LINES ? it->reply.nlines
                                                            : SMTPC_DECODE_MAX_LINES;
      for (i = 0; i < d->nlines; i++) d->lines[i] = it->reply.lines[i];
      lsmtpc_push_decoded(L, d);
      free(d);
      lua_setfield(L, -2, "reply");
    }
  }
  set_str(L, "mx", it->mx, it->mx ? strlen(it->mx) : 0);
  set_str(L, "mx_address", it->mx_addr, it->mx_addr ? strlen(it->mx_addr) : 0);
  if (it->catch_all >= 0) { /* unknown stays nil */
    lua_pushboolean(L, it->catch_all);
    lua_setfield(L, -2, "catch_all");
  }
  lua_pushboolean(L, it->tls);
  lua_setfield(L, -2, "tls");
  lua_pushboolean(L, it->greylisted);
  lua_setfield(L, -2, "greylisted");
  if (it->error) {
    lua_pushstring(L, smtpc_err_name(it->error));
    lua_setfield(L, -2, "error");
  }
  set_str(L, "detail", it->detail, it->detail ? strlen(it->detail) : 0);
  lua_pushnumber(L, it->duration);
  lua_setfield(L, -2, "duration");
  set_str(L, "transcript", it->transcript, it->transcript_len);
  lsmtpc_set_inspection(L, &it->inspect);
  lua_pushboolean(L, it->cached);
  lua_setfield(L, -2, "cached");
  lua_pushnumber(L, it->age);
  lua_setfield(L, -2, "age");
}

/* Pushes the next input string, or nothing (returns 0) when the input is exhausted. */
static int pull(lua_State *L, lverify *s) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->input_ref);
  if (s->input_is_table) {
    lua_rawgeti(L, -1, (int)s->next_index++);
  } else {
    lua_call(L, 0, 1);
    lua_pushnil(L); /* keep the stack shape of the table case */
    lua_insert(L, -2);
  }
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    return luaL_error(L, "smtpcode.verify: addresses must be strings, got %s",
                      luaL_typename(L, -1));
  return 1;
}

static void refill(lua_State *L, lverify *s) {
  while (s->input_ref != LUA_NOREF && smtpc_verifier_pending(s->v) < s->window) {
    size_t n;
    const char *a;
    int rc;
    if (!pull(L, s)) {
      luaL_unref(L, LUA_REGISTRYINDEX, s->input_ref);
      s->input_ref = LUA_NOREF;
      break;
    }
    a = lua_tolstring(L, -1, &n);
    rc = smtpc_verifier_add(s->v, a, n, s->tag++);
    lua_pop(L, 1);
    if (rc < 0) luaL_error(L, "smtpcode.verify: %s", smtpc_strerror(rc));
  }
  if (s->input_ref == LUA_NOREF && !s->ended) {
    smtpc_verifier_end(s->v);
    s->ended = 1;
  }
}

/* it() / it:next() -> result table, or nil when every address has had its result. */
static int l_next(lua_State *L) {
  lverify *s = luaL_checkudata(L, 1, VERIFY_MT);
  for (;;) {
    qnode *n = s->head;
    if (s->nomem) {
      s->nomem = 0;
      return luaL_error(L, "smtpcode.verify: out of memory while copying a result");
    }
    if (n) {
      s->head = n->next;
      if (s->head == NULL) s->tail = NULL;
      lsmtpc_push_result(L, n->r);
      smtpc_result_free(n->r);
      free(n);
      return 1;
    }
    if (s->v == NULL) return 0;
    if (smtpc_verifier_done(s->v)) {
      shutdown_engine(L, s);
      continue;
    }
    refill(L, s);
    if (s->head || smtpc_verifier_done(s->v)) continue;
    if (!uv_run(s->loop, UV_RUN_ONCE) && !s->head && !smtpc_verifier_done(s->v))
      return luaL_error(L, "smtpcode.verify: the engine stopped with addresses pending");
  }
}

static int l_call(lua_State *L) {
  lua_settop(L, 1);
  return l_next(L);
}

static int l_close(lua_State *L) {
  lverify *s = luaL_checkudata(L, 1, VERIFY_MT);
  shutdown_engine(L, s);
  return 0;
}

static int l_pending(lua_State *L) {
  lverify *s = luaL_checkudata(L, 1, VERIFY_MT);
  lua_pushnumber(L, s->v ? (lua_Number)smtpc_verifier_pending(s->v) : 0);
  return 1;
}

/* ---- options --------------------------------------------------------------------------- */

static const char *const OPT_NAMES[] = {
  "mail_from", "helo", "port", "dns_servers", "concurrency", "per_host", "rcpt_per_session",
  "starttls", "tls_verify", "catch_all", "greylist_delay", "deadline", "timeout", "transcript",
  "connect_timeout", "max_rejections", "host_pause", "disposable", "proxy", "source_address",
  "cache", "cache_positive_ttl", "cache_negative_ttl", "cache_unknown_ttl", "refresh", NULL};

/* An optional string option (nil = NULL); it stays referenced by the options table. */
static const char *opt_str(lua_State *L, int t, const char *k, const char **out) {
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    return k;
  }
  *out = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
  lua_pop(L, 1);
  return NULL;
}

/* Each returns NULL on success or a message. */
static const char *opt_int(lua_State *L, int t, const char *k, int *out, int lo, int hi) {
  lua_Number n;
  lua_getfield(L, t, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  n = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || n != (lua_Number)(long)n || n < lo || n > hi) {
    lua_pop(L, 1);
    return k;
  }
  *out = (int)n;
  lua_pop(L, 1);
  return NULL;
}

static const char *opt_num(lua_State *L, int t, const char *k, double *out, int positive) {
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || (positive && !(lua_tonumber(L, -1) > 0))) {
      lua_pop(L, 1);
      return k;
    }
    *out = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return NULL;
}

static const char *opt_bool(lua_State *L, int t, const char *k, int *out) {
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TBOOLEAN) {
      lua_pop(L, 1);
      return k;
    }
    *out = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return NULL;
}

/* A string option that ends up on the wire: no controls, no angle brackets. The string stays
 * referenced by the options table, which stays on the stack during verify(). */
static const char *opt_wire(lua_State *L, int t, const char *k, const char **out) {
  size_t n, i;
  const char *s;
  lua_getfield(L, t, k);
  if (lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    return k;
  }
  s = lua_tolstring(L, -1, &n);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') {
      lua_pop(L, 1);
      return k;
    }
  }
  *out = s;
  lua_pop(L, 1);
  return NULL;
}

/* dns_servers, source_address: a "a,b" string or an array of them; pushes the CSV string. */
static const char *opt_csv(lua_State *L, int t, const char *key, const char **out) {
  lua_getfield(L, t, key);
  if (lua_isnil(L, -1)) {
    *out = NULL;
    return NULL; /* leaves the nil on the stack */
  }
  if (lua_type(L, -1) == LUA_TTABLE) {
    luaL_Buffer b;
    size_t i, n = lsmtpc_rawlen(L, -1);
    int tbl = lua_gettop(L);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, tbl, (int)i);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        luaL_pushresult(&b);
        lua_pop(L, 1);
        return key;
      }
      if (i > 1) luaL_addchar(&b, ',');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_remove(L, tbl);
  } else if (lua_type(L, -1) != LUA_TSTRING) {
    return key;
  }
  *out = lua_tostring(L, -1);
  return NULL;
}

/* The options table at t into *o (smtpc_verify_opts_init first). Names outside OPT_NAMES and
 * extra (NULL-terminated, may be NULL: the caller reads those) are refused, so a misspelt
 * option is never silently ignored. 0: done, the dns_servers and source_address CSVs (or nils)
 * pushed, o.dns_servers and o.bind_address pointing into them. Otherwise nil and the message are pushed and 2 is returned. */
int lsmtpc_verify_opts(lua_State *L, int t, smtpc_verify_opts *o, const char *const *extra) {
  const char *bad = NULL, *starttls;
  if (t < 0 && t > LUA_REGISTRYINDEX) t = lua_gettop(L) + t + 1;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int i, known = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      for (i = 0; OPT_NAMES[i]; i++) known |= strcmp(OPT_NAMES[i], lua_tostring(L, -1)) == 0;
      for (i = 0; extra && extra[i]; i++) known |= strcmp(extra[i], lua_tostring(L, -1)) == 0;
    }
    if (!known) {
      const char *name =
          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
      lua_pushnil(L);
      lua_pushfstring(L, "unknown option '%s'", name);
      lua_remove(L, -3); /* the key */
      return 2;
    }
  }
  smtpc_verify_opts_init(o);
  if (!bad) bad = opt_wire(L, t, "mail_from", &o->mail_from);
  if (!bad) bad = opt_wire(L, t, "helo", &o->helo);
  if (!bad) bad = opt_int(L, t, "port", &o->port, 1, 65535);
  if (!bad) bad = opt_int(L, t, "concurrency", &o->concurrency, 1, 1000000);
  if (!bad) bad = opt_int(L, t, "per_host", &o->per_host, 1, 1000000);
  if (!bad) bad = opt_int(L, t, "rcpt_per_session", &o->rcpt_per_session, 1, 1000000);
  if (!bad) bad = opt_int(L, t, "max_rejections", &o->max_rejections, 1, 1000000);
  if (!bad) bad = opt_bool(L, t, "tls_verify", &o->tls_verify);
  if (!bad) bad = opt_bool(L, t, "catch_all", &o->catch_all);
  if (!bad) bad = opt_bool(L, t, "transcript", &o->transcript);
  if (!bad) bad = opt_num(L, t, "greylist_delay", &o->greylist_delay, 0);
  if (!bad) bad = opt_num(L, t, "deadline", &o->deadline, 1);
  if (!bad) bad = opt_num(L, t, "timeout", &o->timeout, 1);
  if (!bad) bad = opt_num(L, t, "connect_timeout", &o->connect_timeout, 1);
  if (!bad) bad = opt_num(L, t, "host_pause", &o->host_pause, 0);
  if (!bad && o->host_pause < 0) bad = "host_pause";
  if (!bad) {
    lua_getfield(L, t, "starttls");
    if (!lua_isnil(L, -1)) {
      size_t n;
      starttls = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
      if (starttls == NULL || (o->starttls = smtpc_starttls_from_name(starttls, n)) < 0)
        bad = "starttls (use \"opportunistic\", \"required\" or \"off\")";
    }
    lua_pop(L, 1);
  }
  if (!bad) {
    lua_getfield(L, t, "disposable");
    if (!lua_isnil(L, -1)) {
      size_t n;
      const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
      if (p == NULL || (o->disposable = smtpc_disposable_policy_from_name(p, n)) < 0)
        bad = "disposable (use \"risky\" or \"undeliverable\")";
    }
    lua_pop(L, 1);
  }
  if (!bad) bad = opt_str(L, t, "proxy", &o->proxy);
  if (!bad) bad = opt_str(L, t, "cache", &o->cache);
  if (!bad) bad = opt_bool(L, t, "refresh", &o->cache_refresh);
  if (!bad) bad = opt_num(L, t, "cache_positive_ttl", &o->cache_positive_ttl, 0);
  if (!bad) bad = opt_num(L, t, "cache_negative_ttl", &o->cache_negative_ttl, 0);
  if (!bad) bad = opt_num(L, t, "cache_unknown_ttl", &o->cache_unknown_ttl, 0);
  if (!bad && o->proxy && smtpc_proxy_parse(o->proxy, strlen(o->proxy), &(smtpc_proxy){0}) != 0)
    bad = "proxy (use socks5://[user:pass@]host[:port] or socks5h://...)";
  if (!bad) {
    int top = lua_gettop(L);
    bad = opt_csv(L, t, "dns_servers", &o->dns_servers); /* the CSVs stay on the stack */
    if (!bad) bad = opt_csv(L, t, "source_address", &o->bind_address);
    if (bad) lua_settop(L, top);
  }
  if (bad) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid option: %s", bad);
    return 2;
  }
  return 0;
}

/* smtpcode.verify(addresses, opts) -> iterator | nil, err */
static int l_verify(lua_State *L) {
  smtpc_verify_opts o;
  lverify *s;
  int err = 0, is_table;
  luaL_checkany(L, 1);
  is_table = lua_type(L, 1) == LUA_TTABLE;
  if (!is_table && lua_type(L, 1) != LUA_TFUNCTION)
    return lsmtpc_fail(L, "addresses must be an array or an iterator function");
  if (lua_type(L, 2) != LUA_TTABLE) return lsmtpc_fail(L, "options table required (mail_from, helo)");
  lua_settop(L, 2);
  /* leaves the dns_servers and source_address CSVs (or nils) at 3 and 4: o points into them */
  if (lsmtpc_verify_opts(L, 2, &o, NULL) != 0) return 2;

  s = lua_newuserdata(L, sizeof *s);
  memset(s, 0, sizeof *s);
  s->input_ref = LUA_NOREF;
  luaL_getmetatable(L, VERIFY_MT);
  lua_setmetatable(L, -2);
  /* the same bounded window as the Python binding: every session busy with a full batch */
  s->window = (size_t)o.concurrency * (size_t)o.rcpt_per_session * 2;
  if (s->window < 256) s->window = 256;
  if (s->window > 65536) s->window = 65536;
  if ((s->loop = malloc(sizeof *s->loop)) == NULL) return lsmtpc_fail(L, smtpc_strerror(SMTPC_ENOMEM));
  if (uv_loop_init(s->loop) != 0) {
    free(s->loop);
    s->loop = NULL;
    return lsmtpc_fail(L, "cannot create an event loop");
  }
  s->v = smtpc_verifier_new(s->loop, &o, on_result, s, &err);
  if (s->v == NULL) {
    lua_pushnil(L);
    if (err == SMTPC_ECACHE) lua_pushfstring(L, "cache %s: %s", o.cache, smtpc_strerror(err));
    else lua_pushfstring(L, "invalid option: %s", smtpc_strerror(err));
    return 2; /* the userdata's __gc closes the loop */
  }
  lua_pushvalue(L, 1);
  s->input_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->input_is_table = is_table;
  s->next_index = 1;
  /* iterator, state, control, closing value (Lua 5.4 closes it when the loop ends or breaks) */
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, -3);
  return 4;
}

void lsmtpc_open_verify(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next", l_next},
    {"close", l_close},
    {"pending", l_pending},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, VERIFY_MT)) {
    lua_pushcfunction(L, l_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    lsmtpc_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_verify);
  lua_setfield(L, -2, "verify");
}
