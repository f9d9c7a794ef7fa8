-- smtpcode.parse_bounce and smtpcode.bounces through the Lua binding, driven by
-- tests/vectors/bounces.tsv (the same table the C and Python suites read), plus the readers.
-- Runs under Lua 5.4 and LuaJIT.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

local dir = vectors.dir .. "/bounce"

local function read(name)
  local f = assert(io.open(dir .. "/" .. name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function value_of(rec, field)
  local v = rec[field]
  if field == "hard_bounce" then return v and "1" or "0" end
  if v == nil then return "-" end
  return tostring(v)
end

describe("smtpcode.parse_bounce", function()
  local rows = vectors.load("bounces.tsv")
  local extra = io.open(vectors.dir .. "/bounces_mta.tsv", "rb")  -- the MTA modules' vectors
  if extra then
    extra:close()
    for _, r in ipairs(vectors.load("bounces_mta.tsv")) do rows[#rows + 1] = r end
  end
  local cache = {}

  it("has the shared table", function()
    assert.is_true(#rows >= 40)
  end)

  for _, row in ipairs(rows) do
    it(row.file .. " #" .. row.record .. " " .. row.field, function()
      if not cache[row.file] then cache[row.file] = assert(smtpcode.parse_bounce(read(row.file))) end
      local recs = cache[row.file]
      local n = tonumber(row.record)
      if n == 0 then
        assert.are.equal(tonumber(row.value), #recs)
      else
        assert.are.equal(row.value, value_of(recs[n], row.field))
      end
    end)
  end

  it("returns nil, message, code, offset beyond a limit", function()
    local parts = {"Content-Type: multipart/mixed; boundary=b0\n\n"}
    for i = 1, 39 do
      parts[#parts + 1] = ("--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n"):format(i - 1, i)
    end
    local msg = table.concat(parts)
    local r, err, code, off = smtpcode.parse_bounce(msg)
    assert.is_nil(r)
    assert.are.equal("TOODEEP", code)
    assert.is_true(off > 0 and off < #msg)
    assert.is_truthy(err:find("offset", 1, true))
  end)

  it("gives {} for a message that is no bounce, and for garbage", function()
    assert.are.same({}, smtpcode.parse_bounce(""))
    assert.are.same({}, smtpcode.parse_bounce("\255\254\0garbage\r\r\n"))
  end)
end)

describe("smtpcode.bounces", function()
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -p '" .. tmp .. "'"))
  local names = {"dsn-two-recipients.eml", "encoded-parts.eml", "arf-abuse.eml", "not-a-bounce.eml",
                 "bad-part.eml"}
  local want = {"Nobody@example.com", "full@example.jp", "gone@example.com", "complainer@isp.example",
                "someone@example.com"}
  local mbox = {}
  for _, n in ipairs(names) do
    local body = read(n):gsub("\r\n", "\n"):gsub("\r", "\n")
    mbox[#mbox + 1] = "From MAILER-DAEMON Mon Nov  6 10:00:00 2023\n" .. body:gsub("\n+$", "") .. "\n\n"
  end
  mbox = table.concat(mbox)

  local function recipients(path, on_error)
    local out = {}
    local it = assert(smtpcode.bounces(path, on_error))
    for b in it do out[#out + 1] = b.recipient end
    return out
  end

  it("reads an mbox, lazily", function()
    write(tmp .. "/box", mbox)
    assert.are.same(want, recipients(tmp .. "/box"))
  end)

  it("reads a gzip'd mbox", function()
    write(tmp .. "/box2", mbox)
    assert(os.execute("gzip -f '" .. tmp .. "/box2'"))
    assert.are.same(want, recipients(tmp .. "/box2.gz"))
  end)

  it("reads a Maildir's cur/ and new/, not tmp/", function()
    local md = tmp .. "/Maildir"
    assert(os.execute("mkdir -p '" .. md .. "/cur' '" .. md .. "/new' '" .. md .. "/tmp'"))
    write(md .. "/cur/1.eml", read("encoded-parts.eml"))
    write(md .. "/new/2.eml", read("bad-part.eml"))
    write(md .. "/tmp/3.eml", read("autoreply.eml"))
    assert.are.same({"gone@example.com", "someone@example.com"}, recipients(md))
  end)

  it("calls on_error for a message beyond a limit and goes on; raises without it", function()
    local bad = "Subject: x\n\n" .. string.rep("y", 70000) .. "\n"
    write(tmp .. "/bad", "From a\n" .. bad .. "\nFrom b\n" .. read("encoded-parts.eml"))
    local seen = {}
    local got = recipients(tmp .. "/bad", function(label, err) seen[#seen + 1] = label .. " " .. err end)
    assert.are.same({"gone@example.com"}, got)
    assert.are.equal(1, #seen)
    assert.is_truthy(seen[1]:find("#1 message line is longer", 1, true))
    assert.has_error(function() recipients(tmp .. "/bad") end)
  end)

  it("returns nil, message for a path that cannot be read", function()
    local it, err = smtpcode.bounces(tmp .. "/nope")
    assert.is_nil(it)
    assert.is_truthy(err:find("nope", 1, true))
  end)

  teardown(function() os.execute("rm -rf '" .. tmp .. "'") end)
end)
