-- README "Handle methods": send, receive, send_timeout, receive_timeout, peek, messages.

local mq = require "mq"
local H = require "helpers"

local MSGMAX = mq.limits().msgmax

-- Run `body` (Lua source using KEY) in a child lua5.4 killed after 10 s, so that a call
-- that wrongly blocks fails the spec instead of hanging the suite. Returns the output.
local function in_child(key, body)
  local ok, code, out = H.lua_e(string.format("local mq = require 'mq'\nlocal KEY = %d\n%s",
    key, body), nil, 10)
  assert(ok, code == 124 and "child blocked (killed after 10 s): " .. out
    or tostring(code) .. ": " .. out)
  return out
end

-- Set a waiter for the rest of the spec; restored by finally().
local function with_waiter(fn)
  local prev = mq.set_waiter(fn)
  finally(function() mq.set_waiter(prev) end)
end

describe("transfer", function()
  local q, key
  before_each(function() q, key = H.fresh_key_queue() end)
  after_each(function() q:close(); H.cleanup() end)

  describe("send and receive", function()
    it("carry every byte value unchanged", function()
      local payload = H.all_bytes() .. H.all_bytes():reverse() .. "\0"
      assert.is_true(q:send(payload, 5))
      local data, t = q:receive()
      assert.are.equal(payload, data)
      assert.are.equal(5, t)
    end)

    it("carry a 0-byte message", function()
      assert.is_true(q:send(""))
      assert.are.equal(1, q:stat().messages)
      local data, t = q:receive()
      assert.are.equal("", data)
      assert.are.equal(1, t)
    end)

    it("use mtype 1 by default", function()
      assert(q:send("typed"))
      assert.are.equal(1, select(2, q:receive()))
    end)

    it("carry any mtype from 1 to math.maxinteger", function()
      for _, t in ipairs({ 1, 2, 1 << 40, math.maxinteger }) do
        assert(q:send("t", t))
        assert.are.equal(t, select(2, q:receive()))
      end
    end)

    it("reject mtype 0 and negative mtypes on send as invalid, queuing nothing", function()
      H.fails("invalid", q:send("x", 0))
      H.fails("invalid", q:send("x", -1))
      H.fails("invalid", q:send("x", math.mininteger))
      assert.are.equal(0, q:stat().messages)
    end)

    it("carry a message of exactly msgmax bytes", function()
      local big = string.rep("m", MSGMAX)
      assert.is_true(q:send(big))
      assert.are.equal(big, (q:receive()))
    end)

    it("fail with toobig for a message over msgmax, queuing nothing", function()
      H.fails("toobig", q:send(string.rep("m", MSGMAX + 1)))
      assert.are.equal(0, q:stat().messages)
    end)

    it("fail with toobig at once for a message over the queue's capacity", function()
      assert(q:set_capacity(16))
      local out = in_child(key, [[
        local q = assert(mq.open(KEY))     -- blocking handle
        io.write(tostring(select(3, q:send(string.rep("c", 17)))))]])
      assert.are.equal("toobig", out)
      assert.are.equal(0, q:stat().messages)
    end)

    it("fail with toobig for a message over the capacity even when the queue has room", function()
      assert(q:set_capacity(16))
      assert(q:send("1234"))
      H.fails("toobig", q:send_timeout(string.rep("c", 17), 0))
      assert.are.equal(1, q:stat().messages)
    end)

    it("receive with mtype 0 takes the first message", function()
      assert(q:send("c", 3)); assert(q:send("a", 1)); assert(q:send("b", 2))
      local data, t = q:receive(0)
      assert.are.equal("c", data)
      assert.are.equal(3, t)
    end)

    it("receive with mtype > 0 takes the first message of that type", function()
      assert(q:send("a", 1)); assert(q:send("b1", 2)); assert(q:send("b2", 2))
      local data, t = q:receive(2)
      assert.are.equal("b1", data)
      assert.are.equal(2, t)
      assert.are.equal("a", (q:receive()))
    end)

    it("receive with mtype < 0 takes the first of the lowest type <= -mtype", function()
      assert(q:send("five", 5)); assert(q:send("three", 3)); assert(q:send("seven", 7))
      assert(q:send("three again", 3)); assert(q:send("one", 1))
      assert(q:receive(1))    -- drop "one": now the lowest type is 3
      local data, t = q:receive(-6)
      assert.are.equal("three", data)
      assert.are.equal(3, t)
      assert(q:set_blocking(false))
      H.fails("again", q:receive(-2))
      assert.are.equal("three again", (q:receive(-3)))
      assert.are.equal("five", (q:receive(-7)))
    end)

    it("receive with a type nobody sent fails with again when nonblocking, leaving others", function()
      assert(q:send("a", 1))
      assert(q:set_blocking(false))
      H.fails("again", q:receive(9))
      assert.are.equal(1, q:stat().messages)
    end)

    it("a message longer than maxsize fails with toobig and stays in the queue", function()
      assert(q:send("0123456789", 4))
      H.fails("toobig", q:receive(0, 9))
      H.fails("toobig", q:receive(4, 1))
      assert.are.equal(1, q:stat().messages)
      assert.are.equal(10, q:stat().bytes)
      local data, t = q:receive(0, 10)
      assert.are.equal("0123456789", data)
      assert.are.equal(4, t)
    end)

    it("maxsize may be anything from 1 to 2^31-1, beyond msgmax too", function()
      for _, max in ipairs({ 1, MSGMAX + 1, (1 << 31) - 1 }) do
        assert(q:send("z"))
        assert.are.equal("z", (q:receive(0, max)))
      end
    end)

    it("a maxsize of 2^31-1 receives messages of every size up to msgmax", function()
      for _, n in ipairs({ 0, 1, 4095, 4096, 4097, MSGMAX }) do
        local m = string.rep(string.char(n % 256), n)
        assert(q:send(m))
        assert.are.equal(m, (q:receive(0, (1 << 31) - 1)))
      end
    end)

    it("maxsize 0, negative or 2^31 and above is invalid, and the message stays", function()
      assert(q:send("keep"))
      for _, max in ipairs({ 0, -1, 1 << 31, math.maxinteger }) do
        H.fails("invalid", q:receive(0, max))
      end
      assert.are.equal(1, q:stat().messages)
    end)

    it("receive on an empty nonblocking handle fails with again", function()
      assert(q:set_blocking(false))
      H.fails("again", q:receive())
    end)

    it("send on a full nonblocking handle fails with again", function()
      assert(q:set_capacity(8))
      assert(q:send("12345678"))
      assert(q:set_blocking(false))
      H.fails("again", q:send("x"))
      assert.are.equal(1, q:stat().messages)
    end)

    it("receive on a blocking handle waits until a message comes", function()
      local ctl = H.fresh_key_queue()
      local child = H.spawn_lua(H.CHILD_PID .. string.format([[
        local mq = require "mq"
        local q = assert(mq.open(%d))
        assert(assert(mq.open(%d)):send(tostring(PID)))
        local data, t = q:receive()
        io.write(tostring(data), " ", tostring(t))]], key, ctl:key()))
      local pid = assert(ctl:receive_timeout(20))
      assert(H.wait_blocked_in(pid, "do_msgrcv"), "child never blocked in msgrcv")
      assert(q:send("wake", 6))
      local ok, code, out = child:wait(20)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("wake 6", out)
      ctl:close()
    end)

    it("send on a full blocking handle waits until there is room", function()
      local ctl = H.fresh_key_queue()
      assert(q:set_capacity(4))
      assert(q:send("full"))
      local child = H.spawn_lua(H.CHILD_PID .. string.format([[
        local mq = require "mq"
        local q = assert(mq.open(%d))
        assert(assert(mq.open(%d)):send(tostring(PID)))
        io.write(tostring(q:send("next")))]], key, ctl:key()))
      local pid = assert(ctl:receive_timeout(20))
      assert(H.wait_blocked_in(pid, "do_msgsnd"), "child never blocked in msgsnd")
      assert.are.equal("full", (q:receive()))
      local ok, code, out = child:wait(20)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("true", out)
      assert.are.equal("next", (q:receive()))
      ctl:close()
    end)
  end)

  describe("send_timeout and receive_timeout", function()
    it("receive_timeout returns a waiting message with its mtype", function()
      assert(q:send("ready", 8))
      local data, t = q:receive_timeout(1)
      assert.are.equal("ready", data)
      assert.are.equal(8, t)
    end)

    it("receive_timeout applies mtype and maxsize like receive", function()
      assert(q:send("a", 1)); assert(q:send("bbbb", 2))
      H.fails("toobig", q:receive_timeout(1, 2, 3))
      local data, t = q:receive_timeout(1, 2, 4)
      assert.are.equal("bbbb", data)
      assert.are.equal(2, t)
      H.fails("timeout", q:receive_timeout(0, 2))
      assert.are.equal(1, q:stat().messages)
    end)

    it("send_timeout sends with the given mtype", function()
      assert.is_true(q:send_timeout("st", 1, 12))
      local data, t = q:receive()
      assert.are.equal("st", data)
      assert.are.equal(12, t)
    end)

    it("send_timeout uses mtype 1 by default and rejects mtype 0 as invalid", function()
      assert.is_true(q:send_timeout("st", 1))
      assert.are.equal(1, select(2, q:receive()))
      H.fails("invalid", q:send_timeout("st", 1, 0))
    end)

    it("send_timeout fails with toobig over msgmax", function()
      H.fails("toobig", q:send_timeout(string.rep("m", MSGMAX + 1), 1))
    end)

    it("with timeout 0 try once: a waiting message is returned", function()
      assert(q:send("now"))
      assert.are.equal("now", (q:receive_timeout(0)))
      assert.is_true(q:send_timeout("room", 0))
    end)

    it("with timeout 0 fail with timeout, not again, when they would wait", function()
      local calls = 0
      with_waiter(function() calls = calls + 1 end)
      H.fails("timeout", q:receive_timeout(0))
      assert(q:set_capacity(4)); assert(q:send("full"))
      H.fails("timeout", q:send_timeout("more", 0))
      assert.are.equal(0, calls)
    end)

    it("run out of time with timeout on a nonblocking handle too", function()
      assert(q:set_blocking(false))
      H.fails("timeout", q:receive_timeout(0.01))
      assert(q:set_capacity(4)); assert(q:send("full"))
      H.fails("timeout", q:send_timeout("more", 0.01))
    end)

    it("work on a blocking handle without blocking", function()
      assert(q:set_capacity(4)); assert(q:send("full"))
      local out = in_child(key, [[
        local q = assert(mq.open(KEY))          -- blocking
        local codes = {}
        codes[1] = select(3, q:send_timeout("more", 0.02))
        assert(q:receive())
        codes[2] = select(3, q:receive_timeout(0.02))
        io.write(tostring(codes[1]), " ", tostring(codes[2]))]])
      assert.are.equal("timeout timeout", out)
    end)

    for _, t in ipairs({ -1, -0.5, math.huge, -math.huge }) do
      it(string.format("receive_timeout with timeout %s waits until a message arrives", t),
        function()
          local calls = 0
          with_waiter(function()
            calls = calls + 1
            if calls == 3 then assert(q:send("later", 2)) end
          end)
          local data, mt = q:receive_timeout(t)
          assert.are.equal("later", data)
          assert.are.equal(2, mt)
          assert.are.equal(3, calls)
        end)

      it(string.format("send_timeout with timeout %s waits until there is room", t), function()
        assert(q:set_capacity(4)); assert(q:send("full"))
        local calls = 0
        with_waiter(function()
          calls = calls + 1
          if calls == 3 then assert(q:receive()) end
        end)
        assert.is_true(q:send_timeout("next", t))
        assert.are.equal(3, calls)
        assert.are.equal("next", (q:receive()))
      end)
    end

    it("leave a blocking handle blocking afterwards", function()
      local ctl = H.fresh_key_queue()
      local child = H.spawn_lua(H.CHILD_PID .. string.format([[
        local mq = require "mq"
        local q = assert(mq.open(%d))
        assert(select(3, q:receive_timeout(0)) == "timeout")
        assert(select(3, q:receive_timeout(0.01)) == "timeout")
        assert(assert(mq.open(%d)):send(tostring(PID)))
        io.write(tostring(q:receive()))]], key, ctl:key()))
      local pid = assert(ctl:receive_timeout(20))
      assert(H.wait_blocked_in(pid, "do_msgrcv"), "receive did not block after receive_timeout")
      assert(q:send("wake"))
      local ok, code, out = child:wait(20)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("wake", out)
      ctl:close()
    end)

    it("reject a NaN timeout as invalid", function()
      H.fails("invalid", q:receive_timeout(0 / 0))
      H.fails("invalid", q:send_timeout("x", 0 / 0))
      assert.are.equal(0, q:stat().messages)
    end)

    it("raise on a timeout of the wrong type", function()
      assert.has_error(function() q:receive_timeout("soon") end)
      assert.has_error(function() q:send_timeout("x", {}) end)
      assert.has_error(function() q:receive_timeout() end)
    end)
  end)

  describe("peek", function()
    it("copies the first message without removing it", function()
      assert(q:send(H.all_bytes(), 3))
      local data, t = q:peek()
      assert.are.equal(H.all_bytes(), data)
      assert.are.equal(3, t)
      assert.are.equal(1, q:stat().messages)
      assert.are.equal(H.all_bytes(), (q:receive()))
    end)

    it("copies the message at a 0-based index", function()
      assert(q:send("zero", 1)); assert(q:send("one", 2)); assert(q:send("two", 3))
      local data, t = q:peek(1)
      assert.are.equal("one", data)
      assert.are.equal(2, t)
      assert.are.equal("two", (q:peek(2)))
      assert.are.equal("zero", (q:peek(0)))
      assert.are.equal(3, q:stat().messages)
    end)

    it("fails with again when there is no message at that index, even when blocking", function()
      local out = in_child(key, [[
        local q = assert(mq.open(KEY))
        local r = { tostring(select(3, q:peek())) }
        assert(q:send("only"))
        r[2] = tostring(select(3, q:peek(1)))
        r[3] = q:peek(0)
        io.write(table.concat(r, " "))]])
      assert.are.equal("again again only", out)
    end)

    it("rejects a negative index as invalid", function()
      assert(q:send("x"))
      H.fails("invalid", q:peek(-1))
    end)

    it("is denied on a write-only handle", function()
      assert(q:send("x"))
      local w = assert(mq.open(key, mq.O_WRONLY))
      H.fails("denied", w:peek())
      w:close()
    end)

    it("raises on an index of the wrong type", function()
      assert.has_error(function() q:peek("first") end)
    end)
  end)

  describe("messages", function()
    it("drains the queue in order with each message's mtype", function()
      assert(q:send("a", 1)); assert(q:send("b", 5)); assert(q:send("", 2))
      local got = {}
      for data, t in q:messages() do got[#got + 1] = data .. ":" .. t end
      assert.are.same({ "a:1", "b:5", ":2" }, got)
      assert.are.equal(0, q:stat().messages)
    end)

    it("takes only messages of the given mtype", function()
      assert(q:send("a", 1)); assert(q:send("b", 5)); assert(q:send("c", 5))
      local got = {}
      for data in q:messages(0, 5) do got[#got + 1] = data end
      assert.are.same({ "b", "c" }, got)
      assert.are.equal(1, q:stat().messages)
    end)

    it("ends at once on an empty blocking handle with the default timeout", function()
      local out = in_child(key, [[
        local n = 0
        for _ in assert(mq.open(KEY)):messages() do n = n + 1 end
        io.write(n)]])
      assert.are.equal("0", out)
    end)

    it("waits up to its timeout for the next message", function()
      local calls = 0
      with_waiter(function()
        calls = calls + 1
        if calls == 2 then assert(q:send("late", 3)) end
      end)
      local got = {}
      for data, t in q:messages(0.2) do got[#got + 1] = data .. ":" .. t end
      assert.are.same({ "late:3" }, got)
      assert.is_true(calls > 2)   -- it went on waiting after the message, then ended
    end)

    it("raises on an invalid timeout", function()
      assert(q:send("x"))
      assert.has_error(function() for _ in q:messages(0 / 0) do end end)
    end)

    it("raises when receiving fails (write-only handle)", function()
      local w = assert(mq.open(key, mq.O_WRONLY))
      assert(w:send("x"))
      assert.has_error(function() for _ in w:messages() do end end)
      w:close()
    end)

    it("raises when the queue is removed while iterating", function()
      assert(q:send("1")); assert(q:send("2"))
      local seen = 0
      local ok = pcall(function()
        for _ in q:messages() do
          seen = seen + 1
          assert(mq.destroy(key))
        end
      end)
      assert.is_false(ok)
      assert.are.equal(1, seen)
    end)
  end)
end)
