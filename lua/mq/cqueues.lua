--- mq under cqueues: a waiter that lets the cqueues controller sleep on the
-- readiness fds of the queues a timed call waits for.
--
--     local cqueues = require "cqueues"
--     require("mq.cqueues").install()
--     local cq = cqueues.new()
--     cq:wrap(function() print(q:receive_timeout(5)) end)
--     assert(cq:loop())
--
-- cqueues polls any object with :pollfd(), :events() and :timeout(); the
-- waiter wraps each fd in one. Where the caller cannot yield (outside a
-- coroutine, in a finalizer), the waiter blocks in C on the fds instead.
-- @module mq.cqueues

local cqueues = require "cqueues"
local mq = require "mq"

local huge, setmetatable, isyieldable = math.huge, setmetatable, coroutine.isyieldable
local block = require("mq.core").block
local poll, sleep, cancel = cqueues.poll, cqueues.sleep, cqueues.cancel

-- An fd as cqueues sees a pollable object.
local Fd = {}
Fd.__index = Fd
function Fd:pollfd() return self.fd end
function Fd.events() return "r" end
function Fd.timeout() return nil end

local M = {}

--- waiter(seconds, fds): poll the fds (or sleep) through cqueues, at most `seconds`.
-- A wait's fds close when it ends, so cqueues is told to forget them each time
-- (cqueues.cancel), as it must be before any fd it polled is closed.
function M.waiter(seconds, fds)
  -- Where the caller cannot yield (a finalizer, a sort comparator), block in C as mq's
  -- own waiter does: cqueues would try to yield.
  if not isyieldable() then return block(fds or {}, seconds) end
  if fds == nil or #fds == 0 then return sleep(seconds) end
  local objects = {}
  for i = 1, #fds do objects[i] = setmetatable({ fd = fds[i] }, Fd) end
  if seconds < huge then objects[#objects + 1] = seconds end
  poll(table.unpack(objects))
  cancel(table.unpack(fds))
end

--- install() -> the previous waiter and its options: make M.waiter mq's waiter.
function M.install()
  return mq.set_waiter(M.waiter, { fds = true })
end

--- pollable(q [, selector]) -> an object cqueues.poll accepts: it arms q for
-- selector each time cqueues asks for its fd, so polling it again after a
-- receive that found nothing re-arms the helper. Before q:disarm() or
-- q:close(), call cqueues.cancel on its fd: they close it.
function M.pollable(q, selector)
  local fd = assert(q:arm(selector))
  return setmetatable({ fd = fd, q = q, selector = selector }, {
    __index = {
      pollfd = function(self) return (assert(self.q:arm(self.selector))) end,
      events = Fd.events,
      timeout = Fd.timeout,
    },
  })
end

return M
