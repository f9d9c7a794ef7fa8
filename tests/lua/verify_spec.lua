-- smtpcode.verify against real servers on loopback: Postfix (tests/fixtures/mta) and dnsmasq
-- (tests/fixtures/dns, with conf.d/mta.conf). Expectations come from those configurations and
-- the verdict rules of issue 5, written by hand.
local smtpcode = require("smtpcode")

package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local fixtures = require("fixtures")
local ROOT, FIX, sh, ensure = fixtures.ROOT, fixtures.FIX, fixtures.sh, fixtures.ensure
local opts, run = fixtures.opts, fixtures.run

describe("smtpcode.verify", function()
  setup(function()
    ensure("dns")
    ensure("mta")
  end)

  teardown(function()
    fixtures.stop_started()
  end)

  it("gives the exact verdict and reason of each address", function()
    local cases = {
      { "alice@users.mta.test", "deliverable", "delivered" },
      { "nobody@users.mta.test", "undeliverable", "userunknown" },
      { "full@users.mta.test", "risky", "mailboxfull" },
      { "disabled@users.mta.test", "undeliverable", "suspend" },
      { "moved@users.mta.test", "undeliverable", "hasmoved" },
      { "someone@catchall.mta.test", "risky", "delivered" },
      { "alice@backup.mta.test", "deliverable", "delivered" },
      { "alice@failover.mta.test", "deliverable", "delivered" },
      { "alice@implicit.mta.test", "deliverable", "delivered" },
      { "alice@down.mta.test", "unknown", "networkerror" },
      { "alice@nullmx.mta.test", "undeliverable", "notaccept" },
      { "alice@nxdomain.mta.test", "undeliverable", "hostunknown" },
      { "not an address", "undeliverable", "syntaxerror" },
      { "alice@users.mta.test\r\nDATA", "undeliverable", "syntaxerror" },
    }
    local list = {}
    for i, c in ipairs(cases) do list[i] = c[1] end
    local res = run(list)
    for _, c in ipairs(cases) do
      local r = res[c[1]]
      assert.are.same({ c[1], c[2], c[3] }, { r.address, r.verdict, r.reason })
    end
    local ok = res["alice@users.mta.test"]
    assert.are.equal("mx1.mta.test", ok.mx)
    assert.is_true(ok.tls)
    assert.is_false(ok.catch_all)
    assert.are.equal(250, ok.reply.code)
    assert.are.equal("2.1.5", ok.reply.status)
    assert.is_true(ok.duration > 0)
    assert.is_true(res["someone@catchall.mta.test"].catch_all)
    assert.are.equal("5.1.1", res["nobody@users.mta.test"].reply.status)
    assert.is_nil(res["not an address"].reply)
    assert.is_nil(res["not an address"].mx)
  end)

  it("reads addresses lazily from an iterator function", function()
    local pulled, i = 0, 0
    local function gen()
      i = i + 1
      if i > 20000 then return nil end
      pulled = pulled + 1
      return string.format("bulk%04d@users.mta.test", (i - 1) % 400 + 1)
    end
    local it = assert(smtpcode.verify(gen, opts({ starttls = "off", concurrency = 4,
                                                  rcpt_per_session = 20 })))
    local first = it()
    assert.are.equal("deliverable", first.verdict)
    assert.is_true(pulled < 20000)
    for _ = 1, 20 do assert.is_not_nil(it()) end
    it:close()            -- cancels the rest and closes the loop
    assert.is_nil(it())   -- a closed iterator is finished
    assert.is_true(pulled < 20000)
  end)

  it("closes cleanly when the loop is left early and collected", function()
    for r in smtpcode.verify({ "alice@users.mta.test", "bob@users.mta.test",
                               "carol@users.mta.test" }, opts()) do
      assert.are.equal("deliverable", r.verdict)
      break
    end
    collectgarbage()
    collectgarbage()
    local res = run({ "alice@users.mta.test" })
    assert.are.equal("deliverable", res["alice@users.mta.test"].verdict)
  end)

  it("keeps a transcript when asked, never with DATA", function()
    local res = run({ "alice@users.mta.test" }, { transcript = true, starttls = "off" })
    local t = res["alice@users.mta.test"].transcript
    assert.is_truthy(t:find("RCPT TO:<alice@users.mta.test>", 1, true))
    assert.is_falsy(t:find("DATA", 1, true))
  end)

  it("returns nil, err for bad options", function()
    local bad = {
      { starttls = "sometimes" }, { concurrency = 0 }, { port = 70000 }, { timeout = -1 },
      { helo = "a\r\nb" }, { mail_from = "a@b\r\nRCPT TO:<x@y>" }, { catch_all = "yes" },
      { no_such_option = 1 }, { dns_servers = 5 },
    }
    for _, b in ipairs(bad) do
      local it, err = smtpcode.verify({ "alice@users.mta.test" }, opts(b))
      assert.is_nil(it)
      assert.are.equal("string", type(err))
    end
    local it, err = smtpcode.verify({ "alice@users.mta.test" }, { helo = "probe.test" })
    assert.is_nil(it)
    assert.is_truthy(err:find("mail_from", 1, true))
    it, err = smtpcode.verify({ "alice@users.mta.test" })
    assert.is_nil(it)
    assert.are.equal("string", type(err))
  end)

  it("raises for a non-string address during iteration", function()
    local it = assert(smtpcode.verify({ 42 }, opts()))
    assert.has_error(function() it() end)
    it:close()
  end)

  it("batches 200 addresses into few sessions and never sends DATA (Postfix's log)", function()
    local log = ROOT .. "/build/fixtures/mta/log/maillog"
    local f = assert(io.open(log, "rb"))
    local mark = f:seek("end")
    f:close()
    local list = {}
    for i = 1, 200 do list[i] = string.format("bulk%04d@users.mta.test", i) end
    local res = run(list, { rcpt_per_session = 50, starttls = "off" })
    for _, a in ipairs(list) do
      assert.are.same({ "deliverable", "delivered" }, { res[a].verdict, res[a].reason })
    end
    -- postlogd writes asynchronously: wait until every connect has its disconnect line
    local conns, discs
    for _ = 1, 100 do
      f = assert(io.open(log, "rb"))
      f:seek("set", mark)
      local text = f:read("*a")
      f:close()
      -- sessions that began after the mark only: an smtpd process serves one session at a
      -- time, so its pid pairs each disconnect with its connect
      conns, discs = {}, {}
      local open, nopen = {}, 0
      for line in text:gmatch("[^\n]+") do
        local pid = line:match(" mta%-mx1/smtpd%[(%d+)%]: connect from ")
        if pid then
          conns[#conns + 1] = line
          if not open[pid] then nopen = nopen + 1 end
          open[pid] = true
        end
        local dpid, stats = line:match(" mta%-mx1/smtpd%[(%d+)%]: disconnect from %S+ (.*)$")
        if dpid and open[dpid] then
          open[dpid] = nil
          nopen = nopen - 1
          discs[#discs + 1] = stats
        end
      end
      if #conns > 0 and nopen == 0 then break end
      os.execute("sleep 0.1")
    end
    assert.is_true(#conns >= 1 and #conns <= math.ceil(200 / 50) + 1, #conns .. " connections")
    assert.are.equal(#conns, #discs)
    for _, st in ipairs(discs) do
      assert.is_nil(st:find("data=", 1, true), st)
      assert.is_nil(st:find("bdat=", 1, true), st)
    end
  end)

  it("retries a greylisted address after greylist_delay (postgrey)", function()
    -- a fresh sender makes fresh postgrey triplets, so the first RCPT is greylisted
    local sender = string.format("probe-lua-%d-%d@probe.test", os.time(), math.random(1, 1e6))
    local res = run({ "alice@greylist.mta.test", "nobody@greylist.mta.test" },
                    { mail_from = sender, greylist_delay = 4, catch_all = false, deadline = 40 })
    assert.are.same({ "deliverable", "delivered" },
                    { res["alice@greylist.mta.test"].verdict, res["alice@greylist.mta.test"].reason })
    assert.are.same({ "undeliverable", "userunknown" },
                    { res["nobody@greylist.mta.test"].verdict, res["nobody@greylist.mta.test"].reason })
  end)

  it("honours starttls = required / off", function()
    local res = run({ "alice@notls.mta.test", "alice@users.mta.test" }, { starttls = "required" })
    assert.are.same({ "unknown", "failedstarttls" },
                    { res["alice@notls.mta.test"].verdict, res["alice@notls.mta.test"].reason })
    assert.is_true(res["alice@users.mta.test"].tls)
    assert.are.equal("deliverable", res["alice@users.mta.test"].verdict)
    res = run({ "alice@users.mta.test" }, { starttls = "off" })
    assert.is_false(res["alice@users.mta.test"].tls)
    assert.are.equal("deliverable", res["alice@users.mta.test"].verdict)
  end)

  it("reports unknown when the only MX answers 421 at connect", function()
    local r = run({ "alice@deferonly.mta.test" })["alice@deferonly.mta.test"]
    assert.are.equal("unknown", r.verdict)
    assert.are.equal(421, r.reply.code)
  end)

  it("never puts a hostile address on the wire (fault server's record)", function()
    assert(sh(FIX .. "fault/ctl start 8 '{}'"), "fault server 8 did not start")
    local ok, err = pcall(function()
      local hostile = {
        "evil\r\nRCPT TO:<root@f8.fault.mta.test>@f8.fault.mta.test",
        "evil@f8.fault.mta.test\r\nDATA",
        "evil@f8.fault.mta.test\nQUIT",
        "evil@f8.fault.mta.test\0x",
        "<evil@f8.fault.mta.test>",
      }
      local list = { "ok1@f8.fault.mta.test", "ok2@f8.fault.mta.test" }
      for _, h in ipairs(hostile) do list[#list + 1] = h end
      local res = run(list, { starttls = "off" })
      for _, h in ipairs(hostile) do
        assert.are.same({ "undeliverable", "syntaxerror" }, { res[h].verdict, res[h].reason })
      end
      -- the fault server accepts every local part: a catch-all domain
      assert.are.same({ "risky", true }, { res["ok1@f8.fault.mta.test"].verdict,
                                           res["ok1@f8.fault.mta.test"].catch_all })
      local dir = ROOT .. "/build/fixtures/fault/8/record"
      local p = assert(io.popen("cat " .. dir .. "/conn-*.bin"))
      local wire = p:read("*a")
      p:close()
      assert.is_true(#wire > 0)
      assert.is_nil(wire:find("evil", 1, true))
      assert.is_nil(wire:find("DATA", 1, true))
      for line in (wire .. ""):gmatch("([^\n]*)\n") do
        assert.are.equal("\r", line:sub(-1))          -- every line ends in CRLF
        assert.is_nil(line:sub(1, -2):find("[%c]"))    -- and holds no other control
      end
    end)
    sh(FIX .. "fault/ctl stop 8")
    assert(ok, err)
  end)

  it("finds the catch-all beside a domain of many unknown users on the same MX", function()
    -- the catch-all probe must get its answer although 60 rejections spend session budgets
    local list = {}
    for i = 0, 59 do list[#list + 1] = string.format("ghost%02d@errors.mta.test", i) end
    for i = 0, 39 do list[#list + 1] = string.format("any%02d@catchall.mta.test", i) end
    local res = run(list, {starttls = "off", deadline = 120})
    for i = 0, 59 do
      local r = res[string.format("ghost%02d@errors.mta.test", i)]
      assert.are.same({"undeliverable", "userunknown"}, {r.verdict, r.reason})
    end
    for i = 0, 39 do
      local r = res[string.format("any%02d@catchall.mta.test", i)]
      assert.are.same({"risky", "delivered", true}, {r.verdict, r.reason, r.catch_all})
    end
  end)

  it("yields nothing for an empty list", function()
    local n = 0
    for _ in smtpcode.verify({}, opts()) do n = n + 1 end
    assert.are.equal(0, n)
  end)
end)
