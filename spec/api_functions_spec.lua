-- README "Module functions": new, open, destroy, mq.sysv.*, limits, select, set_waiter, constants.

local mq = require "mq"
local H = require "helpers"

local function octal(s) return tonumber(s, 8) end
local PERMS = octal("777")

-- Run Lua source as user nobody (for permission checks; root bypasses nothing here since
-- the queue's owner is root and nobody is "other").
local function as_nobody(source)
  return H.lua_e(source, H.nobody(), 20)
end

-- A flag bit that is none of the module's own.
local function unknown_flag_bit()
  local known = mq.O_RDONLY | mq.O_WRONLY | mq.O_RDWR | mq.O_NONBLOCK | mq.O_CREAT
  for i = 0, 30 do
    if known & (1 << i) == 0 then return 1 << i end
  end
  error("no free flag bit")
end

describe("mq functions", function()
  after_each(H.cleanup)

  describe("mq.new", function()
    it("creates with mode 0600 by default", function()
      local q = assert(mq.new(H.name("new")))
      assert.are.equal(octal("600"), q:stat().mode & PERMS)
      assert.are.equal(octal("600"), assert(H.ipcs_queue(q:id())).perms)
      q:close()
    end)

    local good = { [octal("640")] = octal("640"), ["0640"] = octal("640"),
                   ["640"] = octal("640"), ["0666"] = octal("666"), ["6"] = octal("6"),
                   ["0"] = 0, [octal("604")] = octal("604") }
    for perm, mode in pairs(good) do
      it(string.format("accepts perm %s (%s) as mode %o", tostring(perm), math.type(perm) or
        "string", mode), function()
        local q = assert(mq.new(H.name("perm"), perm))
        assert.are.equal(mode, q:stat().mode & PERMS)
        q:close()
      end)
    end

    local bad = { octal("700"), octal("644") | octal("100"), octal("1666"), octal("4600"),
                  octal("10000"), -1, "0755", "0700", "0601", "1666", "06400", "", "64a",
                  "0x1a0", " 640", "640 ", "9", "-640", "+640" }
    for _, perm in ipairs(bad) do
      it(string.format("rejects perm %q as invalid and creates nothing", perm), function()
        local n = H.name("badperm")
        H.fails("invalid", mq.new(n, perm))
        H.fails("notfound", mq.open(n))
      end)
    end

    it("fails with exists when the queue is there", function()
      local n = H.name("new")
      local q = assert(mq.new(n))
      H.fails("exists", mq.new(n))
      local _, key = H.fresh_key_queue()
      H.fails("exists", mq.new(key))
      q:close()
    end)

    it("raises on a perm of the wrong type", function()
      assert.has_error(function() mq.new(H.name("new"), {}) end)
    end)

    it("raises on a where of the wrong type", function()
      assert.has_error(function() mq.new({}) end)
      assert.has_error(function() mq.new(true) end)
    end)
  end)

  describe("mq.open", function()
    local q, key
    before_each(function() q, key = H.fresh_key_queue(octal("666")) end)
    after_each(function() q:close() end)

    it("opens read-write by default", function()
      local h = assert(mq.open(key))
      assert.is_true(h:send("rw"))
      assert.are.equal("rw", (h:receive()))
      h:close()
    end)

    it("opens read-write with mq.O_RDWR", function()
      local h = assert(mq.open(key, mq.O_RDWR))
      assert.is_true(h:send("rw"))
      assert.are.equal("rw", (h:receive()))
      h:close()
    end)

    it("opens read-write with flags 0 (no access bit)", function()
      local h = assert(mq.open(key, 0))
      assert.is_true(h:send("rw"))
      assert.are.equal("rw", (h:receive()))
      h:close()
    end)

    it("opens read-write and nonblocking with mq.O_NONBLOCK alone", function()
      local ok, code, out = H.lua_e(string.format([[
        local mq = require "mq"
        local h = assert(mq.open(%d, mq.O_NONBLOCK))
        assert(h:send("nb"))
        assert(h:receive() == "nb")
        io.write(tostring(select(3, h:receive())))]], key), nil, 10)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("again", out)
    end)

    it("gives a read-only handle with mq.O_RDONLY: receive works, send is denied", function()
      local h = assert(mq.open(key, mq.O_RDONLY))
      assert(q:send("to reader"))
      assert.are.equal("to reader", (h:receive()))
      H.fails("denied", h:send("x"))
      H.fails("denied", h:send_timeout("x", 1))
      assert.are.equal(0, q:stat().messages)
      h:close()
    end)

    it("gives a write-only handle with mq.O_WRONLY: send works, receive is denied", function()
      local h = assert(mq.open(key, mq.O_WRONLY))
      assert.is_true(h:send("from writer"))
      H.fails("denied", h:receive())
      H.fails("denied", h:receive_timeout(1))
      H.fails("denied", h:peek())
      assert.are.equal("from writer", (q:receive()))
      h:close()
    end)

    it("gives a nonblocking read-only handle with O_RDONLY | O_NONBLOCK", function()
      local ok, code, out = H.lua_e(string.format([[
        local mq = require "mq"
        local h = assert(mq.open(%d, mq.O_RDONLY | mq.O_NONBLOCK))
        io.write(tostring(select(3, h:receive())), " ", tostring(select(3, h:send("x"))))]],
        key), nil, 10)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("again denied", out)
    end)

    it("rejects unknown flag bits as invalid", function()
      H.fails("invalid", mq.open(key, unknown_flag_bit()))
      H.fails("invalid", mq.open(key, mq.O_RDWR | unknown_flag_bit()))
      H.fails("invalid", mq.open(key, -1))
    end)

    it("fails with notfound for a key without a queue", function()
      H.fails("notfound", mq.open(H.unused_key()))
    end)

    it("raises on flags of the wrong type", function()
      assert.has_error(function() mq.open(key, "rw") end)
      assert.has_error(function() mq.open(key, {}) end)
    end)

    it("is denied at open when the queue's mode refuses that access", function()
      local own = H.fresh_key_queue(octal("644"))
      local k = own:key()
      local ok, code, out = as_nobody(string.format([[
        local mq = require "mq"
        local r = {}
        for _, f in ipairs({ mq.O_RDONLY, mq.O_WRONLY, mq.O_RDWR }) do
          local h, _, c = mq.open(%d, f)
          r[#r + 1] = h and "ok" or c
        end
        io.write(table.concat(r, " "))]], k))
      own:close()
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("ok denied denied", out)
    end)
  end)

  describe("mq.destroy", function()
    it("removes a named queue and its key file", function()
      local n = H.name("destroy")
      local q = assert(mq.new(n))
      local id = q:id()
      assert.is_true(mq.destroy(n))
      assert.is_false(H.exists(H.path(n)))
      assert.is_nil(H.ipcs_queue(id))
      H.fails("removed", q:send("x"))
      q:close()
    end)

    it("removes a keyed queue", function()
      local q, key = H.fresh_key_queue()
      assert.is_true(mq.destroy(key))
      H.fails("notfound", mq.open(key))
      q:close()
    end)

    it("succeeds for a name that has neither queue nor key file", function()
      assert.is_true(mq.destroy(H.name("none")))
    end)

    it("succeeds for a key without a queue", function()
      assert.is_true(mq.destroy(H.unused_key()))
    end)

    it("removes a stale key file left without a queue", function()
      local n = H.name("stale")
      H.write_file(H.path(n), "")
      assert.is_true(mq.destroy(n))
      assert.is_false(H.exists(H.path(n)))
    end)

    it("is denied to a user who does not own the queue, which stays", function()
      local q, key = H.fresh_key_queue(octal("666"))
      local ok, code, out = as_nobody(string.format(
        "io.write(tostring(select(3, require('mq').destroy(%d))))", key))
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("denied", out)
      assert.is_truthy(H.ipcs_queue(q:id()))
      q:close()
    end)

    it("raises on a where of the wrong type", function()
      assert.has_error(function() mq.destroy({}) end)
    end)
  end)

  describe("mq.sysv", function()
    it("create makes a queue that new's open reaches, with exists the second time", function()
      local n = H.name("sysv")
      local q = assert(mq.sysv.create(n, "0640"))
      assert.are.equal(octal("640"), q:stat().mode & PERMS)
      H.fails("exists", mq.sysv.create(n))
      H.fails("exists", mq.new(n))
      local r = assert(mq.open(n))
      assert.are.equal(q:id(), r:id())
      q:close(); r:close()
    end)

    it("open reaches a queue made by new, honouring flags", function()
      local n = H.name("sysv")
      local q = assert(mq.new(n))
      local r = assert(mq.sysv.open(n, mq.O_RDONLY))
      assert.are.equal(q:id(), r:id())
      H.fails("denied", r:send("x"))
      H.fails("notfound", mq.sysv.open(H.name("sysv")))
      q:close(); r:close()
    end)

    it("destroy removes the queue and key file, and a missing queue is success", function()
      local n = H.name("sysv")
      local q = assert(mq.new(n))
      assert.is_true(mq.sysv.destroy(n))
      assert.is_false(H.exists(H.path(n)))
      H.fails("notfound", mq.open(n))
      assert.is_true(mq.sysv.destroy(n))
      q:close()
    end)
  end)

  describe("mq.limits", function()
    it("returns the kernel's msgmax, msgmnb and msgmni", function()
      local l = mq.limits()
      for _, k in ipairs({ "msgmax", "msgmnb", "msgmni" }) do
        local want = math.tointeger(tonumber(H.read_file("/proc/sys/kernel/" .. k)))
        assert.are.equal(want, l[k], k)
      end
    end)
  end)

  describe("mq.select", function()
    local a, b
    before_each(function()
      a = H.fresh_key_queue()
      b = H.fresh_key_queue()
    end)
    after_each(function() a:close(); b:close() end)

    it("takes from the first queue in list order that has a message", function()
      assert(a:send("from a", 2))
      assert(b:send("from b", 3))
      local h, data, t = mq.select({ b, a }, 1)
      assert.is_true(rawequal(b, h))
      assert.are.equal("from b", data)
      assert.are.equal(3, t)
      h, data, t = mq.select({ b, a }, 1)
      assert.is_true(rawequal(a, h))
      assert.are.equal("from a", data)
      assert.are.equal(2, t)
    end)

    it("skips empty queues", function()
      assert(b:send("only b"))
      local h, data = mq.select({ a, b }, 1)
      assert.is_true(rawequal(b, h))
      assert.are.equal("only b", data)
    end)

    it("applies the mtype selector to every queue", function()
      assert(a:send("type 1", 1))
      assert(b:send("type 7", 7))
      local h, data, t = mq.select({ a, b }, 1, 7)
      assert.is_true(rawequal(b, h))
      assert.are.equal("type 7", data)
      assert.are.equal(7, t)
      assert.are.equal(1, a:stat().messages)
    end)

    it("fails with timeout when nothing comes, naming how many queues it watched", function()
      local msg = H.fails("timeout", mq.select({ a, b }, 0.02))
      assert.equal("select over 2 queues: timed out after 0.02 s", msg)
      H.fails("timeout", mq.select({ a, b }, 0))
      -- The same through a waiter of the caller's (the wait in Lua rather than in C).
      mq.set_waiter(function(s) require("mq.core").sleep(s) end)
      local ok, v, m, code = pcall(mq.select, { a, b }, 0.02)
      mq.set_waiter(nil)
      assert(ok, v)
      assert.equal("select over 2 queues: timed out after 0.02 s", H.fails("timeout", v, m, code))
    end)

    it("keeps polling until a message arrives", function()
      local calls = 0
      local prev = mq.set_waiter(function()
        calls = calls + 1
        if calls == 3 then assert(b:send("late", 4)) end
      end)
      finally(function() mq.set_waiter(prev) end)
      local h, data, t = mq.select({ a, b }, -1)
      assert.is_true(rawequal(b, h))
      assert.are.equal("late", data)
      assert.are.equal(4, t)
      assert.are.equal(3, calls)
    end)

    it("fails with the error of the first handle that cannot be polled", function()
      local closed = assert(mq.open(b:key())); closed:close()
      local wonly = assert(mq.open(b:key(), mq.O_WRONLY))
      H.fails("closed", mq.select({ a, closed, wonly }, 1))
      H.fails("denied", mq.select({ a, wonly, closed }, 1))
      wonly:close()
    end)

    it("fails with removed for a handle whose queue is gone", function()
      local c = H.fresh_key_queue()
      assert(mq.destroy(c:key()))
      H.fails("removed", mq.select({ a, c }, 1))
      c:close()
    end)

    it("rejects a NaN timeout as invalid", function()
      H.fails("invalid", mq.select({ a, b }, 0 / 0))
    end)

    it("raises on arguments of the wrong type", function()
      assert.has_error(function() mq.select("a", 1) end)
      assert.has_error(function() mq.select({ a }, "soon") end)
      assert.has_error(function() mq.select({ 42 }, 1) end)
    end)
  end)

  describe("mq.set_waiter", function()
    it("returns the default waiter first, and nil restores it", function()
      local function mine() end
      local default = mq.set_waiter(mine)
      finally(function() mq.set_waiter(default) end)
      assert.is_function(default)
      assert.are.equal(mine, mq.set_waiter(nil))
      assert.are.equal(default, mq.set_waiter(default))
      assert.are.equal(default, mq.set_waiter(nil))
    end)

    it("is called between polls with seconds in 0 .. timeout, some of them > 0", function()
      local q = H.fresh_key_queue()
      local got = {}
      local prev = mq.set_waiter(function(s) got[#got + 1] = s end)
      finally(function() mq.set_waiter(prev); q:close() end)
      H.fails("timeout", q:receive_timeout(0.05))
      local positive = false
      for _, s in ipairs(got) do
        assert.are.equal("number", type(s))
        assert.is_true(s >= 0 and s <= 0.05, tostring(s))
        positive = positive or s > 0
      end
      assert.is_true(positive, "no waiter call with seconds > 0")
    end)

    it("is called by send_timeout while the queue is full", function()
      local q = H.fresh_key_queue()
      assert(q:set_capacity(4))
      assert(q:send("full"))
      local calls = 0
      local prev = mq.set_waiter(function()
        calls = calls + 1
        if calls == 2 then assert(q:receive()) end
      end)
      finally(function() mq.set_waiter(prev); q:close() end)
      assert.is_true(q:send_timeout("next", 5))
      assert.are.equal(2, calls)
      assert.are.equal("next", (q:receive()))
    end)

    it("raises on a waiter that is not a function", function()
      assert.has_error(function() mq.set_waiter(5) end)
    end)
  end)

  describe("constants", function()
    local function single_bit(x) return x > 0 and x & (x - 1) == 0 end

    it("O_RDONLY and O_WRONLY are distinct bits and O_RDWR is both", function()
      assert.are.equal("integer", math.type(mq.O_RDONLY))
      assert.is_true(single_bit(mq.O_RDONLY))
      assert.is_true(single_bit(mq.O_WRONLY))
      assert.are_not.equal(mq.O_RDONLY, mq.O_WRONLY)
      assert.are.equal(mq.O_RDONLY | mq.O_WRONLY, mq.O_RDWR)
    end)

    it("O_NONBLOCK is a bit apart from the access bits", function()
      assert.are.equal("integer", math.type(mq.O_NONBLOCK))
      assert.is_true(mq.O_NONBLOCK ~= 0)
      assert.are.equal(0, mq.O_NONBLOCK & mq.O_RDWR)
    end)

    it("PRIVATE is the integer 0", function()
      assert.are.equal("integer", math.type(mq.PRIVATE))
      assert.are.equal(0, mq.PRIVATE)
    end)

    it("_VERSION is a version string", function()
      assert.are.equal("string", type(mq._VERSION))
      assert.is_truthy(mq._VERSION:match("%d+%.%d+"))
    end)
  end)
end)
