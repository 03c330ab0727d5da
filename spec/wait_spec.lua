-- The timed calls' waiting: the back-off settings (mq.set_poll / mq.get_poll) and the
-- loop that runs in C when the default waiter is in use outside a coroutine.

local mq = require "mq"
local core = require "mq.core"
local H = require "helpers"
local P = require "support.proc"

-- ppoll, clock_nanosleep and nanosleep, where a child waiting in the C loop spends its time.
local SLEEPS = { x86_64 = { [271] = true, [230] = true, [35] = true },
  aarch64 = { [73] = true, [115] = true, [101] = true } }
local machine = (select(3, H.sh("uname -m")) or ""):match("%S+")

-- Wait until pid sleeps between two polls of a timed call.
local function wait_sleeping(pid)
  return H.wait_until(function()
    local state, nr, wchan = P.doing(pid)
    if state ~= "S" then return false end
    if SLEEPS[machine] then return SLEEPS[machine][nr] == true end
    return wchan:find("nanosleep", 1, true) ~= nil or wchan:find("poll", 1, true) ~= nil
  end, 20)
end

describe("mq.get_poll and mq.set_poll", function()
  local saved
  before_each(function() saved = mq.get_poll() end)
  after_each(function() mq.set_poll(saved) end)

  it("start at 3 spins, 50 µs doubling to 1 ms, with readiness helper threads", function()
    assert.are.same({ spins = 3, min = 50e-6, max = 1e-3, threads = true }, mq.get_poll())
  end)

  it("return the previous settings and keep the fields left out", function()
    local before = mq.get_poll()
    assert.are.same(before, mq.set_poll { max = 0.004 })
    assert.are.same({ spins = before.spins, min = before.min, max = 0.004, threads = true }, mq.get_poll())
    assert.are.same({ spins = before.spins, min = before.min, max = 0.004, threads = true },
      mq.set_poll { spins = 0, min = 0.001, threads = false })
    assert.are.same({ spins = 0, min = 0.001, max = 0.004, threads = false }, mq.get_poll())
  end)

  it("refuse bad values with `invalid` and change nothing", function()
    local before = mq.get_poll()
    for _, bad in ipairs {
      { spins = -1 }, { spins = 1.5 }, { spins = 0 / 0 }, { min = 0 }, { min = -1 },
      { min = 0 / 0 }, { max = 1 / 0 }, { min = 0.01, max = 0.001 }, { min = 1 / 0 },
    } do
      local r, msg, code = mq.set_poll(bad)
      assert.is_nil(r)
      assert.are.equal("invalid", code)
      assert.matches("set_poll", msg)
      assert.are.same(before, mq.get_poll())
    end
  end)

  it("raise for wrong types", function()
    assert.has_error(function() mq.set_poll() end)
    assert.has_error(function() mq.set_poll(5) end)
    assert.has_error(function() mq.set_poll { max = "1" } end)
    assert.has_error(function() mq.set_poll { spins = true } end)
    assert.has_error(function() mq.set_poll { threads = 1 } end)
  end)

  it("set the back-off a waiter sees: spins, then waits doubling from min up to max", function()
    mq.set_poll { spins = 2, min = 0.001, max = 0.004 }
    local q = H.fresh_key_queue()
    local seen = {}
    local previous = mq.set_waiter(function(s)
      seen[#seen + 1] = s
      if #seen == 6 then assert(q:send("enough")) end
    end)
    local data, err = q:receive_timeout(30)
    mq.set_waiter(previous)
    assert.are.equal("enough", data, err)
    assert.are.same({ 0.001, 0.002, 0.004, 0.004, 0.004, 0.004 }, seen)
    q:close()
  end)
end)

describe("a timed call with the default waiter outside a coroutine", function()
  after_each(H.cleanup)

  -- The child waits in one timed call and reports its result.
  local CHILD = [[
    io.stdout:setvbuf("no")
    local mq = require "mq"
    local q = assert(mq.open(arg[1]))
    local op = arg[2]
    if arg[3] ~= "" then
      package.cpath = arg[3] .. ";" .. package.cpath
      assert(require("testproc").catch(require("testproc").SIGUSR1))
    end
    local r, err, code
    if op == "receive" then r, err, code = q:receive_timeout(60)
    else r, err, code = q:send_timeout(string.rep("s", 1000), 60) end
    print("RESULT", tostring(r), tostring(err), tostring(code))
  ]]

  it("returns `removed` from receive_timeout when another process destroys the queue", function()
    local _, name = H.fresh_name_queue("cwait")
    local child = P.spawn(CHILD, nil, name, "receive", "")
    assert(wait_sleeping(child.pid), "the child never waited: " .. child.output())
    assert.is_true(mq.destroy(name))
    local ok, code, out = child:finish(20)
    assert(ok ~= nil, "the wait hung after the queue was removed")
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("RESULT\tnil\t[^\n]*receive_timeout[^\n]*\tremoved\n", out)
  end)

  it("returns `removed` from send_timeout on a full queue when the queue is removed", function()
    local q, name = H.fresh_name_queue("cwaits")
    assert(q:set_capacity(1000))
    assert(q:send(string.rep("f", 1000)))
    local child = P.spawn(CHILD, nil, name, "send", "")
    assert(wait_sleeping(child.pid), "the child never waited: " .. child.output())
    local ok_ipcrm, _, ipcrm_out = H.sh("ipcrm -q " .. q:id())
    assert(ok_ipcrm, ipcrm_out)
    local ok, code, out = child:finish(20)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("RESULT\tnil\t[^\n]*send_timeout[^\n]*\tremoved\n", out)
  end)

  it("keeps waiting when a signal cuts a sleep short, and gets the message sent later", function()
    local tp, cpath = P.native()
    local q, name = H.fresh_name_queue("csig")
    local child = P.spawn(CHILD, nil, name, "receive", cpath)
    for _ = 1, 3 do
      assert(wait_sleeping(child.pid), "the child never waited: " .. child.output())
      assert(tp.kill(child.pid, tp.SIGUSR1))
    end
    assert(wait_sleeping(child.pid), "the child stopped waiting: " .. child.output())
    assert(q:send("after three signals", 4))
    local ok, code, out = child:finish(20)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("RESULT\tafter three signals\t4\tnil\n", out)
    q:close()
  end)

  it("does not return before its deadline", function()
    local q = H.fresh_key_queue()
    local t0 = core.monotonic()
    H.fails("timeout", q:receive_timeout(0.05))
    assert.is_true(core.monotonic() - t0 >= 0.05)
    assert(q:set_capacity(10))
    assert(q:send(string.rep("f", 10)))
    t0 = core.monotonic()
    H.fails("timeout", q:send_timeout("y", 0.05))
    assert.is_true(core.monotonic() - t0 >= 0.05)
    q:close()
  end)
end)

describe("mq.select with a NaN timeout", function()
  after_each(H.cleanup)

  it("is invalid and receives nothing", function()
    local q = H.fresh_key_queue()
    assert(q:send("keep me"))
    H.fails("invalid", mq.select({ q }, 0 / 0))
    assert.are.equal(1, q:stat().messages)
    assert.are.equal("keep me", (q:receive()))
    q:close()
  end)

  it("says closed first when a handle is closed", function()
    local q = H.fresh_key_queue()
    local c = H.fresh_key_queue()
    assert(q:send("keep me"))
    c:close()
    local msg = H.fails("closed", mq.select({ q, c }, 0 / 0))
    assert.matches("select mq.queue%(closed%)", msg)
    assert.are.equal(1, q:stat().messages)
    q:close()
  end)
end)
