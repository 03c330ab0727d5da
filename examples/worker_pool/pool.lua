-- Shared by boss.lua and worker.lua.
local M = {}

M.JOB, M.REPLY = 1, 2       -- message types
M.STOP = "stop"             -- the job that ends a worker

-- The work: double a number (the point is the traffic, not the computation).
function M.work(job)
  return tostring(tonumber(job) * 2)
end

return M
