-- mq under a real scheduler: cqueues. require("mq.cqueues").install() makes every timed
-- receive (receive_timeout, select, messages) sleep in the cqueues controller on the
-- readiness fd of the queue it waits for, so a waiting coroutine costs no CPU, a message
-- wakes it at once, and the loop keeps running the others meanwhile.

local cqueues = require "cqueues"
local mq = require "mq"

require("mq.cqueues").install()

local q = assert(mq.new(mq.PRIVATE))
local t0, cpu0 = cqueues.monotime(), os.clock()
local got = {}
local sent_at = {}

local function say(who, fmt, ...)
  print(string.format("%6.0f ms  %-10s " .. fmt, (cqueues.monotime() - t0) * 1000, who, ...))
end

local cq = cqueues.new()

-- Two consumers, each waiting for its own message type until it receives "stop".
for n = 1, 2 do
  cq:wrap(function()
    local me = "consumer " .. n
    say(me, "waiting for type %d", n)
    while true do
      local data, err = q:receive_timeout(2, n)
      if not data then error(err) end
      if data == "stop" then break end
      say(me, "got %q, %.0f us after it was sent", data, (cqueues.monotime() - sent_at[data]) * 1e6)
      got[#got + 1] = me .. ":" .. data
    end
    say(me, "stopped")
  end)
end

-- A consumer that gives up: its timeout runs on the scheduler's clock too.
cq:wrap(function()
  local data, err, code = q:receive_timeout(0.1, 9)
  assert(data == nil and code == "timeout", err)
  say("impatient", "gave up after 0.1 s (%s)", code)
  got[#got + 1] = "impatient:" .. code
end)

-- A ticker: the loop keeps turning while the consumers wait.
local ticks = 0
cq:wrap(function()
  for _ = 1, 5 do
    cqueues.sleep(0.05)
    ticks = ticks + 1
  end
  say("ticker", "ticked %d times", ticks)
end)

-- The producer sends a message every 60 ms.
cq:wrap(function()
  for _, m in ipairs({ { 2, "ping" }, { 1, "pong" }, { 2, "pang" } }) do
    cqueues.sleep(0.06)
    sent_at[m[2]] = cqueues.monotime()
    assert(q:send(m[2], m[1]))
    say("producer", "sent %q to type %d", m[2], m[1])
  end
  cqueues.sleep(0.06)
  assert(q:send("stop", 1))
  assert(q:send("stop", 2))
end)

local ok, err = cq:loop()
assert(q:destroy())
if not ok then
  print("FAILED: " .. tostring(err))
  os.exit(1)
end

local wall, cpu = cqueues.monotime() - t0, os.clock() - cpu0
print(string.format("%.0f ms of waiting took %.0f ms of CPU", wall * 1000, cpu * 1000))
table.sort(got)
local want = "consumer 1:pong consumer 2:pang consumer 2:ping impatient:timeout"
if table.concat(got, " ") ~= want or ticks ~= 5 then
  print("FAILED: got " .. table.concat(got, " ") .. ", " .. ticks .. " ticks")
  os.exit(1)
end
print("ok")
