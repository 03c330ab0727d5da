-- The consumer: takes jobs until it receives 'done', sending each result back.
-- usage: lua5.4 consumer.lua QUEUE-NAME

local C = require "common"

local name = assert(arg[1], "usage: consumer.lua QUEUE-NAME")
local me = "consumer"

local q = C.attach_or_exit(name, me)
C.say(me, "waiting for jobs (at most 5 s for each)")

local done = 0
while true do
  -- Wait at most 5 seconds for the next job: a producer that died must not hang us.
  local data, err, code = q:receive_timeout(5, C.JOB)
  if not data then
    C.say(me, "gave up waiting (%s): %s", code, err)
    os.exit(1)
  end
  if data == C.DONE then break end
  local i, word = data:match("^(%d+):(.*)$")
  C.say(me, "got job %s %q", i, word)
  assert(q:send(string.format("%s:%s", i, word:upper()), C.RESULT))
  done = done + 1
end

C.say(me, "did %d jobs, saying goodbye", done)
assert(q:send(C.DONE, C.RESULT))
q:close()
