-- Signals during timed waits (issue 9, item 7). lua5.4's SIGINT handler only sets a hook;
-- a wait that polls in C must return to Lua when a signal came, so that the hook runs and
-- the script stops, whether the signal cut a sleep short or arrived between sleeps. A
-- permanent count hook (a debugger, luacov) must not turn a timed wait into a busy loop
-- that never ends, nor keep an endless wait from receiving.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

local TRIALS = P.scaled(16, 4)   -- per operation; all run at once

-- The waiting child. arg: key, op, flag. Writes the flag just before it starts to wait.
local WAITER = [[
local mq = require "mq"
local q = assert(mq.open(tonumber(arg[1])))
local f = assert(io.open(arg[3], "w")); f:close()
if arg[2] == "receive_timeout" then q:receive_timeout(-1)
elseif arg[2] == "send_timeout" then q:send_timeout("x", -1)
else for _ in q:messages(-1) do end end
print("RETURNED")
]]

local OPS = {
  { "receive_timeout", "q:receive_timeout(-1) on an empty queue" },
  { "send_timeout", "q:send_timeout(data, -1) on a full queue" },
  { "messages", "for _ in q:messages(-1) do end on an empty queue" },
}

-- Starts TRIALS waiters for every op at once, sends each one SIGINT at a random moment 0 to
-- 300 ms after it started to wait, and gives each one second from its signal to exit.
-- Returns {op = {lines describing the waiters still running a second after their signal}}.
local results
local function run_trials()
  if results then return results end
  local tp = P.native()
  local empty = H.fresh_key_queue()
  local full = H.fresh_key_queue()
  assert(full:set_capacity(8))
  assert(full:send("12345678"))
  local kids = {}
  for _, op in ipairs(OPS) do
    local key = op[1] == "send_timeout" and full:key() or empty:key()
    for _ = 1, TRIALS do
      local flag = P.flag()
      kids[#kids + 1] = { op = op[1], flag = flag, child = P.spawn(WAITER, nil, key, op[1], flag) }
    end
  end
  local core = require "mq.core"
  for _, k in ipairs(kids) do
    assert(P.wait_file(k.flag, 30), "a waiter never started: " .. k.child.output())
    k.ready = core.monotonic()
    k.at = k.ready + math.random() * 0.3
  end
  -- Deliver the signals at their moments.
  local left = #kids
  while left > 0 do
    local now = core.monotonic()
    for _, k in ipairs(kids) do
      if not k.sent and now >= k.at then
        tp.kill(k.child.pid, 2)   -- SIGINT
        k.sent = now
        left = left - 1
      end
    end
    core.sleep(0.0005)
  end
  -- Each has one second from its signal.
  results = {}
  for _, op in ipairs(OPS) do results[op[1]] = {} end
  for _, k in ipairs(kids) do
    local ok, code = k.child:wait(math.max(0, k.sent + 1 - core.monotonic()))
    if ok == nil then
      table.insert(results[k.op], string.format("pid %d, signalled %.0f ms after it started to wait",
        k.child.pid, (k.sent - k.ready) * 1000))
      k.child:kill()
      k.child:wait(10)
    elseif code == 0 then
      table.insert(results[k.op], string.format("pid %d returned instead of being interrupted: %s",
        k.child.pid, k.child.output()))
    end
  end
  empty:close()
  full:close()
  return results
end

describe("SIGINT to lua5.4 during a wait for ever", function()
  after_each(H.cleanup)

  for _, op in ipairs(OPS) do
    it(string.format("in %s makes every one of %d processes exit within 1 s, whatever the moment",
      op[2], TRIALS), function()
      local stuck = run_trials()[op[1]]
      assert(#stuck == 0, string.format("%d of %d processes still ran 1 s after SIGINT:\n%s",
        #stuck, TRIALS, table.concat(stuck, "\n")))
    end)
  end
end)

describe("under a permanent count hook", function()
  after_each(H.cleanup)

  it("q:receive_timeout(1) returns `timeout` after about 1 s", function()
    local _, key = H.fresh_key_queue()
    local ok, code, out = H.sh(string.format("timeout -k 5 20 %s %s %d", H.LUA, H.script([[
      local mq = require "mq"
      local core = require "mq.core"
      local q = assert(mq.open(tonumber(arg[1])))
      debug.sethook(function() end, "", 1000)
      local t0 = core.monotonic()
      local r, _, code = q:receive_timeout(1)
      print(string.format("RESULT %s %s %.3f", tostring(r), tostring(code), core.monotonic() - t0))
    ]]), key))
    assert(code ~= 124, "receive_timeout(1) under a count hook was still running after 20 s")
    assert(ok, out)
    local r, c, t = out:match("RESULT (%S+) (%S+) (%S+)")
    assert.equal("nil", r)
    assert.equal("timeout", c)
    t = tonumber(t)
    assert(t >= 1 and t < 3, "it returned after " .. t .. " s")
  end)

  it("q:receive_timeout(-1) still receives a message sent later", function()
    local q, key = H.fresh_key_queue()
    local flag = P.flag()
    local child = P.spawn([[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1])))
      debug.sethook(function() end, "", 1000)
      local f = assert(io.open(arg[2], "w")); f:close()
      local d, t = q:receive_timeout(-1)
      print("GOT", d, t)
    ]], nil, key, flag)
    assert(P.wait_file(flag, 20), child.output())
    require("mq.core").sleep(0.1)
    assert(q:send("later", 4))
    local ok, code, out = child:finish(20)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.equal("GOT\tlater\t4\n", out)
    q:close()
  end)
end)

-- `mq` is required for its side effect of loading the module the children use.
assert(mq._VERSION)

describe("a wait in a coroutine that cannot yield", function()
  after_each(H.cleanup)

  -- lua.c's SIGINT handler sets its hook on the main thread (globalL), as this child's timer
  -- handler does (testproc's catch_deadline). A wait in a table.sort comparator inside a
  -- coroutine waits in C, where the main thread's hook never runs: it must end, so that
  -- control gets back to the main thread and its hook stops the script.
  local CHILD = [[
    local mq = require "mq"
    local core = require "mq.core"
    package.cpath = arg[2] .. ";" .. package.cpath
    local tp = require "testproc"
    local q = assert(mq.open(tonumber(arg[1])))
    assert(tp.catch_deadline(tp.SIGALRM))
    tp.deadline(core.monotonic() + 0.2)
    tp.setitimer(0.05, 0.05)
    local inner
    io.stdout:setvbuf("no")
    local co = coroutine.create(function()
      table.sort({ 3, 2, 1 }, function(a, b)
        if not inner then
          inner = { q:receive_timeout(-1) }
          print("INNER", tostring(inner[1]), tostring(inner[3]))   -- the coroutine has no hook
        end
        return a < b
      end)
    end)
    local ok, err = pcall(function()
      local r = { coroutine.resume(co) }  -- back here, the main thread's hook runs
      assert(r[1], r[2])
      for _ = 1, 1e8 do end
    end)
    print("MAIN", tostring(ok), tostring(err))
  ]]

  it("ends with `interrupted` when a signal handler hooks the main thread", function()
    local _, key = H.fresh_key_queue()
    local _, cpath = P.native()
    local ok, code, out = H.sh(string.format("timeout 10 %s %s %s %s", H.LUA, H.script(CHILD),
      key, H.shell_quote(cpath)))
    assert(code ~= 124, "the wait never ended: " .. out)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("INNER\tnil\tinterrupted\n", out)
    assert.matches("MAIN\tfalse\t[^\n]*FUZZ%-DEADLINE", out)
  end)
end)

describe("a wait that only its caller's giving way lets a signal stop", function()
  after_each(H.cleanup)

  -- As above: the child's SIGALRM handler hooks the main thread 0.2 s in, as lua.c's Ctrl-C
  -- does, while the body waits for ever on queue q (or the loop `loop` does). Each body
  -- prints INNER with what the wait returned; back on the main thread, the hook raises.
  local function child(body)
    return [[
      local mq = require "mq"
      local core = require "mq.core"
      package.cpath = arg[2] .. ";" .. package.cpath
      local tp = require "testproc"
      local q = assert(mq.open(tonumber(arg[1])))
      local loop = require("mq.loop").new()
      local function inner(...)
        local r = table.pack(...)
        print("INNER", tostring(r[1]), tostring(r[2]):match("interrupted by a signal") and "..." or
          tostring(r[2]), tostring(r[3]))
      end
      local waiting = false
      local function once(f) if not waiting then waiting = true f() end end
      assert(tp.catch_deadline(tp.SIGALRM))
      tp.deadline(core.monotonic() + 0.2)
      tp.setitimer(0.05, 0.05)
      io.stdout:setvbuf("no")
      local ok, err = pcall(function()
        ]] .. body .. [[
        for _ = 1, 1e8 do end                -- the main thread's hook runs here at the latest
      end)
      print("MAIN", tostring(ok), tostring(err))
    ]]
  end

  local CASES = {
    { "a finalizer on the main thread (Lua runs no hook there)", [[
        setmetatable({}, { __gc = function() once(function() inner(q:receive_timeout(-1)) end) end })
        collectgarbage()
      ]] },
    { "mq.select in a finalizer on the main thread", [[
        setmetatable({}, { __gc = function() once(function() inner(mq.select({ q }, -1)) end) end })
        collectgarbage()
      ]] },
    { "a sort comparator in one of mq.loop's coroutines", [[
        loop:spawn(function()
          table.sort({ 3, 2, 1 }, function(a, b) once(function() inner(q:receive_timeout(-1)) end) return a < b end)
        end)
        print("RUN", loop:run())
      ]] },
    { "a sort comparator in a coroutine, with a waiter of the caller's own", [[
        mq.set_waiter(function(s) core.sleep(s) end)
        assert(coroutine.resume(coroutine.create(function()
          table.sort({ 3, 2, 1 }, function(a, b) once(function() inner(q:receive_timeout(-1)) end) return a < b end)
        end)))
      ]] },
    { "mq.loop's run, itself in a coroutine", [[
        loop:spawn(function() q:receive_timeout(-1) end)
        assert(coroutine.resume(coroutine.create(function() inner(loop:run()) end)))
      ]] },
    { "a finalizer on the main thread, with a waiter of the caller's own", [[
        mq.set_waiter(function(s) core.sleep(s) end)
        setmetatable({}, { __gc = function() once(function() inner(q:receive_timeout(-1)) end) end })
        collectgarbage()
      ]] },
    { "a finalizer on the main thread, with mq.luv's waiter", [[
        require("mq.luv").install()
        setmetatable({}, { __gc = function() once(function() inner(q:receive_timeout(-1)) end) end })
        collectgarbage()
      ]] },
    { "a sort comparator in a cqueues coroutine, with mq.cqueues' waiter", [[
        require("mq.cqueues").install()
        local cq = require("cqueues").new()
        cq:wrap(function()
          table.sort({ 3, 2, 1 }, function(a, b) once(function() inner(q:receive_timeout(-1)) end) return a < b end)
        end)
        assert(cq:loop())
      ]] },
    { "a sort comparator in a coroutine, with a waiter of the caller's own, the signal coming "
      .. "while the call spins", [[
        mq.set_waiter(function(s) core.sleep(s) end)
        assert(mq.set_poll { spins = 3000000 })   -- about a second of tries before a waiter call
        assert(coroutine.resume(coroutine.create(function()
          table.sort({ 3, 2, 1 }, function(a, b) once(function() inner(q:receive_timeout(-1)) end) return a < b end)
        end)))
      ]] },
  }

  for _, case in ipairs(CASES) do
    it("ends with `interrupted` in " .. case[1] .. ", and the hook then stops the script", function()
      local _, key = H.fresh_key_queue()
      local _, cpath = P.native()
      local ok, code, out = H.sh(string.format("timeout 10 %s %s %s %s", H.LUA, H.script(child(case[2])),
        key, H.shell_quote(cpath)))
      assert(code ~= 124, "the wait never ended: " .. out)
      assert(ok, string.format("child exited %s: %s", tostring(code), out))
      assert.matches("INNER\tnil\t...\tinterrupted\n", out, 1, true)
      assert.matches("MAIN\tfalse\t[^\n]*FUZZ%-DEADLINE", out)
    end)
  end
end)

describe("a hook that a signal handler sets and that only looks", function()
  after_each(H.cleanup)

  -- A host's signal handler sets a hook that counts and clears itself, raising nothing,
  -- every 20 ms: each time a wait returns to Lua for it, and goes on once it has run.
  local CHILD = [[
    local mq = require "mq"
    package.cpath = arg[2] .. ";" .. package.cpath
    local tp = require "testproc"
    local q = assert(mq.open(tonumber(arg[1])))
    assert(tp.catch_tick(tp.SIGALRM))
    tp.setitimer(0.02, 0.02)
    local r = { q:receive_timeout(0.5) }
    local s = { mq.select({ q }, 0.3) }
    tp.setitimer(0)
    print("RESULT", tostring(r[1]), r[3], tostring(s[1]), s[3], tp.ticks() >= 10)
  ]]

  it("does not end a timed call on the main thread: it times out, having let the hook run", function()
    local _, key = H.fresh_key_queue()
    local _, cpath = P.native()
    local ok, code, out = H.sh(string.format("timeout 10 %s %s %s %s", H.LUA, H.script(CHILD), key,
      H.shell_quote(cpath)))
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("RESULT\tnil\ttimeout\tnil\ttimeout\ttrue\n", out, 1, true)
  end)
end)
