-- The "leanest possible" Lua 5.4 binding (bench/lean.c) running the
-- benchmark's scenarios: the interpreter's own floor.
--   lua5.4 lean.lua pair|stream|pingpong SIZE N WARM
--   lua5.4 lean.lua stream-send|pong ID SIZE COUNT   (partners)
-- BENCH_BUILD names the directory holding lean.so.

local script = arg[0]
local interp = arg[-1]
package.cpath = (os.getenv("BENCH_BUILD") or ".") .. "/?.so;" .. package.cpath

local U = dofile(script:gsub("[^/]*$", "") .. "util.lua")
local lean = require "lean"
local snd, rcv, now = lean.snd, lean.rcv, lean.now

local mode = arg[1]

if mode == "stream-send" or mode == "pong" then
  local id, size, count = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local msg = string.rep("x", size)
  if mode == "stream-send" then
    for _ = 1, count do
      if not snd(id, msg) then return end   -- the queue was removed
    end
  else
    for _ = 1, count do
      if not rcv(id, 1) then return end
      if not snd(id, msg, 2) then return end
    end
  end
  return
end

local size, n, warm = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local id = lean.get(0, 512 + 384)  -- IPC_PRIVATE, IPC_CREAT | 0600
assert(id >= 0, "msgget failed")
U.queue(id, 0)
local msg = string.rep("x", size)

local function pair()
  for _ = 1, warm do snd(id, msg); rcv(id) end
  local t0 = now()
  local r
  for _ = 1, n do
    snd(id, msg)
    r = rcv(id)
  end
  local dt = now() - t0
  assert(r == msg, "wrong message")
  U.result("ns_per_pair", dt / n)
end

local function stream()
  local p = U.spawn(U.self_cmd(interp, script, "stream-send", id, size, n + warm))
  for _ = 1, warm do rcv(id) end
  local t0 = now()
  local r
  for _ = 1, n do r = rcv(id) end
  local dt = now() - t0
  assert(r == msg, "wrong message")
  U.result("msgs_per_s", n * 1e9 / dt)
  U.await(p)
end

local function pingpong()
  local p = U.spawn(U.self_cmd(interp, script, "pong", id, size, n + warm))
  for _ = 1, warm do snd(id, msg, 1); rcv(id, 2) end
  local rtt = {}
  for i = 1, n do
    local t = now()
    snd(id, msg, 1)
    rcv(id, 2)
    rtt[i] = now() - t
  end
  U.latencies(rtt, "rtt")
  U.await(p)
end

local run = ({ pair = pair, stream = stream, pingpong = pingpong })[mode]
assert(run, "unknown mode " .. tostring(mode))
U.guard(run, function() lean.rm(id) end)
