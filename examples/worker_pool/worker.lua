-- A worker: takes jobs from the jobs queue, sends each reply to the replies queue (which
-- is the jobs queue itself in the one-queue layout), until a STOP job or the queue goes.
-- usage: lua5.4 worker.lua JOBS REPLIES
local mq = require "mq"
local pool = require "pool"

local jobs = assert(mq.open(arg[1]))
local replies = arg[2] == arg[1] and jobs or assert(mq.open(arg[2]))
while true do
  local job, mtype, code = jobs:receive(pool.JOB)
  if not job then
    if code == "removed" then break end    -- the boss gave up (the one-queue deadlock)
    error(mtype)
  end
  if job == pool.STOP then break end
  local ok, msg, why = replies:send(pool.work(job), pool.REPLY)
  if not ok then
    if why == "removed" then break end
    error(msg)
  end
end
jobs:close()
replies:close()
