#!/usr/bin/env bash
# Packaging checks, run by ctest as "install": the installed header, libraries and smtpcode.pc
# build and link a program (static and shared); `pip install` of the source tree works in a fresh
# virtual environment; `luarocks make` of the rockspec installs a module that `require` loads.
# Prints cmocka-style counts so the test summary can total them.
set -u
src=$1
bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { # name, command...
  local name=$1; shift
  if "$@" >"$work/$name.log" 2>&1; then pass=$((pass + 1)); echo "[       OK ] $name"
  else fail=$((fail + 1)); echo "[  FAILED  ] $name"; tail -20 "$work/$name.log"; fi
}

cat >"$work/main.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <smtpcode.h>
int main(void) {
  smtpc_decoded d;
  const char *t = "550 5.1.1 <a@b.test>: Recipient address rejected: User unknown";
  if (smtpc_decode(t, strlen(t), NULL, &d) != 0 || d.code != 550) return 1;
  printf("%s %s %s\n", smtpc_version(), d.status, smtpc_reason_name(d.cls.reason));
  return strcmp(smtpc_reason_name(d.cls.reason), "userunknown") != 0;
}
C
check cmake_install cmake --install "$bin" --prefix "$work/prefix"
pc="$work/prefix/lib/pkgconfig"
[ -d "$pc" ] || pc=$(dirname "$(find "$work/prefix" -name smtpcode.pc | head -1)")
check pkgconfig_shared bash -c "cc \$(PKG_CONFIG_PATH='$pc' pkg-config --cflags smtpcode) '$work/main.c' \
  \$(PKG_CONFIG_PATH='$pc' pkg-config --libs smtpcode) -o '$work/shared' && LD_LIBRARY_PATH='$(dirname "$pc")' '$work/shared'"
check pkgconfig_static bash -c "cc \$(PKG_CONFIG_PATH='$pc' pkg-config --cflags smtpcode) '$work/main.c' \
  '$(dirname "$pc")/libsmtpcode.a' \$(pkg-config --libs libuv libcares openssl libidn2) -lpthread -o '$work/static' && '$work/static'"
check pip_fresh_venv bash -c "python3 -m venv '$work/venv' && '$work/venv/bin/pip' install -q '$src' && \
  cd '$work' && '$work/venv/bin/python' -c 'import smtpcode; r = smtpcode.decode(\"550 5.1.1 x\"); assert r.code == 550, r'"
check luarocks_make bash -c "cd '$src' && luarocks --lua-version=5.4 --tree='$work/rocks' make rockspec/smtpcode-scm-1.rockspec && \
  LUA_CPATH='$work/rocks/lib/lua/5.4/?.so' lua5.4 -e 'local s = require \"smtpcode\"; assert(s.decode(\"250 ok\").code == 250); print(s.version)'"
echo "[==========] install: $((pass + fail)) test(s) run."
[ $pass -gt 0 ] && echo "[  PASSED  ] $pass test(s)."
[ $fail -gt 0 ] && echo "[  FAILED  ] $fail test(s), listed above."
exit $((fail > 0))
