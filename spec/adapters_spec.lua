-- The event-loop adapters of issue 10: require("mq.cqueues").install() and
-- require("mq.luv").install() make mq's waiter sleep in the host loop on the readiness fds
-- of the queues a timed receive waits for. For each: a wake-up, a timeout, two waits on
-- one handle, select across queues, a handle closed during a wait; for cqueues also one
-- collected with its controller. Each loop run is bounded (a hang fails the spec instead
-- of hanging the suite); no timing is asserted.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

-- Wrap an adapter's waiter to count its calls and the fds it was given.
local function counting(waiter)
  local stats = { calls = 0, with_fds = 0 }
  mq.set_waiter(function(seconds, fds)
    stats.calls = stats.calls + 1
    if fds and #fds > 0 then stats.with_fds = stats.with_fds + 1 end
    return waiter(seconds, fds)
  end, { fds = true })
  return stats
end

-- The specs both adapters pass, written against a small interface to the host loop:
-- fresh() gives { spawn = function(f) (run f as a coroutine of the loop),
-- later = function(seconds, f) (run f that much later), run = function(seconds) (run the
-- loop until it has nothing left, at most that long; true when it emptied) }.
local function shared_specs(adapter, fresh)
  it("install() makes its waiter mq's, with fds", function()
    local previous, opts = adapter.install()
    assert.is_function(previous)
    assert.is_nil(opts)
    local mine, mine_opts = mq.set_waiter(nil)
    assert.are.equal(adapter.waiter, mine)
    assert.are.same({ fds = true }, mine_opts)
  end)

  it("wakes a waiting coroutine for a message, through the wait's fd", function()
    local stats = counting(adapter.waiter)
    local q = H.fresh_key_queue()
    local loop, got = fresh(), nil
    loop.spawn(function() got = { q:receive_timeout(30) } end)
    loop.later(0.02, function() assert(q:send("woken", 3)) end)
    assert(loop.run(10), "the wait never woke")
    assert.are.same({ "woken", 3 }, got)
    P.no_helper_left()
    assert(stats.with_fds >= 1 and stats.calls == stats.with_fds, "the waiter polled")
    assert(stats.calls <= 3, stats.calls .. " waiter calls for one message")
    q:close()
  end)

  it("times out on the loop's clock while the loop runs other work", function()
    adapter.install()
    local q = H.fresh_key_queue()
    local loop, got, ticks = fresh(), nil, 0
    loop.spawn(function() got = { q:receive_timeout(0.05) } end)
    for i = 1, 3 do loop.later(0.01 * i, function() ticks = ticks + 1 end) end
    assert(loop.run(10))
    assert.is_nil(got[1])
    assert.are.equal("timeout", got[3])
    assert.are.equal(3, ticks)
    P.no_helper_left()
    q:close()
  end)

  it("wakes two coroutines waiting on one handle, each for its own type", function()
    adapter.install()
    local q = H.fresh_key_queue()
    local loop, got = fresh(), {}
    for _, t in ipairs({ 1, 2 }) do
      loop.spawn(function() got[t] = { q:receive_timeout(30, t) } end)
    end
    loop.later(0.02, function() assert(q:send("two", 2)) end)
    loop.later(0.04, function() assert(q:send("one", 1)) end)
    assert(loop.run(10), "a wait never woke")
    assert.are.same({ { "one", 1 }, { "two", 2 } }, got)
    P.no_helper_left()
    q:close()
  end)

  it("wakes a select across queues for the queue that got a message", function()
    adapter.install()
    local qs = { (H.fresh_key_queue()), (H.fresh_key_queue()), (H.fresh_key_queue()) }
    local loop, got = fresh(), nil
    loop.spawn(function() got = { mq.select(qs, 30) } end)
    loop.later(0.02, function() assert(qs[2]:send("second")) end)
    assert(loop.run(10), "the select never woke")
    assert.are.equal(qs[2], got[1])
    assert.are.equal("second", got[2])
    P.no_helper_left()
    for _, q in ipairs(qs) do q:close() end
  end)

  it("wakes a wait whose handle is closed meanwhile, with `closed`", function()
    adapter.install()
    local q = H.fresh_key_queue()
    local loop, got = fresh(), nil
    loop.spawn(function() got = { q:receive_timeout(-1) } end)
    loop.later(0.02, function() q:close() end)
    assert(loop.run(5), "the wait slept on after its handle was closed")
    assert.is_nil(got[1])
    assert.are.equal("closed", got[3])
  end)

  it("blocks outside a coroutine too", function()
    local stats = counting(adapter.waiter)
    local q = H.fresh_key_queue()
    H.fails("timeout", q:receive_timeout(0.05))
    assert(stats.with_fds >= 1)
    P.no_helper_left()
    q:close()
  end)
end

describe("mq.cqueues", function()
  local cqueues = require "cqueues"
  local adapter = require "mq.cqueues"
  after_each(P.reset_waiting)

  -- Run the controller until it is empty, at most `seconds`; true when it emptied.
  local function run(cq, seconds)
    local deadline = cqueues.monotime() + (seconds or 10)
    while not cq:empty() do
      local left = deadline - cqueues.monotime()
      if left <= 0 then return false end
      assert(cq:step(left))
    end
    return true
  end

  shared_specs(adapter, function()
    local cq = cqueues.new()
    return {
      spawn = function(f) cq:wrap(f) end,
      later = function(seconds, f) cq:wrap(function() cqueues.sleep(seconds) f() end) end,
      run = function(seconds) return run(cq, seconds) end,
    }
  end)

  it("leaves no thread when a controller with a waiting coroutine is collected", function()
    adapter.install()
    local q = H.fresh_key_queue()
    local cq = cqueues.new()
    cq:wrap(function() q:receive_timeout(-1) end)
    assert.is_false(run(cq, 0.05))
    assert.is_true(P.wait_helpers(1))
    cq, q = nil, nil   -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert(P.wait_helpers(0))
  end)

end)

describe("mq.luv", function()
  local uv = require "luv"
  local adapter = require "mq.luv"

  after_each(function()
    -- Whatever a failed spec left in the default loop goes, so that no later run waits on it.
    uv.walk(function(handle)
      if not handle:is_closing() then handle:close() end
    end)
    uv.run("nowait")
    P.reset_waiting()
  end)

  -- Run the default loop until nothing is left in it, at most `seconds`; true when it
  -- ran out of work on its own.
  local function run(seconds)
    local stopped = false
    local watchdog = uv.new_timer()
    watchdog:start(math.floor((seconds or 10) * 1000), 0, function()
      stopped = true
      uv.stop()
    end)
    watchdog:unref()
    uv.run("default")
    watchdog:close()
    uv.run("nowait")
    return not stopped
  end

  local function after(ms, fn)
    local t = uv.new_timer()
    t:start(ms, 0, function()
      t:close()
      fn()
    end)
  end

  local function go(fn) coroutine.wrap(fn)() end

  shared_specs(adapter, function()
    return {
      spawn = go,
      later = function(seconds, f) after(math.floor(seconds * 1000), f) end,
      run = run,
    }
  end)

  -- In a child process: a luv loop left polling a closed fd aborts the process.
  local function luv_child(body)
    local ok, code, out = H.lua_e([[
      local uv = require "luv"
      local mq = require "mq"
      require("mq.luv").install()
      local q = assert(mq.new(mq.PRIVATE))
      local function after(ms, fn)
        local t = uv.new_timer()
        t:start(ms, 0, function() t:close() fn() end)
      end
      ]] .. body .. [[
      local watchdog = uv.new_timer()
      watchdog:start(10000, 0, function() print("WATCHDOG") uv.stop() end)
      watchdog:unref()
      uv.run()
      watchdog:close()
      uv.run("nowait")                     -- completes the close (exiting before it crashes luv)
      q:destroy()
      local n = 0
      for l in io.popen("grep -lx mq-ready /proc/" .. uv.os_getpid() .. "/task/*/comm 2>/dev/null"):lines() do
        n = n + 1
      end
      print("HELPERS", n)
    ]], nil, 30)
    return ok, code, out
  end

  it("takes a huge finite timeout (1e300) as no deadline", function()
    local ok, code, out = luv_child([[
      coroutine.wrap(function() print("RESULT", pcall(q.receive_timeout, q, 1e300)) end)()
      after(20, function() assert(q:send("late")) end)
    ]])
    assert(ok, "child exited " .. tostring(code) .. ": " .. out)
    assert.matches("RESULT\ttrue\tlate\t1\n", out)
    assert.matches("HELPERS\t0\n", out)
    assert.is_nil(out:match("WATCHDOG"))
  end)

  it("unregisters a wait's fd when its coroutine is closed while it waits", function()
    local ok, code, out = luv_child([[
      local co = coroutine.create(function() q:receive_timeout(-1) end)
      assert(coroutine.resume(co))
      after(20, function() print("CLOSED", coroutine.close(co)) end)
    ]])
    assert(ok, "child exited " .. tostring(code) .. ": " .. out)
    assert.matches("CLOSED\ttrue\n", out)
    assert.matches("HELPERS\t0\n", out)
    assert.is_nil(out:match("WATCHDOG"))
  end)

end)
