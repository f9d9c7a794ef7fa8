-- smtpcode.resolve against a real dnsmasq on 127.0.0.1:5353 (tests/fixtures/dns, started here
-- unless already up). Expectations are the fixture's zone data, written by hand. Every query
-- goes to 127.0.0.1: each call passes dns_servers.
local smtpcode = require("smtpcode")

local function script_dir()
  local src = debug.getinfo(1, "S").source:sub(2)
  return (src:match("^(.*)/[^/]*$") or ".")
end
local CTL = script_dir() .. "/../../tests/fixtures/dns/ctl"

local function sh(cmd)
  local ok, _, code = os.execute(cmd .. " >/dev/null 2>&1")
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1 / LuaJIT
  return ok == true and (code == nil or code == 0)
end

-- SMTPC_DNS_PORT (read by ctl too) moves the fixture off 5353, e.g. for a second instance
local SERVERS = { "127.0.0.1:" .. (os.getenv("SMTPC_DNS_PORT") or "5353") }
local function resolve(domain, extra)
  local o = { dns_servers = SERVERS, timeout = 2 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return smtpcode.resolve(domain, o)
end

local function hosts(r)
  local t = {}
  for i, mx in ipairs(r.mx) do t[i] = mx.host end
  return t
end

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

describe("smtpcode.resolve", function()
  local started = false
  setup(function()
    if not sh(CTL .. " status") then
      assert(sh(CTL .. " start"), "dns fixture failed to start")
      started = true
    end
  end)
  teardown(function()
    if started then sh(CTL .. " stop") end
  end)

  it("sorts MX by preference", function()
    local r = assert(resolve("two.test"))
    assert.is_nil(r.error)
    assert.equal("two.test", r.domain)
    assert.is_false(r.implicit)
    assert.is_false(r.null_mx)
    assert.same({
      { preference = 10, host = "mx1.two.test", addresses = { "127.0.0.11" } },
      { preference = 20, host = "mx2.two.test", addresses = { "127.0.0.12" } },
    }, r.mx)
    assert.is_true(r.ttl >= 290 and r.ttl <= 300)
  end)

  it("resolves a U-label domain by its A-label", function()
    -- bücher.test in UTF-8; the fixture serves xn--bcher-kva.test (tests/fixtures/dns/conf.d)
    local r = assert(resolve("b\195\188cher.test"))
    assert.is_nil(r.error)
    assert.equal("xn--bcher-kva.test", r.domain)
    assert.same({ { preference = 10, host = "mx.xn--bcher-kva.test", addresses = { "127.0.0.54" } } },
      r.mx)
    -- IDNA2008 maps upper case; a name that is not a domain stays an error
    assert.equal("xn--bcher-kva.test", assert(resolve("B\195\156CHER.test.")).domain)
    -- a U-label domain that does not exist is a DNS answer, not bad input
    local nx = assert(resolve("caf\195\169.test"))
    assert.equal("nxdomain", nx.error)
  end)

  it("ignores case and the root dot", function()
    local r = assert(resolve("TWO.test."))
    assert.equal("two.test", r.domain)
    assert.same({ "mx1.two.test", "mx2.two.test" }, hosts(r))
  end)

  it("shuffles equal preferences", function()
    local seen = {}
    for _ = 1, 60 do
      local r = assert(resolve("equal.test"))
      assert.equal("c.equal.test", r.mx[3].host)
      assert.equal(10, r.mx[1].preference)
      assert.equal(10, r.mx[2].preference)
      seen[r.mx[1].host .. " " .. r.mx[2].host] = true
    end
    assert.same({ ["a.equal.test b.equal.test"] = true, ["b.equal.test a.equal.test"] = true }, seen)
  end)

  it("gives every address of a multi-homed host, IPv4 first", function()
    local mx = assert(resolve("multi.test")).mx
    assert.equal(1, #mx)
    local a = mx[1].addresses
    assert.equal(5, #a)
    assert.same({ "127.0.0.21", "127.0.0.22", "127.0.0.23" }, sorted({ a[1], a[2], a[3] }))
    assert.same({ "2001:db8::21", "2001:db8::22" }, sorted({ a[4], a[5] }))
    local v6 = assert(resolve("multi.test", { family = "prefer_ipv6" })).mx[1].addresses
    assert.truthy(v6[1]:find(":", 1, true))
    assert.falsy(v6[3]:find(":", 1, true))
    assert.equal(3, #assert(resolve("multi.test", { family = "ipv4_only" })).mx[1].addresses)
  end)

  it("uses the implicit MX when there is no MX", function()
    local r = assert(resolve("implicit.test"))
    assert.is_true(r.implicit)
    assert.same({ { preference = 0, host = "implicit.test", addresses = { "127.0.0.31", "2001:db8::31" } } }, r.mx)
  end)

  it("reports a null MX", function()
    local r = assert(resolve("nullmx.test"))
    assert.is_true(r.null_mx)
    assert.is_false(r.implicit)
    assert.is_nil(r.error)
    assert.same({}, r.mx)
  end)

  it("skips MX hosts that do not resolve", function()
    assert.equal("no-address", assert(resolve("dangling.test")).error)
    local r = assert(resolve("partial.test"))
    assert.is_nil(r.error)
    assert.same({ { preference = 20, host = "mx.partial.test", addresses = { "127.0.0.33" } } }, r.mx)
  end)

  it("follows CNAMEs", function()
    assert.same({ { preference = 10, host = "alias.cname.test", addresses = { "127.0.0.41" } } },
      assert(resolve("cname.test")).mx)
    assert.same({ "mx1.two.test", "mx2.two.test" }, hosts(assert(resolve("aliased.test"))))
  end)

  it("tells failures apart", function()
    local cases = {
      ["nope.test"] = "nxdomain", ["x.servfail.test"] = "servfail", ["refused.test"] = "refused",
      ["mxfail.test"] = "servfail", ["bare.test"] = "no-address",
    }
    for domain, want in pairs(cases) do
      local r = assert(resolve(domain))
      assert.equal(want, r.error, domain)
      assert.same({}, r.mx)
    end
    assert.equal("timeout", assert(resolve("blackhole.test", { timeout = 0.5 })).error)
  end)

  it("drops MX targets that are not host names", function()
    assert.same({ "good.hostile.test" }, hosts(assert(resolve("hostile.test"))))
    assert.equal(16, #assert(resolve("many.hostile.test")).mx)
  end)

  it("retries a truncated answer over TCP", function()
    local r = assert(resolve("big.test"))
    assert.equal(16, #r.mx)
    assert.same({ preference = 1, host = "mx01.big.test", addresses = { "127.0.1.1" } }, r.mx[1])
  end)

  it("takes the negative TTL from the SOA", function()
    assert.equal(2, assert(resolve("x.negttl.test")).ttl)
  end)

  it("accepts dns_servers as one string", function()
    local r = assert(smtpcode.resolve("two.test", { dns_servers = SERVERS[1] }))
    assert.equal(2, #r.mx)
  end)

  it("returns nil, message for bad input", function()
    local bad = { "", ".", "a..b", "bad name.test", "a\r\nb.test", "a\0b.test", "-x.test",
      string.rep("a", 64) .. ".test", "\226\152\131.test", "[127.0.0.1]", "\255.test" }
    for _, d in ipairs(bad) do
      local r, err = resolve(d)
      assert.is_nil(r, d)
      assert.is_string(err)
    end
    for _, o in ipairs({ { dns_servers = {} }, { dns_servers = { "127.0.0.1:5353,127.0.0.2:53" } },
      { dns_servers = { 5 } }, { timeout = 0 }, { timeout = "x" }, { family = "ipv5" },
      { tries = 0 } }) do
      local r, err = smtpcode.resolve("two.test", o)
      assert.is_nil(r)
      assert.is_string(err)
    end
    local r, err = smtpcode.resolve("two.test", "not a table")
    assert.is_nil(r)
    assert.is_string(err)
  end)
end)
