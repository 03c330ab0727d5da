-- Several consumers and a producer in one Lua state, under a plain round-robin scheduler.
-- Each consumer waits on the same queue for its own message type with receive_timeout; while
-- one waits, mq's default waiter yields, so the scheduler runs the others.

local mq = require "mq"

local q = assert(mq.new(mq.PRIVATE))   -- a private queue: no name, no key file
local round = 0                        -- the scheduler's round, to show who ran when
local log = {}                         -- what happened, checked at the end

local function say(who, fmt, ...)
  local line = string.format("round %5d  %-10s " .. fmt, round, who, ...)
  log[#log + 1] = { who = who, text = string.format(fmt, ...) }
  print(line)
end

-- The scheduler: resume every task once per round, in order, until all have finished.
local tasks = {}
local function spawn(name, fn)
  tasks[#tasks + 1] = { name = name, co = coroutine.create(fn) }
end

local function run()
  local failed = false
  while #tasks > 0 do
    round = round + 1
    local alive = {}
    for _, t in ipairs(tasks) do
      local ok, err = coroutine.resume(t.co)
      if not ok then
        print(string.format("%s failed: %s", t.name, tostring(err)))
        failed = true
      elseif coroutine.status(t.co) ~= "dead" then
        alive[#alive + 1] = t
      end
    end
    tasks = alive
  end
  return not failed
end

-- Consumer `n` takes messages of type n until it receives "stop".
local function consumer(n)
  local me = "consumer " .. n
  return function()
    say(me, "waiting for type %d", n)
    while true do
      local data, err = q:receive_timeout(5, n)
      if not data then error(err) end
      if data == "stop" then break end
      say(me, "got %q", data)
    end
    say(me, "stopped")
  end
end

-- A consumer that waits for a type nobody sends: it times out, and nobody else stalls.
local function impatient()
  say("impatient", "waiting 0.05 s for type 9")
  local data, err, code = q:receive_timeout(0.05, 9)
  assert(data == nil and code == "timeout", err)
  say("impatient", "gave up: %s", code)
end

-- The producer works a little (a few rounds) between sends, so the consumers really wait.
local function producer()
  local function work(rounds) for _ = 1, rounds do coroutine.yield() end end
  for _, m in ipairs({ { 3, "apples" }, { 1, "bread" }, { 2, "cheese" }, { 3, "dates" } }) do
    work(50)
    assert(q:send(m[2], m[1]))
    say("producer", "sent %q to type %d", m[2], m[1])
  end
  work(50)
  for n = 1, 3 do assert(q:send("stop", n)) end
  say("producer", "told everyone to stop")
end

spawn("consumer 1", consumer(1))
spawn("consumer 2", consumer(2))
spawn("consumer 3", consumer(3))
spawn("impatient", impatient)
spawn("producer", producer)
local ok = run()
assert(q:destroy())

-- Consumer 3 got its first message while consumers 1 and 2, which started waiting before
-- it, were still waiting: nobody's wait held up the others.
local got = {}
for _, e in ipairs(log) do
  if e.text:match("^got") then got[#got + 1] = e.who .. " " .. e.text end
end
local expected = {
  'consumer 3 got "apples"', 'consumer 1 got "bread"',
  'consumer 2 got "cheese"', 'consumer 3 got "dates"',
}
if table.concat(got, "\n") ~= table.concat(expected, "\n") then
  print("unexpected order of deliveries:\n  " .. table.concat(got, "\n  "))
  ok = false
end
print(string.format("%d rounds, %s", round, ok and "all consumers served in turn" or "FAILED"))
os.exit(ok and 0 or 1)
