-- The boss of a worker pool: sends N jobs and collects N replies.
-- usage: lua5.4 boss.lua JOBS REPLIES N WORKERS
-- With two queues it runs a sender and a collector coroutine under mq.loop, so that a full
-- jobs queue never stops it from collecting. With one queue for both (JOBS == REPLIES) it
-- is the usual first attempt: send every job, then collect. That deadlocks once the queue is
-- full: the boss waits to send, every worker waits to send its reply, and nobody receives.
-- (No boss can make one queue safe: once it is full of jobs while every worker holds a
-- reply, the replies have nowhere to go.) The boss notices that it could not send for 1 s,
-- says so and removes the queue.
local mq = require "mq"
local core = require "mq.core"
local pool = require "pool"

local jobs_name, replies_name = arg[1], arg[2]
local n, workers = tonumber(arg[3]), tonumber(arg[4])
local jobs = assert(mq.open(jobs_name))
local replies = replies_name == jobs_name and jobs or assert(mq.open(replies_name))

local loop = require("mq.loop").new()
local sent, received, sum, stalled = 0, 0, 0, false
local t0 = core.monotonic()

-- Send one job, waiting while the queue is full; false once the collector saw the pool stuck.
local function send(job)
  while not stalled do
    local ok, msg, code = jobs:send_timeout(job, 0.25, pool.JOB)
    if ok then return true end
    if code ~= "timeout" then error(msg) end
  end
  return false
end

local function collect()
  while received < n do
    local reply, mtype, code = replies:receive_timeout(1, pool.REPLY)
    if not reply then
      if code ~= "timeout" then error(mtype) end
      stalled = true                -- nothing for 1 s: the pool is stuck
      return
    end
    received, sum = received + 1, sum + tonumber(reply)
  end
end

if jobs == replies then             -- one queue: send everything, then collect
  loop:spawn(function()
    for i = 1, n do
      local ok, msg, code = jobs:send_timeout(tostring(i), 1, pool.JOB)
      if not ok then
        if code ~= "timeout" then error(msg) end
        stalled = true              -- could not send for 1 s: the pool is stuck
        return
      end
      sent = i
    end
    collect()
  end)
else                                -- two queues: send and collect at once
  loop:spawn(function()
    for i = 1, n do
      if not send(tostring(i)) then return end
      sent = i
    end
    for _ = 1, workers do send(pool.STOP) end
  end)
  loop:spawn(collect)
end

loop:run()
local seconds = core.monotonic() - t0
if stalled then
  print(string.format("one queue for jobs and replies: stuck after %d jobs sent and %d replies "
    .. "(the queue is full, the boss and every worker wait to send into it)", sent, received))
  jobs:destroy()                    -- frees the workers: their calls fail with `removed`
  os.exit(3)
end
assert(sum == n * (n + 1), "a reply was lost or wrong")
print(string.format("two queues: %d jobs and replies through %d workers in %.2f s (%.0f jobs/s)",
  n, workers, seconds, n / seconds))
