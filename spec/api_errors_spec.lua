-- README "Errors": failure triples, messages naming operation and queue, wrong types raising,
-- the precedence closed > invalid > denied, and removed for every method.

local mq = require "mq"
local H = require "helpers"

-- The results of f(...) packed, with n.
local function call(f, ...) return table.pack(f(...)) end

-- Check a packed result is exactly nil, message, code and the message names `op` and `who`.
local function failure(r, code, op, who)
  assert.are.equal(3, r.n, "a failure returns exactly three values")
  H.fails(code, r[1], r[2], r[3])
  assert.is_truthy(r[2]:find(op, 1, true), string.format("%q does not name %q", r[2], op))
  if who then
    assert.is_truthy(r[2]:lower():find(who:lower(), 1, true),
      string.format("%q does not name the queue (%s)", r[2], who))
  end
  return r[2]
end

describe("errors", function()
  after_each(H.cleanup)

  describe("a failure's message", function()
    it("names open and the name for a missing named queue", function()
      local n = H.name("err")
      failure(call(mq.open, n), "notfound", "open", n)
    end)

    it("names open and the key in hex for a missing keyed queue", function()
      local k = H.unused_key()
      failure(call(mq.open, k), "notfound", "open", string.format("%08x", k))
    end)

    it("names new and the name when the queue exists", function()
      local n = H.name("err")
      local q = assert(mq.new(n))
      failure(call(mq.new, n), "exists", "new", n)
      q:close()
    end)

    it("names new for an invalid perm", function()
      local n = H.name("err")
      failure(call(mq.new, n, "0777"), "invalid", "new", n)
    end)

    it("names destroy for an out-of-range key", function()
      failure(call(mq.destroy, 1 << 32), "invalid", "destroy")
    end)

    it("names each method and the queue", function()
      local n = H.name("err")
      local q = assert(mq.new(n))
      local r = assert(mq.open(n, mq.O_RDONLY | mq.O_NONBLOCK))
      failure(call(r.receive, r), "again", "receive", n)
      failure(call(r.peek, r), "again", "peek", n)
      failure(call(r.send, r, "x"), "denied", "send", n)
      failure(call(r.receive_timeout, r, 0), "timeout", "receive_timeout", n)
      failure(call(q.send_timeout, q, "x", 0 / 0), "invalid", "send_timeout", n)
      failure(call(q.set_capacity, q, -5), "invalid", "set_capacity", n)
      failure(call(q.send, q, string.rep("x", mq.limits().msgmax + 1)), "toobig", "send", n)
      q:close(); r:close()
    end)

    it("names the keyed queue in hex", function()
      local q, key = H.fresh_key_queue()
      assert(q:set_blocking(false))
      failure(call(q.receive, q), "again", "receive", string.format("%08x", key))
      q:close()
    end)

    it("names the operation on a closed handle", function()
      local q = H.fresh_key_queue()
      q:close()
      failure(call(q.stat, q), "closed", "stat")
      failure(call(q.set_blocking, q, true), "closed", "set_blocking")
    end)

    it("names select for a select failure", function()
      local q = H.fresh_key_queue()
      failure(call(mq.select, { q }, 0), "timeout", "select")
      failure(call(mq.select, { q }, 0 / 0), "invalid", "select")
      q:close()
    end)
  end)

  describe("wrong Lua types", function()
    local q
    before_each(function() q = H.fresh_key_queue() end)
    after_each(function() q:close() end)

    local cases = {
      { "mq.new(table)", function() mq.new({}) end },
      { "mq.new(nil)", function() mq.new() end },
      { "mq.new(name, table)", function() mq.new("x", {}) end },
      { "mq.open(boolean)", function() mq.open(false) end },
      { "mq.open(key, string)", function() mq.open(1, "rw") end },
      { "mq.destroy(function)", function() mq.destroy(print) end },
      { "mq.ftok(table, 0)", function() mq.ftok({}, 0) end },
      { "mq.ftok(path, string)", function() mq.ftok("/", "p") end },
      { "mq.select(string, 1)", function() mq.select("q", 1) end },
      { "mq.select(list, string)", function() mq.select({ q }, "soon") end },
      { "mq.set_waiter(number)", function() mq.set_waiter(1) end },
      { "q:send(table)", function() q:send({}) end },
      { "q:send(nil)", function() q:send() end },
      { "q:send(data, string)", function() q:send("x", "one") end },
      { "q:receive(string)", function() q:receive("any") end },
      { "q:receive(0, string)", function() q:receive(0, "big") end },
      { "q:send_timeout(data, nil)", function() q:send_timeout("x") end },
      { "q:receive_timeout(table)", function() q:receive_timeout({}) end },
      { "q:peek(string)", function() q:peek("first") end },
      { "q:set_blocking(nil)", function() q:set_blocking() end },
      { "q:set_capacity(string)", function() q:set_capacity("lots") end },
      { "q:messages(table)", function() for _ in q:messages({}) do end end },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " raises", function()
        assert.has_error(c[2])
      end)
    end

    it("raise on a closed handle too, before closed is considered", function()
      q:close()
      assert.has_error(function() q:send({}) end)
    end)
  end)

  describe("precedence", function()
    local q, key
    before_each(function() q, key = H.fresh_key_queue() end)
    after_each(function() q:close() end)

    it("closed wins over invalid", function()
      local h = assert(mq.open(key)); h:close()
      H.fails("closed", h:send("x", 0))
      H.fails("closed", h:receive(0, 0))
      H.fails("closed", h:peek(-1))
      H.fails("closed", h:receive_timeout(0 / 0))
      H.fails("closed", h:send_timeout("x", 0 / 0))
      H.fails("closed", h:set_capacity(-1))
      H.fails("closed", mq.select({ h }, 0 / 0))
    end)

    it("closed wins over denied", function()
      local w = assert(mq.open(key, mq.O_WRONLY)); w:close()
      local r = assert(mq.open(key, mq.O_RDONLY)); r:close()
      H.fails("closed", w:receive())
      H.fails("closed", w:peek())
      H.fails("closed", r:send("x"))
    end)

    it("invalid wins over denied", function()
      local w = assert(mq.open(key, mq.O_WRONLY))
      local r = assert(mq.open(key, mq.O_RDONLY))
      H.fails("invalid", w:receive(0, 0))
      H.fails("invalid", w:peek(-1))
      H.fails("invalid", w:receive_timeout(0 / 0))
      H.fails("invalid", r:send("x", 0))
      H.fails("invalid", r:send_timeout("x", 0 / 0))
      w:close(); r:close()
    end)

    it("denied wins over toobig and again", function()
      local r = assert(mq.open(key, mq.O_RDONLY | mq.O_NONBLOCK))
      H.fails("denied", r:send(string.rep("x", mq.limits().msgmax + 1)))
      local w = assert(mq.open(key, mq.O_WRONLY | mq.O_NONBLOCK))
      H.fails("denied", w:receive())
      r:close(); w:close()
    end)
  end)

  describe("removed", function()
    it("is what every method of a handle whose queue was removed fails with", function()
      local q, key = H.fresh_key_queue()
      assert(q:send("x"))
      assert(mq.destroy(key))
      H.fails("removed", q:send("y"))
      H.fails("removed", q:receive())
      H.fails("removed", q:send_timeout("y", 1))
      H.fails("removed", q:receive_timeout(1))
      H.fails("removed", q:peek())
      H.fails("removed", q:stat())
      H.fails("removed", q:set_capacity(100))
      q:close()
    end)

    it("ends a wait in progress", function()
      local q, key = H.fresh_key_queue()
      local calls = 0
      local prev = mq.set_waiter(function()
        calls = calls + 1
        if calls == 2 then assert(mq.destroy(key)) end
      end)
      finally(function() mq.set_waiter(prev) end)
      H.fails("removed", q:receive_timeout(30))
      assert.are.equal(2, calls)
      q:close()
    end)
  end)
end)
