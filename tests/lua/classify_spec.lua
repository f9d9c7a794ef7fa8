-- smtpcode.classify through the Lua binding: the held-out provider replies of
-- tests/vectors/classify.tsv (shared with the C and Python suites) and the binding's contract.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

local function opt(s) if s == "" then return nil end return s end

describe("smtpcode.classify", function()
  local rows = vectors.load("classify.tsv")

  it("has the held-out set", function()
    assert.is_true(#rows >= 50)
  end)

  for _, row in ipairs(rows) do
    it("held-out " .. row.id, function()
      local code = tonumber(row.code)
      if code == 0 then code = nil end
      local r, err = smtpcode.classify(code, opt(row.status), row.text,
                                       {command = opt(row.command), host = opt(row.host)})
      assert.is_table(r, err)
      assert.are.equal(row.reason, r.reason)
      assert.are.equal(row.hard_bounce == "1", r.hard_bounce)
      assert.are.equal(row.temporary == "1", r.temporary)
      assert.are.equal(row.greylisted == "1", r.greylisted)
      assert.are.equal(tonumber(row.retry_after), r.retry_after or 0)
      if row.provider ~= "" then assert.are.equal(row.provider, r.provider) end
      if r.temporary then assert.is_true(r.retry) end
      if r.hard_bounce then assert.is_false(r.retry) end
    end)
  end

  it("takes the context as an optional table", function()
    local a = assert(smtpcode.classify(421, "4.7.27", "rate limited", {host = "gmail-smtp-in.l.google.com"}))
    local b = assert(smtpcode.classify(421, "4.7.27", "rate limited"))
    assert.are.equal("authfailure", a.reason)
    assert.are.equal("google", a.provider)
    assert.are_not.equal("authfailure", b.reason)
    assert.is_nil(b.provider)
    assert.are.equal("filtered", assert(smtpcode.classify(550, nil, "User unknown", {command = "DATA"})).reason)
    assert.are.equal("userunknown", assert(smtpcode.classify(550, nil, "User unknown", {command = "RCPT"})).reason)
  end)

  it("accepts absent code and status", function()
    local r = assert(smtpcode.classify(nil, "5.2.2", ""))
    assert.is_nil(r.code)
    assert.are.equal("mailboxfull", r.reason)
    assert.are.equal("permanent", r.kind)
    r = assert(smtpcode.classify(nil, nil, "Greylisted, please try again in 3 minutes"))
    assert.are.equal(180, r.retry_after)
  end)

  it("returns nil, err for a bad code and never fails on binary text", function()
    local r, err = smtpcode.classify(-1, nil, "x")
    assert.is_nil(r)
    assert.is_string(err)
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local bin = table.concat(bytes):rep(20)
    r = assert(smtpcode.classify(550, nil, bin, {command = "RCPT", host = bin}))
    assert.is_string(r.reason)
  end)
end)
