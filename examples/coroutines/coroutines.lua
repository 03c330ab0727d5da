-- Several consumers and a producer as coroutines in one Lua state, under mq.loop, the
-- small event loop that comes with mq. Each consumer waits on the same queue for its own
-- message type with receive_timeout; while every coroutine waits, the loop sleeps in
-- ppoll on their queues' readiness fds, so waiting costs no CPU and a message wakes its
-- consumer at once. Then the same wait under a plain round-robin loop, for comparison.

local mq = require "mq"
local core = require "mq.core"

local now = core.monotonic
local q = assert(mq.new(mq.PRIVATE))   -- a private queue: no name, no key file
local t0 = now()
local log = {}                         -- what happened, checked at the end

local function say(who, fmt, ...)
  local text = string.format(fmt, ...)
  log[#log + 1] = { who = who, text = text }
  print(string.format("%7.1f ms  %-10s %s", (now() - t0) * 1000, who, text))
end

local loop = require("mq.loop").new()
local sent_at = {}

-- Consumer `n` takes messages of type n until it receives "stop".
local function consumer(n)
  local me = "consumer " .. n
  say(me, "waiting for type %d", n)
  while true do
    local data, err = q:receive_timeout(5, n)
    if not data then error(err) end
    if data == "stop" then break end
    say(me, "got %q, %.0f us after it was sent", data, (now() - sent_at[data]) * 1e6)
  end
  say(me, "stopped")
end

-- A consumer that waits for a type nobody sends: it times out, and nobody else stalls.
local function impatient()
  say("impatient", "waiting 0.05 s for type 9")
  local data, err, code = q:receive_timeout(0.05, 9)
  assert(data == nil and code == "timeout", err)
  say("impatient", "gave up: %s", code)
end

-- The producer works a little (loop:sleep lets the others run) between sends.
local function producer()
  for _, m in ipairs({ { 3, "apples" }, { 1, "bread" }, { 2, "cheese" }, { 3, "dates" } }) do
    loop:sleep(0.02)
    sent_at[m[2]] = now()
    assert(q:send(m[2], m[1]))
    say("producer", "sent %q to type %d", m[2], m[1])
  end
  loop:sleep(0.02)
  for n = 1, 3 do assert(q:send("stop", n)) end
  say("producer", "told everyone to stop")
end

for n = 1, 3 do loop:spawn(consumer, n) end
loop:spawn(impatient)
loop:spawn(producer)
local cpu0 = os.clock()
local ok = loop:run(10)
local wall, cpu = now() - t0, os.clock() - cpu0

-- Consumer 3 got its first message while consumers 1 and 2, which started waiting before
-- it, were still waiting: nobody's wait held up the others.
local got = {}
for _, e in ipairs(log) do
  if e.text:match("^got") then got[#got + 1] = e.who .. " " .. e.text:match('^got "%a+"') end
end
local expected = {
  'consumer 3 got "apples"', 'consumer 1 got "bread"',
  'consumer 2 got "cheese"', 'consumer 3 got "dates"',
}
if table.concat(got, "\n") ~= table.concat(expected, "\n") then
  print("unexpected order of deliveries:\n  " .. table.concat(got, "\n  "))
  ok = false
end
print(string.format("mq.loop: %.0f ms of waiting took %.1f ms of CPU", wall * 1000, cpu * 1000))

-- The same 0.05 s wait under a plain round-robin loop. mq's default waiter yields in a
-- coroutine, so the wait never blocks the loop, but such a loop has nothing to sleep on:
-- it resumes the waiting coroutine again and again, and burns a core while it waits.
local co = coroutine.create(function() return q:receive_timeout(0.05, 9) end)
local resumes, w0, c0 = 0, now(), os.clock()
while coroutine.status(co) ~= "dead" do
  assert(coroutine.resume(co))
  resumes = resumes + 1
end
local rr_wall, rr_cpu = now() - w0, os.clock() - c0
print(string.format("plain round-robin: one 0.05 s wait took %d resumes and %.0f ms of CPU (%.0f%% of a core)",
  resumes, rr_cpu * 1000, rr_cpu / rr_wall * 100))

assert(q:destroy())
print(ok and "ok: all consumers served in turn" or "FAILED")
os.exit(ok and 0 or 1)
