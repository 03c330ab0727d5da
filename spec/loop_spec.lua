-- mq.loop: the built-in loop that runs coroutines and, when every one of them waits,
-- blocks in ppoll on all their readiness fds. Order, errors, run's timeout, loop:sleep,
-- many waiting coroutines, two waits on one handle, close and __gc during a wait,
-- threads = false, SIGINT. Messages "sent while the loop waits" come from forked children
-- that wait until this process sleeps in ppoll; no timing is asserted.

local mq = require "mq"
local core = require "mq.core"
local H = require "helpers"
local P = require "support.proc"
local new_loop = require("mq.loop").new

local tp

setup(function() tp = P.native() end)

describe("mq.loop", function()
  after_each(P.reset_waiting)

  it("runs its coroutines in spawn order, once per round, with their arguments", function()
    local loop = new_loop()
    local log = {}
    for _, name in ipairs({ "a", "b", "c" }) do
      loop:spawn(function(who, rounds)
        for i = 1, rounds do
          log[#log + 1] = who .. i
          coroutine.yield()
        end
      end, name, name == "b" and 1 or 2)
    end
    assert.are.equal(3, loop:size())
    assert.is_true(loop:run())
    assert.are.equal(0, loop:size())
    assert.are.same({ "a1", "b1", "c1", "a2", "c2" }, log)
  end)

  it("raises a coroutine's error with that coroutine's traceback, and restores the waiter", function()
    local function mine(s) return s end
    mq.set_waiter(mine)
    local loop = new_loop()
    local function deep_in_the_coroutine()
      error("boom in a coroutine")
    end
    loop:spawn(function() loop:sleep(0) deep_in_the_coroutine() end)
    local ok, err = pcall(loop.run, loop)
    assert.is_false(ok)
    assert.matches("boom in a coroutine", err)
    assert.matches("stack traceback", err)
    assert.matches("deep_in_the_coroutine", err)
    assert.are.equal(mine, (mq.set_waiter(nil)))
  end)

  it("closes its other coroutines when one raises, so that their waits end and no helper is left",
    function()
    local q = H.fresh_key_queue()
    local loop = new_loop()
    loop:spawn(function() q:receive_timeout(30) end)            -- sleeps on a helper
    loop:spawn(function() loop:sleep(0.05) error("boom while another waits") end)
    local ok, err = pcall(loop.run, loop)
    assert.is_false(ok)
    assert.matches("boom while another waits", err)
    assert.are.equal(0, loop:size())
    P.no_helper_left()
    q:close()
  end)

  it("wakes a wait that spans a fork, in the child, on a helper of the child's own", function()
    local q, key = H.fresh_key_queue()
    local result = P.flag()
    -- A process of its own runs the loop: a coroutine waits, another forks, and the middle
    -- process leaves at once, so that only the grandchild's own helper can wake the wait.
    local pid = P.fork(function()
      local loop = new_loop()
      local t0
      loop:spawn(function()
        local data = q:receive_timeout(10, 7)
        -- Written whole, then renamed: the parent polls for the file and must not read it
        -- half written.
        H.write_file(result .. ".part", string.format("%s %.3f", tostring(data), core.monotonic() - t0))
        assert(os.rename(result .. ".part", result))
      end)
      loop:spawn(function()
        loop:sleep(0.05)                 -- the first one waits now
        if tp.fork() ~= 0 then tp._exit(0) end
        t0 = core.monotonic()
        loop:sleep(0.2)
        local s = assert(mq.open(key))
        assert(s:send("afterfork", 7))
        s:close()
      end)
      loop:run(15)
    end)
    assert.are.equal(0, P.reap(pid))
    local out = H.wait_until(function() return H.read_file(result) end, 15)
    assert(out, "the grandchild's wait never ended")
    local data, elapsed = out:match("^(%S+) ([%d.]+)$")
    assert.are.equal("afterfork", data)
    assert(tonumber(elapsed) < 5, "the wait ended only at its deadline: " .. out)
    q:close()
  end)

  it("lets timed calls that find their message at once allocate nothing (receive, select)", function()
    local q = H.fresh_key_queue()
    local loop, per_call, list = new_loop(), {}, { q }
    loop:spawn(function()
      for _, call in ipairs({ function() return q:receive_timeout(1) end,
                              function() return mq.select(list, 1) end }) do
        assert(q:send("x"))
        assert(call())                        -- warm: the handle's buffer, the interned "x"
        collectgarbage("stop")
        local before = collectgarbage("count")
        for _ = 1, 1000 do
          assert(q:send("x"))
          assert(call())
        end
        per_call[#per_call + 1] = (collectgarbage("count") - before) * 1024 / 1000
        collectgarbage("restart")
      end
    end)
    assert.is_true(loop:run(10))
    for i, bytes in ipairs(per_call) do assert(bytes < 16, i .. ": " .. bytes .. " bytes per call") end
    q:close()
  end)

  it("restores the waiter that was set before run", function()
    local function mine(s) return s end
    mq.set_waiter(mine, { fds = true })
    local loop = new_loop()
    local inside
    loop:spawn(function() inside = mq.set_waiter(nil) mq.set_waiter(inside, { fds = true }) end)
    assert.is_true(loop:run())
    assert.are_not.equal(mine, inside)                  -- the loop's own, while it runs
    local previous, opts = mq.set_waiter(nil)
    assert.are.equal(mine, previous)
    assert.are.same({ fds = true }, opts)
  end)

  it("returns false from run(timeout) while a coroutine still waits, and goes on with run()", function()
    local q = H.fresh_key_queue()
    local loop = new_loop()
    local got
    loop:spawn(function() got = { q:receive_timeout(30) } end)
    assert.is_false(loop:run(0.05))
    assert.are.equal(1, loop:size())
    assert.is_nil(got)
    assert.is_true(P.wait_helpers(1))             -- its wait's helper, still waiting
    assert(q:send("later"))
    assert.is_true(loop:run(30))
    assert.are.same({ "later", 1 }, got)
    P.no_helper_left()
    q:close()
  end)

  it("lets loop:sleep's coroutine wait while the others run; refuses it elsewhere", function()
    local loop = new_loop()
    local log = {}
    loop:spawn(function()
      loop:sleep(0.02)
      log[#log + 1] = "slept"
    end)
    loop:spawn(function()
      for i = 1, 3 do
        log[#log + 1] = "other " .. i
        coroutine.yield()
      end
    end)
    assert.is_true(loop:run())
    assert.are.same({ "other 1", "other 2", "other 3", "slept" }, log)
    assert.has_error(function() loop:sleep(0) end, "loop:sleep outside this loop's coroutines")
    assert.has_error(function() loop:spawn(42) end)
    assert.has_error(function() loop:run("soon") end)
  end)

  it("wakes each of many coroutines, waiting on many queues at once, for its own message", function()
    local n = P.scaled(50, 10)
    local qs, got = {}, {}
    local loop = new_loop()
    for i = 1, n do
      qs[i] = H.fresh_key_queue()
      loop:spawn(function() got[i] = qs[i]:receive_timeout(30) end)
    end
    local parent = tp.getpid()
    local pid = P.fork(function()
      assert(H.wait_until(function() return P.ppoll_nfds(parent) == n end, 20),
        "the loop never slept on all " .. n .. " fds")
      for i = n, 1, -1 do assert(qs[i]:send("for " .. i)) end
    end)
    assert.is_true(loop:run(30))
    assert.are.equal(0, P.reap(pid))
    P.no_helper_left()
    for i = 1, n do
      assert.are.equal("for " .. i, got[i])
      qs[i]:close()
    end
  end)

  it("wakes two waits on one handle, each for its own type; {except = T} too", function()
    local q = H.fresh_key_queue()
    local sender = H.other(q)
    local loop = new_loop()
    local log = {}
    local function waiter(who, selector)
      loop:spawn(function()
        local data, mtype = q:receive_timeout(30, selector)
        log[#log + 1] = string.format("%s got %s:%s", who, tostring(data), tostring(mtype))
      end)
    end
    waiter("A", 1)
    waiter("B", 2)
    waiter("C", { except = 1 })
    local parent = tp.getpid()
    local pid = P.fork(function()
      local function when_waiting(k)
        assert(H.wait_until(function() return P.ppoll_nfds(parent) == k end, 20),
          "the loop never slept on " .. k .. " fds")
      end
      when_waiting(3)
      assert(sender:send("three", 3))     -- C's only
      when_waiting(2)
      assert(sender:send("one", 1))       -- A's only
      when_waiting(1)
      assert(sender:send("two", 2))       -- B's
    end)
    assert.is_true(loop:run(30))
    assert.are.equal(0, P.reap(pid))
    assert.are.same({ "C got three:3", "A got one:1", "B got two:2" }, log)
    P.no_helper_left()
    sender:close()
    q:close()
  end)

  it("lets a timed call that cannot yield (in a table.sort comparator) wait all the same", function()
    local q = H.fresh_key_queue()
    assert(q:send("there", 1))
    local loop = new_loop()
    local result
    loop:spawn(function()
      local t = { 3, 1, 2 }
      result = { pcall(table.sort, t, function(a, b)
        H.fails("timeout", q:receive_timeout(0.002, 7))   -- waits, then times out
        return a < b
      end) }
      result[3] = q:receive_timeout(0, 1)
    end)
    assert.is_true(loop:run(30))
    assert.are.same({ true, nil, "there" }, result)
    q:close()
  end)

  it("polls with back-off steps and starts no thread with threads = false", function()
    mq.set_poll { threads = false }
    local q = H.fresh_key_queue()
    local loop = new_loop()
    local got, during
    loop:spawn(function() got = q:receive_timeout(30) end)
    loop:spawn(function()
      loop:sleep(0.02)
      during = P.helpers()
      assert(q:send("polled"))
    end)
    assert.is_true(loop:run(30))
    assert.are.equal("polled", got)
    assert.are.equal(0, during)
    q:close()
  end)

  it("runs a polling send_timeout beside coroutines that sleep on fds", function()
    local full, q = H.fresh_key_queue(), H.fresh_key_queue()
    assert(full:set_capacity(10))
    assert(full:send(string.rep("f", 10)))
    local loop = new_loop()
    local sent, got
    loop:spawn(function() sent = full:send_timeout("g", 30) end)
    loop:spawn(function() got = q:receive_timeout(30) end)
    loop:spawn(function()
      loop:sleep(0.02)
      assert.are.equal(string.rep("f", 10), (full:receive()))
      assert(q:send("received"))
    end)
    assert.is_true(loop:run(30))
    assert.is_true(sent)
    assert.are.equal("received", got)
    P.no_helper_left()
    assert.are.equal("g", (full:receive()))
    full:close()
    q:close()
  end)
end)

describe("a handle closed or collected while a coroutine of mq.loop waits on it", function()
  after_each(P.reset_waiting)

  -- The helper of the wait takes a 0-byte message (the sender sees the queue empty).
  local function held_by_helper(sender)
    assert(sender:send("", 4))
    assert(H.wait_until(function() return sender:stat().messages == 0 end, 10),
      "the wait's helper never took the 0-byte message")
  end

  -- This process's fds that are eventfds (the readiness helpers'), listed by a shell.
  local function eventfds()
    local _, _, out = H.sh("ls -l /proc/" .. tp.getpid() .. "/fd")
    local fds = {}
    for fd in out:gmatch(" (%d+) %-> anon_inode:%[eventfd%]") do fds[#fds + 1] = tonumber(fd) end
    return fds
  end

  -- Open `path` a few times, or until fd number `fd` is one of the files opened (if
  -- closing left it free); returns them all.
  local function open_as(path, fd)
    local files = {}
    for _ = 1, 8 do
      files[#files + 1] = assert(io.open(path, "r+"))
      local _, _, out = H.sh("readlink /proc/" .. tp.getpid() .. "/fd/" .. fd)
      if out:find(path, 1, true) then break end
    end
    return files
  end

  it("wakes the wait with `closed` at once, puts back what its helper took, leaves no thread", function()
    local q = H.fresh_key_queue()
    local sender = H.other(q)
    local fifo = H.TMPDIR .. "/loop-fifo-" .. tp.getpid()
    assert(os.execute("mkfifo " .. H.shell_quote(fifo)))
    local before = {}                        -- eventfds of others (luv's, cqueues')
    for _, fd in ipairs(eventfds()) do before[fd] = true end
    local loop = new_loop()
    local result, back, woke
    loop:spawn(function() result = { q:receive_timeout(-1) } end)
    loop:spawn(function()
      held_by_helper(sender)
      local fds = {}
      for _, fd in ipairs(eventfds()) do
        if not before[fd] then fds[#fds + 1] = fd end
      end
      assert.are.equal(1, #fds)              -- the wait's
      q:close()
      back = sender:stat().messages
      -- Should closing have freed the wait's fd number, a FIFO nobody writes to (never
      -- readable) takes it now: the wait must not be left sleeping on it.
      local files = open_as(fifo, fds[1])
      for _ = 1, 200 do
        if result then break end
        loop:sleep(0.01)
      end
      woke = result ~= nil
      for _, f in ipairs(files) do f:close() end
    end)
    local finished = loop:run(10)
    os.remove(fifo)
    assert(finished, "the loop did not finish")
    assert(woke, "the waiting coroutine slept on after its handle was closed")
    assert.are.equal(1, back)
    assert.is_nil(result[1])
    assert.are.equal("closed", result[3])
    assert.are.same({ "", 4 }, { sender:receive() })
    sender:close()
  end)

  it("joins its helper and puts back what it took when the handle is collected", function()
    local q = H.fresh_key_queue()
    local sender = H.other(q)
    local loop = new_loop()
    loop:spawn(function() q:receive_timeout(-1) end)
    loop:spawn(function()
      held_by_helper(sender)
      core.sleep(0.1)                        -- past run's timeout: the waiting one stays put
    end)
    assert.is_false(loop:run(0.05))
    assert.is_true(P.wait_alive(1))         -- it fired (the message it took), parked
    loop, q = nil, nil   -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert(P.wait_helpers(0))
    assert.is_true(P.wait_alive(0))
    assert.are.equal(1, sender:stat().messages)
    assert.are.same({ "", 4 }, { sender:receive() })
    sender:close()
  end)
end)

describe("SIGINT", function()
  after_each(P.reset_waiting)

  it("ends a lua5.4 script whose mq.loop blocks on waiting coroutines", function()
    local _, name = H.fresh_name_queue("loopint")
    local child = P.spawn([[
      local mq = require "mq"
      local q = assert(mq.open(arg[1]))
      local loop = require("mq.loop").new()
      loop:spawn(function() q:receive_timeout(-1) end)
      loop:spawn(function() q:receive_timeout(-1, 2) end)
      loop:run()
      print("RETURNED")
    ]], nil, name)
    finally(function() if child:wait(0) == nil then child:kill() end end)
    assert(P.wait_in_ppoll(child.pid), "the child never waited: " .. child.output())
    assert(tp.kill(child.pid, 2))
    local ok, code, out = child:finish(20)
    assert(ok ~= nil, "SIGINT did not end the loop")
    assert.is_false(ok)
    assert.are.equal(1, code)
    assert.matches("interrupted!", out)
    assert.is_nil(out:match("RETURNED"))
  end)
end)
