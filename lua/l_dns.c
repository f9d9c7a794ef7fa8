/* l_dns.c -- Lua binding for the dns module (stub until the module lands). */
#include "lsmtpcode.h"

void lsmtpc_open_dns(lua_State *L) { (void)L; }
