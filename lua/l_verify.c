/* l_verify.c -- Lua binding for the verify module (stub until the module lands). */
#include "lsmtpcode.h"

void lsmtpc_open_verify(lua_State *L) { (void)L; }
