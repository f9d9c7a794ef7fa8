-- smtpcode.plan: the planner's Lua binding, driven by hand (no sockets, no clock): the test
-- plays the DNS and the SMTP server and checks the actions the planner hands out. The server
-- lines are written here as an MTA would send them; the verdicts follow the rules of issue 5.
local smtpcode = require("smtpcode")

local OPTS = { mail_from = "probe@probe.test", helo = "probe.test", catch_all = false,
               timeout = 5, deadline = 60, seed = 7 }

local function opts(extra)
  local o = {}
  for k, v in pairs(OPTS) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- all actions available at `now`, in order
local function drain(p, now)
  local out = {}
  while true do
    local a = p:next(now)
    if not a then return out end
    out[#out + 1] = a
  end
end

local function find(list, kind)
  for _, a in ipairs(list) do if a.type == kind then return a end end
end

local ROUTE = { domain = "example.test", implicit = false, null_mx = false, ttl = 60,
                mx = { { preference = 10, host = "mx.example.test", addresses = { "127.0.0.9" } } } }

-- Plays one SMTP session: answers each WRITE with the reply `replies[command]` gives.
local function serve(p, now, sid, replies, log)
  local pending = drain(p, now)
  local results = {}
  local guard = 0
  while #pending > 0 do
    guard = guard + 1
    assert(guard < 100, "the dialogue does not end")
    local a = table.remove(pending, 1)
    if a.type == "write" then
      log[#log + 1] = a.data
      local verb = a.data:match("^(%u+)")
      local reply = replies[verb] or "250 ok\r\n"
      assert.is_true(p:read(now, sid, reply))
    elseif a.type == "close" then
      assert.is_true(p:released(now, a.sid))
    elseif a.type == "result" then
      results[#results + 1] = a
    end
    for _, b in ipairs(drain(p, now)) do pending[#pending + 1] = b end
  end
  return results
end

describe("smtpcode.plan", function()
  it("hands out resolve, connect, the dialogue and one result per address", function()
    local p = assert(smtpcode.plan(opts()))
    assert.is_true(p:add(1, "alice@example.test", 1))
    assert.is_true(p:add(1, "nobody@example.test", 2))
    p:finish()
    p:tick(1)
    local acts = drain(p, 1)
    local res = assert(find(acts, "resolve"), "a resolve action")
    assert.are.equal("example.test", res.name)
    assert.is_true(p:resolved(2, res.token, ROUTE))
    p:tick(2)
    local conn = assert(find(drain(p, 2), "connect"), "a connect action")
    assert.are.equal("127.0.0.9", conn.ip)
    assert.are.equal(25, conn.port)
    assert.are.equal("mx.example.test", conn.name)
    assert.is_true(p:connected(3, conn.sid))
    assert.is_true(p:read(3, conn.sid, "220 mx.example.test ESMTP\r\n"))
    local log = {}
    local rcpt = 0
    local results = serve(p, 3, conn.sid, setmetatable({}, { __index = function(_, verb)
      if verb == "EHLO" then return "250-mx.example.test\r\n250 8BITMIME\r\n" end
      if verb == "RCPT" then
        rcpt = rcpt + 1
        return rcpt == 1 and "250 2.1.5 ok\r\n" or "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n"
      end
      return "250 2.0.0 ok\r\n"
    end }), log)
    assert.are.equal(2, #results)
    local by = {}
    for _, a in ipairs(results) do by[a.result.address] = a end
    assert.are.equal("deliverable", by["alice@example.test"].result.verdict)
    assert.are.equal(1, by["alice@example.test"].tag)
    assert.are.equal("undeliverable", by["nobody@example.test"].result.verdict)
    assert.are.equal(2, by["nobody@example.test"].tag)
    assert.are.equal(550, by["nobody@example.test"].result.reply.code)
    assert.are.equal("mx.example.test", by["alice@example.test"].result.mx)
    assert.truthy(log[1]:match("^EHLO probe.test\r\n$"))
    assert.truthy(table.concat(log):match("MAIL FROM:<probe@probe.test>"))
    assert.is_true(p:done())
    local st = p:stats()
    assert.are.equal(2, st.results)
    assert.are.equal(1, st.sessions_opened)
    assert.are.equal(0, st.pending)
  end)

  it("reports a failed lookup as a DNS failure, and a null MX as undeliverable", function()
    local p = assert(smtpcode.plan(opts()))
    p:add(1, "a@fail.test", 1)
    p:add(1, "b@null.test", 2)
    p:finish()
    p:tick(1)
    for _, a in ipairs(drain(p, 1)) do
      if a.type == "resolve" and a.name == "fail.test" then
        assert.is_true(p:resolved(2, a.token, nil))
      elseif a.type == "resolve" then
        assert.is_true(p:resolved(2, a.token, { domain = "null.test", null_mx = true, mx = {}, ttl = 60 }))
      end
    end
    p:tick(2)
    local got = {}
    for _, a in ipairs(drain(p, 2)) do
      if a.type == "result" then got[a.result.address] = a.result end
    end
    assert.are.equal("unknown", got["a@fail.test"].verdict)
    assert.are.equal("undeliverable", got["b@null.test"].verdict)
    assert.is_true(p:done())
  end)

  it("answers a refused connection with a result, after close and release", function()
    local p = assert(smtpcode.plan(opts()))
    p:add(1, "a@example.test", 1)
    p:finish()
    p:tick(1)
    local res = find(drain(p, 1), "resolve")
    p:resolved(1, res.token, ROUTE)
    p:tick(1)
    local conn = find(drain(p, 1), "connect")
    assert.is_true(p:eof(2, conn.sid, "connection refused"))
    local acts = drain(p, 2)
    local close = assert(find(acts, "close"))
    p:released(2, close.sid)
    p:tick(2)
    for _, a in ipairs(drain(p, 2)) do acts[#acts + 1] = a end
    local r = assert(find(acts, "result"), "a result").result
    assert.are.equal("unknown", r.verdict)
    assert.are.equal("connection refused", r.detail)
  end)

  it("hands out a wake for the reply timeout, and the timeout ends the address", function()
    local p = assert(smtpcode.plan(opts({ timeout = 2 })))
    p:add(0, "a@example.test", 1)
    p:finish()
    p:tick(0)
    p:resolved(0, find(drain(p, 0), "resolve").token, ROUTE)
    p:tick(0)
    local acts = drain(p, 0)
    local conn = find(acts, "connect")
    p:connected(0, conn.sid)
    local wake
    for _, a in ipairs(drain(p, 0)) do if a.type == "wake" then wake = a end end
    assert.truthy(wake, "a wake for the greeting's timeout")
    assert.is_true(wake.time > 0 and wake.time <= 2e6 + 1)
    local t = 2e6 + 1
    p:tick(t)
    local got
    for _ = 1, 10 do
      for _, a in ipairs(drain(p, t)) do
        if a.type == "close" then p:released(t, a.sid) end
        if a.type == "result" then got = a.result end
      end
      if got then break end
      p:tick(t)
    end
    assert.truthy(got, "a result after the timeout")
    assert.are.equal("unknown", got.verdict)
  end)

  it("ignores events for sessions and tokens it does not know", function()
    local p = assert(smtpcode.plan(opts()))
    assert.is_false(p:connected(1, 3))
    assert.is_false(p:read(1, 0, "220 hi\r\n"))
    assert.is_false(p:resolved(1, 12345, ROUTE))
    assert.is_false(p:released(1, 0))
    assert.is_nil(find(drain(p, 1), "result"))
  end)

  it("refuses bad options with a message, and misuse with an error", function()
    local p, err = smtpcode.plan({ mail_from = "a@b.test", helo = "b.test", bogus = 1 })
    assert.is_nil(p)
    assert.truthy(err:match("unknown option 'bogus'"))
    p, err = smtpcode.plan({ mail_from = "a@b.test", helo = "b.test", port = 0 })
    assert.is_nil(p)
    assert.truthy(err:match("port"))
    p, err = smtpcode.plan({ mail_from = "a@b.test", helo = "b.test", seed = -1 })
    assert.is_nil(p)
    assert.truthy(err:match("seed"))
    p = assert(smtpcode.plan(opts()))
    p:finish()
    assert.has_error(function() p:add(1, "x@y.test", 1) end)
    assert.has_error(function() p:connected(-1, 0) end)
    assert.has_error(function() p:resolved(1, 1, { mx = { "not a table" } }) end)
    p:close()
    assert.has_error(function() p:next(1) end)
  end)

  it("reports bad addresses at once and cancels the rest", function()
    local p = assert(smtpcode.plan(opts()))
    p:add(1, "not an address", 1)
    p:add(1, "a@example.test", 2)
    p:cancel(2)
    local got = {}
    for _, a in ipairs(drain(p, 2)) do
      if a.type == "result" then got[a.tag] = a.result end
    end
    assert.are.equal("undeliverable", got[1].verdict)
    assert.are.equal("unknown", got[2].verdict)
  end)
end)
