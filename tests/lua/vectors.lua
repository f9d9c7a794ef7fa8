-- vectors.lua -- read the shared TSV vectors of tests/vectors/ (same format as the C and Python
-- loaders: '#' comments, a header line, escapes \r \n \t \\ \xHH).
local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
M.dir = here .. "/../vectors"

-- A careful unescape: walk the string once so "\\x41" stays a backslash and "x41".
local function unescape_field(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "\\" and i < n then
      local d = s:sub(i + 1, i + 1)
      if d == "r" then out[#out + 1] = "\r"; i = i + 2
      elseif d == "n" then out[#out + 1] = "\n"; i = i + 2
      elseif d == "t" then out[#out + 1] = "\t"; i = i + 2
      elseif d == "\\" then out[#out + 1] = "\\"; i = i + 2
      elseif d == "x" and s:sub(i + 2, i + 3):match("^%x%x$") then
        out[#out + 1] = string.char(tonumber(s:sub(i + 2, i + 3), 16)); i = i + 4
      else out[#out + 1] = c; i = i + 1 end
    else
      out[#out + 1] = c; i = i + 1
    end
  end
  return table.concat(out)
end
M.unescape = unescape_field

-- Returns a list of rows, each a table keyed by column name (absent columns are "").
function M.load(name)
  local f = assert(io.open(M.dir .. "/" .. name, "rb"))
  local cols, rows = nil, {}
  for line in f:lines() do
    line = line:gsub("\r$", "")
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local fields = {}
      for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
      if not cols then
        cols = fields
      else
        local row = {}
        for i, c in ipairs(cols) do row[c] = unescape_field(fields[i] or "") end
        rows[#rows + 1] = row
      end
    end
  end
  f:close()
  return rows
end

return M
