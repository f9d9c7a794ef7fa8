-- smtpcode.inspect and the inspection fields of parse_address through the Lua binding, driven by
-- tests/vectors/inspect.tsv, typos.tsv and valid_domains.tsv (shared with the C and Python
-- suites). Runs under Lua 5.4 and LuaJIT.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

local MX = { unknown = nil, none = false, ok = true }

describe("smtpcode.inspect", function()
  local rows = vectors.load("inspect.tsv")

  for i, row in ipairs(rows) do
    it(("vector %d: %s (%s)"):format(i, row.address, row.route), function()
      local x, msg, kind = smtpcode.inspect(row.address, MX[row.route])
      if row.valid == "no" then
        assert.is_nil(x)
        assert.is_string(msg)
        assert.is_string(kind)
        return
      end
      assert.is_table(x, msg)
      assert.are.equal(row.disposable == "1", x.disposable)
      assert.are.equal(row.role == "1", x.role)
      assert.are.equal(row.free == "1", x.free_provider)
      if row.suggestion == "-" then assert.is_nil(x.suggestion)
      else assert.are.equal(row.suggestion, x.suggestion) end
      local a = assert(smtpcode.parse_address(row.address))
      assert.are.equal(x.disposable, a.disposable)
      assert.are.equal(x.role, a.role)
      assert.are.equal(x.free_provider, a.free_provider)
      assert.are.equal(smtpcode.inspect(row.address).suggestion, a.suggestion)
    end)
  end

  it("corrects at least 90% of the typo list", function()
    local typos, right = vectors.load("typos.tsv"), 0
    assert.is_true(#typos >= 300)
    for _, row in ipairs(typos) do
      local x = assert(smtpcode.inspect("someone@" .. row.typed, false))
      local want = row.meant ~= "-" and ("someone@" .. row.meant) or nil
      if x.suggestion == want then right = right + 1 end
    end
    assert.is_true(right * 10 >= #typos * 9, ("%d of %d"):format(right, #typos))
  end)

  it("suggests nothing for the valid domains", function()
    local valid, wrong = vectors.load("valid_domains.tsv"), {}
    assert.is_true(#valid >= 300)
    for _, row in ipairs(valid) do
      local x = assert(smtpcode.inspect("someone@" .. row.domain))
      if x.suggestion then wrong[#wrong + 1] = row.domain end
    end
    assert.are.same({}, wrong)
  end)

  it("has the tables the issue asks for and rejects non-strings", function()
    local t = smtpcode.inspect_tables()
    assert.is_true(t.disposable >= 100000)
    assert.is_true(t.free_provider > 1000 and t.role > 500)
    assert.has_error(function() smtpcode.inspect({}) end)
  end)
end)
