-- make fuzz: a randomized driver for mq (issue 9, "Keep it caught").
--
-- It calls every function of `mq` (and mq.sysv), of `mq.core` and every handle method and
-- metamethod, found by iterating those tables (so a function added later is fuzzed without
-- a change here), with random arguments of every type: nil, booleans, integers (extremes
-- included), floats (NaN, infinities, -0.0), strings (empty, huge, NUL, '/', valid names),
-- tables, functions that re-enter mq, coroutines, userdata (forged handles, real handles
-- open, closed, destroyed or on removed queues). Around the calls: finalizers that re-enter
-- mq (close, destroy, receive on handles from __gc), collector steps in both modes, calls
-- run inside coroutines (where the default waiter yields), and an interval timer whose
-- SIGALRM handler has no SA_RESTART, so that blocking calls are interrupted at random.
--
-- Nothing can block for ever: every call runs with the timer armed and a count hook that
-- raises FUZZ-DEADLINE once the call has run for CALL_SECONDS; past that, the timer's signal
-- handler also sets a hook, as lua.c's Ctrl-C handler does, which a wait looping in C must
-- return to Lua for. A watchdog process kills the run if no call finishes for HANG_SECONDS
-- (a hang in C that no hook can reach).
--
-- Safety for other users of this machine: the queues it makes live in a private TMPDIR
-- (names) or on integer keys it checked were free (a pool), plus private queues. An integer
-- in the first argument of a module function (where a queue address goes) is never an
-- arbitrary number: only pool keys, 0 or values outside the key range. A name is only used
-- after checking that its key file, if any, leads to a queue this run made. Every queue is
-- removed at the end.
--
-- Environment: MQ_FUZZ_SEED (default: from the clock, printed), MQ_FUZZ_SECONDS (default
-- 60), MQ_FUZZ_CALLS (stop after that many calls), MQ_FUZZ_SKIP (comma-separated labels or
-- features to leave out: e.g. "core.wait_receive,forged,finalizers,timers"), MQ_FUZZ_VERBOSE.
-- A seed replays the same sequence of choices; what depends on timing (where a timer
-- interrupts, a call's deadline, the collector's pace after those) can differ between runs,
-- so a finding of that kind may take a few runs of its seed (MQ_FUZZ_SKIP=timers helps).
-- Exit status 0 when no finding; 1 with the findings listed. Run by `make fuzz` under the
-- ASan/UBSan build, which catches what the Lua side cannot see.
--
-- Arguments are found, not declared: an error "bad argument #N to 'f' (KIND expected)"
-- teaches the driver what position N of f takes, and argument lists that got past the type
-- checks are kept and mutated, so calls soon reach the code behind the checks.

local mq = require "mq"
local core = require "mq.core"
local H = require "helpers"
local P = require "support.proc"

local tp = P.native()

-- The ledger: every key and queue id this run made, one per line ("key K", "id I K"), so
-- that `driver.lua cleanup LEDGER` removes them even after the run crashed.
local function cleanup(path)
  local f = io.open(path)
  if not f then return 0 end
  local n = 0
  for line in f:lines() do
    local id, key = line:match("^id (%-?%d+) (%-?%d+)$")
    if id then
      if tp.rmid(tonumber(id), tonumber(key)) then n = n + 1 end
    else
      key = line:match("^key (%d+)$")
      if key and mq.destroy(tonumber(key)) then n = n + 1 end
    end
  end
  f:close()
  return n
end

if arg[1] == "cleanup" then
  local n = cleanup(assert(arg[2], "usage: driver.lua cleanup LEDGER"))
  print(string.format("fuzz: clean-up went through %d recorded queues and keys", n))
  os.exit(0)
end

local SEED = tonumber(os.getenv("MQ_FUZZ_SEED") or "") or
  (math.floor(core.monotonic() * 1e6) ~ H.pid) % 1000000007
local SECONDS = tonumber(os.getenv("MQ_FUZZ_SECONDS") or "") or 60
local MAX_CALLS = tonumber(os.getenv("MQ_FUZZ_CALLS") or "")
local VERBOSE = os.getenv("MQ_FUZZ_VERBOSE") ~= nil
local CALL_SECONDS = 0.25
local HANG_SECONDS = 15
local SKIP = {}
for s in (os.getenv("MQ_FUZZ_SKIP") or ""):gmatch("[^,%s]+") do SKIP[s] = true end

math.randomseed(SEED)
io.stdout:setvbuf("line")
print(string.format("fuzz: seed %d (MQ_FUZZ_SEED=%d reproduces this run), %g s, TMPDIR %s",
  SEED, SEED, SECONDS, H.TMPDIR))

local function rnd(n) return math.random(n) end
local function chance(p) return math.random() < p end
local function pick(t) return t[math.random(#t)] end

---------------------------------------------------------------------------------------------
-- Progress file and watchdog.

local progress_path = H.TMPDIR .. string.format("/fuzz-progress-%d", H.pid)
local progress = assert(io.open(progress_path, "w"))
local function note(s)
  progress:seek("set", 0)
  s = s:sub(1, 500)
  progress:write(s, string.rep(" ", 500 - #s), "\n")
  progress:flush()
end
note("starting")

do
  local parent = tp.getpid()
  local pid = assert(tp.fork())
  if pid == 0 then
    -- The watchdog: nothing of the fuzz state exists yet, and its collector stays off.
    collectgarbage("stop")
    local last, since = nil, core.monotonic()
    while tp.kill(parent, 0) do
      core.sleep(0.5)
      local f = io.open(progress_path)
      local s = f and f:read("a")
      if f then f:close() end
      if s == nil and last ~= nil then tp._exit(0) end   -- the run is over
      if s ~= last then
        last, since = s, core.monotonic()
      elseif core.monotonic() - since > HANG_SECONDS then
        io.stderr:write(string.format("fuzz: HANG: no call finished for %d s (seed %d); the call:\n%s\n",
          HANG_SECONDS, SEED, (s or ""):gsub("%s+$", "")))
        -- Where each thread of the driver is stuck, when gdb is there and may attach.
        os.execute(string.format("command -v gdb >/dev/null && timeout 60 gdb -p %d -batch -nx "
          .. "-ex 'thread apply all bt' </dev/null 2>/dev/null | grep -E '^(Thread|#)' >&2", parent))
        tp.kill(parent, 6)       -- SIGABRT: the shell shows the run ended there
        tp._exit(3)
      end
    end
    tp._exit(0)
  end
end

---------------------------------------------------------------------------------------------
-- Queues of this run.

local owned = {}          -- id -> true for every queue this run made or opened safely
local private_ids = {}    -- id -> true for private queues (removed by id at the end)
local pool = {}           -- real handles (some closed, some on removed queues)
local NAMES, KEYS = {}, {}
for i = 1, 5 do NAMES[i] = "fz-" .. i end   -- TMPDIR is private to the run
for _ = 1, 5 do
  for _ = 1, 1000 do
    local k = math.random(0x10000000, 0x7ffffffe)
    local q, _, code = mq.open(k)
    if q then q:close() elseif code == "notfound" then KEYS[#KEYS + 1] = k break end
  end
end
assert(#KEYS == 5, "no free keys")
local used_names = {}     -- every valid name a fuzzed call got: destroyed at the end
local LEDGER = H.TMPDIR .. "/fuzz-ledger"
local ledger = assert(io.open(LEDGER, "a"))
ledger:setvbuf("line")
for _, k in ipairs(KEYS) do ledger:write("key ", k, "\n") end

local queue_mt = core.metatable
local forged_set = setmetatable({}, { __mode = "k" })
local function is_handle(v) return getmetatable(v) == queue_mt end

-- The id of a handle, or nil when it is closed (or not a handle at all).
local function handle_id(q)
  local ok, id = pcall(core.methods.id, q)
  return ok and id or nil
end

local in_pool = setmetatable({}, { __mode = "k" })
local function remember(q)
  if not is_handle(q) or forged_set[q] or in_pool[q] then return end
  local id = handle_id(q)
  if not id then return end
  local key = q:key()
  if not owned[id] then
    owned[id] = true
    ledger:write("id ", id, " ", key, "\n")
  end
  if key == 0 then private_ids[id] = true end
  in_pool[q] = true
  pool[#pool + 1] = q
  if #pool > 40 then table.remove(pool, rnd(#pool)) end
end

local FLAGS = { nil, mq.O_RDONLY, mq.O_WRONLY, mq.O_RDWR, mq.O_RDWR | mq.O_NONBLOCK,
  mq.O_RDONLY | mq.O_NONBLOCK, mq.O_WRONLY | mq.O_NONBLOCK }

local function refill()
  for _, where in ipairs(NAMES) do
    if chance(0.5) then
      local q = mq.new(where, pick({ "0600", "0640", nil }))
      if q then remember(q) end
    end
  end
  for _, where in ipairs(KEYS) do
    if chance(0.5) then
      local q = mq.new(where)
      if q then remember(q) end
    end
  end
  local all = {}
  for _, w in ipairs(NAMES) do all[#all + 1] = w end
  for _, w in ipairs(KEYS) do all[#all + 1] = w end
  for _ = 1, 4 do
    local q = mq.open(pick(all), FLAGS[rnd(#FLAGS)])
    if q then remember(q) end
  end
  if chance(0.3) then remember(mq.new(mq.PRIVATE)) end
  -- Put some messages in, of all sizes and types.
  for _ = 1, 6 do
    local q = pick(pool)
    if q and handle_id(q) then
      local size = pick({ 0, 1, 10, 100, 4000, 8192 })
      q:send_timeout(string.rep(string.char(rnd(256) - 1), size), 0, rnd(5))
    end
  end
end

-- Remove private queues that no open handle in the pool uses any more.
local function sweep_private()
  local live = {}
  for _, q in ipairs(pool) do
    local id = handle_id(q)
    if id then live[id] = true end
  end
  for id in pairs(private_ids) do
    if not live[id] then
      tp.rmid(id, 0)
      private_ids[id] = nil
    end
  end
end

---------------------------------------------------------------------------------------------
-- Values.

local NAN, INF = 0 / 0, math.huge
local INTS = { 0, 1, -1, 2, 3, 5, 7, 255, 256, 0x1a0, 0x1b6, 0x1ff, 4096, 8191, 8192, 8193,
  16384, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 1 << 53,
  math.maxinteger, math.mininteger, -2, -255, -8192 }
local FLOATS = { 0.0, -0.0, 0.5, 1.5, -1.5, 1e-9, 50e-6, 1e-3, 0.01, 0.05, 1e300, -1e300, INF,
  -INF, NAN, 2.0 ^ 63, 2.0 ^ 64, -(2.0 ^ 63), 5.0, 8192.0, 1e-300 }
local BIN = {}
for i = 0, 255 do BIN[#BIN + 1] = string.char(i) end
local STRINGS = { "", "x", "0640", "600", "0600", "0700", "0666", "abc", "\0", "a\0b", "a/b",
  "/", ".", "..", "../x", "inf", "nan", "0x1234", "-1", "1.5", string.rep("n", 255),
  string.rep("n", 256), string.rep("d", 8192), string.rep("d", 8193),
  string.rep("m", 1 << 20), table.concat(BIN), "jobs", "receive", "closed" }

-- Integers and floats safe as a queue address: pool keys, 0, or outside the key range.
local SAFE_INTS = { 0, 1 << 32, -(1 << 31) - 1, math.maxinteger, math.mininteger, 1 << 40 }
local SAFE_FLOATS = { 0.5, -1.5, NAN, INF, -INF, 2.0 ^ 63, 1e300, -0.0, 0.0 }

local forged_cache = {}
local function forged()
  local q = pick(pool)
  if SKIP.forged then return q end
  local kind = rnd(4)
  if kind == 1 then
    local f = debug.setmetatable(tp.udata(""), queue_mt)
    forged_set[f] = true
    return f
  end
  if not q then return tp.udata("") end
  local bytes = tp.bytes(q)
  local f
  if kind == 2 then f = tp.udata(bytes)
  elseif kind == 3 then f = tp.udata(bytes .. string.rep("\0", rnd(64)))
  else f = debug.setmetatable(tp.udata(bytes), queue_mt) end
  forged_set[f] = true
  forged_cache[#forged_cache + 1] = f
  if #forged_cache > 8 then table.remove(forged_cache, 1) end
  return f
end

local depth = 0
local current = nil   -- the handle the running call got first, if any: finalizers aim at it
local gen_value   -- forward

-- Callbacks that re-enter mq: waiters, finalizers, arguments. They never block: only
-- zero-timeout and nonblocking calls, and nothing at all past depth 2.
local function reentrant(target)
  local what = rnd(12)
  if not is_handle(target) or forged_set[target] or chance(0.3) then target = nil end
  local aim_current = chance(0.7)
  return function()
    if depth > 2 then return end
    depth = depth + 1
    local ok, err = pcall(function()
      local q = (aim_current and current) or target or pick(pool)
      if what == 1 and q then q:close()
      elseif what == 2 and q then q:destroy()
      elseif what == 3 and q then q:receive_timeout(0)
      elseif what == 4 and q then q:peek(rnd(3) - 1)
      elseif what == 5 and q then q:send_timeout("from a callback", 0, rnd(3))
      elseif what == 6 and q then mq.select({ q, pick(pool) }, 0)
      elseif what == 7 then collectgarbage("step", rnd(100))
      elseif what == 8 and q then q:stat()
      elseif what == 9 and q then core.poll_receive(q, nil, nil, "poll")
      end
    end)
    depth = depth - 1
    -- The call's deadline is not this callback's to swallow.
    if not ok and type(err) == "string" and err:find("FUZZ-DEADLINE", 1, true) then error(err, 0) end
    if what == 10 then error("FUZZ-CALLBACK error", 0) end
    if what == 11 and coroutine.isyieldable() then coroutine.yield() end
    if what == 12 then return gen_value(), gen_value() end
    return ok, err
  end
end

local SAFE_FUNCTIONS = { tostring, type, math.abs, select, coroutine.yield, core.monotonic,
  core.sleep, next }

local function gen_function()
  local r = rnd(4)
  if r == 1 then return pick(SAFE_FUNCTIONS) end
  if r == 2 then return function() end end
  return reentrant()
end

local function gen_table()
  local r = rnd(8)
  if r == 1 then return {} end
  if r == 2 then
    local t = {}
    for i = 1, rnd(4) do t[i] = pick(pool) or false end
    return t
  end
  if r == 3 then return { gen_value(), gen_value() } end
  if r == 4 then
    return { spins = pick({ 0, 1, 3, -1, NAN, 2.5, INF, 100 }), min = pick(FLOATS), max = pick(FLOATS) }
  end
  if r == 5 then return { spins = rnd(4) - 1, min = pick({ 50e-6, 1e-4, 1e-3 }), max = pick({ 1e-3, 2e-3 }) } end
  if r == 6 then return setmetatable({}, { __index = function() error("FUZZ-CALLBACK index", 0) end }) end
  if r == 7 then return { pick(pool) or 1, forged() } end
  return { 1, "x", n = 3 }
end

local function gen_string()
  if chance(0.3) then return pick(NAMES) end
  if chance(0.1) then
    local t = {}
    for i = 1, rnd(40) do t[i] = string.char(rnd(256) - 1) end
    return table.concat(t)
  end
  return pick(STRINGS)
end

local SPECIAL = { NAN, INF, -INF, -0.0, 0.0, -1 }
local function gen_number()
  local r = rnd(6)
  if r == 1 then return pick(INTS) end
  if r == 2 then return pick(FLOATS) end
  if r == 6 then return pick(SPECIAL) end
  if r == 3 then return rnd(20) - 5 end
  if r == 4 then return math.random() * pick({ 0.001, 0.05, 2 }) end
  return math.random(math.mininteger, math.maxinteger)
end

local function gen_handle()
  local r = rnd(20)
  if r <= 14 and #pool > 0 then return pick(pool) end
  if r <= 16 and not SKIP.forged then return forged() end
  return gen_value()
end

function gen_value()
  local r = rnd(20)
  if r == 1 then return nil end
  if r == 2 then return chance(0.5) end
  if r <= 6 then return gen_number() end
  if r <= 10 then return gen_string() end
  if r == 11 then return gen_table() end
  if r == 12 then return gen_function() end
  if r == 13 then return coroutine.create(gen_function()) end
  if r == 14 then return io.stdout end
  if r <= 18 then return gen_handle() end
  return pick(pool)
end

-- The first argument of a module function is where a queue address goes: only safe
-- integers there (pool keys, 0, or outside the key range), whatever generated it.
local function safe_where(v)
  if math.type(v) == "integer" then
    return chance(0.6) and pick(KEYS) or pick(SAFE_INTS)
  elseif math.type(v) == "float" then
    return chance(0.3) and (pick(KEYS) + 0.0) or pick(SAFE_FLOATS)
  end
  return v
end

-- What the argument errors taught about each target: hints[label][position] = kind, from
-- "bad argument #N to 'f' (KIND expected, ...)". Calls then mostly pass the type checks and
-- reach the code behind them, without the driver knowing any signature.
local hints = {}
local KINDS = {
  ["mq.queue"] = "handle", number = "number", integer = "integer", string = "string",
  table = "table", ["function"] = "function", boolean = "boolean", handle = "handles",
}

local function learn(label, kind_of_call, err)
  if type(err) ~= "string" then return end
  local pos, what = err:match("bad argument #(%d+) to '[^']*' %(([%w%.]+) expected")
  local kind = what and KINDS[what]
  if not kind then return end
  pos = tonumber(pos)
  hints[label] = hints[label] or {}
  hints[label][pos] = hints[label][pos] or kind
  -- mq.lua numbers a method's arguments without self: the hint may belong one further.
  if kind_of_call == "method" then hints[label][pos + 1] = hints[label][pos + 1] or kind end
end

local function gen_kind(kind)
  if kind == "handle" then return gen_handle() end
  if kind == "number" then return gen_number() end
  if kind == "integer" then
    local r = rnd(4)
    if r == 1 then return pick(INTS) end
    if r == 2 then return rnd(10) - 3 end
    if r == 3 then return pick(SPECIAL) end
    return gen_number()
  end
  if kind == "string" then return gen_string() end
  if kind == "table" then return gen_table() end
  if kind == "handles" then
    local t = {}
    for i = 1, rnd(3) do t[i] = gen_handle() end
    return t
  end
  if kind == "function" then return gen_function() end
  if kind == "boolean" then return chance(0.5) end
  return gen_value()
end

local function gen_arg(t, pos)
  local h = hints[t.label] and hints[t.label][pos]
  local v
  if h and chance(0.8) then v = gen_kind(h)
  elseif pos == 1 and t.kind == "method" then v = gen_handle()
  else v = gen_value() end
  if pos == 1 and t.kind == "module" then v = safe_where(v) end
  return v
end

-- Argument lists that passed the type checks, per target, to mutate.
local corpus = {}
local function keep(t, args, n)
  local c = corpus[t.label]
  if not c then
    c = {}
    corpus[t.label] = c
  end
  local copy = table.move(args, 1, n, 1, {})
  copy.n = n
  if #c < 16 then c[#c + 1] = copy else c[rnd(#c)] = copy end
end

local function gen_args(t)
  local c = corpus[t.label]
  if c and #c > 0 and chance(0.6) then
    local base = pick(c)
    local args, n = table.move(base, 1, base.n, 1, {}), base.n
    if chance(0.2) then n = math.max(0, n + rnd(3) - 2) end
    for _ = 1, rnd(2) do
      if n > 0 then
        local pos = rnd(n)
        args[pos] = gen_arg(t, pos)
      end
    end
    for pos = base.n + 1, n do args[pos] = gen_arg(t, pos) end
    return args, n
  end
  local n = rnd(10) - 1
  local highest = 0
  for pos in pairs(hints[t.label] or {}) do highest = math.max(highest, pos) end
  if highest > n and chance(0.7) then n = highest end
  if t.kind == "method" then n = math.max(n, 1) end
  local args = {}
  for pos = 1, n do args[pos] = gen_arg(t, pos) end
  return args, n
end

---------------------------------------------------------------------------------------------
-- Targets, found by iteration.

local targets = {}
local function add(label, f, kind)
  if type(f) == "function" and not SKIP[label] then
    targets[#targets + 1] = { label = label, f = f, kind = kind }
  end
end
for k, v in pairs(mq) do
  if type(v) == "table" and k ~= "codes" then
    for k2, v2 in pairs(v) do add("mq." .. k .. "." .. k2, v2, "module") end
  else
    add("mq." .. k, v, "module")
  end
end
for k, v in pairs(core) do add("core." .. k, v, "module") end
for k, v in pairs(core.methods) do add("q:" .. k, v, "method") end
for k, v in pairs(queue_mt) do add("mt." .. k, v, "method") end
table.sort(targets, function(a, b) return a.label < b.label end)
do
  local labels = {}
  for i, t in ipairs(targets) do labels[i] = t.label end
  print("fuzz: " .. #targets .. " targets: " .. table.concat(labels, " "))
end

---------------------------------------------------------------------------------------------
-- Checks.

-- Errors the contract allows: wrong Lua types raise (luaL_check*, mq.lua's argerror, a
-- handle check), the messages iterator raises what stopped it, and what the driver's own
-- callbacks and deadline raise.
local EXPECTED = {
  "bad argument #%d+", "mq%.queue expected", "handle expected",
  "the timeout is NaN", "^messages mq%.queue[^\n]*: ",   -- the iterator raises its failures
  "FUZZ%-CALLBACK", "FUZZ%-DEADLINE",
  "attempt to yield", "yield across", "cannot resume", "stack overflow",
}

local function expected_error(err)
  if type(err) ~= "string" then return false end
  for _, p in ipairs(EXPECTED) do
    if err:find(p) then return true end
  end
  return false
end

local findings, seen = {}, {}
-- A finding: `target` is the function's label, `desc` the call. One line per kind of failure
-- of a target (numbers, addresses and type names in the error do not make a new one).
local function finding(kind, target, desc, detail)
  local norm = tostring(detail):gsub("0x%x+", "0x?"):gsub("%d+", "N"):gsub("an? %a+ value", "a ? value")
  local key = kind .. "|" .. target .. "|" .. norm
  if seen[key] then
    seen[key] = seen[key] + 1
    return
  end
  seen[key] = 1
  local line = string.format("%s in %s: %s", kind, desc, tostring(detail))
  findings[#findings + 1] = line
  print("fuzz: FINDING " .. line)
end

local function describe_value(v)
  local t = type(v)
  if t == "string" then
    if #v > 24 then return string.format("<string of %d bytes>", #v) end
    return (string.format("%q", v):gsub("[\128-\255]", function(c) return "\\" .. c:byte() end))
  end
  if t == "userdata" then
    if forged_set[v] then return "<forged handle>" end
    if is_handle(v) then
      local ok, s = pcall(tostring, v)
      return ok and s or "<forged handle>"
    end
    return v == io.stdout and "io.stdout" or "<userdata>"
  end
  if t == "number" then return string.format("%.17g", v) end
  return t == "nil" and "nil" or (t == "boolean" and tostring(v) or "<" .. t .. ">")
end

local function describe_call(label, args, n)
  local parts = {}
  for i = 1, n do parts[i] = describe_value(args[i]) end
  return label .. "(" .. table.concat(parts, ", ") .. ")"
end

-- A failure must be nil, a string, a known code.
local function check_result(target, desc, r)
  if r.n >= 1 and r[1] == nil and r.n >= 2 then
    if type(r[2]) ~= "string" then
      finding("contract", target, desc, "failure without a message: " .. type(r[2]))
    elseif r.n >= 3 and r[3] ~= nil and mq.codes[r[3]] == nil then
      finding("contract", target, desc, "unknown code " .. tostring(r[3]))
    end
  end
  for i = 1, r.n do remember(r[i]) end
end

---------------------------------------------------------------------------------------------
-- One call.

local deadline = 0
-- Raises, and moves the deadline (and the signal handler's) a little on: a raise that
-- something swallows (a finalizer, where errors become warnings; a callback's own pcall)
-- comes again while the call still runs, and a raise landing just after the call returned
-- is caught by run's outer pcall and is not repeated before run disarms.
local RETRY_SECONDS = 0.05
local function deadline_hook()
  local now = core.monotonic()
  if now > deadline then
    deadline = now + RETRY_SECONDS
    tp.deadline(deadline)
    error("FUZZ-DEADLINE: the call ran too long", 0)
  end
end

-- The timer is always armed: a blocking call must end. Usually it fires every few
-- milliseconds at random moments; sometimes (and always with MQ_FUZZ_SKIP=timers) only once
-- the call has had its time.
local function arm()
  deadline = core.monotonic() + CALL_SECONDS
  tp.deadline(deadline)
  if not SKIP.timers and chance(0.8) then
    local t = pick({ 0.0005, 0.001, 0.003, 0.01, 0.02 }) * (0.5 + math.random())
    tp.setitimer(t, t)
  else
    tp.setitimer(CALL_SECONDS, 0.05)
  end
  debug.sethook(deadline_hook, "", 100)
end

local function disarm()
  tp.setitimer(0)
  tp.deadline(nil)
  debug.sethook()
end

-- Call f(...) protected, in a coroutine sometimes (so the default waiter yields), with the
-- timer and the deadline hooks armed. Returns true, results table or false, error. Disarming
-- happens inside the protection: a deadline that fires just after the call is an error of
-- the call, not of the driver (each hook fires at most once per call).
local function run(f, args, n, in_coroutine)
  local body
  if not in_coroutine then
    body = function() return table.pack(pcall(f, table.unpack(args, 1, n))) end
  else
    local co = coroutine.create(function() return f(table.unpack(args, 1, n)) end)
    debug.sethook(co, deadline_hook, "", 100)
    body = function()
      local res
      for _ = 1, 10000 do
        res = table.pack(coroutine.resume(co))
        if not res[1] or coroutine.status(co) == "dead" then break end
        if core.monotonic() > deadline then break end
      end
      if res[1] and coroutine.status(co) ~= "dead" then res = { true, n = 1 } end
      return res
    end
  end
  arm()
  local ok, r = pcall(function()
    local res = body()
    disarm()
    return res
  end)
  disarm()
  if not ok then return false, r end
  if not r[1] then return false, r[2] end
  return true, table.pack(table.unpack(r, 2, r.n))
end

-- A name about to go to a module function: refuse it if its key file leads to a queue this
-- run did not make (an ftok collision with someone else's queue).
local function name_is_safe(name)
  if type(name) ~= "string" or name == "" or #name > 255 or name:find("[/%z]") or name == "."
    or name == ".." then
    return true              -- mq refuses it before touching anything
  end
  used_names[name] = true
  local f = io.open(H.path(name))
  if not f then return true end
  f:close()
  local q = mq.open(name)
  if not q then return true end
  local id = q:id()
  q:close()
  if owned[id] then return true end
  os.remove(H.path(name))    -- our key file, someone else's key: forget the name
  return false
end

local calls, t0 = 0, core.monotonic()

local function fuzz_one()
  local t = targets[rnd(#targets)]
  local args, n = gen_args(t)
  if t.kind == "module" and not name_is_safe(args[1]) then return end
  -- Garbage whose finalizers re-enter mq, mostly on this call's own handle: the next
  -- collector step (inside the call, when it allocates) runs them.
  if not SKIP.finalizers and chance(0.5) then
    for _ = 1, rnd(4) do setmetatable({}, { __gc = reentrant(args[1]) }) end
  end
  local desc = describe_call(t.label, args, n)
  calls = calls + 1
  note(string.format("call %d: %s", calls, desc))
  if VERBOSE then print(calls, desc) end
  current = is_handle(args[1]) and not forged_set[args[1]] and args[1] or nil
  local ok, r = run(t.f, args, n, chance(0.2))
  current = nil
  if not ok then
    learn(t.label, t.kind, r)
    if not expected_error(r) then finding("unexpected error", t.label, desc, r) end
    if type(r) ~= "string" or not r:find("bad argument", 1, true) then keep(t, args, n) end
    return
  end
  keep(t, args, n)
  check_result(t.label, desc, r)
  -- A returned function (the messages iterator, a previous waiter): call it a few times.
  for i = 1, r.n do
    if type(r[i]) == "function" then
      for k = 1, rnd(3) do
        note(string.format("call %d: %s -> returned function, call %d", calls, desc, k))
        local ok2, r2 = run(r[i], {}, 0, chance(0.2))
        if not ok2 and not expected_error(r2) then
          finding("unexpected error", t.label .. "()", desc .. " -> returned function", r2)
        end
      end
    end
  end
end

---------------------------------------------------------------------------------------------
-- Main loop.

assert(tp.catch_deadline(tp.SIGALRM))
local function main_loop()
  refill()
  local stop = t0 + SECONDS
  while core.monotonic() < stop and (not MAX_CALLS or calls < MAX_CALLS) do
    fuzz_one()
    note(string.format("after call %d: refilling, sweeping or a collector step", calls))
    if calls % 50 == 0 then refill() end
    if calls % 500 == 0 then sweep_private() end
    if chance(0.05) then
      mq.set_waiter(nil)
      mq.set_poll({ spins = 3, min = 50e-6, max = 1e-3 })
    end
    if chance(0.01) then
      if chance(0.5) then collectgarbage("generational", pick({ 1, 1, 2, 5, 20 }), rnd(100))
      else collectgarbage("incremental", pick({ 100, 100, 110, 200 }), pick({ 100, 200, 400 }), rnd(14)) end
    end
    if chance(0.05) then collectgarbage("step", rnd(200)) end
  end
end
-- An error of the driver itself is a failure of the run, after the clean-up; the timer must
-- be off before the state (and testproc.so with its signal handler) goes away.
local driver_ok, driver_err = xpcall(main_loop, debug.traceback)
disarm()
if not driver_ok then
  findings[#findings + 1] = "driver error: " .. tostring(driver_err)
  print("fuzz: DRIVER ERROR " .. tostring(driver_err))
end

---------------------------------------------------------------------------------------------
-- Clean up: every queue of this run, nothing else.

mq.set_waiter(nil)
mq.set_poll({ spins = 3, min = 50e-6, max = 1e-3 })
note("cleaning up")
pool, forged_cache = {}, {}
collectgarbage()
collectgarbage()
for _, k in ipairs(KEYS) do mq.destroy(k) end
for name in pairs(used_names) do
  if name_is_safe(name) then mq.destroy(name) end
end
for _, name in ipairs(NAMES) do mq.destroy(name) end
ledger:close()
cleanup(LEDGER)
note("done")
progress:close()
os.remove(progress_path)

print(string.format("fuzz: %d calls in %.1f s, seed %d, %d findings", calls, core.monotonic() - t0,
  SEED, #findings))
for _, f in ipairs(findings) do print("  " .. f) end
if #findings > 0 then
  local n = 0
  for _, c in pairs(seen) do n = n + c end
  print(string.format("fuzz: %d failing calls in all (repeats of a finding are counted, not listed)", n))
end
os.exit(#findings == 0 and 0 or 1)
