-- A two-queue service under luv: requests come in on one named queue, replies go out on
-- another. require("mq.luv").install() makes a timed receive inside a coroutine wait in the
-- luv loop (uv_poll on the queue's readiness fd, and a timer for its deadline), so the
-- service costs no CPU while idle, wakes within microseconds of a request, and luv keeps
-- running everything else meanwhile: here a heartbeat timer and two client processes it
-- started with uv.spawn.

local uv = require "luv"
local mq = require "mq"
require("mq.luv").install()

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local tag = string.format("luv-%d-%d", uv.os_getpid(), math.floor(uv.hrtime() % 1e6))
local requests = assert(mq.new(tag .. "-requests"))
local replies = assert(mq.new(tag .. "-replies"))
local t0 = uv.hrtime()

local function say(fmt, ...)
  print(string.format("%7.1f ms  " .. fmt, (uv.hrtime() - t0) / 1e6, ...))
end

-- The service: a request is a number, its type the client's id; the reply, its square,
-- goes back with the same type, so each client receives only its own replies.
local served, failed = 0, nil
local service = coroutine.wrap(function()
  while true do
    local data, client = requests:receive_timeout(10)
    if not data then
      failed = "service: " .. tostring(client)
      return
    end
    if data == "stop" then break end
    local n = tonumber(data)
    assert(replies:send(tostring(n * n), client))
    served = served + 1
  end
  say("service    stopped after %d requests", served)
end)

-- A heartbeat: the loop goes on turning while the service waits.
local beats = 0
local heartbeat = uv.new_timer()
heartbeat:start(50, 50, function() beats = beats + 1 end)

-- Two clients, each a separate lua5.4 process (client.lua) sending requests at its pace.
local running = 0
local function client(id, count, gap_ms)
  running = running + 1
  local handle
  handle = uv.spawn(uv.exepath(), {
    args = { here .. "/client.lua", requests:name(), replies:name(), tostring(id), tostring(count),
             tostring(gap_ms) },
    stdio = { nil, 1, 2 },
  }, function(code)
    handle:close()
    if code ~= 0 then failed = "client " .. id .. " exited " .. code end
    running = running - 1
    if running == 0 then                 -- both done: stop the service and the heartbeat
      assert(requests:send("stop", 1))
      heartbeat:stop()
      heartbeat:close()
    end
  end)
  assert(handle, "cannot start client " .. id)
end

local cpu0 = os.clock()
service()                                -- runs until its first wait, then luv resumes it
client(1, 5, 40)
client(2, 8, 25)
uv.run()
local wall, cpu = (uv.hrtime() - t0) / 1e9, os.clock() - cpu0
assert(requests:destroy())
assert(replies:destroy())

say("heartbeat  beat %d times meanwhile", beats)
print(string.format("the service process used %.1f ms of CPU in %.0f ms", cpu * 1000, wall * 1000))
if failed or served ~= 13 or beats < 2 then
  print("FAILED: " .. tostring(failed or (served .. " requests served, " .. beats .. " beats")))
  os.exit(1)
end
print("ok")
