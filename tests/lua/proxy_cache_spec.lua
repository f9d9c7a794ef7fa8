-- smtpcode.verify with proxy=, source_address= and cache= from Lua: real proxies
-- (tests/fixtures/socks: dante, microsocks) before the Postfix world, a real SQLite file.
-- Expectations come from the fixtures' configuration, written by hand.
local smtpcode = require("smtpcode")

package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local fixtures = require("fixtures")
local ensure, opts, run = fixtures.ensure, fixtures.opts, fixtures.run

local CASES = {
  ["alice@users.mta.test"] = { "deliverable", "delivered" },
  ["nobody@users.mta.test"] = { "undeliverable", "userunknown" },
  ["anyone@catchall.mta.test"] = { "risky", "delivered" },
  ["alice@down.mta.test"] = { "unknown", "networkerror" },
}
local LIST = {}
for a in pairs(CASES) do LIST[#LIST + 1] = a end
table.sort(LIST)

describe("smtpcode.verify through a proxy and with a cache", function()
  setup(function()
    ensure("dns")
    ensure("mta")
    ensure("socks")
  end)

  teardown(function()
    fixtures.stop_started()
  end)

  for _, proxy in ipairs({ "socks5://127.0.0.1:1080", "socks5h://smtpcproxy:s3cret@127.0.0.1:1081",
                           "socks5h://127.0.0.1:1082" }) do
    it("gives the direct verdicts through " .. proxy, function()
      local res = run(LIST, { proxy = proxy })
      for a, want in pairs(CASES) do
        assert.are.same(want, { res[a].verdict, res[a].reason }, a)
      end
      assert.are.equal("PROXYREFUSED", res["alice@down.mta.test"].error)
    end)
  end

  it("reports proxy authentication failures as unknown/networkerror", function()
    local r = run({ "alice@users.mta.test" },
                  { proxy = "socks5://smtpcproxy:wrong@127.0.0.1:1081" })["alice@users.mta.test"]
    assert.are.same({ "unknown", "networkerror", "PROXYAUTH" }, { r.verdict, r.reason, r.error })
  end)

  it("refuses a bad proxy URL and a bad source address", function()
    local it, err = smtpcode.verify({ "a@b.test" }, opts({ proxy = "http://127.0.0.1:3128" }))
    assert.is_nil(it)
    assert.matches("proxy", err)
    it, err = smtpcode.verify({ "a@b.test" }, opts({ source_address = { "127.0.0.1", "x" } }))
    assert.is_nil(it)
    assert.is_string(err)
  end)

  it("answers a re-run from the cache file", function()
    local db = os.tmpname()
    os.remove(db)
    local cold = run(LIST, { cache = db, source_address = { "127.0.0.11" } })
    local warm = run(LIST, { cache = db })
    for a, want in pairs(CASES) do
      assert.are.same(want, { warm[a].verdict, warm[a].reason }, a)
      assert.is_false(cold[a].cached)
    end
    -- unknown is not kept by default; the others are, with their age
    assert.is_false(warm["alice@down.mta.test"].cached)
    assert.is_true(warm["alice@users.mta.test"].cached)
    assert.is_true(warm["alice@users.mta.test"].age > 0)
    assert.are.equal(550, warm["nobody@users.mta.test"].reply.code)
    for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(db .. suffix) end
  end)

  it("inspects a cached result as a live one (suggestion, role, disposable)", function()
    local db = os.tmpname()
    os.remove(db)
    local list = { "taro@gmail.con", "postmaster@users.mta.test" }
    run(list, { cache = db })
    local warm = run(list, { cache = db })
    local t, pm = warm["taro@gmail.con"], warm["postmaster@users.mta.test"]
    assert.are.same({ true, "undeliverable", "hostunknown", "taro@gmail.com" },
                    { t.cached, t.verdict, t.reason, t.suggestion })
    assert.are.same({ true, true, false }, { pm.cached, pm.role, pm.disposable })
    assert.is_nil(pm.suggestion)
    for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(db .. suffix) end
  end)

  it("says which cache file is unusable", function()
    local db = os.tmpname()
    local f = assert(io.open(db, "wb"))
    f:write(string.rep("not a database ", 200))
    f:close()
    local it, err = smtpcode.verify({ "alice@users.mta.test" }, opts({ cache = db }))
    assert.is_nil(it)
    assert.matches("cache", err)
    assert.is_truthy(err:find(db, 1, true))
    os.remove(db)
  end)
end)
