/* lsmtpcode.h -- internal to the Lua binding: compatibility macros (Lua 5.1/LuaJIT .. 5.4) and the
 * hooks by which each module file adds its functions to the module table. */
#ifndef LSMTPCODE_H
#define LSMTPCODE_H

#include <lua.h>
#include <lauxlib.h>
#include "smtpcode.h"

#if LUA_VERSION_NUM < 502
/* Lua 5.1 and LuaJIT */
#define lsmtpc_setfuncs(L, l) luaL_register((L), NULL, (l))
#define lsmtpc_rawlen(L, i) lua_objlen((L), (i))
#else
#define lsmtpc_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#define lsmtpc_rawlen(L, i) lua_rawlen((L), (i))
/* l_verify.c, shared with l_plan.c: a smtpc_result as the table verify() returns; the
 * verify options table read into *o (see l_verify.c for the stack contract). */
void lsmtpc_push_result(lua_State *L, const smtpc_result *r);
/* l_dns.c: a route as smtpcode.resolve returns it. */
void lsmtpc_push_route(lua_State *L, const smtpc_route *r);
int lsmtpc_verify_opts(lua_State *L, int t, smtpc_verify_opts *o, const char *const *extra);

#endif

/* Return nil, message[, extra] -- the convention for expected failures. */
int lsmtpc_fail(lua_State *L, const char *msg);

/* Each hook sets its fields on the module table at the top of the stack and leaves the stack as
 * it found it. */
void lsmtpc_open_address(lua_State *L);
void lsmtpc_open_dns(lua_State *L);
void lsmtpc_open_verify(lua_State *L);
void lsmtpc_open_plan(lua_State *L);
void lsmtpc_open_mxq(lua_State *L);
void lsmtpc_open_bounce(lua_State *L);
void lsmtpc_open_inspect(lua_State *L);

/* Set disposable, role, free_provider and suggestion (nil when none) on the table on top. */
void lsmtpc_set_inspection(lua_State *L, const smtpc_inspection *x);

/* Push a decoded reply as a table (used by decode, classify and the verify results). */
void lsmtpc_push_decoded(lua_State *L, const smtpc_decoded *d);

/* l_verify.c, shared with l_plan.c: a smtpc_result as the table verify() returns; the
 * verify options table read into *o (see l_verify.c for the stack contract). */
void lsmtpc_push_result(lua_State *L, const smtpc_result *r);
/* l_dns.c: a route as smtpcode.resolve returns it. */
void lsmtpc_push_route(lua_State *L, const smtpc_route *r);
int lsmtpc_verify_opts(lua_State *L, int t, smtpc_verify_opts *o, const char *const *extra);

#endif
