--- A small event loop for scripts that have none. It runs coroutines; when
-- every one of them waits in mq (or in loop:sleep), it blocks in ppoll on all
-- their readiness fds until the earliest deadline, so a waiting script costs
-- no CPU and wakes within microseconds of a message.
--
--     local loop = require("mq.loop").new()
--     loop:spawn(function() print(q:receive_timeout(5)) end)
--     loop:run()
--
-- While `run` runs, the loop is mq's waiter (mq.set_waiter with fds) for its
-- own coroutines; any other caller gets the waiter that was set before.
-- @module mq.loop

local mq = require "mq"
local core = require "mq.core"

local monotonic, block, getpid, hook_mark = core.monotonic, core.block, core.getpid, core.hook_mark
local create, resume, running, status, yield, isyieldable = coroutine.create, coroutine.resume,
  coroutine.running, coroutine.status, coroutine.yield, coroutine.isyieldable
local huge, pack, unpack = math.huge, table.pack, table.unpack
local error, type, setmetatable, tostring, pairs, ipairs, pcall =
  error, type, setmetatable, tostring, pairs, ipairs, pcall

-- What a loop coroutine yields when it waits: WAIT, seconds, fds.
local WAIT = setmetatable({}, { __name = "mq.loop wait" })

local Loop = {}
Loop.__index = Loop

local M = {}

--- mq.loop.new() -> a loop with no coroutines.
function M.new()
  return setmetatable({ tasks = {}, order = {}, count = 0 }, Loop)
end

--- loop:spawn(fn, ...) -> the coroutine that runs fn(...) once the loop runs.
function Loop:spawn(fn, ...)
  if type(fn) ~= "function" then
    error(("bad argument #1 to 'spawn' (function expected, got %s)"):format(type(fn)), 2)
  end
  local co = create(fn)
  -- A task waits when it has a deadline (and maybe fds); it is runnable when not.
  self.tasks[co] = { args = pack(...) }
  self.order[#self.order + 1] = co
  self.count = self.count + 1
  return co
end

--- loop:sleep(seconds): inside one of the loop's coroutines, let the others run.
function Loop:sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds then
    error(("bad argument #1 to 'sleep' (number expected, got %s)"):format(type(seconds)), 2)
  end
  if self.tasks[running()] == nil then error("loop:sleep outside this loop's coroutines", 2) end
  yield(WAIT, seconds, nil)
end

--- loop:size() -> how many of its coroutines have not finished.
function Loop:size()
  return self.count
end

-- Resume co; record whether it finished, waits, or only yielded (runnable).
local function step(self, co, task)
  local args = task.args
  task.args, task.deadline, task.fds = nil, nil, nil
  local r
  if args then r = pack(resume(co, unpack(args, 1, args.n))) else r = pack(resume(co)) end
  if not r[1] then
    error(debug and debug.traceback(co, tostring(r[2])) or tostring(r[2]), 0)
  end
  if status(co) == "dead" then
    self.tasks[co] = nil
    self.count = self.count - 1
  elseif r[2] == WAIT then
    local seconds = r[3]
    task.deadline = seconds < huge and monotonic() + seconds or huge
    task.fds = r[4]
  end
end

-- Every task waits: block until the earliest deadline (or `stop`) or one of
-- their fds, then make runnable those whose time or fd came. True when the
-- main thread's hook changed since run began, seen from a coroutine: a signal
-- handler's (lua.c's Ctrl-C), which only ending run lets run.
local function block_all(self, tasks, stop)
  if getpid() ~= self.pid then
    -- A coroutine forked: here, the waits' fds are the parent's helpers'. Every wait
    -- polls again, and arms helpers of this process's own.
    self.pid = getpid()
    for _, task in pairs(tasks) do
      if task.fds then task.deadline = nil end
    end
    return
  end
  local earliest, fds, owners = stop, {}, {}
  for co, task in pairs(tasks) do
    if task.deadline < earliest then earliest = task.deadline end
    for _, fd in ipairs(task.fds or {}) do
      if not owners[fd] then
        fds[#fds + 1] = fd
        owners[fd] = {}
      end
      owners[fd][#owners[fd] + 1] = co
    end
  end
  local ready, why = block(fds, earliest - monotonic(), self.mark)
  if why == "interrupted" then return true end
  -- This thread's hook changed: back in Lua it runs; the next block starts from it.
  if why == "signal" then self.mark = hook_mark() end
  local now = monotonic()
  for _, task in pairs(tasks) do
    if task.deadline <= now then task.deadline = nil end
  end
  for _, fd in ipairs(ready or {}) do
    for _, co in ipairs(owners[fd]) do tasks[co].deadline = nil end
  end
end

local function run(self, stop)
  local tasks = self.tasks
  while self.count > 0 do
    -- Every runnable coroutine runs once, in spawn order.
    local order, waiting = {}, true
    for _, co in ipairs(self.order) do
      local task = tasks[co]
      if task then
        order[#order + 1] = co
        if task.deadline == nil then step(self, co, task) end
        if tasks[co] and tasks[co].deadline == nil then waiting = false end
      end
    end
    self.order = order
    if self.count > 0 then
      if monotonic() >= stop then return false end
      if waiting and block_all(self, tasks, stop) then
        return nil, "run: interrupted by a signal", "interrupted"
      end
    end
  end
  return true
end

--- loop:run([timeout]) -> true once every coroutine has finished, false when
-- `timeout` seconds passed first, or nil, message, "interrupted" when run itself
-- runs in a coroutine and a signal handler hooked the main thread (lua.c's
-- Ctrl-C): the main thread can run its hook only once run returns. An error in
-- a coroutine is raised here, with that coroutine's traceback; the loop's other
-- coroutines are closed then (their waits end), and the loop is empty.
function Loop:run(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    error(("bad argument #1 to 'run' (number expected, got %s)"):format(type(timeout)), 2)
  end
  local stop = (timeout and timeout >= 0) and monotonic() + timeout or huge
  local tasks, previous, previous_opts = self.tasks, nil, nil
  -- A timed call that cannot yield (inside a C function such as table.sort's comparator)
  -- waits as it would outside the loop, through the waiter that was there before.
  local function waiter(seconds, fds)
    if tasks[running()] and isyieldable() then return yield(WAIT, seconds, fds) end
    if previous_opts and previous_opts.fds then return previous(seconds, fds) end
    return previous(seconds < 1e-3 and seconds or 1e-3)
  end
  previous, previous_opts = mq.set_waiter(waiter, { fds = true })
  self.pid, self.mark = getpid(), hook_mark()
  local ok, result, why, code = pcall(run, self, stop)
  mq.set_waiter(previous, previous_opts)
  if not ok then
    -- The others are closed, so their waits end and their helpers stop.
    for co in pairs(tasks) do coroutine.close(co) end
    self.tasks, self.order, self.count = {}, {}, 0
    error(result, 0)
  end
  return result, why, code
end

return M
