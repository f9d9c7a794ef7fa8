-- decode, classify and the reader through the Lua binding, driven by tests/vectors/.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

describe("smtpcode.decode", function()
  for _, row in ipairs(vectors.load("decode.tsv")) do
    it("vector " .. row.id, function()
      local r, err = smtpcode.decode(row.input)
      if row.error ~= "" then
        assert.is_nil(r)
        assert.is_string(err)
        return
      end
      assert.is_table(r, err)
      assert.are.equal(row.code ~= "" and tonumber(row.code) or nil, r.code)
      assert.are.equal(row.status ~= "" and row.status or nil, r.status)
      assert.are.equal(row.kind, r.kind)
      assert.are.equal(row.temporary == "1", r.temporary)
      assert.are.equal(row.text, r.text)
      assert.are.equal(tonumber(row.nlines), #r.lines)
      assert.are.equal(r.text, table.concat(r.lines, "\n"))
      if row.reason ~= "*" then assert.are.equal(row.reason, r.reason) end
    end)
  end

  it("returns nil, err for empty text and raises for a wrong type", function()
    local r, err = smtpcode.decode("")
    assert.is_nil(r)
    assert.matches("no reply text", err)
    assert.has_error(function() smtpcode.decode({}) end)
  end)

  it("classify takes the parts", function()
    local r = assert(smtpcode.classify(550, "5.1.1", "User unknown", { command = "RCPT" }))
    assert.are.equal("userunknown", r.reason)
    assert.is_true(r.hard_bounce)
    r = assert(smtpcode.classify(nil, nil, "452 4.2.2 Mailbox full"))
    assert.are.equal(452, r.code)
    assert.is_true(r.temporary)
    assert.is_nil(smtpcode.classify(700, nil, "x"))
    assert.is_nil(smtpcode.classify(550, "5.1", "x"))
  end)

  it("lists every reason", function()
    local names, seen = smtpcode.reasons(), {}
    for _, n in ipairs(names) do seen[n] = true end
    assert.are.equal(34, #names)
    assert.is_true(seen.userunknown and seen.mailboxfull and seen.ratelimited and seen.undefined)
  end)

  it("has a version", function()
    assert.matches("^%d+%.%d+%.%d+$", smtpcode.version)
  end)
end)

describe("smtpcode.reader", function()
  local function run(stream, cut)
    local rd = smtpcode.reader()
    local got, err = {}, nil
    for _, piece in ipairs({ stream:sub(1, cut), stream:sub(cut + 1) }) do
      local ok, e = rd:feed(piece)
      if not ok then err = e break end
      local fine, perr = pcall(function()
        for rep in rd:replies() do got[#got + 1] = rep.code .. ":" .. #rep.lines end
      end)
      if not fine then err = perr break end
    end
    if not err then err = rd:error() end
    return table.concat(got, ","), err, rd
  end

  for _, row in ipairs(vectors.load("streams.tsv")) do
    it("stream " .. row.id .. " at every split point", function()
      for cut = 0, #row.stream do
        local got, err, rd = run(row.stream, cut)
        assert.are.equal(row.replies, got, "split at " .. cut)
        if row.error ~= "" then
          assert.is_not_nil(err)
          local msg, at = rd:error()
          assert.is_string(msg)
          assert.are.equal(tonumber(row.error_offset), at)
        else
          assert.is_nil(err)
        end
      end
    end)
  end

  it("hands out each reply once and survives gc mid-reply", function()
    local rd = smtpcode.reader()
    assert(rd:feed("250 a\r\n250-b"))
    local n = 0
    for _ in rd:replies() do n = n + 1 end
    assert.are.equal(1, n)
    for _ in rd:replies() do n = n + 1 end
    assert.are.equal(1, n)
    assert.are.equal(5, rd:pending())
    rd = nil
    collectgarbage()
    collectgarbage()
  end)

  it("keeps errors sticky and returns nil, err from feed", function()
    local rd = smtpcode.reader({ max_lines = 2 })
    assert(rd:feed("250-a\r\n250-b\r\n250 c\r\n"))
    assert.has_error(function() for _ in rd:replies() do end end)
    local ok, err = rd:feed("250 ok\r\n")
    assert.is_nil(ok)
    assert.matches("more lines", err)
  end)

  it("reply tables outlive the source string", function()
    local rd = smtpcode.reader()
    local s = "550 5.1.1 gone\r\n"
    assert(rd:feed(s))
    s = nil
    local rep = rd:replies()(rd)
    rd = nil
    collectgarbage()
    assert.are.equal("gone", rep.text)
    assert.are.equal("5.1.1", rep.status)
  end)
end)
