-- Faults: a queue removed under a blocked or polling call, signals during blocking calls,
-- a full queue in nonblocking mode, and use after fork or from a second process.
-- Blocking calls run in child processes, so a call that hangs fails the spec instead of
-- hanging the suite (the child is killed).

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

-- Fill a queue with numbered messages of `size` bytes until a nonblocking send says
-- `again`; returns how many went in.
local function fill(q, size)
  assert(q:set_blocking(false))
  local n = 0
  while true do
    local ok, err, code = q:send(string.format("%08d", n + 1) .. string.rep("f", size - 8), 1)
    if not ok then
      assert(code == "again", "filling: " .. tostring(err))
      break
    end
    n = n + 1
  end
  assert(q:set_blocking(true))
  return n
end

-- The child prints "RESULT <ok> <code>" for its one call and exits 0 only on `removed`.
local CHILD = [[
local mq = require "mq"
local name, op, flag = arg[1], arg[2], arg[3]
local q = assert(mq.open(name))
local default = mq.set_waiter(nil)
local told = false
mq.set_waiter(function(s)
  if not told then
    told = true
    local f = assert(io.open(flag, "w")); f:close()
  end
  return default(s)
end)
local r, err, code
if op == "receive" then r, err, code = q:receive()
elseif op == "send" then r, err, code = q:send(string.rep("s", 1000))
elseif op == "receive_timeout" then r, err, code = q:receive_timeout(60)
elseif op == "send_timeout" then r, err, code = q:send_timeout(string.rep("s", 1000), 60)
end
print("RESULT", tostring(r), tostring(err), tostring(code))
os.exit(code == "removed" and 0 or 3)
]]

local removers = {
  ["ipcrm"] = function(_, id)
    local ok, _, out = H.sh("ipcrm -q " .. id)
    assert(ok, "ipcrm failed: " .. out)
  end,
  ["another process's destroy"] = function(name)
    local ok, _, out = H.run_lua([[
      local mq = require "mq"
      assert(mq.destroy(arg[1]) == true)
      assert(select(3, mq.open(arg[1])) == "notfound")
    ]], name)
    assert(ok, "destroy in another process failed: " .. out)
  end,
}

local waits = {
  receive = "blocked in msgrcv on an empty queue",
  send = "blocked in msgsnd on a full queue",
  receive_timeout = "polling in receive_timeout on an empty queue",
  send_timeout = "polling in send_timeout on a full queue",
}

describe("a queue removed while in use", function()
  after_each(H.cleanup)

  for _, op in ipairs({ "receive", "send", "receive_timeout", "send_timeout" }) do
    for how, remove in pairs(removers) do
      it(string.format("by %s gives `removed` to a call %s, without hanging", how, waits[op]), function()
        local q, name = H.fresh_name_queue("gone")
        local id = q:id()
        if op:match("^send") then assert(fill(q, 1000) > 0) end
        local flag = P.flag()
        local child = P.spawn(CHILD, nil, name, op, flag)
        if op:match("timeout") then
          assert(P.wait_file(flag, 20), "the child never polled: " .. child.output())
        else
          assert(P.wait_blocked(child.pid, op == "receive" and "msgrcv" or "msgsnd", 20),
            "the child never blocked: " .. child.output())
        end
        remove(name, id)
        local ok, code, out = child:finish(20)
        assert(ok ~= nil, "the call hung after the queue was removed")
        assert(ok, string.format("child exited %s: %s", tostring(code), out))
        assert.matches("RESULT\tnil\t.-\tremoved", out)
        -- Our own handle sees it too.
        local r, _, c = q:stat()
        assert.is_nil(r)
        assert.are.equal("removed", c)
        q:close()
      end)
    end
  end
end)

describe("a signal with a handler", function()
  local tp, cpath
  setup(function() tp, cpath = P.native() end)
  after_each(H.cleanup)

  it("interrupts a blocking receive with `interrupted` and loses no message", function()
    local q, name = H.fresh_name_queue("sigrcv")
    assert(q:send("keep me", 1))
    local child = P.spawn([[
      io.stdout:setvbuf("no")
      package.cpath = arg[2] .. ";" .. package.cpath
      local tp = require "testproc"
      local mq = require "mq"
      assert(tp.catch(tp.SIGUSR1))
      local q = assert(mq.open(arg[1]))
      local r, err, code = q:receive(2)           -- nothing of type 2 yet: blocks
      print("FIRST", tostring(r), tostring(err), tostring(code), tp.caught())
      print("LEFT", q:stat().messages)
      r, code = q:receive(2)                      -- blocks again; the parent sends one now
      print("SECOND", tostring(r), tostring(code))
      r, code = q:receive(1, 100)
      print("THIRD", tostring(r), tostring(code))
    ]], nil, name, cpath)
    assert(P.wait_blocked(child.pid, "msgrcv", 20), "the child never blocked: " .. child.output())
    assert(tp.kill(child.pid, tp.SIGUSR1))
    -- It must leave the first receive and block in the second one.
    assert(H.wait_until(function() return child.output():match("LEFT") end, 20), child.output())
    assert(P.wait_blocked(child.pid, "msgrcv", 20), "the child never blocked again: " .. child.output())
    assert(q:send("after the signal", 2))
    local ok, code, out = child:finish(20)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("FIRST\tnil\t[^\n]*\tinterrupted\t1\n", out)
    assert.matches("LEFT\t1\n", out)
    assert.matches("SECOND\tafter the signal\t2\n", out)
    assert.matches("THIRD\tkeep me\t1\n", out)
    assert.are.equal(0, q:stat().messages)
    q:close()
  end)

  it("interrupts a send blocked on a full queue with `interrupted`; nothing is lost or doubled", function()
    local q, name = H.fresh_name_queue("sigsnd")
    local n = fill(q, 1000)
    local child = P.spawn([[
      io.stdout:setvbuf("no")
      package.cpath = arg[2] .. ";" .. package.cpath
      local tp = require "testproc"
      local mq = require "mq"
      assert(tp.catch(tp.SIGUSR1))
      local q = assert(mq.open(arg[1]))
      local msg = string.format("%08d", arg[3] + 1) .. string.rep("f", 992)
      local r, err, code = q:send(msg)                      -- full: blocks
      print("FIRST", tostring(r), tostring(err), tostring(code), tp.caught())
      print("COUNT", q:stat().messages)
      r, err, code = q:send(msg)                            -- blocks until the parent reads
      print("SECOND", tostring(r), tostring(code))
    ]], nil, name, cpath, n)
    assert(P.wait_blocked(child.pid, "msgsnd", 20), "the child never blocked: " .. child.output())
    assert(tp.kill(child.pid, tp.SIGUSR1))
    assert(H.wait_until(function() return child.output():match("COUNT") end, 20), child.output())
    assert(P.wait_blocked(child.pid, "msgsnd", 20), "the child never blocked again: " .. child.output())
    local got = {}
    for i = 1, n + 1 do
      local data = assert(q:receive_timeout(20))
      got[i] = tonumber(data:sub(1, 8))
    end
    local ok, code, out = child:finish(20)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.matches("FIRST\tnil\t[^\n]*\tinterrupted\t1\n", out)
    assert.matches("COUNT\t" .. n .. "\n", out)
    assert.matches("SECOND\ttrue\tnil\n", out)
    for i = 1, n + 1 do assert.are.equal(i, got[i]) end
    assert.are.equal(0, q:stat().messages)
    q:close()
  end)
end)

describe("a full queue in nonblocking mode", function()
  after_each(H.cleanup)

  it("refuses a send with `again` and loses nothing already queued", function()
    local q, name = H.fresh_name_queue("full")
    local nb = assert(mq.open(name, mq.O_RDWR | mq.O_NONBLOCK))
    local n = 0
    repeat
      local ok, _, code = nb:send(string.format("%08d", n + 1) .. string.rep("x", 700), 1 + n % 3)
      if ok then n = n + 1 else assert.are.equal("again", code) end
    until not ok
    assert(n > 1)
    -- Refused again and again (same size as the rest): still nothing added.
    for _ = 1, 50 do
      local ok, _, code = nb:send(string.rep("y", 708), 1)
      assert.is_nil(ok)
      assert.are.equal("again", code)
    end
    assert.are.equal(n, q:stat().messages)
    for i = 1, n do
      local data, mtype = nb:receive()
      assert.are.equal(string.format("%08d", i) .. string.rep("x", 700), data)
      assert.are.equal(1 + (i - 1) % 3, mtype)
    end
    local data, _, code = nb:receive()
    assert.is_nil(data)
    assert.are.equal("again", code)
    -- A refused receive takes nothing either.
    assert(nb:send("late", 5))
    assert.are.equal("again", select(3, nb:receive(4)))
    assert.are.equal("late", (nb:receive(5)))
    nb:close()
    q:close()
  end)
end)

describe("a queue used by more than one process", function()
  local tp
  setup(function() tp = P.native() end)
  after_each(H.cleanup)

  it("keeps working in a child after fork, through the inherited handle", function()
    local q = H.fresh_name_queue("fork")
    local pid = assert(tp.fork())
    if pid == 0 then
      -- The child: never return into busted.
      local ok = pcall(function()
        for i = 1, 200 do assert(q:send(string.format("child %d", i) .. H.all_bytes(), 1)) end
        local ping = assert(q:receive_timeout(20, 2))
        assert(q:send(ping .. " pong", 3))
        assert(q:close())
      end)
      tp._exit(ok and 0 or 1)
    end
    for i = 1, 200 do
      local data, mtype = q:receive_timeout(20, 1)
      assert.are.equal(string.format("child %d", i) .. H.all_bytes(), data)
      assert.are.equal(1, mtype)
    end
    assert(q:send("ping", 2))
    assert.are.equal("ping pong", (q:receive_timeout(20, 3)))
    local _, status = tp.waitpid(pid)
    assert.are.equal(0, status)
    -- The child closed its copy; the parent's handle and the queue are unaffected.
    assert(q:send("still here"))
    assert.are.equal("still here", (q:receive()))
    q:close()
  end)

  it("keeps working for a second process that opens the same name", function()
    local q, name = H.fresh_name_queue("echo")
    local child = P.spawn([[
      local mq = require "mq"
      local q = assert(mq.open(arg[1]))
      for _ = 1, 300 do
        local data = assert(q:receive_timeout(20, 1))
        assert(q:send(data:reverse(), 2))
      end
      print("DONE")
    ]], nil, name)
    for i = 1, 300 do
      local msg = string.rep(string.char(i % 256), i % 97) .. "\0" .. i
      assert(q:send(msg, 1))
      assert.are.equal(msg:reverse(), (q:receive_timeout(20, 2)))
    end
    local ok, code, out = child:finish(20)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    q:close()
  end)
end)
