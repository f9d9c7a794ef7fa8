-- smtpcode_http.lua -- the request handlers of the smtpcode HTTP service (see nginx.conf beside it).
--
-- Every answer is JSON; every error is {"error": "..."} with a 4xx/5xx status. Decoding and
-- explaining are pure C calls; verifying runs smtpcode.resty (cosockets), so no handler blocks
-- the nginx worker. Per-client rate limits and the verify cache live in lua_shared_dicts, so they
-- hold across workers.
local cjson = require "cjson.safe"
local smtpcode = require "smtpcode"

local ngx = ngx
local _M = {}

local conf = {
  dns_servers = "127.0.0.1:53",
  cache_ttl = 600,
  rate = 20,
  max_addresses = 10000,
  results_dict = "smtpcode_results",
  clients_dict = "smtpcode_clients",
  hosts_dict = "smtpcode_hosts",
}

-- Options that go to smtpcode.resty.verify as they are (a request cannot set them).
local VERIFY_OPTS = { "dns_servers", "mail_from", "helo", "port", "timeout", "per_host",
  "rcpt_per_session", "starttls", "tls_verify", "host_pause", "max_rejections", "greylist_delay",
  "deadline", "concurrency", "catch_all", "connect_timeout" }

function _M.configure(opts)
  for k, v in pairs(opts or {}) do conf[k] = v end
end

-- Replies are bytes, and some servers send Latin-1 or worse; JSON must be UTF-8. Each byte that
-- does not start a well-formed UTF-8 sequence becomes U+FFFD (as Python's "replace" does).
local function utf8_clean(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    for k = i + 1, i + len - 1 do
      if not ok then break end
      local b = s:byte(k)
      ok = b >= 0x80 and b <= 0xBF
    end
    if ok and len == 3 then -- no overlongs, no surrogates
      local b = s:byte(i + 1)
      ok = not ((c == 0xE0 and b < 0xA0) or (c == 0xED and b > 0x9F))
    elseif ok and len == 4 then
      local b = s:byte(i + 1)
      ok = not ((c == 0xF0 and b < 0x90) or (c == 0xF4 and b > 0x8F))
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "\239\191\189"
      i = i + 1
    end
  end
  return table.concat(out)
end

local function clean(v)
  if type(v) == "string" then return utf8_clean(v) end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = clean(x) end
    return t
  end
  return v
end

local function send_json(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(clean(t)))
  return ngx.exit(status)
end

function _M.error(status, msg)
  return send_json(status, { error = msg })
end

-- A shared-dict counter per client address and second: over `conf.rate` gets 429.
local function over_rate()
  local dict = ngx.shared[conf.clients_dict]
  if not dict or not conf.rate or conf.rate <= 0 then return false end
  local key = ngx.var.binary_remote_addr .. ngx.time()
  local n = dict:incr(key, 1, 0, 2)
  return n ~= nil and n > conf.rate
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body == nil and ngx.req.get_body_file() then
    -- nginx spilled the body to a file: the configured buffer is smaller than the size limit
    return nil, "request body larger than client_body_buffer_size"
  end
  return body or ""
end

local function guard(method)
  if ngx.req.get_method() ~= method and not (method == "GET" and ngx.req.get_method() == "HEAD") then
    return _M.error(405, "method not allowed")
  end
  if over_rate() then return _M.error(429, "too many requests") end
end

-- POST /v1/decode: the reply as text, or a JSON object {"reply":..., "command":..., "host":...}.
function _M.decode()
  if guard("POST") then return end
  local body, err = read_body()
  if not body then return _M.error(413, err) end
  local text, ctx = body, nil
  local ct = ngx.var.content_type or ""
  if ct:find("json", 1, true) or body:match("^%s*{") then
    local obj = cjson.decode(body)
    if type(obj) ~= "table" or type(obj.reply) ~= "string" then
      return _M.error(400, 'expected a JSON object {"reply": "...", "command": "...", "host": "..."}')
    end
    text = obj.reply
    if obj.command ~= nil or obj.host ~= nil then
      if (obj.command ~= nil and type(obj.command) ~= "string") or (obj.host ~= nil and type(obj.host) ~= "string") then
        return _M.error(400, "command and host must be strings")
      end
      ctx = { command = obj.command, host = obj.host }
    end
  end
  if text == "" then return _M.error(400, "empty reply") end
  local r, derr = smtpcode.decode(text, ctx)
  if not r then return _M.error(400, derr) end
  return send_json(200, r)
end

-- GET /v1/explain/{key}?lang=en|ja: key is a reply code, an enhanced status code or a reason.
function _M.explain()
  if guard("GET") then return end
  local key = ngx.unescape_uri(ngx.var.uri:sub(#"/v1/explain/" + 1))
  local lang = ngx.var.arg_lang or "en"
  if key == "" then return _M.error(400, "missing key: /v1/explain/{code|status|reason}") end
  if lang ~= "en" and lang ~= "ja" then return _M.error(400, "lang must be en or ja") end
  local e, err = smtpcode.explain(key, lang)
  if not e then return _M.error(404, err .. ": " .. key) end
  return send_json(200, e)
end

local function verify_opts()
  local o = {}
  for _, k in ipairs(VERIFY_OPTS) do o[k] = conf[k] end
  o.shared_dict = conf.hosts_dict
  return o
end

local function cached(address)
  local dict = ngx.shared[conf.results_dict]
  if not dict or not conf.cache_ttl or conf.cache_ttl <= 0 then return nil end
  local v = dict:get(address)
  if v then
    local r = cjson.decode(v)
    if r then r.cached = true end
    return r
  end
end

local function remember(r)
  local dict = ngx.shared[conf.results_dict]
  -- unknown results say nothing lasting about the address: never cached
  if dict and conf.cache_ttl and conf.cache_ttl > 0 and r.verdict ~= "unknown" then
    dict:set(r.address, cjson.encode(r), conf.cache_ttl)
  end
end

-- Splits a POST body into addresses: a JSON array of strings, or one address a line.
local function parse_addresses(body)
  if body:match("^%s*%[") then
    local arr = cjson.decode(body)
    if type(arr) ~= "table" then return nil, "malformed JSON array" end
    for i, a in ipairs(arr) do
      if type(a) ~= "string" then return nil, "element " .. i .. " is not a string" end
    end
    return arr
  end
  local out = {}
  for line in body:gmatch("[^\n]+") do
    line = line:gsub("\r$", "")
    if line:match("%S") then out[#out + 1] = line end
  end
  return out
end

-- GET /v1/verify?address=..., POST /v1/verify (JSON lines streamed as results arrive).
function _M.verify()
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "POST" then return _M.error(405, "method not allowed") end
  if over_rate() then return _M.error(429, "too many requests") end
  local ok, resty = pcall(require, "smtpcode.resty")
  if not ok then
    ngx.log(ngx.ERR, "smtpcode.resty: ", resty)
    return _M.error(501, "verify is not available: smtpcode.resty is not installed")
  end

  if method == "GET" then
    local address = ngx.var.arg_address
    if not address or address == "" then return _M.error(400, "missing ?address=") end
    address = ngx.unescape_uri(address)
    local r = cached(address)
    if not r then
      local err
      r, err = resty.verify_one(address, verify_opts())
      if not r then return _M.error(500, err) end
      remember(r)
    end
    return send_json(200, r)
  end

  local body, err = read_body()
  if not body then return _M.error(413, err) end
  local addresses, perr = parse_addresses(body)
  if not addresses then return _M.error(400, perr) end
  if #addresses == 0 then return _M.error(400, "no addresses in the body") end
  if #addresses > conf.max_addresses then
    return _M.error(413, "more than " .. conf.max_addresses .. " addresses")
  end

  ngx.status = 200
  ngx.header["Content-Type"] = "application/x-ndjson"
  local todo = {}
  for _, a in ipairs(addresses) do
    local r = cached(a)
    if r then ngx.say(cjson.encode(clean(r))) else todo[#todo + 1] = a end
  end
  ngx.flush(true)
  if #todo > 0 then
    local o = verify_opts()
    o.on_result = function(r)
      remember(r)
      ngx.say(cjson.encode(clean(r)))
      ngx.flush(true)
    end
    local _, verr = resty.verify(todo, o)
    if verr then ngx.log(ngx.ERR, "smtpcode verify: ", verr) end
  end
  return ngx.exit(200)
end

return _M
