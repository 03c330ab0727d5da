-- The producer: sends one job per word, then collects the consumer's results.
-- usage: lua5.4 producer.lua QUEUE-NAME WORD...

local C = require "common"

local name = assert(arg[1], "usage: producer.lua QUEUE-NAME WORD...")
local words = table.move(arg, 2, #arg, 1, {})
local me = "producer"

local q = C.attach_or_exit(name, me)

for i, w in ipairs(words) do
  assert(q:send(string.format("%d:%s", i, w), C.JOB))
  C.say(me, "sent job %d %q", i, w)
end
assert(q:send(C.DONE, C.JOB))
C.say(me, "sent 'done'")
local st = q:stat()
if st then
  C.say(me, "the queue now holds %d messages, %d bytes", st.messages, st.bytes)
end

-- The results come back as type RESULT, so the producer never takes its own jobs.
local got, failed = {}, false
for _ = 1, #words + 1 do
  local data, err = q:receive_timeout(5, C.RESULT)
  if not data then
    C.say(me, "no result: %s", err)
    failed = true
    break
  end
  if data == C.DONE then
    C.say(me, "consumer said goodbye")
  else
    local i, r = data:match("^(%d+):(.*)$")
    got[tonumber(i)] = r
    C.say(me, "result %s %q", i, r)
  end
end

for i = 1, #words do
  if got[i] == nil then
    C.say(me, "missing the result of job %d", i)
    failed = true
  end
end

-- Both sides are finished with the queue now: remove it and its key file.
assert(q:destroy())
C.say(me, "removed the queue; results: %s", table.concat(got, " "))
os.exit(failed and 1 or 0)
