-- smtpcode.resty -- smtpcode.verify for OpenResty / nginx's Lua module: the C planner's actions
-- (smtpcode.plan) carried out with cosockets, so nothing blocks the nginx worker.
--
--   local resty = require "smtpcode.resty"
--   local results, err = resty.verify({"a@example.org", ...}, {mail_from = ..., helo = ...,
--       dns_servers = "127.0.0.1:53", shared_dict = "smtpcode_hosts",
--       on_result = function(r) ... end})     -- r as smtpcode.verify returns it, as it comes
--   local r, err = resty.verify_one("a@example.org", opts)
--   local ok, err = resty.check_options(opts)  -- would verify() take them? (nothing is sent)
--
-- Works in content_by_lua*, access_by_lua*, ngx.timer.at callbacks and timers made in
-- init_worker. Options: those of smtpcode.verify, plus
--   shared_dict   a lua_shared_dict name: per-MX-address session counts and pauses shared by
--                 all workers (entries expire, so a worker that dies leaves nothing stuck)
--   on_result     called in the calling thread for each result as it arrives (it may yield)
--
-- Shape: one "main" light thread runs the planner loop (pump actions, wait on a semaphore or
-- the planner's WAKE). Each session has a light thread of its own that connects, reads and does
-- the TLS handshake; each MX lookup one that carries the route machine's DNS messages
-- (smtpcode.mx_lookup) over UDP, TCP when truncated. Only the main thread spawns and kills, so
-- every thread has it as parent. The planner decides everything; this file only moves bytes.
local smtpcode = require "smtpcode"
local semaphore = require "ngx.semaphore"
local bit = require "bit"

local ngx = ngx
local spawn, kill, wait = ngx.thread.spawn, ngx.thread.kill, ngx.thread.wait
local co_running = coroutine.running

local _M = { _VERSION = "0.1" }

local DRIVER_OPTS = { on_result = true, shared_dict = true }
local MAIN = "main"
local NOT_HERE = { "proxy", "source_address", "cache", "refresh", "cache_positive_ttl",
                   "cache_negative_ttl", "cache_unknown_ttl" }

local function now_us()
  ngx.update_time()
  return math.floor(ngx.now() * 1e6)
end

-- "ip:port", "[v6]:port" or "ip", a CSV string or an array; default: /etc/resolv.conf.
local function parse_servers(spec)
  local list = {}
  local function add(s)
    s = s:match("^%s*(.-)%s*$")
    local host, port = s:match("^%[([%x:.]+)%]:(%d+)$")
    if not host then host, port = s:match("^([%d.]+):(%d+)$") end
    if not host then host, port = s:match("^([%x:.]+)$"), 53 end
    if not host then return nil, "bad dns_servers entry: " .. s end
    list[#list + 1] = { host = host, port = tonumber(port) }
    return true
  end
  if spec == nil then
    local f = io.open("/etc/resolv.conf")
    if f then
      for line in f:lines() do
        local ns = line:match("^%s*nameserver%s+(%S+)")
        if ns then add(ns) end
      end
      f:close()
    end
    if #list == 0 then add("127.0.0.1") end
    return list
  end
  if type(spec) == "string" then
    for s in spec:gmatch("[^,]+") do
      local ok, err = add(s)
      if not ok then return nil, err end
    end
  elseif type(spec) == "table" then
    for _, s in ipairs(spec) do
      if type(s) ~= "string" then return nil, "dns_servers entries must be strings" end
      local ok, err = add(s)
      if not ok then return nil, err end
    end
  else
    return nil, "dns_servers must be a string or a list of strings"
  end
  if #list == 0 then return nil, "dns_servers is empty" end
  return list
end

-- ---- DNS transport ------------------------------------------------------------------------

local function tcp_exchange(srv, msg, timeout_ms)
  local sock = ngx.socket.tcp()
  sock:settimeout(timeout_ms)
  local ok, err = sock:connect(srv.host, srv.port)
  if not ok then return nil, err == "timeout" and "timeout" or "refused" end
  ok, err = sock:send(string.char(bit.rshift(#msg, 8), bit.band(#msg, 255)) .. msg)
  local head = ok and sock:receive(2)
  local data
  if head then
    data, err = sock:receive(head:byte(1) * 256 + head:byte(2))
  end
  sock:close()
  if not data then return nil, err == "timeout" and "timeout" or "servfail" end
  return data
end

-- One query to one server: the response, or nil and "timeout" | "refused" | "servfail".
local function exchange(srv, msg, timeout_ms)
  local u = ngx.socket.udp()
  u:settimeout(timeout_ms)
  local ok, err = u:setpeername(srv.host, srv.port)
  if ok then ok, err = u:send(msg) end
  if not ok then
    u:close()
    return nil, "refused"
  end
  local deadline = ngx.now() + timeout_ms / 1000
  while true do
    local data, rerr = u:receive()
    if not data then
      u:close()
      return nil, rerr == "timeout" and "timeout" or "refused"
    end
    -- ours: same transaction id, a response (QR). Anything else is a stray datagram.
    if #data >= 12 and data:sub(1, 2) == msg:sub(1, 2) and bit.band(data:byte(3), 0x80) ~= 0 then
      u:close()
      if bit.band(data:byte(3), 0x02) ~= 0 then -- TC: truncated, ask again over TCP
        return tcp_exchange(srv, msg, math.max(1, (deadline - ngx.now()) * 1000))
      end
      return data
    end
    if ngx.now() >= deadline then
      u:close()
      return nil, "timeout"
    end
  end
end

-- A query's tries: two rounds over the servers, each try a share of the time left.
local function ask(servers, msg, deadline)
  local tries = 2 * #servers
  local err = "timeout"
  for i = 1, tries do
    local left = deadline - ngx.now()
    if left <= 0 then break end
    local data
    data, err = exchange(servers[(i - 1) % #servers + 1], msg,
                         math.max(50, left * 1000 / (tries - i + 1)))
    if data then return data end
  end
  return nil, err
end

local function lookup(st, token, domain)
  local route
  local lk = smtpcode.mx_lookup(domain, { family = st.family })
  if lk then
    local deadline = ngx.now() + st.dns_timeout
    while not lk:done() do
      local qs = {}
      while true do
        local id, msg = lk:next(math.random(0, 65535))
        if not id then break end
        qs[#qs + 1] = { id = id, thread = spawn(ask, st.servers, msg, deadline) }
      end
      if #qs == 0 then break end
      for _, q in ipairs(qs) do
        local ok, data, err = wait(q.thread)
        if ok and data then lk:answer(q.id, data) else lk:fail(q.id, ok and err or "servfail") end
      end
      if ngx.now() >= deadline and not lk:done() then
        lk:expire()
        break
      end
    end
    route = lk:route()
  end
  st.lookups = st.lookups - 1
  st.p:resolved(now_us(), token, route)
  st.pump(nil)
end

-- ---- sessions per host across workers ------------------------------------------------------
-- Each worker process keeps its own count per MX address in the shared dict, under
-- "c:<ip>:<worker id>:<pid>", and says it is alive with "w:<worker id>" = pid, refreshed every
-- second with a TTL of three. The total at an address sums the counts of the live processes
-- only: a worker that is killed stops counting within three seconds (or at once when nginx
-- respawns its id), and its keys expire after the longest a session can last.

local local_count = {}
local beating = {}

local function heartbeat(premature, dict_name)
  if premature then return end
  local dict = ngx.shared[dict_name]
  if dict then dict:set("w:" .. (ngx.worker.id() or 0), ngx.worker.pid(), 3) end
end

local function start_heartbeat(dict_name)
  heartbeat(false, dict_name)
  if not beating[dict_name] then
    beating[dict_name] = ngx.timer.every(1, heartbeat, dict_name) or nil
  end
end

local function host_total(dict, ip)
  local n = 0
  for id = 0, ngx.worker.count() - 1 do
    local pid = dict:get("w:" .. id)
    if pid then n = n + (dict:get("c:" .. ip .. ":" .. id .. ":" .. pid) or 0) end
  end
  return n
end

local function host_set(st, ip, delta)
  local c = (local_count[ip] or 0) + delta
  local_count[ip] = c > 0 and c or nil
  st.dict:set("c:" .. ip .. ":" .. (ngx.worker.id() or 0) .. ":" .. ngx.worker.pid(),
              c > 0 and c or 0, st.count_ttl)
end

-- Waits for a free session slot at ip (and for the pause between new sessions there); false
-- at the deadline. Workers are processes, so a read-then-write of the dict is not atomic across
-- them: two could both read "one slot left" and both take it. Hence announce first, then count:
-- a worker raises its own count, sums everyone's, and backs off when the sum is over per_host.
-- Every dict operation is atomic, so of any per_host + 1 workers that announce at once, the
-- last to announce sees all of them and backs off: the bound holds. (All may back off at once;
-- the jittered sleep separates them on the next try.) The pause is a key that only one worker
-- can add (dict:add fails while it exists) and that expires by itself after host_pause.
local function acquire(st, ip)
  local dict = st.dict
  while true do
    host_set(st, ip, 1)
    if host_total(dict, ip) <= st.per_host
       and (st.host_pause <= 0 or dict:add("p:" .. ip, true, st.host_pause)) then
      return true
    end
    host_set(st, ip, -1)
    if ngx.now() >= st.deadline then return false end
    ngx.sleep(0.02 + math.random() * 0.03)
  end
end

-- ---- the session threads -------------------------------------------------------------------

local function release(st, s)
  if s.done then return end
  s.done = true
  if s.sock then pcall(s.sock.close, s.sock) end
  if s.acquired then host_set(st, s.ip, -1) end
  st.sessions[s.sid] = nil
  st.live = st.live - 1
  st.p:released(now_us(), s.sid)
end

local function session(st, s)
  local p = st.p
  s.co = co_running()
  if not s.sock then
    if st.dict then
      if acquire(st, s.ip) then
        s.acquired = true
      else
        s.refused = true
        p:eof(now_us(), s.sid, "too many sessions at this host", true)
        st.pump(s.co)
      end
    end
    local sock = not s.refused and not s.closing and ngx.socket.tcp()
    local ok, err
    if sock then
      sock:settimeouts(st.connect_ms, st.io_ms, st.io_ms)
      ok, err = sock:connect(s.ip, s.port)
    end
    if not sock then -- reported above
    elseif not ok then
      p:eof(now_us(), s.sid, err == "timeout" and "connect timeout" or err, err == "timeout")
      st.pump(s.co)
    else
      s.sock = sock
      p:connected(now_us(), s.sid)
      st.pump(s.co)
    end
  end
  while s.sock and not s.closing do
    if s.tls then
      local name = s.tls
      s.tls = nil
      local sess, err = s.sock:sslhandshake(nil, name ~= "" and name or nil, st.tls_verify)
      if not sess then ngx.log(ngx.INFO, "smtpcode.resty: TLS with ", s.ip, ": ", err) end
      p:tls(now_us(), s.sid, sess ~= nil)
      st.pump(s.co)
    else
      local data, err = s.sock:receiveany(65536)
      if data then
        p:read(now_us(), s.sid, data)
        st.pump(s.co)
      elseif err ~= "timeout" then -- a timeout is the planner's to decide: read on
        p:eof(now_us(), s.sid, err == "closed" and "connection closed" or err)
        st.pump(s.co)
        break
      end
    end
  end
  s.co = nil
  if s.closing then
    release(st, s)
    st.pump(nil)
  end
end

-- Writes on one socket go out in order, one send at a time (a send may yield).
local function write(st, s, data)
  s.outq[#s.outq + 1] = data
  if s.writing then return end
  s.writing = true
  while #s.outq > 0 and s.sock do
    local chunk = table.concat(s.outq)
    s.outq = {}
    local ok = s.sock:send(chunk)
    if not ok then break end -- the reader sees the broken connection
  end
  s.writing = false
end

-- ---- the planner loop ----------------------------------------------------------------------

local function new_state(o)
  local st = { sessions = {}, queue = {}, results = {}, live = 0, lookups = 0, wake = 0,
               sema = semaphore.new(0) }
  -- every action the planner hands out, in any thread; what only the main thread may do
  -- (spawn, kill) is queued for it. self: the running session's coroutine, MAIN, or nil.
  function st.pump(self)
    local p = st.p
    local posted = false
    while true do
      local a = p:next(now_us())
      if not a then break end
      local t = a.type
      if t == "write" then
        local s = st.sessions[a.sid]
        if s then write(st, s, a.data) end
      elseif t == "result" then
        st.results[#st.results + 1] = a.result
        posted = true
      elseif t == "wake" then
        st.wake = a.time
        posted = true
      elseif (t == "close" or t == "start_tls") and st.sessions[a.sid]
          and st.sessions[a.sid].co == self and self ~= nil then
        local s = st.sessions[a.sid] -- the session's own thread: it acts after this pump
        if t == "close" then s.closing = true else s.tls = a.name end
      else
        st.queue[#st.queue + 1] = a
        posted = true
      end
    end
    if posted and self ~= MAIN then st.sema:post(1) end
  end
  return st
end

local function run_queue(st)
  while #st.queue > 0 do
    local q = st.queue
    st.queue = {}
    for _, a in ipairs(q) do
      if a.type == "resolve" then
        st.lookups = st.lookups + 1
        spawn(lookup, st, a.token, a.name)
      elseif a.type == "connect" then
        local s = { sid = a.sid, ip = a.ip, port = a.port, name = a.name, outq = {} }
        st.sessions[a.sid] = s
        st.live = st.live + 1
        s.thread = spawn(session, st, s)
      else
        local s = st.sessions[a.sid]
        if s then
          if s.thread and s.co then kill(s.thread) end -- parked in a read or a handshake
          s.co, s.writing = nil, false
          if a.type == "close" then
            release(st, s)
          else
            s.tls = a.name
            s.thread = spawn(session, st, s)
          end
        end
      end
    end
    st.pump(MAIN)
  end
end

-- The planner for opts, and the DNS servers, or nil and what was refused. The option values are
-- the C planner's to check (smtpcode.plan); here only what this driver adds or cannot do.
local function new_plan(opts)
  if type(opts) ~= "table" then return nil, "options table required (mail_from, helo)" end
  for _, k in ipairs(NOT_HERE) do -- the libuv driver's; refused rather than silently ignored
    if opts[k] ~= nil then
      return nil, "invalid option: " .. k .. " (not supported by smtpcode.resty)"
    end
  end
  if opts.on_result ~= nil and type(opts.on_result) ~= "function" then
    return nil, "invalid option: on_result"
  end
  if opts.shared_dict ~= nil and not ngx.shared[opts.shared_dict] then
    return nil, "invalid option: shared_dict (no lua_shared_dict "
                .. tostring(opts.shared_dict) .. ")"
  end
  local servers, serr = parse_servers(opts.dns_servers)
  if not servers then return nil, "invalid option: " .. serr end
  local po = {}
  for k, v in pairs(opts) do if not DRIVER_OPTS[k] then po[k] = v end end
  po.seed = math.random(0, 2 ^ 31)
  local p, err = smtpcode.plan(po)
  if not p then return nil, err end
  return p, servers
end

-- check_options(opts) -> true | nil, err: whether verify() would take opts, without verifying
-- (a service checks a caller's options before it starts an answer).
function _M.check_options(opts)
  local p, err = new_plan(opts)
  if not p then return nil, err end
  p:close()
  return true
end

local function check_opts(opts)
  local p, servers = new_plan(opts)
  if not p then return nil, servers end
  local st = new_state(opts)
  st.p = p
  st.servers = servers
  st.on_result = opts.on_result
  st.family = nil
  st.tls_verify = opts.tls_verify == true
  st.per_host = opts.per_host or 2
  st.host_pause = opts.host_pause or 0.1
  local timeout = opts.timeout or 30 -- the defaults of smtpc_verify_opts_init
  st.dns_timeout = math.min(timeout, 10)
  st.connect_ms = math.floor((opts.connect_timeout or timeout) * 1000) + 1000
  st.io_ms = math.floor(timeout * 1000) + 1000
  local deadline = opts.deadline or 300
  st.deadline = ngx.now() + deadline
  st.count_ttl = deadline + 60
  if opts.shared_dict ~= nil then
    st.dict = ngx.shared[opts.shared_dict]
    start_heartbeat(opts.shared_dict)
  end
  return st
end

-- Everything still open is closed and every pending address reported (an error or a cancel).
local function cleanup(st)
  st.p:cancel(now_us())
  for _, s in pairs(st.sessions) do
    if s.thread and s.co then kill(s.thread) end
    s.co = nil
  end
  st.pump(MAIN)
  run_queue(st)
  for _, s in pairs(st.sessions) do release(st, s) end
  st.pump(MAIN)
end

local function main(st, addresses)
  local p = st.p
  local now = now_us()
  for i, a in ipairs(addresses) do
    if type(a) ~= "string" then return nil, "addresses must be strings" end
    local ok, err = p:add(now, a, i)
    if not ok then return nil, err end
  end
  p:finish()
  p:tick(now)
  local out = {}
  local hard_stop = ngx.now() + (st.deadline - ngx.now()) + 30
  while true do
    st.pump(MAIN)
    run_queue(st)
    while #st.results > 0 do
      local r = table.remove(st.results, 1)
      out[#out + 1] = r
      if st.on_result then st.on_result(r) end
    end
    if p:done() and st.live == 0 and st.lookups == 0 and #st.queue == 0 then break end
    now = now_us()
    if st.wake > 0 and st.wake <= now then
      st.wake = 0
      p:tick(now)
    elseif ngx.now() > hard_stop then
      cleanup(st) -- a stuck transport: report what is left rather than hang
      hard_stop = math.huge
    elseif #st.results == 0 and #st.queue == 0 then
      local wait_s = st.wake > 0 and (st.wake - now) / 1e6 or 1
      st.sema:wait(math.max(0.001, math.min(wait_s, 1)))
    end
  end
  return out
end

-- verify(addresses, opts) -> array of results (in the order they came) | nil, err
function _M.verify(addresses, opts)
  if type(addresses) ~= "table" then return nil, "addresses must be an array of strings" end
  local st, err = check_opts(opts)
  if not st then return nil, err end
  local ok, out, merr = pcall(main, st, addresses)
  if not ok or not out then
    pcall(cleanup, st)
    st.p:close()
    return nil, ok and merr or ("smtpcode.resty: " .. tostring(out))
  end
  st.p:close()
  return out
end

-- verify_one(address, opts) -> result | nil, err
function _M.verify_one(address, opts)
  if type(address) ~= "string" then return nil, "address must be a string" end
  local o = {}
  for k, v in pairs(opts or {}) do if k ~= "on_result" then o[k] = v end end
  local out, err = _M.verify({ address }, o)
  if not out then return nil, err end
  return out[1]
end

return _M
