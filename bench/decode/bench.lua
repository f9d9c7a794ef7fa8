-- bench.lua -- smtpcode.classify through the Lua binding over a corpus TSV, beside a baseline
-- in the same run: the same reply-line parsing done with Lua patterns (strip "smtp;", take
-- the code and the enhanced status, split the lines and their "550-" prefixes) and a plain
-- string.find per phrase of the rule table (csrc/rules/phrases.def).
-- usage: lua bench.lua corpus.tsv phrases.def [seconds]
local smtpcode = require "smtpcode"
local path, defpath, seconds = arg[1], arg[2], tonumber(arg[3] or "1")
local clock = os.clock

local rows, cols = {}, nil
for line in io.lines(path) do
  if line:sub(1, 1) ~= "#" then
    local f = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
    if not cols then
      cols = {}
      for i, name in ipairs(f) do cols[name] = i end
    else
      local ctx = {}
      if f[cols.command] ~= "" then ctx.command = f[cols.command] end
      if f[cols.rhost] ~= "" then ctx.host = f[cols.rhost] end
      rows[#rows + 1] = {code = tonumber(f[cols.reply_code]), status = f[cols.status] ~= "" and f[cols.status] or nil,
                         text = f[cols.diagnostic], ctx = ctx}
    end
  end
end

local phrases = {}
for line in io.lines(defpath) do
  local reason, p = line:match('^PHRASE%((%u+), %d, "(.-)"%)')
  if reason then phrases[#phrases + 1] = {p, reason:lower()} end
end

local function baseline(code, status, text)
  text = text:gsub("^%s*[Ss][Mm][Tt][Pp];%s*", "")
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\r\n]*)\r?\n") do
    local c, sep, rest = l:match("^(%d%d%d)([ -]?)(.*)$")
    if c then code = code or tonumber(c); l = rest end
    local st, after = l:match("^([245]%.%d%d?%d?%.%d%d?%d?)%s*(.*)$")
    if st then status = status or st; l = after end
    lines[#lines + 1] = l
  end
  local low = table.concat(lines, " "):lower()
  for i = 1, #phrases do
    if low:find(phrases[i][1], 1, true) then return phrases[i][2], code, status end
  end
  return "undefined", code, status
end

-- Wall time beside CPU time (os.clock): LuaJIT reads clock_gettime through the FFI; Lua 5.4 has
-- no sub-second wall clock, so it asks date(1) once before and once after a measurement (a few
-- milliseconds against a run of a second or more).
local walltime
if jit then
  local ffi = require "ffi"
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk, bench_timespec *ts);
  ]]
  local ts = ffi.new("bench_timespec")
  walltime = function()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
  end
else
  walltime = function()
    local p = io.popen("date +%s.%N")
    local t = p and tonumber(p:read("*l"))
    if p then p:close() end
    return t or os.time()
  end
end

local function measure(name, fn)
  fn()
  local n, w0, t0 = 0, walltime(), clock()
  local t
  repeat
    fn()
    n = n + #rows
    t = clock() - t0
  until t >= seconds
  local w = walltime() - w0
  print(string.format("  %-32s %10.0f calls/CPU-s %10.0f calls/s wall %8.1f ns/call (CPU)", name,
                      n / t, n / w, t * 1e9 / n))
end

print(string.format("%s, %d rows replayed for %.1f CPU-s each (%d phrases)", _VERSION .. (jit and (" / " .. jit.version) or ""),
                    #rows, seconds, #phrases))
local classify = smtpcode.classify
measure("smtpcode.classify (binding)", function()
  for i = 1, #rows do local r = rows[i]; classify(r.code, r.status, r.text, r.ctx) end
end)
measure("baseline: Lua patterns", function()
  for i = 1, #rows do local r = rows[i]; baseline(r.code, r.status, r.text) end
end)
