--- mq: System V message queues for Lua 5.4.
-- The C core (mq.core) does every system call; this layer is policy on top of
-- it: timed calls that poll in nonblocking mode with an adaptive back-off,
-- select over several queues, the messages iterator and the waiter hook.
-- The reference is README.md; the contract is API.md.

local core = require "mq.core"

local poll_send, poll_receive = core.poll_send, core.poll_receive
local wait_send, wait_receive, wait_select = core.wait_send, core.wait_receive, core.wait_select
local monotonic, sleep = core.monotonic, core.sleep
local isyieldable, yield = coroutine.isyieldable, coroutine.yield
local huge, tointeger = math.huge, math.tointeger
local error, type, tostring, getmetatable = error, type, tostring, getmetatable

local mq = {
  new = core.new,
  open = core.open,
  open_id = core.open_id,
  destroy = core.destroy,
  list = core.list,
  ftok = core.ftok,
  limits = core.limits,
  O_RDONLY = core.O_RDONLY,
  O_WRONLY = core.O_WRONLY,
  O_RDWR = core.O_RDWR,
  O_NONBLOCK = core.O_NONBLOCK,
  O_CREAT = core.O_CREAT,
  PRIVATE = core.PRIVATE,
  _VERSION = core._VERSION,
}

--- The seed's explicit System V calls; new/open/destroy are the same functions.
mq.sysv = { create = core.new, open = core.open, destroy = core.destroy }

local methods = core.methods
local queue_mt = core.metatable

-- Back-off of the timed calls: `spins` immediate retries, then waits from
-- `min` seconds doubling up to `max`. A lower max wakes sooner when a message
-- arrives; a higher one burns less CPU while idle (see README, Performance).
local poll = { spins = 3, min = 50e-6, max = 1e-3 }

--- The default waiter: yield inside any yieldable coroutine (so a round-robin
-- scheduler keeps its other coroutines running), sleep in C otherwise.
local function default_waiter(seconds)
  if isyieldable() then
    yield()
  else
    sleep(seconds)
  end
end

local waiter = default_waiter

-- Errors point at the caller's line, as the C functions' do: the first stack
-- level outside this file (found through debug when the host has it).
local SELF = debug and debug.getinfo(1, "S").source
local getinfo = debug and debug.getinfo

local function raise(msg)
  local level = 2
  while getinfo do
    local info = getinfo(level, "S")
    if info == nil or info.source ~= SELF then break end
    level = level + 1
  end
  error(msg, level)
end

local function argerror(n, fname, msg)
  raise(("bad argument #%d to '%s' (%s)"):format(n, fname, msg))
end

local function check_type(v, n, fname, want, optional)
  local t = type(v)
  if t == want or (optional and v == nil) or (want == "string" and t == "number") then return end
  argerror(n, fname, ("%s expected, got %s"):format(want, v == nil and "no value" or t))
end

-- A receive selector: nil, an integer type, or {except = type} (checked in C).
local function check_selector(v, n, fname)
  local t = type(v)
  if v == nil or t == "number" or t == "table" then return end
  argerror(n, fname, ("integer or {except = type} expected, got %s"):format(t))
end

-- nil, message, "closed" naming `op` when q is closed; true otherwise.
local function check_open(q, op)
  if q:id() then return true end
  return nil, ("%s %s: the handle is closed"):format(op, tostring(q)), "closed"
end

-- The deadline of a timed call on a monotonic clock, or nil, message, code.
-- A negative or infinite timeout waits for ever; NaN is invalid (after closed).
local function deadline_of(q, timeout, n, op)
  check_type(timeout, n, op, "number")
  if timeout ~= timeout then
    local ok, msg, code = check_open(q, op)
    if not ok then return nil, msg, code end
    return nil, ("%s %s: the timeout is NaN"):format(op, tostring(q)), "invalid"
  end
  if timeout < 0 or timeout == huge then return huge end
  return monotonic() + timeout
end

local function timed_out(op, q, timeout)
  return nil, ("%s %s: timed out after %g s"):format(op, tostring(q), timeout), "timeout"
end

-- Poll `attempt(q, a, b, op)` until it gives something other than false or the
-- deadline passes; between polls, back off and call the waiter. With the
-- default waiter outside a coroutine, where it would only sleep in C, the
-- whole loop runs in C (`wait`, same polls and sleeps) to spare the CPU.
local function poll_until(op, q, deadline, timeout, attempt, a, b, wait)
  if wait and waiter == default_waiter and not isyieldable() then
    while true do
      local r1, r2, r3
      if wait == wait_select then
        r1, r2, r3 = wait(q, a, op, deadline, poll.spins, poll.min, poll.max)
      else
        r1, r2, r3 = wait(q, a, b, op, deadline, poll.spins, poll.min, poll.max)
      end
      if r1 ~= false then return r1, r2, r3 end
      if r2 == "deadline" then return timed_out(op, q, timeout) end
      -- A signal cut a sleep short: back in Lua, a hook (lua.c's Ctrl-C) can run.
    end
  end
  local spins, step, cap = poll.spins, poll.min, poll.max
  local tries = 0
  while true do
    local r1, r2, r3 = attempt(q, a, b, op)
    if r1 ~= false then return r1, r2, r3 end
    local now = monotonic()
    if now >= deadline then return timed_out(op, q, timeout) end
    tries = tries + 1
    if tries > spins then
      local left = deadline - now
      waiter(step < left and step or left)
      step = step * 2
      if step > cap then step = cap end
    end
  end
end

--- q:send_timeout(data, timeout [, mtype]) -> true | nil, message, code
function methods.send_timeout(q, data, timeout, mtype)
  check_type(data, 1, "send_timeout", "string")
  check_type(mtype, 3, "send_timeout", "number", true)
  local deadline, msg, code = deadline_of(q, timeout, 2, "send_timeout")
  if not deadline then return nil, msg, code end
  local ok, why
  ok, why, code = poll_until("send_timeout", q, deadline, timeout, poll_send, data, mtype,
    wait_send)
  if ok then return true end
  return nil, why, code
end

--- q:receive_timeout(timeout [, mtype [, maxsize]]) -> data, mtype | nil, message, code
function methods.receive_timeout(q, timeout, mtype, maxsize)
  check_selector(mtype, 2, "receive_timeout")
  check_type(maxsize, 3, "receive_timeout", "number", true)
  local deadline, msg, code = deadline_of(q, timeout, 1, "receive_timeout")
  if not deadline then return nil, msg, code end
  local data, t
  data, t, code = poll_until("receive_timeout", q, deadline, timeout, poll_receive, mtype,
    maxsize, wait_receive)
  if data then return data, t end
  return nil, t, code
end

--- q:messages([timeout [, mtype]]) -> iterator over data, mtype.
-- Ends once no message came for `timeout` seconds (default 0: when empty).
-- Any other failure raises, since a for loop cannot return it.
function methods.messages(q, timeout, mtype)
  check_type(timeout, 1, "messages", "number", true)
  check_selector(mtype, 2, "messages")
  local ok, msg, code = check_open(q, "messages")
  if not ok then return nil, msg, code end
  timeout = timeout or 0
  if timeout ~= timeout then error(("messages %s: the timeout is NaN"):format(tostring(q)), 2) end
  return function()
    local data, t, why = q:receive_timeout(timeout, mtype)
    if data then return data, t end
    if why ~= "timeout" then error(t, 0) end
    return nil
  end
end

--- mq.select(handles, timeout [, mtype]) -> handle, data, mtype | nil, message, code
-- The first queue to yield a message, tried in list order at each poll. An
-- entry is a handle or {handle, selector}; `mtype` is the others' selector.
local function select_attempt(list, mtype, _, op)
  local r1, r2, r3 = wait_select(list, mtype, op, -huge, 0, 1, 1)   -- one round
  if r1 == false then return false end
  return r1, r2, r3
end

local function select_handle(e)
  if getmetatable(e) ~= queue_mt and type(e) == "table" then return e[1], e[2] end
  return e
end

function mq.select(handles, timeout, mtype)
  check_type(handles, 1, "select", "table")
  check_selector(mtype, 3, "select")
  for i = 1, #handles do
    local h, selector = select_handle(handles[i])
    if getmetatable(h) ~= queue_mt then
      argerror(1, "select", ("handle or {handle, selector} expected at index %d, got %s"):format(i,
        type(handles[i])))
    end
    check_selector(selector, 1, "select")
  end
  check_type(timeout, 2, "select", "number")
  if #handles == 0 then return nil, "select: no queues given", "invalid" end
  if timeout ~= timeout then   -- closed comes before invalid; nothing is received
    for i = 1, #handles do
      local h = select_handle(handles[i])
      if not h:id() then
        return nil, ("select %s: the handle is closed"):format(tostring(h)), "closed"
      end
    end
    return nil, "select: the timeout is NaN", "invalid"
  end
  local deadline = (timeout < 0 or timeout == huge) and huge or monotonic() + timeout
  local r1, r2, r3 = poll_until("select", handles, deadline, timeout, select_attempt, mtype, nil,
    wait_select)
  if r1 == nil and r3 == "timeout" then
    return nil, ("select over %d queues: timed out after %g s"):format(#handles, timeout), "timeout"
  end
  return r1, r2, r3
end

--- mq.set_waiter(fn) -> previous waiter; nil restores the default.
function mq.set_waiter(fn)
  check_type(fn, 1, "set_waiter", "function", true)
  local previous = waiter
  waiter = fn or default_waiter
  return previous
end

--- mq.get_poll() -> {spins=, min=, max=}: the timed calls' back-off.
function mq.get_poll()
  return { spins = poll.spins, min = poll.min, max = poll.max }
end

--- mq.set_poll{spins=, min=, max=} -> previous settings | nil, message, "invalid"
-- Fields left out keep their value.
function mq.set_poll(t)
  check_type(t, 1, "set_poll", "table")
  check_type(t.spins, 1, "set_poll", "number", true)
  check_type(t.min, 1, "set_poll", "number", true)
  check_type(t.max, 1, "set_poll", "number", true)
  local spins, min, max = tointeger(t.spins or poll.spins), t.min or poll.min, t.max or poll.max
  if not spins or spins < 0 then
    return nil, "set_poll: spins must be an integer >= 0", "invalid"
  end
  if not (min > 0 and min < huge and max >= min and max < huge) then
    return nil, "set_poll: need 0 < min <= max, both finite (seconds)", "invalid"
  end
  local previous = mq.get_poll()
  poll.spins, poll.min, poll.max = spins, min, max
  return previous
end

mq.codes = core.codes

return mq
