-- smtpcode.parse_address through the Lua binding, driven by tests/vectors/addresses.tsv (the same
-- table the C and Python suites read). Runs under Lua 5.4 and LuaJIT.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

local function has_flag(flags, flag)
  for f in flags:gmatch("[^,]+") do
    if f == flag then return true end
  end
  return false
end

local function printable_name(s)
  return (s:gsub("[%c\128-\255]", function(c) return string.format("\\x%02x", c:byte()) end))
end

describe("smtpcode.parse_address", function()
  local rows = vectors.load("addresses.tsv")

  it("has the shared table of at least 150 cases", function()
    assert.is_true(#rows >= 150)
  end)

  for i, row in ipairs(rows) do
    it(("vector %d: %s -> %s"):format(i, printable_name(row.input), row.kind), function()
      local a, msg, kind, pos = smtpcode.parse_address(row.input)
      if row.kind == "ok" then
        assert.is_table(a, msg)
        assert.are.equal(row.address, a.address)
        assert.are.equal(row.local_part, a.local_part)
        assert.are.equal(row.domain, a.domain)
        assert.are.equal(row.ascii_domain, a.ascii_domain)
        assert.are.equal(a.local_part .. "@" .. a.ascii_domain, a.ascii_address)
        assert.are.equal(has_flag(row.flags, "literal"), a.literal)
        assert.are.equal(has_flag(row.flags, "smtputf8"), a.smtputf8)
        assert.are.equal(has_flag(row.flags, "utf8_local"), a.utf8_local)
        assert.is_nil(a.address:find("%c"))
        -- the normalised form is a fixed point
        local again = assert(smtpcode.parse_address(a.address))
        assert.are.equal(a.address, again.address)
      else
        assert.is_nil(a)
        assert.are.equal(row.kind, kind)
        assert.is_string(msg)
        assert.are.equal(tonumber(row.offset) + 1, pos)
        assert.matches("at octet " .. pos, msg, 1, true)
      end
    end)
  end

  it("refuses CR and LF anywhere, quoted or escaped", function()
    for _, s in ipairs({ "a\r\n@example.com", "\"a\r\nb\"@example.com", "\"a\\\r\"@example.com",
                         "a@example.com\r\nDATA", "a@example.com\n", "a\0@example.com" }) do
      local a, msg, kind = smtpcode.parse_address(s)
      assert.is_nil(a)
      assert.are.equal("control_char", kind)
      assert.matches("control", msg)
    end
  end)

  it("keeps the local part's case and lower-cases the domain", function()
    local a = assert(smtpcode.parse_address("John.Smith@Example.COM"))
    assert.are.equal("John.Smith@example.com", a.address)
    assert.are.equal("John.Smith", a.local_part)
  end)

  it("gives the A-label form to send without SMTPUTF8", function()
    local a = assert(smtpcode.parse_address("info@Bücher.de"))
    assert.are.equal("info@bücher.de", a.address)
    assert.are.equal("info@xn--bcher-kva.de", a.ascii_address)
    assert.is_true(a.smtputf8)
    assert.is_false(a.utf8_local)
  end)

  it("raises for a non-string argument", function()
    assert.has_error(function() smtpcode.parse_address() end)
    assert.has_error(function() smtpcode.parse_address({}) end)
  end)
end)
