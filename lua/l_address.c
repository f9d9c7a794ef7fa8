/* l_address.c -- Lua binding for the address parser (csrc/address.c).
 *
 *   smtpcode.parse_address(s) -> {address=, ascii_address=, local_part=, domain=, ascii_domain=,
 *                                 literal=, smtputf8=, utf8_local=, disposable=, role=,
 *                                 free_provider=, suggestion= (a no-DNS candidate, or nil)}
 *                              | nil, message, kind, position
 * kind is the machine-readable name ("consecutive_dots"), position the 1-based octet of s where
 * the problem was found. A non-string argument is a programming error and raises. */
#include "lsmtpcode.h"

static void set_string(lua_State *L, const char *key, const char *value) {
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, int value) {
  lua_pushboolean(L, value);
  lua_setfield(L, -2, key);
}

static int l_parse_address(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  smtpc_address a;
  int kind = SMTPC_ADDR_OK;
  int rc = smtpc_parse_address(s, len, &a, &kind);

  if (rc == SMTPC_EBADADDRESS) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s (at octet %d)", smtpc_address_kind_message(kind),
                    (int)a.error_offset + 1);
    lua_pushstring(L, smtpc_address_kind_name(kind));
    lua_pushinteger(L, (lua_Integer)a.error_offset + 1);
    return 4;
  }
  if (rc < 0) { /* out of memory: not the address's fault, so no kind */
    lua_pushnil(L);
    lua_pushstring(L, smtpc_strerror(rc));
    return 2;
  }
  lua_createtable(L, 0, 12);
  set_string(L, "address", a.address);
  set_string(L, "ascii_address", a.ascii_address);
  set_string(L, "local_part", a.local_part);
  set_string(L, "domain", a.domain);
  set_string(L, "ascii_domain", a.ascii_domain);
  set_bool(L, "literal", a.literal);
  set_bool(L, "smtputf8", a.smtputf8);
  set_bool(L, "utf8_local", a.utf8_local);
  {
    smtpc_inspection x;
    smtpc_inspect_address(&a, SMTPC_ROUTE_UNKNOWN, &x);
    lsmtpc_set_inspection(L, &x);
  }
  return 1;
}

static const luaL_Reg address_functions[] = {
  {"parse_address", l_parse_address},
  {NULL, NULL},
};

void lsmtpc_open_address(lua_State *L) { lsmtpc_setfuncs(L, address_functions); }
