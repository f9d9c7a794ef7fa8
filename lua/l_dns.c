/* l_dns.c -- smtpcode.resolve(domain[, opts]): the MX route of a domain.
 *
 * A blocking convenience over the C resolver (its own private uv loop for the one lookup): it
 * stops the calling Lua state until the answer or the deadline. Not for OpenResty request
 * handlers; the probe engine uses the asynchronous C API instead.
 *
 *   smtpcode.resolve("example.test", {dns_servers = {"127.0.0.1:5353"}, timeout = 2})
 *   --> {domain=, mx={{preference=, host=, addresses={"127.0.0.1", "::1"}}, ...},
 *        implicit=, null_mx=, error=nil|"nxdomain"|"servfail"|"refused"|"timeout"|"no-address",
 *        ttl=}
 *   --> nil, message   for a domain that is not a host name or bad options
 */
#include <arpa/inet.h>
#include <string.h>

#include "dns_internal.h"
#include "lsmtpcode.h"

#define SERVERS_MAX 1024
#define GUARD_MT "smtpcode.route_guard"

/* Append one server to the comma-separated list c-ares takes; no commas or spaces inside. */
static const char *add_server(char *buf, size_t *len, const char *s, size_t n) {
  if (n == 0 || n > 64 || strcspn(s, ", \t\r\n") != n || memchr(s, '\0', n))
    return "bad dns_servers entry (\"127.0.0.1:5353\" or \"[::1]:53\")";
  if (*len + n + 2 > SERVERS_MAX) return "too many dns_servers";
  if (*len) buf[(*len)++] = ',';
  memcpy(buf + *len, s, n);
  *len += n;
  buf[*len] = '\0';
  return NULL;
}

/* Read the options table at index 2 into o; returns an error message or NULL. */
static const char *read_opts(lua_State *L, smtpc_resolver_opts *o, char *servers) {
  const char *err = NULL;
  size_t len = 0, n;
  servers[0] = '\0';
  if (lua_isnoneornil(L, 2)) return NULL;
  if (!lua_istable(L, 2)) return "options must be a table";

  lua_getfield(L, 2, "dns_servers");
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *s = lua_tolstring(L, -1, &n);
    err = add_server(servers, &len, s, n);
  } else if (lua_istable(L, -1)) {
    size_t i, count = lsmtpc_rawlen(L, -1);
    for (i = 1; i <= count && !err; i++) {
      lua_rawgeti(L, -1, (int)i);
      if (lua_type(L, -1) != LUA_TSTRING) err = "dns_servers entries must be strings";
      else {
        const char *s = lua_tolstring(L, -1, &n);
        err = add_server(servers, &len, s, n);
      }
      lua_pop(L, 1);
    }
    if (!err && count == 0) err = "dns_servers is empty";
  } else if (!lua_isnil(L, -1)) {
    err = "dns_servers must be a list of \"host:port\" strings";
  }
  lua_pop(L, 1);
  if (err) return err;
  o->servers = len ? servers : NULL;

  lua_getfield(L, 2, "timeout");
  if (!lua_isnil(L, -1)) {
    lua_Number t = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(t > 0 && t <= 3600)) err = "timeout must be 0 < s <= 3600";
    else o->timeout_ms = t * 1000 < 1 ? 1 : (int)(t * 1000);
  }
  lua_pop(L, 1);
  if (err) return err;

  lua_getfield(L, 2, "tries");
  if (!lua_isnil(L, -1)) {
    lua_Number t = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(t >= 1 && t <= 10)) err = "tries must be 1..10";
    else o->tries = (int)t;
  }
  lua_pop(L, 1);
  if (err) return err;

  lua_getfield(L, 2, "family");
  if (!lua_isnil(L, -1)) {
    const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    int i = smtpc__dns_family_of(f);
    if (i < 0) err = SMTPC__DNS_FAMILY_ERR;
    else o->family = i;
  }
  lua_pop(L, 1);
  return err;
}

void lsmtpc_push_route(lua_State *L, const smtpc_route *r) {
  size_t i, k;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, r->domain);
  lua_setfield(L, -2, "domain");
  lua_createtable(L, (int)r->nmx, 0);
  for (i = 0; i < r->nmx; i++) {
    const smtpc_mx *mx = &r->mx[i];
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, mx->preference);
    lua_setfield(L, -2, "preference");
    lua_pushstring(L, mx->host);
    lua_setfield(L, -2, "host");
    lua_createtable(L, (int)mx->naddrs, 0);
    for (k = 0; k < mx->naddrs; k++) {
      char buf[INET6_ADDRSTRLEN];
      const smtpc_sockaddr *a = &mx->addrs[k];
      const void *bin = a->sa.sa_family == AF_INET6 ? (const void *)&a->in6.sin6_addr
                                                    : (const void *)&a->in.sin_addr;
      lua_pushstring(L, inet_ntop(a->sa.sa_family, bin, buf, sizeof(buf)) ? buf : "?");
      lua_rawseti(L, -2, (int)k + 1);
    }
    lua_setfield(L, -2, "addresses");
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "mx");
  lua_pushboolean(L, r->implicit);
  lua_setfield(L, -2, "implicit");
  lua_pushboolean(L, r->null_mx);
  lua_setfield(L, -2, "null_mx");
  if (r->error) {
    lua_pushstring(L, smtpc_dns_error_name(r->error));
    lua_setfield(L, -2, "error");
  }
  lua_pushinteger(L, (lua_Integer)r->ttl);
  lua_setfield(L, -2, "ttl");
}

/* The route is held by a userdata while its table is built, so that a memory error raised
 * half-way (a longjmp) cannot leak it: the garbage collector frees it then. */
static int guard_gc(lua_State *L) {
  smtpc_route **box = (smtpc_route **)lua_touserdata(L, 1);
  if (box && *box) {
    smtpc_route_free(*box);
    *box = NULL;
  }
  return 0;
}

static int l_resolve(lua_State *L) {
  char servers[SERVERS_MAX + 1];
  smtpc_resolver_opts o;
  smtpc_route **box;
  size_t len;
  const char *domain = luaL_checklstring(L, 1, &len);
  const char *err;
  int rc;

  memset(&o, 0, sizeof(o));
  if ((err = read_opts(L, &o, servers)) != NULL) return lsmtpc_fail(L, err);
  if (strlen(domain) != len) return lsmtpc_fail(L, "invalid domain name");
  box = (smtpc_route **)lua_newuserdata(L, sizeof(*box));
  *box = NULL;
  luaL_getmetatable(L, GUARD_MT);
  lua_setmetatable(L, -2);
  rc = smtpc_resolve_blocking(domain, &o, box);
  if (rc == SMTPC_EINVAL) return lsmtpc_fail(L, o.servers ? "invalid domain name or dns_servers"
                                                          : "invalid domain name");
  if (rc < 0) return lsmtpc_fail(L, smtpc_strerror(rc));
  lsmtpc_push_route(L, *box);
  smtpc_route_free(*box);
  *box = NULL;
  return 1;
}

void lsmtpc_open_dns(lua_State *L) {
  if (luaL_newmetatable(L, GUARD_MT)) {
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_resolve);
  lua_setfield(L, -2, "resolve");
}
