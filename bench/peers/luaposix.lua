-- luaposix's posix.sys.msg running the benchmark's scenarios. Debian ships
-- luaposix for Lua 5.3 only, so this runs on lua5.3.
--   lua5.3 luaposix.lua pair|stream|pingpong SIZE N WARM
--   lua5.3 luaposix.lua stream-send|pong ID SIZE COUNT   (partners)
--
-- SIZE is the kernel payload. luaposix's msgsnd hands the kernel 8 bytes
-- more than the string it is given (sizeof(long) + #string), and its msgrcv
-- returns the payload minus 8, so the strings here are SIZE - 8 bytes long.
-- Its msgrcv allocates the size it is given and lets the kernel write the
-- type and up to that many bytes into it, so it gets msgmax + 8.

local script = arg[0]
local interp = arg[-1]

local U = dofile(script:gsub("[^/]*$", "") .. "util.lua")
local msg = require "posix.sys.msg"
local ptime = require "posix.time"
local msgsnd, msgrcv = msg.msgsnd, msg.msgrcv
local clock_gettime, MONO = ptime.clock_gettime, ptime.CLOCK_MONOTONIC

local RCVSIZE = 8192 + 8

local function now()
  local t = clock_gettime(MONO)
  return t.tv_sec * 1000000000 + t.tv_nsec
end

local mode = arg[1]

if mode == "stream-send" or mode == "pong" then
  local id, size, count = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local s = string.rep("x", size - 8)
  if mode == "stream-send" then
    for _ = 1, count do
      if not msgsnd(id, 1, s) then return end   -- the queue was removed
    end
  else
    for _ = 1, count do
      if not msgrcv(id, RCVSIZE, 1) then return end
      if not msgsnd(id, 2, s) then return end
    end
  end
  return
end

local size, n, warm = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local id = assert(msg.msgget(msg.IPC_PRIVATE, msg.IPC_CREAT | 384))
U.queue(id, 0)
local s = string.rep("x", size - 8)

local function remove()
  if msg.msgctl then
    msg.msgctl(id, msg.IPC_RMID)
  else  -- Debian's luaposix 33.4 has no msgctl
    os.execute("ipcrm -q " .. id)
  end
end

local function pair()
  for _ = 1, warm do msgsnd(id, 1, s); msgrcv(id, RCVSIZE) end
  local t0 = now()
  local t, r
  for _ = 1, n do
    msgsnd(id, 1, s)
    t, r = msgrcv(id, RCVSIZE)
  end
  local dt = now() - t0
  assert(t == 1 and r == s, "wrong message")
  U.result("ns_per_pair", dt / n)
end

local function stream()
  local p = U.spawn(U.self_cmd(interp, script, "stream-send", id, size, n + warm))
  for _ = 1, warm do msgrcv(id, RCVSIZE) end
  local t0 = now()
  local t, r
  for _ = 1, n do t, r = msgrcv(id, RCVSIZE) end
  local dt = now() - t0
  assert(t == 1 and r == s, "wrong message")
  U.result("msgs_per_s", n * 1e9 / dt)
  U.await(p)
end

local function pingpong()
  local p = U.spawn(U.self_cmd(interp, script, "pong", id, size, n + warm))
  for _ = 1, warm do msgsnd(id, 1, s); msgrcv(id, RCVSIZE, 2) end
  local rtt = {}
  for i = 1, n do
    local t = now()
    msgsnd(id, 1, s)
    msgrcv(id, RCVSIZE, 2)
    rtt[i] = now() - t
  end
  U.latencies(rtt, "rtt")
  U.await(p)
end

local run = ({ pair = pair, stream = stream, pingpong = pingpong })[mode]
assert(run, "unknown mode " .. tostring(mode))
U.guard(run, remove)
