-- README "Waiting": another process while we wait, the default waiter
-- yielding inside coroutines and sleeping outside them.

local mq = require "mq"
local H = require "helpers"

-- Resume every suspended coroutine in turn until `done()`; a plain round-robin scheduler.
-- Returns the number of rounds.
local function round_robin(cos, done)
  local rounds = 0
  while not done() do
    rounds = rounds + 1
    assert(rounds < 10000000, "scheduler ran away")
    local alive = false
    for _, co in ipairs(cos) do
      if coroutine.status(co) == "suspended" then
        alive = true
        local ok, err = coroutine.resume(co)
        assert(ok, err)
      end
    end
    if not alive then break end
  end
  return rounds
end

-- The default waiter; leaves it installed.
local function default_waiter()
  mq.set_waiter(nil)
  return mq.set_waiter(nil)
end

describe("timed calls", function()
  after_each(H.cleanup)

  -- Install a waiter that sends "go" on ctl the first time the parent waits (so the child
  -- acts only once the parent is inside the timed call), then waits as the default does.
  -- Returns a function counting the waits, and the previous waiter.
  local function signal_on_first_wait(ctl)
    local waits = 0
    local default = default_waiter()
    local prev = mq.set_waiter(function(s)
      waits = waits + 1
      if waits == 1 then assert(ctl:send("go")) end
      return default(s)
    end)
    finally(function() mq.set_waiter(prev) end)
    return function() return waits end, prev
  end

  it("receive a message another lua5.4 process sends while the parent waits", function()
    local q, key = H.fresh_key_queue()
    local ctl, ctl_key = H.fresh_key_queue()
    local child = H.spawn_lua((H.CHILD_PID .. string.format([[
      local mq = require "mq"
      local ctl = assert(mq.open(%d))
      assert(ctl:receive() == "go")              -- the parent is waiting now
      assert(assert(mq.open(%d)):send(H_BYTES .. tostring(PID), 42))
      io.write("sent")]], ctl_key, key):gsub("H_BYTES", function()
        return string.format("%q", H.all_bytes())
      end)))
    local waits, prev = signal_on_first_wait(ctl)
    local data, t = q:receive_timeout(30)
    mq.set_waiter(prev)
    local ok, code, out = child:wait(20)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal(42, t)
    assert.are.equal(H.all_bytes(), data:sub(1, 256))
    local pid = tonumber(data:sub(257))
    assert.are.equal(pid, q:stat().last_send_pid)
    assert.is_true(waits() >= 1)
    q:close(); ctl:close()
  end)

  it("send into room another process makes while the parent waits", function()
    local q, key = H.fresh_key_queue()
    local ctl, ctl_key = H.fresh_key_queue()
    assert(q:set_capacity(4)); assert(q:send("full", 1))
    local child = H.spawn_lua(string.format([[
      local mq = require "mq"
      assert(assert(mq.open(%d)):receive() == "go")
      io.write((assert(assert(mq.open(%d)):receive(1))))]], ctl_key, key))
    local _, prev = signal_on_first_wait(ctl)
    assert.is_true(q:send_timeout("next", 30, 2))
    mq.set_waiter(prev)
    local ok, code, out = child:wait(20)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("full", out)
    assert.are.equal("next", (q:receive(2)))
    q:close(); ctl:close()
  end)

  describe("the default waiter", function()
    local default
    before_each(function() default = default_waiter() end)

    it("yields inside a coroutine", function()
      local co = coroutine.create(function() default(0.001); return "done" end)
      local ok, v = coroutine.resume(co)
      assert.is_true(ok, v)
      assert.are.equal("suspended", coroutine.status(co))
      ok, v = coroutine.resume(co)
      assert.is_true(ok)
      assert.are.equal("done", v)
    end)

    it("sleeps and returns outside a coroutine", function()
      assert.is_false(coroutine.isyieldable())
      default(0.001)      -- would raise "attempt to yield from outside a coroutine"
      local q = H.fresh_key_queue()
      H.fails("timeout", q:receive_timeout(0.01))
      q:close()
    end)

    it("sleeps in a coroutine that cannot yield (inside a C call)", function()
      local q = H.fresh_key_queue()
      local codes = {}
      local co = coroutine.create(function()
        -- table.sort calls its comparator without a continuation: not yieldable
        table.sort({ 2, 1 }, function(a, b)
          assert(not coroutine.isyieldable())
          codes[#codes + 1] = select(3, q:receive_timeout(0.005))
          return a < b
        end)
        return "sorted"
      end)
      local ok, v = coroutine.resume(co)
      assert.is_true(ok, v)
      assert.are.equal("sorted", v)
      assert.are.equal("timeout", codes[1])
      q:close()
    end)

    it("keeps other coroutines of a round-robin loop running while one waits", function()
      local q = H.fresh_key_queue()
      local result, receiver_resumes, ticks = nil, 0, 0
      local receiver = coroutine.create(function()
        result = table.pack(q:receive_timeout(20, 9))
      end)
      local sender = coroutine.create(function()
        for _ = 1, 5 do coroutine.yield() end
        assert(q:send("other type", 1))
        for _ = 1, 5 do coroutine.yield() end
        assert(q:send("for you", 9))
      end)
      local ticker = coroutine.create(function()
        while true do ticks = ticks + 1; coroutine.yield() end
      end)
      local counted = coroutine.create(function()
        while coroutine.status(receiver) ~= "dead" do
          receiver_resumes = receiver_resumes + 1
          coroutine.yield()
        end
      end)
      round_robin({ receiver, sender, ticker, counted }, function() return result ~= nil end)
      assert.are.equal("for you", result[1])
      assert.are.equal(9, result[2])
      assert.is_true(ticks >= 10, "the other coroutines did not run")
      assert.is_true(receiver_resumes >= 10)
      assert.are.equal("other type", (q:receive(1)))
      q:close()
    end)

    it("lets several coroutines wait on several queues at once", function()
      local qs, got, cos = {}, {}, {}
      for i = 1, 3 do
        qs[i] = H.fresh_key_queue()
        cos[i] = coroutine.create(function() got[i] = qs[i]:receive_timeout(20) end)
      end
      cos[4] = coroutine.create(function()
        for i = 3, 1, -1 do
          coroutine.yield()
          assert(qs[i]:send("to " .. i))
        end
      end)
      round_robin(cos, function() return got[1] and got[2] and got[3] end)
      for i = 1, 3 do
        assert.are.equal("to " .. i, got[i])
        qs[i]:close()
      end
    end)

    it("yields from send_timeout while another coroutine makes room", function()
      local q = H.fresh_key_queue()
      assert(q:set_capacity(4)); assert(q:send("full"))
      local sent, drained
      local producer = coroutine.create(function() sent = q:send_timeout("more", 20) end)
      local consumer = coroutine.create(function()
        coroutine.yield()
        drained = q:receive()
      end)
      round_robin({ producer, consumer }, function() return sent ~= nil end)
      assert.is_true(sent)
      assert.are.equal("full", drained)
      assert.are.equal("more", (q:receive()))
      q:close()
    end)

    it("yields from mq.select and from the messages iterator", function()
      local a, b = H.fresh_key_queue(), H.fresh_key_queue()
      local picked, drained = nil, {}
      local selector = coroutine.create(function()
        picked = table.pack(mq.select({ a, b }, 20))
        for data in a:messages(0.05) do drained[#drained + 1] = data end
      end)
      local feeder = coroutine.create(function()
        coroutine.yield(); coroutine.yield()
        assert(b:send("b first"))
        coroutine.yield(); coroutine.yield()
        assert(a:send("a later"))
      end)
      round_robin({ selector, feeder }, function()
        return coroutine.status(selector) == "dead"
      end)
      assert.is_true(rawequal(b, picked[1]))
      assert.are.equal("b first", picked[2])
      assert.are.same({ "a later" }, drained)
      a:close(); b:close()
    end)

    it("yields in a coroutine.wrap generator too", function()
      local q = H.fresh_key_queue()
      local gen = coroutine.wrap(function()
        local data = q:receive_timeout(20)
        return "got " .. tostring(data)
      end)
      local first = table.pack(gen())
      assert.are.equal(0, first.n)         -- a bare yield, not a result
      assert(q:send("late"))
      local v
      for _ = 1, 100000 do
        v = gen()
        if v ~= nil then break end
      end
      assert.are.equal("got late", v)
      q:close()
    end)
  end)
end)
