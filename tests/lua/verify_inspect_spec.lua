-- smtpcode.verify results carry disposable, role, free_provider and suggestion; the disposable
-- policy option. The world: dnsmasq (tests/fixtures/dns/conf.d/inspect.conf: mailinator.com
-- mails to smtp-sink, gmail.con does not exist) and Postfix (users.mta.test). Expectations are
-- written by hand from issue 13.
local smtpcode = require("smtpcode")

local src = debug.getinfo(1, "S").source:sub(2)
local FIX = (src:match("^(.*)/[^/]*$") or ".") .. "/../fixtures/"

local function sh(cmd)
  local ok, _, code = os.execute(cmd .. " >/dev/null 2>&1")
  if type(ok) == "number" then return ok == 0 end
  return ok == true and (code == nil or code == 0)
end

local function run(list, extra)
  local o = { mail_from = "probe@probe.test", helo = "probe.test", port = 2525,
              dns_servers = "127.0.0.1:5353", timeout = 5, deadline = 60, catch_all = false }
  for k, v in pairs(extra or {}) do o[k] = v end
  local out, n = {}, 0
  for r in assert(smtpcode.verify(list, o)) do
    n = n + 1
    out[r.address] = r
  end
  assert.are.equal(#list, n)
  return out
end

describe("smtpcode.verify inspection", function()
  local started = {}
  setup(function()
    for _, name in ipairs({ "dns", "mta" }) do
      if not sh(FIX .. name .. "/ctl status") then
        assert(sh(FIX .. name .. "/ctl start"), "fixture " .. name .. " failed to start")
        started[#started + 1] = name
      end
    end
  end)
  teardown(function()
    for i = #started, 1, -1 do sh(FIX .. started[i] .. "/ctl stop") end
  end)

  it("flags, suggests and applies the default policy", function()
    local r = run({ "postmaster@users.mta.test", "someone@mailinator.com", "taro@gmail.con" })
    local pm = r["postmaster@users.mta.test"]
    assert.are.same({ true, "deliverable", false }, { pm.role, pm.verdict, pm.disposable })
    assert.is_nil(pm.suggestion)
    local d = r["someone@mailinator.com"]
    assert.are.same({ true, "delivered", "risky" }, { d.disposable, d.reason, d.verdict })
    local t = r["taro@gmail.con"]
    assert.are.same({ "undeliverable", "taro@gmail.com" }, { t.verdict, t.suggestion })
  end)

  it("makes disposable addresses undeliverable on request, and checks the option", function()
    local r = run({ "someone@mailinator.com" }, { disposable = "undeliverable" })
    assert.are.equal("undeliverable", r["someone@mailinator.com"].verdict)
    local it, err = smtpcode.verify({ "a@b.test" }, { mail_from = "p@p.test", helo = "p.test",
                                                      disposable = "drop" })
    assert.is_nil(it)
    assert.matches("disposable", err)
  end)
end)
