-- A client of service.lua (started by it): sends COUNT requests to the requests queue with
-- its own id as the type, GAP_MS apart, and waits for each reply on the replies queue.
-- Outside any event loop, receive_timeout waits in C on the queue's readiness helper.
--   lua5.4 client.lua REQUESTS REPLIES ID COUNT GAP_MS

local mq = require "mq"
local now = require("mq.core").monotonic
local sleep = require("mq.core").sleep

local requests = assert(mq.open(arg[1]))
local replies = assert(mq.open(arg[2]))
local id, count, gap = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]) / 1000

for n = 1, count do
  sleep(gap)
  local t = now()
  assert(requests:send(tostring(n + 10 * id), id))
  local reply = assert(replies:receive_timeout(5, id))
  assert(tonumber(reply) == (n + 10 * id) ^ 2, "wrong reply " .. reply)
  print(string.format("           client %d   %3d -> %-5s round trip %4.0f us", id, n + 10 * id, reply,
    (now() - t) * 1e6))
end
requests:close()
replies:close()
