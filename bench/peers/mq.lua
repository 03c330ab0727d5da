-- mq on Lua 5.4 running the benchmark's scenarios, written as a user would.
--   lua5.4 mq.lua pair|stream|pingpong SIZE N WARM
--   lua5.4 mq.lua wake N MINGAP MAXGAP    (messages from BENCH_BUILD/cpeer stamp)
--   lua5.4 mq.lua idle SECONDS
--   lua5.4 mq.lua fan QUEUES N MINGAP MAXGAP loop|cqueues|luv
--   lua5.4 mq.lua fanidle QUEUES SECONDS loop|cqueues|luv
--   lua5.4 mq.lua poll                    (prints mq.get_poll(), or the defaults)
--   lua5.4 mq.lua stream-send|pong KEY SIZE COUNT   (partners)
-- BENCH_MQ_HOISTED=1: the loops of pair, stream and pingpong (and the partners')
-- call `send(q, msg)` / `receive(q)` after `local send, receive = q.send, q.receive`,
-- the usual Lua idiom for a hot loop, instead of `q:send(msg)` / `q:receive()`.
-- BENCH_MQ_THREADS=0: mq.set_poll{threads = false}, the polling fallback (wake, idle).
-- fan and fanidle (scenario F): one coroutine per queue waits in receive_timeout under
-- mq.loop, cqueues (mq.cqueues) or luv (mq.luv); fan's messages come from
-- BENCH_BUILD/cpeer stampmany, to a random queue each, then a "stop" (type 2) to each.

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
if os.getenv("BENCH_MQ_THREADS") == "0" then assert(mq.set_poll { threads = false }) end

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

-- Scenario F: QUEUES private queues, one coroutine waiting on each, under a runner.
local function fan_queues(n)
  local qs = {}
  for i = 1, n do
    qs[i] = assert(mq.new(mq.PRIVATE))
    U.queue(qs[i]:id(), 0)
  end
  return qs
end

-- runner(qs, body, starter): body(q) in a coroutine per queue; starter(sleep) in one
-- more, once the others had time to start waiting; returns when all have finished.
local RUNNERS = {}
function RUNNERS.loop(qs, body, starter)
  local loop = require("mq.loop").new()
  for i = 1, #qs do loop:spawn(body, qs[i]) end
  loop:spawn(function()
    loop:sleep(0.1)
    starter(function(s) loop:sleep(s) end)
  end)
  assert(loop:run(3600))
end
function RUNNERS.cqueues(qs, body, starter)
  local cqueues = require "cqueues"
  require("mq.cqueues").install()
  local cq = cqueues.new()
  for i = 1, #qs do cq:wrap(body, qs[i]) end
  cq:wrap(function()
    cqueues.sleep(0.1)
    starter(cqueues.sleep)
  end)
  assert(cq:loop())
end
function RUNNERS.luv(qs, body, starter)
  local uv = require "luv"
  require("mq.luv").install()
  local function sleep(s)
    local co, t = coroutine.running(), uv.new_timer()
    t:start(math.floor(s * 1000 + 0.5), 0, function()
      t:close()
      assert(coroutine.resume(co))
    end)
    coroutine.yield()
  end
  local failed
  local function go(fn, ...)
    local co = coroutine.create(fn)
    local ok, err = coroutine.resume(co, ...)
    if not ok then failed = err end
  end
  for i = 1, #qs do go(body, qs[i]) end
  go(function()
    sleep(0.1)
    starter(sleep)
  end)
  uv.run()
  assert(not failed, failed)
end

local function fan_runner(name)
  local r = RUNNERS[name]
  assert(r, "unknown runner " .. tostring(name))
  return r
end

local WAKE_WARM = 3  -- as in cpeer.c: the first samples may find us still starting

-- Wake-up latency of 100 coroutines waiting on 100 queues, a message to one at a time.
local function fan()
  local nq, n, mingap, maxgap, runner = tonumber(arg[2]), tonumber(arg[3]), arg[4], arg[5], arg[6]
  local run = fan_runner(runner)
  local qs = fan_queues(nq)
  local cpeer = (os.getenv("BENCH_BUILD") or ".") .. "/cpeer"
  local lat, stamper = {}, nil
  local unpack = string.unpack
  local function body(q)
    while true do
      local data, t = q:receive_timeout(600)
      local got = now()
      assert(data, t)
      if t == 2 then break end
      lat[#lat + 1] = got * 1e9 - unpack("=i8", data)
    end
  end
  local ids = {}
  for i = 1, nq do ids[i] = qs[i]:id() end
  run(qs, body, function()
    stamper = U.spawn(table.concat({ cpeer, "stampmany", n + WAKE_WARM, mingap, maxgap, 0,
      table.concat(ids, " ") }, " "))
  end)
  U.await(stamper)
  local samples = {}
  for i = WAKE_WARM + 1, #lat do samples[#samples + 1] = lat[i] end
  for _, ns in ipairs(samples) do io.write(string.format("sample %.0f\n", ns)) end
  U.latencies(samples, "wake")
  for _, q in ipairs(qs) do q:destroy() end
end

-- The whole process's CPU while 100 coroutines wait on 100 empty queues.
local function fanidle()
  local nq, seconds, runner = tonumber(arg[2]), tonumber(arg[3]), arg[4]
  local run = fan_runner(runner)
  local qs = fan_queues(nq)
  local function body(q)
    local data, t = q:receive_timeout(seconds + 600)
    assert(data and t == 2, t)
  end
  run(qs, body, function(sleep)
    sleep(0.1)                          -- every coroutine waits by now
    local w0, c0 = now(), os.clock()
    sleep(seconds)
    local c, w = os.clock() - c0, now() - w0
    U.result("cpu_per_wall", c / w)
    for _, q in ipairs(qs) do assert(q:send("stop", 2)) end
  end)
  for _, q in ipairs(qs) do q:destroy() end
end

if mode == "fan" or mode == "fanidle" then
  local main = mode == "fan" and fan or fanidle
  local ok, err = xpcall(main, debug.traceback)
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  return
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
