-- smtpcode.verify results carry disposable, role, free_provider and suggestion; the disposable
-- policy option. The world: dnsmasq (tests/fixtures/dns/conf.d/inspect.conf: mailinator.com
-- mails to smtp-sink, gmail.con does not exist) and Postfix (users.mta.test). Expectations are
-- written by hand from issue 13.
local smtpcode = require("smtpcode")

package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local fixtures = require("fixtures")

local function run(list, extra)
  local o = { catch_all = false }
  for k, v in pairs(extra or {}) do o[k] = v end
  return fixtures.run(list, o)
end

describe("smtpcode.verify inspection", function()
  setup(function()
    fixtures.ensure("dns")
    fixtures.ensure("mta")
  end)
  teardown(fixtures.stop_started)

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
