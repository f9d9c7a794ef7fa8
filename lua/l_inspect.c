/* l_inspect.c -- Lua binding for csrc/inspect.c.
 *
 *   smtpcode.inspect(s [, mx]) -> {disposable=, role=, free_provider=, suggestion=}
 *                              | nil, message, kind, position   (an invalid address)
 * mx: true when the domain is known to have a mail route (never corrected), false when it has
 * none, nil when not looked up (a suggestion is then a candidate). suggestion is nil when none.
 * parse_address and verify results carry the same four fields (lsmtpc_set_inspection). */
#include "lsmtpcode.h"

void lsmtpc_set_inspection(lua_State *L, const smtpc_inspection *x) {
  lua_pushboolean(L, x->disposable);
  lua_setfield(L, -2, "disposable");
  lua_pushboolean(L, x->role);
  lua_setfield(L, -2, "role");
  lua_pushboolean(L, x->free_provider);
  lua_setfield(L, -2, "free_provider");
  if (x->suggestion[0]) {
    lua_pushstring(L, x->suggestion);
    lua_setfield(L, -2, "suggestion");
  }
}

static int l_inspect(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int route = lua_isnoneornil(L, 2) ? SMTPC_ROUTE_UNKNOWN
              : lua_toboolean(L, 2) ? SMTPC_ROUTE_OK
                                    : SMTPC_ROUTE_NONE;
  smtpc_inspection x;
  int rc = smtpc_inspect(s, len, route, &x);
  if (rc == SMTPC_EBADADDRESS) { /* the parser's own message, kind and position */
    lua_settop(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "parse_address");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 4);
    return 4;
  }
  if (rc < 0) return lsmtpc_fail(L, smtpc_strerror(rc));
  lua_createtable(L, 0, 4);
  lsmtpc_set_inspection(L, &x);
  return 1;
}

static int l_inspect_tables(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)smtpc_inspect_table_size(0));
  lua_setfield(L, -2, "disposable");
  lua_pushnumber(L, (lua_Number)smtpc_inspect_table_size(1));
  lua_setfield(L, -2, "free_provider");
  lua_pushnumber(L, (lua_Number)smtpc_inspect_table_size(2));
  lua_setfield(L, -2, "role");
  lua_pushnumber(L, (lua_Number)smtpc_inspect_table_size(3));
  lua_setfield(L, -2, "typo_targets");
  return 1;
}

void lsmtpc_open_inspect(lua_State *L) {
  /* inspect reaches parse_address through the module table (its upvalue) for error values */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_inspect, 1);
  lua_setfield(L, -2, "inspect");
  lua_pushcfunction(L, l_inspect_tables);
  lua_setfield(L, -2, "inspect_tables");
}
