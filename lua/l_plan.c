/*
 * l_plan.c -- the planner (csrc/plan.c) for Lua drivers: smtpcode.plan(opts). Types in, types
 * out, nothing decided here; smtpcode.resty (cosockets in OpenResty) is the driver built on it.
 *
 *   local p = smtpcode.plan{mail_from = ..., helo = ..., <the options of verify()>, seed = n}
 *   p:add(now, address, tag) -> true | nil, err     p:finish()     p:cancel(now)
 *   p:resolved(now, token, route | nil)   route: a table as smtpcode.resolve returns it
 *   p:connected(now, sid)  p:read(now, sid, data)  p:tls(now, sid, ok)
 *   p:eof(now, sid [, detail [, timeout]])  p:released(now, sid)  p:tick(now)
 *   p:next(now) -> action table | nil, one of
 *     {type="resolve", token=, name=}  {type="connect", sid=, ip=, port=, name=}
 *     {type="write", sid=, data=}  {type="start_tls", sid=, name=}  {type="close", sid=}
 *     {type="wake", time=}  {type="result", tag=, result=<as verify() returns it>}
 *   p:done() -> boolean     p:stats() -> table
 * Times are numbers of microseconds on the driver's clock (ngx.now() * 1e6); event methods
 * return true, or false for an event the planner did not expect (unknown sid or token).
 * ("end" is a Lua keyword, hence finish.)
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lsmtpcode.h"

#define PLAN_MT "smtpcode.plan"

typedef struct {
  smtpc_plan *p;
} lplan;

static smtpc_plan *check(lua_State *L) {
  lplan *u = luaL_checkudata(L, 1, PLAN_MT);
  if (u->p == NULL) luaL_error(L, "smtpcode.plan: used after close()");
  return u->p;
}

/* Times and tokens are Lua numbers: exact up to 2^53, which microseconds reach in 285 years. */
static uint64_t check_u64(lua_State *L, int i) {
  lua_Number n = luaL_checknumber(L, i);
  if (!(n >= 0) || n > 9007199254740992.0) luaL_argerror(L, i, "expected a number >= 0");
  return (uint64_t)n;
}

static unsigned check_sid(lua_State *L, int i) {
  lua_Number n = luaL_checknumber(L, i);
  if (!(n >= 0) || n > 4294967295.0 || n != (lua_Number)(unsigned)n)
    luaL_argerror(L, i, "expected a session id");
  return (unsigned)n;
}

static int rc_result(lua_State *L, int rc) {
  if (rc == SMTPC_ENOMEM) return luaL_error(L, "smtpcode.plan: out of memory");
  lua_pushboolean(L, rc == 0);
  return 1;
}

static const char *const EXTRA_OPTS[] = {"seed", NULL};

/* smtpcode.plan(opts) -> plan | nil, err */
static int l_new(lua_State *L) {
  smtpc_plan_opts po;
  lplan *u;
  int err = 0;
  memset(&po, 0, sizeof po);
  if (lua_type(L, 1) != LUA_TTABLE) return lsmtpc_fail(L, "options table required (mail_from, helo)");
  lua_settop(L, 1);
  if (lsmtpc_verify_opts(L, 1, &po.verify, EXTRA_OPTS) != 0) return 2;
  lua_getfield(L, 1, "seed");
  if (!lua_isnil(L, -1)) {
    lua_Number n = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 0) || n > 9007199254740992.0) {
      lua_pushnil(L);
      lua_pushstring(L, "invalid option: seed");
      return 2;
    }
    po.seed = (uint64_t)n;
  }
  lua_pop(L, 1);
  u = lua_newuserdata(L, sizeof *u);
  u->p = NULL;
  luaL_getmetatable(L, PLAN_MT);
  lua_setmetatable(L, -2);
  /* the planner copies the option strings it keeps (the table may go) */
  if ((u->p = smtpc_plan_new(&po, &err)) == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid option: %s", smtpc_strerror(err));
    return 2;
  }
  return 1;
}

static int l_close(lua_State *L) {
  lplan *u = luaL_checkudata(L, 1, PLAN_MT);
  smtpc_plan_free(u->p);
  u->p = NULL;
  return 0;
}

static int l_add(lua_State *L) {
  smtpc_plan *p = check(L);
  uint64_t now = check_u64(L, 2);
  size_t n;
  const char *a = luaL_checklstring(L, 3, &n);
  uint64_t tag = check_u64(L, 4);
  int rc = smtpc_plan_add(p, now, a, n, tag);
  if (rc == SMTPC_EINVAL) return luaL_error(L, "smtpcode.plan: add() after finish() or cancel()");
  if (rc < 0) return lsmtpc_fail(L, smtpc_strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_finish(lua_State *L) {
  smtpc_plan_end(check(L));
  return 0;
}

static int l_cancel(lua_State *L) {
  smtpc_plan *p = check(L);
  smtpc_plan_cancel(p, check_u64(L, 2));
  return 0;
}

static int l_tick(lua_State *L) {
  smtpc_plan *p = check(L);
  smtpc_plan_tick(p, check_u64(L, 2));
  return 0;
}

/* Counts the addresses of a route table's MX entries; raises on a malformed table. */
static size_t count_addrs(lua_State *L, int mxs, size_t nmx) {
  size_t i, n = 0;
  for (i = 1; i <= nmx; i++) {
    lua_rawgeti(L, mxs, (int)i);
    if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "smtpcode.plan: route.mx[%d] is not a table", (int)i);
    lua_getfield(L, -1, "addresses");
    if (lua_type(L, -1) != LUA_TTABLE)
      luaL_error(L, "smtpcode.plan: route.mx[%d].addresses is not a table", (int)i);
    n += lsmtpc_rawlen(L, -1);
    lua_pop(L, 2);
  }
  return n;
}

/* p:resolved(now, token, route|nil): the route table (smtpcode.resolve's shape) into a
 * smtpc_route; the arrays live in userdata on the stack, so a Lua error frees them too. */
static int l_resolved(lua_State *L) {
  smtpc_plan *p = check(L);
  uint64_t now = check_u64(L, 2), token = check_u64(L, 3);
  smtpc_route r;
  smtpc_mx *mx;
  smtpc_sockaddr *sa;
  size_t i, j, nmx, naddr, k = 0, kept = 0;
  int mxs;
  if (lua_isnoneornil(L, 4)) return rc_result(L, smtpc_plan_resolved(p, now, token, SMTPC_EDNS, NULL));
  luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  memset(&r, 0, sizeof r);
  r.domain = "";
  lua_getfield(L, 4, "implicit");
  r.implicit = lua_toboolean(L, -1);
  lua_getfield(L, 4, "null_mx");
  r.null_mx = lua_toboolean(L, -1);
  lua_getfield(L, 4, "error");
  if (!lua_isnil(L, -1)) {
    const char *e = lua_tostring(L, -1);
    r.error = SMTPC_DNS_SERVFAIL; /* a name we do not know is still a failure */
    for (i = 1; e && i < SMTPC_DNS_ERROR_COUNT; i++)
      if (strcmp(smtpc_dns_error_name((int)i), e) == 0) r.error = (int)i;
  }
  lua_getfield(L, 4, "ttl");
  r.ttl = lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 0 ? (uint32_t)lua_tonumber(L, -1) : 0;
  lua_settop(L, 4);
  lua_getfield(L, 4, "mx");
  mxs = lua_gettop(L);
  nmx = lua_type(L, mxs) == LUA_TTABLE ? lsmtpc_rawlen(L, mxs) : 0;
  naddr = count_addrs(L, mxs, nmx);
  mx = lua_newuserdata(L, (nmx + 1) * sizeof *mx);
  sa = lua_newuserdata(L, (naddr + 1) * sizeof *sa);
  memset(sa, 0, (naddr + 1) * sizeof *sa);
  for (i = 1; i <= nmx; i++) {
    smtpc_mx *m = &mx[kept];
    lua_rawgeti(L, mxs, (int)i);
    lua_getfield(L, -1, "preference");
    m->preference = (int)lua_tonumber(L, -1);
    lua_getfield(L, -2, "host");
    if (lua_type(L, -1) != LUA_TSTRING) /* the string stays referenced by the route table */
      return luaL_error(L, "smtpcode.plan: route.mx[%d].host is not a string", (int)i);
    m->host = lua_tostring(L, -1);
    lua_getfield(L, -3, "addresses");
    m->addrs = sa + k;
    m->naddrs = 0;
    for (j = 1; j <= lsmtpc_rawlen(L, -1); j++) {
      const char *a;
      lua_rawgeti(L, -1, (int)j);
      a = lua_tostring(L, -1);
      if (a && inet_pton(AF_INET, a, &sa[k].in.sin_addr) == 1) sa[k].in.sin_family = AF_INET;
      else if (a && inet_pton(AF_INET6, a, &sa[k].in6.sin6_addr) == 1) sa[k].in6.sin6_family = AF_INET6;
      else a = NULL; /* not an address: left out, as the resolver leaves out what it can't use */
      lua_pop(L, 1);
      if (a) k++, m->naddrs++;
    }
    lua_pop(L, 4);
    if (m->naddrs) kept++; /* hosts without an address are left out (the header's promise) */
  }
  r.nmx = kept;
  r.mx = mx;
  if (r.nmx == 0 && r.error == SMTPC_DNS_OK && !r.null_mx) r.error = SMTPC_DNS_NOADDRESS;
  return rc_result(L, smtpc_plan_resolved(p, now, token, 0, &r));
}

static int l_connected(lua_State *L) {
  smtpc_plan *p = check(L);
  return rc_result(L, smtpc_plan_connected(p, check_u64(L, 2), check_sid(L, 3)));
}

static int l_read(lua_State *L) {
  smtpc_plan *p = check(L);
  uint64_t now = check_u64(L, 2);
  unsigned sid = check_sid(L, 3);
  size_t n;
  const char *d = luaL_checklstring(L, 4, &n);
  return rc_result(L, smtpc_plan_read(p, now, sid, d, n));
}

static int l_tls(lua_State *L) {
  smtpc_plan *p = check(L);
  uint64_t now = check_u64(L, 2);
  unsigned sid = check_sid(L, 3);
  return rc_result(L, smtpc_plan_tls(p, now, sid, lua_toboolean(L, 4)));
}

/* The planner keeps the detail by pointer until the result is out: the driver's few texts
 * are interned in a table in the registry (bounded; the rest read "connection failed"). */
static const char *keep_detail(lua_State *L, int i) {
  static const char key = 'k';
  const char *d;
  if (lua_isnoneornil(L, i)) return NULL;
  luaL_checkstring(L, i);
  lua_pushlightuserdata(L, (void *)&key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, (void *)&key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pushvalue(L, i);
  lua_rawget(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_getfield(L, -1, "#");
    if (lua_tonumber(L, -1) >= 256) {
      lua_pop(L, 2);
      return "connection failed";
    }
    lua_pushnumber(L, lua_tonumber(L, -1) + 1);
    lua_setfield(L, -3, "#");
    lua_pop(L, 1);
    lua_pushvalue(L, i);
    lua_pushvalue(L, i);
    lua_rawset(L, -3);
    lua_pushvalue(L, i);
    lua_rawget(L, -2);
  }
  d = lua_tostring(L, -1); /* the interned copy: kept alive by the registry table */
  lua_pop(L, 2);
  return d;
}

static int l_eof(lua_State *L) {
  smtpc_plan *p = check(L);
  uint64_t now = check_u64(L, 2);
  unsigned sid = check_sid(L, 3);
  const char *d = keep_detail(L, 4);
  int err = lua_toboolean(L, 5) ? SMTPC_ETIMEOUT : SMTPC_ECLOSED;
  return rc_result(L, smtpc_plan_eof(p, now, sid, err, d));
}

static int l_released(lua_State *L) {
  smtpc_plan *p = check(L);
  return rc_result(L, smtpc_plan_released(p, check_u64(L, 2), check_sid(L, 3)));
}

static void set_num(lua_State *L, const char *k, lua_Number v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static int l_next(lua_State *L) {
  smtpc_plan *p = check(L);
  smtpc_plan_action a;
  char ip[INET6_ADDRSTRLEN];
  if (!smtpc_plan_next(p, check_u64(L, 2), &a)) return 0;
  lua_createtable(L, 0, 5);
  lua_pushstring(L, smtpc_plan_action_name(a.type));
  lua_setfield(L, -2, "type");
  switch (a.type) {
  case SMTPC_PLAN_RESOLVE:
    set_num(L, "token", (lua_Number)a.token);
    lua_pushstring(L, a.name);
    lua_setfield(L, -2, "name");
    break;
  case SMTPC_PLAN_CONNECT: {
    int v6 = a.addr->sa.sa_family == AF_INET6;
    ip[0] = '\0';
    inet_ntop(v6 ? AF_INET6 : AF_INET,
              v6 ? (const void *)&a.addr->in6.sin6_addr : (const void *)&a.addr->in.sin_addr,
              ip, sizeof ip);
    set_num(L, "sid", a.sid);
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "ip");
    set_num(L, "port", ntohs(v6 ? a.addr->in6.sin6_port : a.addr->in.sin_port));
    lua_pushstring(L, a.name ? a.name : "");
    lua_setfield(L, -2, "name");
    break;
  }
  case SMTPC_PLAN_WRITE:
    set_num(L, "sid", a.sid);
    lua_pushlstring(L, a.data, a.len);
    lua_setfield(L, -2, "data");
    break;
  case SMTPC_PLAN_START_TLS:
    set_num(L, "sid", a.sid);
    lua_pushstring(L, a.name ? a.name : "");
    lua_setfield(L, -2, "name");
    break;
  case SMTPC_PLAN_CLOSE:
    set_num(L, "sid", a.sid);
    break;
  case SMTPC_PLAN_WAKE:
    set_num(L, "time", (lua_Number)a.time);
    break;
  case SMTPC_PLAN_RESULT:
    set_num(L, "tag", (lua_Number)a.result->tag);
    lsmtpc_push_result(L, a.result);
    lua_setfield(L, -2, "result");
    break;
  }
  return 1;
}

static int l_done(lua_State *L) {
  lua_pushboolean(L, smtpc_plan_done(check(L)));
  return 1;
}

static int l_stats(lua_State *L) {
  smtpc_plan_stats st;
  smtpc_plan_stats_get(check(L), &st);
  lua_createtable(L, 0, 6);
  set_num(L, "pending", (lua_Number)st.pending);
  set_num(L, "sessions", (lua_Number)st.sessions);
  set_num(L, "sessions_opened", (lua_Number)st.sessions_opened);
  set_num(L, "results", (lua_Number)st.results);
  set_num(L, "memory", (lua_Number)st.memory);
  set_num(L, "memory_peak", (lua_Number)st.memory_peak);
  return 1;
}

void lsmtpc_open_plan(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"add", l_add},         {"finish", l_finish},       {"cancel", l_cancel},
    {"tick", l_tick},       {"resolved", l_resolved},   {"connected", l_connected},
    {"read", l_read},       {"tls", l_tls},             {"eof", l_eof},
    {"released", l_released}, {"next", l_next},         {"done", l_done},
    {"stats", l_stats},     {"close", l_close},         {NULL, NULL},
  };
  if (luaL_newmetatable(L, PLAN_MT)) {
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lsmtpc_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "plan");
}
