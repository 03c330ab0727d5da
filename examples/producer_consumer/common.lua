-- Shared by producer.lua and consumer.lua: join a named queue whichever process comes first.

local mq = require "mq"

local M = {}

M.JOB, M.RESULT = 1, 2      -- message types: jobs go to the consumer, results come back
M.DONE = "\0done"           -- the job that tells the consumer to finish

-- Create the queue, or open it when the other process already has. A few attempts cover the
-- moment when the other side has made the key file but not yet the queue behind it.
function M.attach(name)
  local q, msg, code
  for _ = 1, 100 do
    q, msg, code = mq.new(name)
    if q then return q, "created" end
    if code ~= "exists" then break end
    q, msg, code = mq.open(name)
    if q then return q, "opened" end
    if code ~= "notfound" then break end
  end
  return nil, msg
end

-- attach(), or say why not and exit 1.
function M.attach_or_exit(name, who)
  local q, how = M.attach(name)
  if not q then
    M.say(who, "cannot attach to queue %s: %s", name, how)
    os.exit(1)
  end
  M.say(who, "%s %s", how, tostring(q))
  return q
end

function M.say(who, fmt, ...)
  io.stdout:write(string.format("%-9s| " .. fmt .. "\n", who, ...))
  io.stdout:flush()
end

return M
