/*
 * l_mxq.c -- smtpcode.mx_lookup(domain[, opts]): the route machine of csrc/dns_route.c for a
 * driver that carries DNS messages itself (smtpcode.resty over ngx.socket.udp/tcp). Types in,
 * types out: which queries to send and what the answers make of the route are the machine's.
 *
 *   local lk = smtpcode.mx_lookup("example.test", {family = "prefer_ipv4"})
 *   local id, msg = lk:next(txid)   -- a query to send (msg: wire format, transaction id txid)
 *   lk:answer(id, response)         -- the response message, any rcode -> true | false
 *   lk:fail(id, "timeout")          -- or "refused", "servfail": no usable response
 *   lk:done()  lk:expire()          -- expire: the deadline; what is missing timed out
 *   lk:route() -> the route table smtpcode.resolve returns (equal preferences shuffled)
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"
#include "lsmtpcode.h"

#define MXQ_MT "smtpcode.mx_lookup"

typedef struct {
  smtpc__mxq q;
  uint64_t rng;
} lmxq;

static int l_new(lua_State *L) {
  size_t len;
  const char *domain = luaL_checklstring(L, 1, &len);
  char name[256];
  int family = SMTPC_DNS_PREFER_IPV4;
  lmxq *u;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "family");
    if (!lua_isnil(L, -1)) {
      const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
      if ((family = smtpc__dns_family_of(f)) < 0) return lsmtpc_fail(L, SMTPC__DNS_FAMILY_ERR);
    }
    lua_pop(L, 1);
  }
  if (strlen(domain) != len || smtpc__dns_name_user(domain, len, name) != 0)
    return lsmtpc_fail(L, "invalid domain name");
  u = lua_newuserdata(L, sizeof *u);
  /* the resolver's defaults (dns.c): a day's worth of nothing is never believed */
  smtpc__mxq_init(&u->q, name, family, 60, 3600);
  u->rng = (uint64_t)(uintptr_t)u ^ ((uint64_t)len << 40) ^ 0x2545f4914f6cdd1du;
  luaL_getmetatable(L, MXQ_MT);
  lua_setmetatable(L, -2);
  return 1;
}

static int l_next(lua_State *L) {
  lmxq *u = luaL_checkudata(L, 1, MXQ_MT);
  lua_Number txid = luaL_checknumber(L, 2);
  unsigned char buf[12 + 256 + 4];
  unsigned id;
  const char *name;
  int type, n;
  if (!(txid >= 0 && txid <= 65535)) return luaL_argerror(L, 2, "transaction id 0..65535");
  if (!smtpc__mxq_next(&u->q, &id, &name, &type)) return 0;
  if ((n = smtpc__dns_query(buf, sizeof buf, (unsigned)txid, name, type)) < 0) {
    smtpc__mxq_fail(&u->q, id, SMTPC_DNS_SERVFAIL); /* cannot happen: names are checked */
    return luaL_error(L, "smtpcode.mx_lookup: cannot build a query for %s", name);
  }
  lua_pushinteger(L, (lua_Integer)id);
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  lua_pushstring(L, name);
  lua_pushinteger(L, type);
  return 4;
}

static int l_answer(lua_State *L) {
  lmxq *u = luaL_checkudata(L, 1, MXQ_MT);
  lua_Number id = luaL_checknumber(L, 2);
  size_t n;
  const char *m = luaL_checklstring(L, 3, &n);
  if (!(id >= 0 && id < 2 * SMTPC__DNS_MAX_MX + 1) || n > 65535) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, smtpc__mxq_answer(&u->q, (unsigned)id, (const unsigned char *)m, (int)n) == 0);
  return 1;
}

static int l_fail(lua_State *L) {
  lmxq *u = luaL_checkudata(L, 1, MXQ_MT);
  lua_Number id = luaL_checknumber(L, 2);
  const char *kind = luaL_checkstring(L, 3);
  int code = smtpc__dns_failure_of(kind);
  if (code == 0) return luaL_argerror(L, 3, lua_pushfstring(L, "invalid option '%s'", kind));
  if (!(id >= 0 && id < 2 * SMTPC__DNS_MAX_MX + 1)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, smtpc__mxq_fail(&u->q, (unsigned)id, code) == 0);
  return 1;
}

static int l_done(lua_State *L) {
  lmxq *u = luaL_checkudata(L, 1, MXQ_MT);
  lua_pushboolean(L, smtpc__mxq_done(&u->q));
  return 1;
}

static int l_expire(lua_State *L) {
  lmxq *u = luaL_checkudata(L, 1, MXQ_MT);
  smtpc__mxq_expire(&u->q);
  return 0;
}

static int l_route(lua_State *L) {
  lmxq *u = luaL_checkudata(L, 1, MXQ_MT);
  /* a userdata, not the C stack: 15 KB, and the table building below may raise */
  smtpc__mxq_route_buf *rb = lua_newuserdata(L, sizeof *rb);
  smtpc__mxq_route(&u->q, rb);
  smtpc__route_shuffle(&rb->route, &u->rng);
  lsmtpc_push_route(L, &rb->route);
  return 1;
}

void lsmtpc_open_mxq(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next", l_next}, {"answer", l_answer}, {"fail", l_fail}, {"done", l_done},
    {"expire", l_expire}, {"route", l_route}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, MXQ_MT)) {
    lua_newtable(L);
    lsmtpc_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "mx_lookup");
}
