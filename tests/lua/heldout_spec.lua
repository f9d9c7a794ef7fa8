-- decode on text the classifier was not built from (issue 10): tests/vectors/heldout.tsv and
-- tests/vectors/framing.tsv, shared with the C and Python suites.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

local function opt(s) if s == "" then return nil end return s end

describe("held-out replies", function()
  -- Rows of the first sixteen sets with rules for their misses hold 95% / 99%; the held-back rows
  -- ('h<set>x-' ids, drawn at random before their set was scored, never given a rule) a floor
  -- under their last measured figure (63.0% / 93.9% over 1005 rows): 62% / 90%, and so do the other
  -- rows of the seventeenth set on ('h17-' ..., a rule only where a second real text was found;
  -- 72.9% / 97.0% over 775 rows). See heldout.tsv's header and test_heldout.py.
  -- A held-back row's miss is reported by its id alone (ids_only): those rows are measured, not read.
  local function check(rows, min_rows, reason_bar, hard_bar, ids_only)
    assert.is_true(#rows >= min_rows)
    local reason_ok, hard_ok, misses = 0, 0, {}
    for _, row in ipairs(rows) do
      local r = assert(smtpcode.decode(row.text, {command = opt(row.command), host = opt(row.host)}))
      local want_hb = row.hard_bounce == "1"
      if r.reason == row.reason then reason_ok = reason_ok + 1 end
      if r.hard_bounce == want_hb then hard_ok = hard_ok + 1 end
      if r.reason ~= row.reason or r.hard_bounce ~= want_hb then
        misses[#misses + 1] = ids_only and row.id or (row.id .. ": want " .. row.reason .. " got " .. r.reason)
      end
      if r.hard_bounce then assert.is_false(r.retry) end
    end
    local msg = table.concat(misses, "\n")
    assert.is_true(reason_ok / #rows >= reason_bar, msg)
    assert.is_true(hard_ok / #rows >= hard_bar, msg)
  end
  local fitted, held_back, later = {}, {}, {}
  for _, row in ipairs(vectors.load("heldout.tsv")) do
    local set = tonumber(row.id:match("^h(%d+)%-") or "0")
    local t = row.id:match("^h%d+x%-") and held_back or (set >= 17 and later or fitted)
    t[#t + 1] = row
  end

  it("decodes >= 95% of reasons and >= 99% of hard-bounce flags right", function()
    check(fitted, 150, 0.95, 0.99)
  end)

  it("keeps the held-back rows above their floor (62% / 90%)", function()
    check(held_back, 90, 0.62, 0.90, true)
  end)

  it("keeps the later sets' rows above the same floor (62% / 90%)", function()
    check(later, 60, 0.62, 0.90)
  end)

  for _, row in ipairs(vectors.load("inferred_codes.tsv")) do
    it("inferred code " .. row.id, function()
      local r = assert(smtpcode.decode(row.text, {host = opt(row.host)}))
      local code, inferred = tonumber(row.code), tonumber(row.code_inferred)
      if code == 0 then code = nil end
      if inferred == 0 then inferred = nil end
      assert.are.equal(code, r.code)
      assert.are.equal(opt(row.code_source), r.code_source)
      assert.are.equal(inferred, r.code_inferred)
    end)
  end

  for _, row in ipairs(vectors.load("framing.tsv")) do
    it("framing " .. row.id, function()
      local r = assert(smtpcode.decode(row.input))
      local code = tonumber(row.code)
      if code == 0 then code = nil end
      assert.are.equal(code, r.code)
      assert.are.equal(opt(row.status), r.status)
      assert.are.equal(opt(row.command), r.command)
      assert.are.equal(row.text, r.text)
    end)
  end
end)
