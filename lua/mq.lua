--- System V message queues for Lua 5.4.
-- The C core (`mq.core`) does every system call; this layer is policy on top
-- of it: the timed calls and how they wait, select over several queues, the
-- messages iterator and the waiter hook. The README is the full reference.
-- @module mq
-- @field O_RDONLY open flag: receive only (1)
-- @field O_WRONLY open flag: send only (2)
-- @field O_RDWR open flag: both (3, the default)
-- @field O_NONBLOCK open flag: send and receive fail with `again` instead of blocking (4)
-- @field O_CREAT open flag: create the queue when it is missing (8)
-- @field PRIVATE the key of a private queue, for `new` (0)
-- @field _VERSION the version, `"0.2.0"`
-- @field sysv go-ipc's explicit calls: `sysv.create`, `sysv.open`, `sysv.destroy` are `new`,
-- `open` and `destroy`

local core = require "mq.core"

local poll_send, poll_receive = core.poll_send, core.poll_receive
local wait_send, wait_receive, wait_select = core.wait_send, core.wait_receive, core.wait_select
local wait_arm, wait_disarm = core.wait_arm, core.wait_disarm
local hook_mark, hook_changed = core.hook_mark, core.hook_changed
local monotonic, sleep = core.monotonic, core.sleep
local isyieldable, yield = coroutine.isyieldable, coroutine.yield
local huge, tointeger = math.huge, math.tointeger
local error, type, tostring, getmetatable, setmetatable = error, type, tostring, getmetatable, setmetatable
local rawlen, rawget = rawlen, rawget

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
  codes = core.codes,
}

-- go-ipc's explicit System V calls; new/open/destroy are the same functions.
mq.sysv = { create = core.new, open = core.open, destroy = core.destroy }

local methods = core.methods
local is_queue = core.is_queue   -- the seal is checked: a forged handle is not one
local queue_mt = core.metatable

-- How the timed calls wait. A receive sleeps on its queue's readiness helper
-- when `threads` allows one; otherwise, and for sends, it polls: `spins`
-- immediate retries, then waits from `min` seconds doubling up to `max`.
local poll = { spins = 3, min = 50e-6, max = 1e-3, threads = true }

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

-- The handle a method was called on: a real one, not only something with its metatable.
local function check_handle(q, fname)
  if not is_queue(q) then
    argerror(1, fname, ("mq.queue expected, got %s"):format(q == nil and "no value"
      or getmetatable(q) == queue_mt and "an object that only carries its metatable" or type(q)))
  end
end

-- A receive selector: nil, an integer type, or {except = type} (checked in C).
local function check_selector(v, n, fname)
  local t = type(v)
  if v == nil or t == "number" or t == "table" then return end
  argerror(n, fname, ("integer or {except = type} expected, got %s"):format(t))
end

-- The default waiter: yield inside any yieldable coroutine (so a round-robin
-- scheduler keeps its other coroutines running), sleep in C otherwise.
-- Outside a coroutine the timed calls do not call it: they wait in C.
local function default_waiter(seconds)
  if isyieldable() then
    yield()
  else
    sleep(seconds)
  end
end

local waiter, waiter_takes_fds = default_waiter, false

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

-- What a timed call waits on, for its messages: a handle, or select's list.
local function waited_on(target)
  return is_queue(target) and tostring(target) or ("over %d queues"):format(rawlen(target))
end

local function interrupted(op, target)
  return nil, ("%s %s: interrupted by a signal"):format(op, waited_on(target)), "interrupted"
end

local function timed_out(op, target, timeout)
  return nil, ("%s %s: timed out after %g s"):format(op, waited_on(target), timeout), "timeout"
end

-- A wait's readiness helpers are disarmed however it ends, an error included.
local DISARM = { __close = function(w) if w.fds then w.disarm(w.target, w.fds) end end }

--[[
How a timed call waits, given `attempt(target, a, b, op)`, one IPC_NOWAIT try
that returns false when it would block:
- with the default waiter outside a coroutine, in C (`cwait`): on the
  readiness helpers' fds for receives, with the back-off for sends;
- with a waiter that takes fds (set_waiter(fn, {fds = true})) and a receive,
  by `arm(target, a)` -> fds, then waiter(seconds left, fds);
- otherwise polling: waiter(step) between attempts, the steps backing off.
]]
local function wait_until(op, target, deadline, timeout, attempt, a, b, cwait, arm, disarm)
  local threads = poll.threads
  if waiter == default_waiter and not isyieldable() then
    local mark
    while true do
      local r1, r2, r3 = cwait(target, a, b, op, deadline, poll.spins, poll.min, poll.max, threads,
        mark)
      if r1 ~= false then return r1, r2, r3 end
      if r2 == "deadline" then return timed_out(op, target, timeout) end
      -- In a coroutine that cannot yield, the main thread's hook changed (lua.c's Ctrl-C sets
      -- it there): only ending the call lets the main thread run it.
      if r2 == "interrupted" then return interrupted(op, target) end
      -- This thread's hook changed (a signal handler's, lua.c's Ctrl-C): back in Lua it runs.
      -- The wait goes on from the hooks it began with (r3); if they still differ then, the
      -- hook could not run (in a finalizer), and the call ends with interrupted.
      mark = r3
    end
  end
  -- A call that finds its message at once allocates nothing.
  local r1, r2, r3 = attempt(target, a, b, op)
  if r1 ~= false then return r1, r2, r3 end
  local use_fds = waiter_takes_fds and threads and arm ~= nil
  local armed <close> = use_fds and setmetatable({ target = target, disarm = disarm }, DISARM) or nil
  local spins, step, cap = poll.spins, poll.min, poll.max
  -- Where the waiter cannot yield (on the main thread too), the hooks the wait began with
  -- are kept (`mark`). From a coroutine, a change of the main thread's hook
  -- can only be a signal handler's (lua.c's Ctrl-C), which only ending the call lets run.
  -- A change of this thread's own hook gets its chance to run with the next Lua call; if it
  -- is still there after another waiter call, it could not run (in a finalizer): the same.
  local stuck = not isyieldable()
  local tries, mark, hooked = 0, stuck and hook_mark() or nil, false
  while true do
    local now = monotonic()
    if now >= deadline then return timed_out(op, target, timeout) end
    tries = tries + 1
    if tries > spins then
      local fds = use_fds and arm(target, a, armed.fds)
      if use_fds and not fds then     -- a failed arm freed the old helpers: poll from here on
        armed.fds, use_fds = nil, false
      elseif fds then
        armed.fds = fds
      end
      if fds then
        waiter(deadline - now, fds)
      else
        local left = deadline - now
        waiter(step < left and step or left)
        step = step * 2
        if step > cap then step = cap end
      end
      if stuck then
        local why = hook_changed(mark)
        if why == "interrupted" or (why == "signal" and hooked) then return interrupted(op, target) end
        hooked = why == "signal"
      end
    end
    r1, r2, r3 = attempt(target, a, b, op)
    if r1 ~= false then return r1, r2, r3 end
  end
end

-- The C loops' calling conventions, for wait_until.
local function cwait_select(list, mtype, _, op, deadline, spins, min, max, threads, mark)
  return wait_select(list, mtype, op, deadline, spins, min, max, threads, mark)
end

-- Arm (again) the wait's helper of q: {fd}, or nil to poll instead.
local function arm_one(q, mtype, fds)
  local fd = wait_arm(q, mtype, fds and fds[1])
  if fd then return { fd } end
  if fds then wait_disarm(q, fds[1]) end
  return nil
end

local function disarm_one(q, fds)
  wait_disarm(q, fds[1])
end

--- Send, waiting at most `timeout` seconds while the queue is full (go-ipc's
-- `SendTimeout`), whatever the handle's blocking mode. A full queue gives no
-- signal, so the wait polls with the back-off of `set_poll`.
-- @function queue:send_timeout
-- @within queue
-- @tparam string data any bytes, 0 up to msgmax
-- @tparam number timeout seconds; negative or `math.huge` for ever, 0 one try
-- @tparam[opt=1] integer mtype >= 1
-- @treturn boolean true
-- @return[2] nil, message, code: `timeout`, `toobig`, `closed`, `invalid`, `denied`,
-- `removed`, `interrupted`, `system`
function methods.send_timeout(q, data, timeout, mtype)
  check_handle(q, "send_timeout")
  check_type(data, 1, "send_timeout", "string")
  check_type(mtype, 3, "send_timeout", "number", true)
  local deadline, msg, code = deadline_of(q, timeout, 2, "send_timeout")
  if not deadline then return nil, msg, code end
  local ok, why
  ok, why, code = wait_until("send_timeout", q, deadline, timeout, poll_send, data, mtype, wait_send)
  if ok then return true end
  return nil, why, code
end

-- A timed receive that failures name as `op`.
local function receive_until(op, q, deadline, timeout, mtype, maxsize)
  local data, t, code = wait_until(op, q, deadline, timeout, poll_receive, mtype, maxsize,
    wait_receive, arm_one, disarm_one)
  if data then return data, t end
  return nil, t, code
end

--- Receive, waiting at most `timeout` seconds for a matching message (go-ipc's
-- `ReceiveTimeout`), whatever the handle's blocking mode. Outside a coroutine
-- with the default waiter it sleeps on a readiness helper thread: no CPU
-- while idle, awake within microseconds of a message.
-- @function queue:receive_timeout
-- @within queue
-- @tparam number timeout seconds; negative or `math.huge` for ever, 0 one try
-- @tparam[opt=0] integer|table selector as for `receive`
-- @tparam[opt=msgmax] integer maxsize as for `receive`
-- @treturn string data
-- @treturn integer mtype
-- @return[2] nil, message, code: `timeout`, `toobig`, `closed`, `invalid`, `denied`,
-- `removed`, `interrupted`, `system`
function methods.receive_timeout(q, timeout, mtype, maxsize)
  check_handle(q, "receive_timeout")
  check_selector(mtype, 2, "receive_timeout")
  check_type(maxsize, 3, "receive_timeout", "number", true)
  local deadline, msg, code = deadline_of(q, timeout, 1, "receive_timeout")
  if not deadline then return nil, msg, code end
  return receive_until("receive_timeout", q, deadline, timeout, mtype, maxsize)
end

--- An iterator over the messages: `for data, mtype in q:messages(0.5) do ... end`.
-- It ends once no message came for `timeout` seconds; any other failure raises,
-- since a for loop cannot return it.
-- @function queue:messages
-- @within queue
-- @tparam[opt=0] number timeout seconds to wait for each message (0: end when empty)
-- @tparam[opt=0] integer|table selector as for `receive`
-- @treturn function the iterator
-- @return[2] nil, message, `closed`
function methods.messages(q, timeout, mtype)
  check_handle(q, "messages")
  check_type(timeout, 1, "messages", "number", true)
  check_selector(mtype, 2, "messages")
  local ok, msg, code = check_open(q, "messages")
  if not ok then return nil, msg, code end
  timeout = timeout or 0
  if timeout ~= timeout then raise(("messages %s: the timeout is NaN"):format(tostring(q))) end
  local forever = timeout < 0 or timeout == huge
  return function()
    local data, t, why = receive_until("messages", q, forever and huge or monotonic() + timeout,
      timeout, mtype)
    if data then return data, t end
    if why ~= "timeout" then error(t, 0) end
    return nil
  end
end

-- select's list entry: a handle, or {handle, selector}.
local function select_handle(e)
  if type(e) == "table" then return rawget(e, 1), rawget(e, 2) end
  return e
end

local function select_attempt(list, mtype, _, op)
  local r1, r2, r3 = wait_select(list, mtype, op, -huge, 0, 1, 1, false)   -- one round
  if r1 == false then return false end
  return r1, r2, r3
end

local function select_disarm(list, fds)
  for i = 1, rawlen(list) do
    local h = select_handle(rawget(list, i))
    if fds[i] and is_queue(h) then wait_disarm(h, fds[i]) end
  end
end

-- Arm (again) a helper for every queue of the list: their fds, or nil to poll.
local function select_arm(list, mtype, fds)
  local armed = {}
  for i = 1, rawlen(list) do
    local h, selector = select_handle(rawget(list, i))
    if selector == nil then selector = mtype end
    armed[i] = wait_arm(h, selector, fds and fds[i])
    if not armed[i] then
      select_disarm(list, fds or armed)
      if fds then select_disarm(list, armed) end
      return nil
    end
  end
  return armed
end

--- The first of several queues to yield a message, tried in list order at each
-- round; outside a coroutine it sleeps on all of their readiness helpers at once.
-- @tparam {queue|{queue,selector},...} handles handles, or `{handle, selector}` pairs
-- @tparam number timeout seconds; negative or `math.huge` for ever
-- @tparam[opt=0] integer|table selector for the entries without their own
-- @treturn queue the handle the message came from
-- @treturn string data
-- @treturn integer mtype
-- @return[2] nil, message, code: the first failing entry's, `timeout`, or `invalid`
function mq.select(handles, timeout, selector)
  check_type(handles, 1, "select", "table")
  check_selector(selector, 3, "select")
  -- The list and its entries are read raw (no __index or __len), as the C loop reads them.
  local n = rawlen(handles)
  for i = 1, n do
    local h, own = select_handle(rawget(handles, i))
    if not is_queue(h) then
      argerror(1, "select", ("handle or {handle, selector} expected at index %d, got %s"):format(i,
        type(rawget(handles, i))))
    end
    check_selector(own, 1, "select")
  end
  check_type(timeout, 2, "select", "number")
  if n == 0 then return nil, "select: no queues given", "invalid" end
  if timeout ~= timeout then   -- closed comes before invalid; nothing is received
    for i = 1, n do
      local ok, msg, code = check_open(select_handle(rawget(handles, i)), "select")
      if not ok then return nil, msg, code end
    end
    return nil, "select: the timeout is NaN", "invalid"
  end
  local deadline = (timeout < 0 or timeout == huge) and huge or monotonic() + timeout
  return wait_until("select", handles, deadline, timeout, select_attempt, selector, nil,
    cwait_select, select_arm, select_disarm)
end

--- Set how timed calls wait when they do not wait in C (inside a coroutine, or
-- with a waiter of your own). `fn(seconds)` is called between polls; with
-- `opts.fds`, `fn(seconds, fds)` is called while a receive waits on readiness
-- helpers and should return once one of the fds is readable or `seconds`
-- (`math.huge`: no deadline) have passed.
-- @tparam[opt] function fn the waiter; nil restores the default (yield in a
-- coroutine, sleep in C outside one)
-- @tparam[opt] table opts `{fds = true}` for a waiter that sleeps on fds
-- @treturn function the previous waiter
-- @treturn table|nil its opts
function mq.set_waiter(fn, opts)
  check_type(fn, 1, "set_waiter", "function", true)
  check_type(opts, 2, "set_waiter", "table", true)
  if opts ~= nil then check_type(opts.fds, 2, "set_waiter", "boolean", true) end
  local previous, previous_opts = waiter, waiter_takes_fds and { fds = true } or nil
  waiter = fn or default_waiter
  waiter_takes_fds = fn ~= nil and opts ~= nil and opts.fds == true
  return previous, previous_opts
end

--- How the timed calls wait.
-- @treturn table `spins`, `min`, `max` (the polling back-off) and `threads`
function mq.get_poll()
  return { spins = poll.spins, min = poll.min, max = poll.max, threads = poll.threads }
end

--- Set how the timed calls wait; fields left out keep their value.
-- @tparam table t `spins` (immediate retries, integer >= 0), `min` and `max` (the
-- back-off's first and longest sleep, seconds), `threads` (false: no readiness
-- helper threads, every wait polls)
-- @treturn table the previous settings
-- @return[2] nil, message, `invalid`
function mq.set_poll(t)
  check_type(t, 1, "set_poll", "table")
  check_type(t.spins, 1, "set_poll", "number", true)
  check_type(t.min, 1, "set_poll", "number", true)
  check_type(t.max, 1, "set_poll", "number", true)
  check_type(t.threads, 1, "set_poll", "boolean", true)
  local spins, min, max = tointeger(t.spins or poll.spins), t.min or poll.min, t.max or poll.max
  if not spins or spins < 0 then
    return nil, "set_poll: spins must be an integer >= 0", "invalid"
  end
  if not (min > 0 and min < huge and max >= min and max < huge) then
    return nil, "set_poll: need 0 < min <= max, both finite (seconds)", "invalid"
  end
  local previous = mq.get_poll()
  poll.spins, poll.min, poll.max = spins, min, max
  if t.threads ~= nil then poll.threads = t.threads end
  return previous
end

return mq
