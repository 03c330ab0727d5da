-- mq on Lua 5.4 running the benchmark's scenarios, written as a user would.
--   lua5.4 mq.lua pair|stream|pingpong SIZE N WARM
--   lua5.4 mq.lua wake N MINGAP MAXGAP    (messages from BENCH_BUILD/cpeer stamp)
--   lua5.4 mq.lua idle SECONDS
--   lua5.4 mq.lua poll                    (prints mq.get_poll(), or the defaults)
--   lua5.4 mq.lua stream-send|pong KEY SIZE COUNT   (partners)
-- BENCH_MQ_HOISTED=1: the loops of pair, stream and pingpong (and the partners')
-- call `send(q, msg)` / `receive(q)` after `local send, receive = q.send, q.receive`,
-- the usual Lua idiom for a hot loop, instead of `q:send(msg)` / `q:receive()`.

local script = arg[0]
local interp = arg[-1]

local U = dofile(script:gsub("[^/]*$", "") .. "util.lua")
local mq = require "mq"
local core = require "mq.core"
local now = core.monotonic

local mode = arg[1]

-- BENCH_POLL_MAX=seconds sets the back-off cap (bench/poll_tradeoff measures it).
local poll_max = tonumber(os.getenv("BENCH_POLL_MAX") or "")
if poll_max then assert(mq.set_poll { max = poll_max }) end
local HOISTED = os.getenv("BENCH_MQ_HOISTED") == "1"

if mode == "poll" then
  -- The back-off of the timed calls, for the C poller to mirror.
  if mq.get_poll then
    local p = mq.get_poll()
    print(string.format("poll %d %.9g %.9g", p.spins, p.min, p.max))
  else
    print("poll 3 50e-6 1e-3 assumed")  -- mq.get_poll does not exist yet
  end
  return
end

if mode == "stream-send" or mode == "pong" then
  local key, size, count = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local q = assert(mq.open(key))
  local msg = string.rep("x", size)
  local send, receive = q.send, q.receive
  if HOISTED and mode == "stream-send" then
    for _ = 1, count do
      if not send(q, msg) then return end
    end
  elseif HOISTED then
    for _ = 1, count do
      if not receive(q, 1) then return end
      if not send(q, msg, 2) then return end
    end
  elseif mode == "stream-send" then
    for _ = 1, count do
      if not q:send(msg) then return end   -- the queue was removed
    end
  else
    for _ = 1, count do
      if not q:receive(1) then return end
      if not q:send(msg, 2) then return end
    end
  end
  q:close()
  return
end

-- A queue of our own: private when one process uses it, else on a fresh random key.
local function new_queue(shared)
  if not shared then
    local q = assert(mq.new(mq.PRIVATE))
    U.queue(q:id(), 0)
    return q, 0
  end
  for _ = 1, 100 do
    local key = U.random_key()
    local q, err, code = mq.new(key)
    if q then
      U.queue(q:id(), key)
      return q, key
    end
    assert(code == "exists", err)
  end
  error("no free key")
end

local q, key = new_queue(mode == "stream" or mode == "pingpong")

local function pair()
  local size, n, warm = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local msg = string.rep("x", size)
  for _ = 1, warm do q:send(msg); q:receive() end
  local send, receive = q.send, q.receive
  local t0 = now()
  local r
  if HOISTED then
    for _ = 1, n do
      send(q, msg)
      r = receive(q)
    end
  else
    for _ = 1, n do
      q:send(msg)
      r = q:receive()
    end
  end
  local dt = now() - t0
  assert(r == msg, "wrong message")
  U.result("ns_per_pair", dt * 1e9 / n)
end

local function stream()
  local size, n, warm = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local msg = string.rep("x", size)
  local p = U.spawn(U.self_cmd(interp, script, "stream-send", key, size, n + warm))
  for _ = 1, warm do q:receive() end
  local receive = q.receive
  local t0 = now()
  local r
  if HOISTED then
    for _ = 1, n do r = receive(q) end
  else
    for _ = 1, n do r = q:receive() end
  end
  local dt = now() - t0
  assert(r == msg, "wrong message")
  U.result("msgs_per_s", n / dt)
  U.await(p)
end

local function pingpong()
  local size, n, warm = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local msg = string.rep("x", size)
  local p = U.spawn(U.self_cmd(interp, script, "pong", key, size, n + warm))
  for _ = 1, warm do q:send(msg, 1); q:receive(2) end
  local send, receive = q.send, q.receive
  local rtt = {}
  if HOISTED then
    for i = 1, n do
      local t = now()
      send(q, msg, 1)
      receive(q, 2)
      rtt[i] = (now() - t) * 1e9
    end
  else
    for i = 1, n do
      local t = now()
      q:send(msg, 1)
      q:receive(2)
      rtt[i] = (now() - t) * 1e9
    end
  end
  U.latencies(rtt, "rtt")
  U.await(p)
end

-- Wake-up latency of receive_timeout: a C stamper sends CLOCK_MONOTONIC ns at random moments.
local WAKE_WARM = 3  -- as in cpeer.c: the first samples may find us still starting

local function wake()
  local n, mingap, maxgap = tonumber(arg[2]), arg[3], arg[4]
  local cpeer = (os.getenv("BENCH_BUILD") or ".") .. "/cpeer"
  local p = U.spawn(table.concat({ cpeer, "stamp", q:id(), n + WAKE_WARM, mingap, maxgap }, " "))
  local lat = {}
  for i = 1 - WAKE_WARM, n do
    local data = assert(q:receive_timeout(60))
    local got = now()
    if i >= 1 then lat[i] = got * 1e9 - string.unpack("=i8", data) end
  end
  for _, ns in ipairs(lat) do io.write(string.format("sample %.0f\n", ns)) end
  U.latencies(lat, "wake")
  U.await(p)
end

-- CPU burnt by a receiver waiting on an empty queue.
local function idle()
  local seconds = tonumber(arg[2])
  local w0, c0 = now(), os.clock()
  local data, _, code = q:receive_timeout(seconds)
  local c, w = os.clock() - c0, now() - w0
  assert(data == nil and code == "timeout", code)
  U.result("cpu_per_wall", c / w)
end

local run = ({ pair = pair, stream = stream, pingpong = pingpong, wake = wake, idle = idle })[mode]
assert(run, "unknown mode " .. tostring(mode))
U.guard(run, function() q:destroy() end)
