-- smtpcode.explain through the Lua binding, driven by tests/vectors/explain.tsv (the same rows
-- the C and Python suites read), plus the binding's own contract: integer keys, nil, err.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local vectors = require "vectors"
local smtpcode = require "smtpcode"

local function call(key, lang)
  if lang == "-" then return smtpcode.explain(key) end
  return smtpcode.explain(key, lang)
end

local function given(v) return v ~= nil and v ~= "" and v ~= "-" end

local function check_entry(e, norm_key, word, row)
  assert.is_table(e)
  assert.are.equal(norm_key, e.key)
  for _, f in ipairs { "title", "description", "causes", "fixes", "action" } do
    assert.is_string(e[f])
    assert.is_true(#e[f] > 0, f .. " is empty")
  end
  assert.are.equal(e.fixes, e.action)
  if word ~= "-" then
    assert.is_truthy(e.title:lower():find(word:lower(), 1, true),
                     ("title %q lacks %q"):format(e.title, word))
  end
  row = row or {}
  if given(row.causes) then
    assert.is_truthy(e.causes:find(row.causes, 1, true), ("causes lack %q"):format(row.causes))
  end
  if given(row.fixes) then
    assert.is_truthy(e.fixes:find(row.fixes, 1, true), ("fixes lack %q"):format(row.fixes))
  end
  if given(row.absent) then
    for _, f in ipairs { "description", "causes", "fixes" } do
      assert.is_falsy(e[f]:find(row.absent, 1, true), ("%s has %q"):format(f, row.absent))
    end
  end
end

local function check_error(e, err, outcome)
  assert.is_nil(e)
  assert.is_string(err)
  -- The message tells a bad language apart from a bad key.
  if outcome == "BADLANG" then
    assert.is_truthy(err:find("language", 1, true), err)
  else
    assert.is_falsy(err:find("language", 1, true), err)
  end
end

describe("smtpcode.explain vectors", function()
  for i, row in ipairs(vectors.load("explain.tsv")) do
    it(("row %d: %q %s -> %s"):format(i, row.key, row.lang, row.outcome), function()
      local e, err = call(row.key, row.lang)
      if row.outcome == "ok" then
        check_entry(e, row.norm_key, row.title, row)
      else
        check_error(e, err, row.outcome)
      end
      -- The same key given as an integer gives the same outcome.
      if row.key:match("^[1-9]%d*$") then
        local ei, erri = call(math.tointeger and math.tointeger(tonumber(row.key)) or tonumber(row.key), row.lang)
        if row.outcome == "ok" then
          check_entry(ei, row.norm_key, row.title)
          assert.are.equal(e.title, ei.title)
          assert.are.equal(e.description, ei.description)
        else
          check_error(ei, erri, row.outcome)
        end
      end
    end)
  end
end)

describe("smtpcode.explain", function()
  it("defaults to English and differs in Japanese", function()
    local en = assert(smtpcode.explain(550))
    local en2 = assert(smtpcode.explain(550, "en"))
    local ja = assert(smtpcode.explain(550, "ja"))
    assert.are.equal(en.title, en2.title)
    assert.are_not.equal(en.title, ja.title)
    assert.is_truthy(ja.description:find("です", 1, true) or ja.description:find("ます", 1, true))
  end)

  it("explains every code 100-599 and the classes 1-5, and refuses the rest", function()
    for code = 0, 999 do
      local e, err = smtpcode.explain(code, "ja")
      if code >= 100 and code <= 599 then
        assert.is_table(e, err)
        assert.are.equal(("%03d"):format(code), e.key)
      elseif code >= 1 and code <= 5 then -- a lone first digit is the class, as the key "5"
        assert.is_table(e, err)
        assert.are.equal(code .. "xx", e.key)
      else
        assert.is_nil(e)
        assert.is_string(err)
      end
    end
  end)

  it("refuses non-integral and out-of-range numbers", function()
    for _, n in ipairs { 550.5, -550, 5500, 0 } do
      local e, err = smtpcode.explain(n)
      assert.is_nil(e)
      assert.is_string(err)
    end
  end)

  it("combines a status with its class", function()
    local x = assert(smtpcode.explain("X.2.2"))
    local p = assert(smtpcode.explain("5.2.2"))
    local t = assert(smtpcode.explain("4.2.2"))
    assert.are.equal(x.title, p.title)
    assert.is_truthy(p.description:find(x.description, 1, true))
    assert.are_not.equal(p.description, t.description)
  end)

  it("explains every reason name", function()
    for _, name in ipairs(smtpcode.reasons()) do
      for _, lang in ipairs { "en", "ja" } do
        local e, err = smtpcode.explain(name, lang)
        assert.is_table(e, err)
        assert.are.equal(name, e.key)
      end
    end
  end)

  it("keeps its strings after many calls (composed entries are copied out)", function()
    local a = assert(smtpcode.explain(599))
    local title = a.title
    for _ = 1, 100 do assert(smtpcode.explain("5.9.9", "ja")) end
    collectgarbage()
    assert.are.equal(title, a.title)
    assert.is_truthy(a.title:find("mail system", 1, true))
  end)
end)
