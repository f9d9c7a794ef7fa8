-- fixtures.lua -- the start-up the specs that talk to real servers share: the paths of
-- tests/fixtures/, a shell call that works on Lua 5.4 and LuaJIT (5.1), fixtures started on
-- demand (and only those stopped again), and smtpcode.verify against the Postfix world.
local smtpcode = require("smtpcode")
-- a module required from a spec sees the plain globals, not the spec's luassert
local assert = require("luassert")

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
M.ROOT = here .. "/../.."
M.FIX = M.ROOT .. "/tests/fixtures/"

-- true when cmd exits 0; its output is dropped
function M.sh(cmd)
  local ok, _, code = os.execute(cmd .. " >/dev/null 2>&1")
  -- Lua 5.1/LuaJIT returns the status number; 5.2+ returns true/nil, "exit", code
  if type(ok) == "number" then return ok == 0 end
  return ok == true and (code == nil or code == 0)
end

-- A fixture left running by someone else (the Makefile's world) is used as it is.
local started = {}
function M.ensure(name)
  if M.sh(M.FIX .. name .. "/ctl status") then return end
  assert(M.sh(M.FIX .. name .. "/ctl start"), "fixture " .. name .. " failed to start")
  started[#started + 1] = name
end

-- Stops what ensure started, last first.
function M.stop_started()
  for i = #started, 1, -1 do M.sh(M.FIX .. started[i] .. "/ctl stop") end
  started = {}
end

-- verify() options for the Postfix world (tests/fixtures/mta, dns), extra on top
function M.opts(extra)
  local o = {
    mail_from = "probe@probe.test", helo = "probe.test", port = 2525,
    dns_servers = "127.0.0.1:5353", timeout = 5, deadline = 60,
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- all results of a run, keyed by address; asserts one result per input address
function M.run(list, extra)
  local out, n = {}, 0
  local it = assert(smtpcode.verify(list, M.opts(extra)))
  for r in it do
    n = n + 1
    assert.is_nil(out[r.address], "two results for " .. r.address)
    out[r.address] = r
  end
  assert.are.equal(#list, n)
  for _, a in ipairs(list) do assert.is_not_nil(out[a], "no result for " .. a) end
  return out
end

return M
