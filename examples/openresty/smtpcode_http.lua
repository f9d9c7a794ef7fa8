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
  -- the library's defaults, written out because a request's options are compared with them
  -- (the cache key names only what differs) and bounded by them (REQUEST_OPTS)
  starttls = "opportunistic",
  tls_verify = false,
  catch_all = true,
  transcript = false,
  deadline = 300,
  timeout = 30,
  greylist_delay = 60,
}

-- Options that go to smtpcode.resty.verify from the configuration.
local VERIFY_OPTS = { "dns_servers", "mail_from", "helo", "port", "timeout", "per_host",
  "rcpt_per_session", "starttls", "tls_verify", "host_pause", "max_rejections", "greylist_delay",
  "deadline", "concurrency", "catch_all", "connect_timeout", "transcript" }

-- The ones a caller may also set for one request, as query parameters of /v1/verify, and how the
-- query text becomes a value: only the type is read here; whether smtpcode takes the value (a
-- starttls mode, a positive deadline) is the C planner's to say, and its message is the 400.
-- Time limits are bounded by the configured ones: a caller may wait less but not hold the worker
-- longer, and may not retry a greylisting server sooner than the operator's delay. The sender,
-- HELO, port, resolver, concurrency and politeness are the operator's alone.
local REQUEST_OPTS = {
  starttls = "text",              -- opportunistic | required | off
  tls_verify = "boolean",         -- true | false (or 1 | 0)
  catch_all = "boolean",
  transcript = "boolean",         -- results carry the SMTP transcript; never cached
  deadline = "at_most",           -- seconds, lowered to the configured deadline
  timeout = "at_most",            -- seconds, lowered to the configured timeout
  greylist_delay = "at_least",    -- seconds, raised to the configured delay
}

local MAX_ARGS = 20 -- query parameters of /v1/verify: the address and the options, with room

-- smtpcode.resty, or nil (logged once) where it is not installed: decode and explain still work.
local resty_loaded
local function resty_mod()
  if resty_loaded == nil then
    local ok, m = pcall(require, "smtpcode.resty")
    if not ok then ngx.log(ngx.ERR, "smtpcode.resty: ", m) end
    resty_loaded = ok and m or false
  end
  return resty_loaded or nil
end

local function verify_opts()
  local o = {}
  for _, k in ipairs(VERIFY_OPTS) do o[k] = conf[k] end
  o.shared_dict = conf.hosts_dict
  return o
end

-- The configuration is checked when nginx starts, by the planner as a request's options are, so
-- a bad one stops nginx there instead of failing every request.
function _M.configure(opts)
  for k, v in pairs(opts or {}) do conf[k] = v end
  local resty = resty_mod()
  if resty then
    local ok, err = resty.check_options(verify_opts())
    if not ok then error("smtpcode_http.configure: " .. err, 2) end
  end
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

-- The request's options over the configured ones: (options for smtpcode.resty, cache key
-- prefix), or (nil, the 400 message). The prefix names each option whose value differs from the
-- configured one, so a cached result only answers requests that would have asked the same way
-- (a catch_all=false "deliverable" never answers a default request); it is false when the
-- result is not to be cached at all (a transcript belongs to the session that made it).
local function request_options(args, skip)
  local o, set = verify_opts(), {}
  for name, text in pairs(args) do
    if name ~= skip then
      local kind = REQUEST_OPTS[name]
      if not kind then
        for _, k in ipairs(VERIFY_OPTS) do
          if k == name then
            return nil, "option '" .. name .. "' is the service's, not a request's"
          end
        end
        return nil, "unknown option '" .. name .. "'"
      end
      if type(text) ~= "string" then -- a bare ?name, or the name twice
        return nil, "invalid option: " .. name .. " (give it one value)"
      end
      local v
      if kind == "boolean" then
        if text == "true" or text == "1" then
          v = true
        elseif text == "false" or text == "0" then
          v = false
        end
      elseif kind == "text" then
        v = text
      else
        v = tonumber(text)
        if v and (v ~= v or v == math.huge or v == -math.huge) then v = nil end -- nan, inf
        if v and kind == "at_most" then v = math.min(v, conf[name]) end
        if v and kind == "at_least" then v = math.max(v, conf[name]) end
      end
      if v == nil then
        return nil, "invalid option: " .. name
                    .. (kind == "boolean" and " (true or false)" or " (a number)")
      end
      o[name] = v
      set[#set + 1] = name
    end
  end
  if #set > 0 then -- (the configured options alone were checked by configure())
    local ok, err = resty_mod().check_options(o)
    if not ok then return nil, err end
  end
  if o.transcript then return o, false end
  table.sort(set)
  local key = {}
  for _, name in ipairs(set) do
    if o[name] ~= conf[name] then key[#key + 1] = name .. "=" .. tostring(o[name]) end
  end
  return o, table.concat(key, "&")
end

-- The prefix holds no NUL (its values passed the planner), so prefix, NUL, address is one key
-- for one pair; a default request's prefix is "".
local function cache_key(prefix, address)
  return prefix .. "\0" .. address
end

local function cached(prefix, address)
  local dict = ngx.shared[conf.results_dict]
  if not prefix or not dict or not conf.cache_ttl or conf.cache_ttl <= 0 then return nil end
  local v = dict:get(cache_key(prefix, address))
  if v then
    local r = cjson.decode(v)
    if r then r.cached = true end
    return r
  end
end

local function remember(prefix, r)
  local dict = ngx.shared[conf.results_dict]
  -- unknown results say nothing lasting about the address: never cached
  if prefix and dict and conf.cache_ttl and conf.cache_ttl > 0 and r.verdict ~= "unknown" then
    dict:set(cache_key(prefix, r.address), cjson.encode(r), conf.cache_ttl)
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

-- GET /v1/verify?address=...[&option=...], POST /v1/verify[?option=...] (JSON lines streamed as
-- results arrive). The options (REQUEST_OPTS) are query parameters for both methods.
function _M.verify()
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "POST" then return _M.error(405, "method not allowed") end
  if over_rate() then return _M.error(429, "too many requests") end
  local resty = resty_mod()
  if not resty then
    return _M.error(501, "verify is not available: smtpcode.resty is not installed")
  end
  local args, aerr = ngx.req.get_uri_args(MAX_ARGS)
  if aerr == "truncated" then
    return _M.error(400, "more than " .. MAX_ARGS .. " query parameters")
  end
  local o, prefix = request_options(args, method == "GET" and "address" or nil)
  if not o then return _M.error(400, prefix) end

  if method == "GET" then
    local address = args.address
    if type(address) ~= "string" or address == "" then
      return _M.error(400, "missing ?address= (one address; POST a list)")
    end
    local r = cached(prefix, address)
    if not r then
      local err
      r, err = resty.verify_one(address, o)
      if not r then return _M.error(500, err) end
      remember(prefix, r)
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
    local r = cached(prefix, a)
    if r then ngx.say(cjson.encode(clean(r))) else todo[#todo + 1] = a end
  end
  ngx.flush(true)
  if #todo > 0 then
    o.on_result = function(r)
      remember(prefix, r)
      ngx.say(cjson.encode(clean(r)))
      ngx.flush(true)
    end
    local _, verr = resty.verify(todo, o)
    if verr then ngx.log(ngx.ERR, "smtpcode verify: ", verr) end
  end
  return ngx.exit(200)
end

return _M
