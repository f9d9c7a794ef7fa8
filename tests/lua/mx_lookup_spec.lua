-- smtpcode.mx_lookup: the DNS route machine (csrc/dns_route.c) without I/O. The test plays the
-- resolver: it reads the query messages the machine hands out and answers with messages built
-- here by hand (RFC 1035 wire format), then checks the route. dns_spec.lua checks the same
-- rules through c-ares against dnsmasq.
local smtpcode = require("smtpcode")

local function u16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
local function u32(n) return u16(math.floor(n / 65536)) .. u16(n % 65536) end

local function name(s)
  local out = {}
  for label in s:gmatch("[^.]+") do out[#out + 1] = string.char(#label) .. label end
  return table.concat(out) .. "\0"
end

-- A response to query q (its id and question copied) with rcode and answer records
-- {owner, type, ttl, rdata}, and an SOA in the authority section when soa_min is given.
local function response(q, rcode, answers, soa_min)
  local qend = 13
  while q:byte(qend) ~= 0 do qend = qend + q:byte(qend) + 1 end
  local question = q:sub(13, qend + 4)
  local rr = {}
  for _, a in ipairs(answers or {}) do
    rr[#rr + 1] = name(a[1]) .. u16(a[2]) .. u16(1) .. u32(a[3]) .. u16(#a[4]) .. a[4]
  end
  local ns = ""
  if soa_min then
    local rdata = name("ns.test") .. name("host.test") .. u32(1) .. u32(2) .. u32(3) .. u32(4) .. u32(soa_min)
    ns = name("test") .. u16(6) .. u16(1) .. u32(300) .. u16(#rdata) .. rdata
  end
  return q:sub(1, 2) .. string.char(0x81, 0x80 + rcode) .. u16(1) .. u16(#rr)
    .. u16(soa_min and 1 or 0) .. u16(0) .. question .. table.concat(rr) .. ns
end

local function mx(pref, host) return u16(pref) .. name(host) end
local function a4(s)
  local b = {}
  for n in s:gmatch("%d+") do b[#b + 1] = string.char(tonumber(n)) end
  return table.concat(b)
end

-- the questions of all queries available now: {id=, msg=, name=, type=}
local function queries(lk)
  local out = {}
  while true do
    local id, msg, qname, qtype = lk:next(#out + 100)
    if not id then return out end
    out[#out + 1] = { id = id, msg = msg, name = qname, type = qtype }
  end
end

describe("smtpcode.mx_lookup", function()
  it("asks for the MX first, in a well-formed query with the given transaction id", function()
    local lk = assert(smtpcode.mx_lookup("Example.TEST."))
    local id, msg, qname, qtype = lk:next(0x1234)
    assert.are.equal(0, id)
    assert.are.equal("example.test", qname)
    assert.are.equal(15, qtype)
    assert.are.equal("\18\52\1\0\0\1\0\0\0\0\0\0" .. name("example.test") .. "\0\15\0\1", msg)
    assert.is_nil(lk:next(1)) -- nothing more until the MX answer
    assert.is_false(lk:done())
  end)

  it("sorts MX hosts by preference, asks A and AAAA of each, keeps the smallest TTL", function()
    local lk = assert(smtpcode.mx_lookup("example.test", { family = "prefer_ipv4" }))
    local q = queries(lk)[1]
    assert.is_true(lk:answer(q.id, response(q.msg, 0, {
      { "example.test", 15, 300, mx(20, "mx2.example.test") },
      { "example.test", 15, 300, mx(10, "mx1.example.test") },
    })))
    local qs = queries(lk)
    assert.are.equal(4, #qs) -- A and AAAA of both hosts
    for _, x in ipairs(qs) do
      if x.type == 1 then
        local ip = x.name == "mx1.example.test" and "192.0.2.1" or "192.0.2.2"
        assert.is_true(lk:answer(x.id, response(x.msg, 0, { { x.name, 1, 120, a4(ip) } })))
      else
        assert.is_true(lk:answer(x.id, response(x.msg, 0, {}, 60))) -- no AAAA
      end
    end
    assert.is_true(lk:done())
    local r = lk:route()
    assert.are.equal("mx1.example.test", r.mx[1].host)
    assert.are.equal(10, r.mx[1].preference)
    assert.are.same({ "192.0.2.1" }, r.mx[1].addresses)
    assert.are.equal("mx2.example.test", r.mx[2].host)
    assert.are.equal(120, r.ttl) -- the A records' TTL; a missing AAAA does not shorten it
    assert.is_nil(r.error)
    assert.is_false(lk:answer(qs[1].id, response(qs[1].msg, 0, {}))) -- answered already
  end)

  it("falls back to the domain's own address when there is no MX (implicit MX)", function()
    local lk = assert(smtpcode.mx_lookup("implicit.test", { family = "ipv4_only" }))
    local q = queries(lk)[1]
    lk:answer(q.id, response(q.msg, 0, {}, 30))
    local qs = queries(lk)
    assert.are.equal(1, #qs)
    assert.are.equal("implicit.test", qs[1].name)
    lk:answer(qs[1].id, response(qs[1].msg, 0, { { "implicit.test", 1, 600, a4("192.0.2.9") } }))
    local r = lk:route()
    assert.is_true(r.implicit)
    assert.are.equal("implicit.test", r.mx[1].host)
    assert.are.equal(30, r.ttl) -- as long as the absence of MX may be believed
  end)

  it("knows the null MX, NXDOMAIN, SERVFAIL, REFUSED and timeouts", function()
    local function first(domain, reply)
      local lk = assert(smtpcode.mx_lookup(domain))
      local q = queries(lk)[1]
      reply(lk, q)
      assert.is_true(lk:done())
      return lk:route()
    end
    local r = first("null.test", function(lk, q)
      lk:answer(q.id, response(q.msg, 0, { { "null.test", 15, 300, u16(0) .. "\0" } }))
    end)
    assert.is_true(r.null_mx)
    assert.are.equal(0, #r.mx)
    r = first("gone.test", function(lk, q) lk:answer(q.id, response(q.msg, 3, {}, 45)) end)
    assert.are.equal("nxdomain", r.error)
    assert.are.equal(45, r.ttl)
    r = first("broken.test", function(lk, q) lk:answer(q.id, response(q.msg, 2, {})) end)
    assert.are.equal("servfail", r.error)
    assert.are.equal(5, r.ttl)
    r = first("refusing.test", function(lk, q) lk:answer(q.id, response(q.msg, 5, {})) end)
    assert.are.equal("refused", r.error)
    r = first("slow.test", function(lk, q) lk:fail(q.id, "timeout") end)
    assert.are.equal("timeout", r.error)
    r = first("bad.test", function(lk, q) lk:answer(q.id, "\0\0\129") end) -- too short
    assert.are.equal("servfail", r.error)
  end)

  it("skips a host without addresses, and reports the worst failure when none has one", function()
    local lk = assert(smtpcode.mx_lookup("dangling.test", { family = "ipv4_only" }))
    local q = queries(lk)[1]
    lk:answer(q.id, response(q.msg, 0, {
      { "dangling.test", 15, 300, mx(10, "gone.dangling.test") },
      { "dangling.test", 15, 300, mx(20, "ok.dangling.test") },
    }))
    for _, x in ipairs(queries(lk)) do
      if x.name == "gone.dangling.test" then lk:answer(x.id, response(x.msg, 3, {}, 60))
      else lk:answer(x.id, response(x.msg, 0, { { x.name, 1, 300, a4("192.0.2.7") } })) end
    end
    local r = lk:route()
    assert.are.equal(1, #r.mx)
    assert.are.equal("ok.dangling.test", r.mx[1].host)

    lk = assert(smtpcode.mx_lookup("dead.test", { family = "ipv4_only" }))
    q = queries(lk)[1]
    lk:answer(q.id, response(q.msg, 0, { { "dead.test", 15, 300, mx(10, "a.dead.test") },
                                         { "dead.test", 15, 300, mx(20, "b.dead.test") } }))
    local qs = queries(lk)
    lk:answer(qs[1].id, response(qs[1].msg, 3, {}, 60))
    lk:expire() -- the deadline: the other lookup counts as timed out
    r = lk:route()
    assert.are.equal("timeout", r.error)
    assert.are.equal(0, #r.mx)
  end)

  it("refuses a domain that is not a host name", function()
    local lk, err = smtpcode.mx_lookup("not a domain")
    assert.is_nil(lk)
    assert.truthy(err:match("invalid domain"))
    assert.is_nil((smtpcode.mx_lookup("x.test", { family = "ipv5" })))
  end)
end)
