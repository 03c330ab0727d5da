--- mq under luv (libuv): a waiter for coroutines that luv callbacks resume.
-- A timed call inside such a coroutine registers the readiness fds of the
-- queues it waits for with uv_poll (and a timer for its deadline), yields,
-- and is resumed by the first of them; the luv loop sleeps meanwhile.
--
--     local uv = require "luv"
--     require("mq.luv").install()
--     coroutine.wrap(function() print(q:receive_timeout(5)) end)()
--     uv.run()
--
-- Outside a coroutine the waiter blocks in C, as mq's default does.
-- @module mq.luv

local uv = require "luv"
local mq = require "mq"
local core = require "mq.core"

local huge, floor = math.huge, math.floor
local running, resume, yield, isyieldable = coroutine.running, coroutine.resume,
  coroutine.yield, coroutine.isyieldable
local error, pairs, next, tostring = error, pairs, next, tostring

local M = {}

-- One uv_poll per fd, shared by every coroutine waiting on it (libuv refuses
-- a second poll handle on one fd): polls[fd] = {handle =, waiters = {[co] = wake}}.
local polls = {}

local function watch(fd, co, wake)
  local p = polls[fd]
  if not p then
    p = { handle = uv.new_poll(fd), waiters = {} }
    polls[fd] = p
    p.handle:start("r", function()
      -- A woken coroutine may wait again (or stop waiting) before this returns.
      local wakes = {}
      for _, w in pairs(p.waiters) do wakes[#wakes + 1] = w end
      for i = 1, #wakes do wakes[i]() end
    end)
  end
  p.waiters[co] = wake
end

local function unwatch(fd, co)
  local p = polls[fd]
  if not p then return end
  p.waiters[co] = nil
  if next(p.waiters) == nil then
    polls[fd] = nil
    p.handle:stop()
    p.handle:close()
  end
end

--- waiter(seconds, fds): inside a coroutine, yield until an fd is readable or
-- `seconds` have passed (uv_poll and a uv timer resume it).
function M.waiter(seconds, fds)
  local co = running()
  if not isyieldable() then return core.block(fds or {}, seconds) end
  fds = fds or {}
  local woken, timer = false, nil
  local function wake()
    if woken then return end
    woken = true
    local ok, err = resume(co)
    if not ok then error(tostring(err), 0) end
  end
  for i = 1, #fds do watch(fds[i], co, wake) end
  if seconds < huge then
    timer = uv.new_timer()
    timer:start(floor(seconds * 1000 + 0.999), 0, wake)
  end
  yield()
  for i = 1, #fds do unwatch(fds[i], co) end
  if timer then
    timer:stop()
    timer:close()
  end
end

--- install() -> the previous waiter and its options: make M.waiter mq's waiter.
function M.install()
  return mq.set_waiter(M.waiter, { fds = true })
end

return M
