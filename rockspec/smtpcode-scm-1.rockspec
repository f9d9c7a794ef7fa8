-- luarocks --lua-version=5.4 make rockspec/smtpcode-scm-1.rockspec
-- The C sources come from csrc/SOURCES through CMakeLists.txt (SMTPCODE_LUA_ROCK builds only the
-- Lua module and installs it where luarocks asks). The C libraries come from pkg-config there:
-- libuv, libcares, openssl, libidn2 and sqlite3 (libsqlite3-dev, for the result cache).
rockspec_format = "3.0"
package = "smtpcode"
version = "scm-1"
source = { url = "git+https://example.invalid/smtpcode.git" }
description = {
  summary = "Decode SMTP replies and bounces; verify mail addresses by SMTP without sending mail",
  detailed = [[
smtpcode turns SMTP replies and bounce diagnostics into structured facts (reply code, enhanced
status code, reason, hard or soft, retry advice, explanation in English and Japanese), and
probes addresses by SMTP on libuv without sending mail.]],
  license = "BSD-2-Clause",
}
dependencies = { "lua >= 5.1" }
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    SMTPCODE_LUA_ROCK = "ON",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
  },
}
test = { type = "command", command = "busted --lua=lua5.4 tests/lua" }
