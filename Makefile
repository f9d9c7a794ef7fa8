# smtpcode -- build and test everything.
#   make test    install what is missing, build C/Lua/Python, start the local servers, run all suites
#   make build   build only
#   make demo    the local demo world (see README)
# The last line of `make test` is 'N passed, N failed, N skipped' over all suites.

SHELL    := /bin/bash
BUILD    := build
CMAKEDIR := $(BUILD)/cmake
VENV     := $(BUILD)/venv
PY       := $(VENV)/bin/python
LUATREE  := $(BUILD)/lua_modules
LOGS     := $(BUILD)/logs
JOBS     ?= 2

.PHONY: all deps build build-c build-py build-lua test test-c test-lua test-py test-asan test-valgrind test-fuzz test-demo demo clean

all: build

deps:
	tests/install-deps

build: build-c build-py build-lua

build-c:
	cmake -S . -B $(CMAKEDIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(CMAKEDIR) -j$(JOBS)

build-py:
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation .

build-lua:
	luarocks --lua-version=5.4 --tree=$(LUATREE) make rockspec/smtpcode-scm-1.rockspec >$(BUILD)/luarocks.log 2>&1 \
	  || { cat $(BUILD)/luarocks.log; exit 1; }

# Each suite writes its log; tests/summary.py totals them. The world (dnsmasq, Postfix) runs for
# the whole test run and is stopped whatever happens.
test: deps build
	@mkdir -p $(LOGS)
	@tests/fixtures/world start
	@set +e; \
	trap 'tests/fixtures/world stop >/dev/null 2>&1' EXIT INT TERM; \
	$(MAKE) --no-print-directory test-c; $(MAKE) --no-print-directory test-lua; $(MAKE) --no-print-directory test-py; \
	$(MAKE) --no-print-directory test-asan; $(MAKE) --no-print-directory test-valgrind; \
	$(MAKE) --no-print-directory test-fuzz; \
	tests/fixtures/world stop >/dev/null 2>&1; trap - EXIT; \
	$(MAKE) --no-print-directory test-demo; \
	$(PY) tests/summary.py cmocka:C:$(LOGS)/c.log busted:Lua:$(LOGS)/lua.log busted:LuaJIT:$(LOGS)/luajit.log \
	  pytest:Python:$(LOGS)/python.log cmocka:C-asan:$(LOGS)/asan.log plain:Valgrind:$(LOGS)/valgrind.log plain:Fuzz:$(LOGS)/fuzz.log plain:Demo:$(LOGS)/demo-check.log | tee $(BUILD)/test-summary.txt; exit $${PIPESTATUS[0]}

test-c:
	-cd $(CMAKEDIR) && ctest -V --timeout 600 2>&1 | tee ../logs/c.log | grep -E '^\s*[0-9]+/[0-9]+ Test|\[  (FAILED|PASSED)  \]|ERROR|error:'

test-lua:
	-LUA_CPATH="$(CURDIR)/$(LUATREE)/lib/lua/5.4/?.so;;" LUA_PATH="$(CURDIR)/$(LUATREE)/share/lua/5.4/?.lua;;" \
	  busted --lua=lua5.4 tests/lua 2>&1 | tee $(LOGS)/lua.log
	-LUA_CPATH="$(CURDIR)/$(CMAKEDIR)/luajit/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;;" \
	  busted --lua=luajit tests/lua 2>&1 | tee $(LOGS)/luajit.log

test-asan:
	-tests/sanitize-run 2>&1 | tee $(LOGS)/asan.log | grep -E '^\s*[0-9]+/[0-9]+ Test|\[  FAILED  \]|ERROR: AddressSanitizer|runtime error'

# The Python and Lua probe tests once more under valgrind memcheck (leaks, invalid accesses).
test-valgrind:
	-PY=$(CURDIR)/$(PY) LUA_CPATH="$(CURDIR)/$(LUATREE)/lib/lua/5.4/?.so;;" tests/valgrind-run 2>&1 | tee $(LOGS)/valgrind.log

test-fuzz:
	-tests/fuzz/run 2>&1 | tee $(LOGS)/fuzz.log

# `make demo` as a user runs it (it starts and stops its own world), checked for the expected verdicts.
test-demo:
	-$(MAKE) --no-print-directory demo </dev/null >$(LOGS)/demo.log 2>&1; \
	  if $(PY) tests/demo/check $(LOGS)/demo.log; then echo "PASS make demo"; else echo "FAIL make demo"; tail -40 $(LOGS)/demo.log; fi \
	  | tee $(LOGS)/demo-check.log

test-py:
	-cd tests/python && ../../$(PY) -m pytest -q -p no:cacheprovider 2>&1 | tee ../../$(LOGS)/python.log

demo: deps build
	tests/demo/run

clean:
	rm -rf $(BUILD) build.luarocks
