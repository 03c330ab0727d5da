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

local floor, setmetatable = math.floor, setmetatable
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

-- A wait's registrations go however the waiter is left: resumed, or its coroutine
-- closed (coroutine.close runs this before the wait itself closes its fds: libuv must
-- never poll an fd that was closed under it).
local Registered = {
  __close = function(r)
    for i = 1, #r.fds do unwatch(r.fds[i], r.co) end
    if r.timer then
      r.timer:stop()
      r.timer:close()
    end
  end,
}

-- Longer than this (about 24 days, libuv's timers count int milliseconds) is no deadline.
local LONGEST = 2e9 / 1000

--- waiter(seconds, fds): inside a coroutine, yield until an fd is readable or
-- `seconds` have passed (uv_poll and a uv timer resume it).
function M.waiter(seconds, fds)
  local co = running()
  if not isyieldable() then return core.block(fds or {}, seconds) end
  fds = fds or {}
  local woken = false
  local function wake()
    if woken then return end
    woken = true
    local ok, err = resume(co)
    if not ok then error(tostring(err), 0) end
  end
  local r <close> = setmetatable({ fds = {}, co = co }, Registered)
  if seconds < LONGEST then
    r.timer = uv.new_timer()
    r.timer:start(seconds > 0 and floor(seconds * 1000 + 0.999) or 0, 0, wake)
  end
  for i = 1, #fds do
    watch(fds[i], co, wake)
    r.fds[i] = fds[i]
  end
  yield()
end

--- install() -> the previous waiter and its options: make M.waiter mq's waiter.
function M.install()
  return mq.set_waiter(M.waiter, { fds = true })
end

return M
