-- README "Handle methods": set_blocking, stat, set_capacity, close, __gc, __close, destroy,
-- name, key, id, tostring and the "mq.queue" metatable.

local mq = require "mq"
local H = require "helpers"

local function octal(s) return tonumber(s, 8) end

local METHODS = { "send", "receive", "send_timeout", "receive_timeout", "peek", "messages",
                  "set_blocking", "stat", "set_capacity", "close", "destroy", "name", "key",
                  "id" }

local function id_u()
  local _, _, out = H.sh("id -u; id -g")
  local u, g = out:match("(%d+)%s+(%d+)")
  return math.tointeger(tonumber(u)), math.tointeger(tonumber(g))
end

describe("queue handle", function()
  after_each(H.cleanup)

  describe("metatable", function()
    it("is registered as \"mq.queue\" and named so by __name", function()
      local q = H.fresh_key_queue()
      local mt = getmetatable(q)
      assert.are.equal("table", type(mt))
      assert.are.equal("mq.queue", mt.__name)
      assert.is_true(rawequal(mt, debug.getregistry()["mq.queue"]))
      q:close()
    end)

    it("holds every method", function()
      local q = H.fresh_key_queue()
      local mt = debug.getregistry()["mq.queue"]
      local methods = type(mt.__index) == "table" and mt.__index or mt
      for _, m in ipairs(METHODS) do
        assert.is_function(methods[m], m)
        assert.is_true(rawequal(methods[m], q[m]), m)
      end
      q:close()
    end)

    it("has __gc, __close and __tostring", function()
      local mt = debug.getregistry()["mq.queue"]
      assert.is_function(mt.__gc)
      assert.is_function(mt.__close)
      assert.is_function(mt.__tostring)
    end)

    it("makes a method raise, naming mq.queue, when self is not a handle", function()
      local q = H.fresh_key_queue()
      local ok, err = pcall(q.send, {}, "x")
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("mq.queue", 1, true), err)
      assert.has_error(function() q.stat(io.stdout) end)
      assert.has_error(function() q.close(nil) end)
      q:close()
    end)
  end)

  describe("set_blocking", function()
    it("false makes receive and send fail with again instead of waiting", function()
      local q = H.fresh_key_queue()
      assert.is_true(q:set_blocking(false))
      H.fails("again", q:receive())
      assert(q:set_capacity(2)); assert(q:send("12"))
      H.fails("again", q:send("3"))
      q:close()
    end)

    it("true makes a nonblocking handle block again", function()
      local q, key = H.fresh_key_queue()
      local ctl = H.fresh_key_queue()
      local child = H.spawn_lua(H.CHILD_PID .. string.format([[
        local mq = require "mq"
        local q = assert(mq.open(%d, mq.O_NONBLOCK))
        assert(select(3, q:receive()) == "again")
        assert(q:set_blocking(true) == true)
        assert(assert(mq.open(%d)):send(tostring(PID)))
        io.write(tostring(q:receive()))]], key, ctl:key()))
      local pid = assert(ctl:receive_timeout(20))
      assert(H.wait_blocked_in(pid, "do_msgrcv"), "receive did not block")
      assert(q:send("wake"))
      local ok, code, out = child:wait(20)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("wake", out)
      q:close(); ctl:close()
    end)

    it("raises on a flag that is not a boolean", function()
      local q = H.fresh_key_queue()
      assert.has_error(function() q:set_blocking(0) end)
      assert.has_error(function() q:set_blocking("no") end)
      q:close()
    end)
  end)

  describe("stat", function()
    local FIELDS = { "messages", "bytes", "capacity", "last_send_pid", "last_receive_pid",
                     "last_send_time", "last_receive_time", "last_change_time", "uid", "gid",
                     "cuid", "cgid", "mode", "key", "id" }

    it("returns every field as an integer", function()
      local q = H.fresh_key_queue()
      local st = q:stat()
      for _, f in ipairs(FIELDS) do
        assert.are.equal("integer", math.type(st[f]), f)
      end
      q:close()
    end)

    it("counts the messages and bytes in the queue", function()
      local q = H.fresh_key_queue()
      assert.are.equal(0, q:stat().messages)
      assert.are.equal(0, q:stat().bytes)
      assert(q:send("abc")); assert(q:send("defgh", 2)); assert(q:send(""))
      local st = q:stat()
      assert.are.equal(3, st.messages)
      assert.are.equal(8, st.bytes)
      local row = assert(H.ipcs_queue(q:id()))
      assert.are.equal(3, row.messages)
      assert.are.equal(8, row.bytes)
      q:close()
    end)

    it("reports the capacity, msgmnb for a new queue", function()
      local q = H.fresh_key_queue()
      assert.are.equal(mq.limits().msgmnb, q:stat().capacity)
      q:close()
    end)

    it("reports this process as last sender and receiver", function()
      local q = H.fresh_key_queue()
      local st = q:stat()
      assert.are.equal(0, st.last_send_pid)
      assert.are.equal(0, st.last_receive_pid)
      assert(q:send("x"))
      assert.are.equal(H.pid, q:stat().last_send_pid)
      assert.are.equal(0, q:stat().last_receive_pid)
      assert(q:receive())
      assert.are.equal(H.pid, q:stat().last_receive_pid)
      q:close()
    end)

    it("reports another process as last sender", function()
      local q, key = H.fresh_key_queue()
      local ok, code, out = H.lua_e(H.CHILD_PID .. string.format(
        "assert(require('mq').open(%d):send('x')); io.write(PID)", key))
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(tonumber(out), q:stat().last_send_pid)
      q:close()
    end)

    it("reports send, receive and change times", function()
      local before = os.time()
      local q = H.fresh_key_queue()
      local st = q:stat()
      assert.are.equal(0, st.last_send_time)
      assert.are.equal(0, st.last_receive_time)
      assert.is_true(st.last_change_time >= before and st.last_change_time <= os.time())
      assert(q:send("x"))
      st = q:stat()
      assert.is_true(st.last_send_time >= before and st.last_send_time <= os.time())
      assert(q:receive())
      st = q:stat()
      assert.is_true(st.last_receive_time >= before and st.last_receive_time <= os.time())
      q:close()
    end)

    it("reports owner, creator, mode, key and id", function()
      local q, key = H.fresh_key_queue("0640")
      local uid, gid = id_u()
      local st = q:stat()
      assert.are.equal(uid, st.uid)
      assert.are.equal(gid, st.gid)
      assert.are.equal(uid, st.cuid)
      assert.are.equal(gid, st.cgid)
      assert.are.equal(octal("640"), st.mode & octal("777"))
      assert.are.equal(key, st.key)
      assert.are.equal(q:id(), st.id)
      q:close()
    end)

    it("reports key 0 for a private queue", function()
      local q = assert(mq.new(mq.PRIVATE))
      finally(function() q:destroy() end)
      assert.are.equal(0, q:stat().key)
    end)

    it("works on a write-only handle (the kernel's read permission decides)", function()
      local q, key = H.fresh_key_queue()
      local w = assert(mq.open(key, mq.O_WRONLY))
      assert.are.equal(q:id(), w:stat().id)
      w:close(); q:close()
    end)
  end)

  describe("set_capacity", function()
    it("sets the queue's capacity in bytes", function()
      local q = H.fresh_key_queue()
      assert.is_true(q:set_capacity(1000))
      assert.are.equal(1000, q:stat().capacity)
      q:close()
    end)

    it("limits what the queue holds", function()
      local q = H.fresh_key_queue()
      assert(q:set_capacity(10))
      assert(q:set_blocking(false))
      assert(q:send("12345")); assert(q:send("67890"))
      H.fails("again", q:send("x"))
      q:close()
    end)

    it("beyond msgmnb is denied without CAP_SYS_RESOURCE", function()
      local q, key = H.fresh_key_queue()
      local ok, code, out = H.lua_e(string.format([[
        local q = assert(require("mq").open(%d))
        io.write(tostring(select(3, q:set_capacity(%d))), " ", tostring(q:set_capacity(%d)))]],
        key, mq.limits().msgmnb + 1, mq.limits().msgmnb),
        "setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource")
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("denied true", out)
      q:close()
    end)

    it("rejects a negative capacity as invalid", function()
      local q = H.fresh_key_queue()
      H.fails("invalid", q:set_capacity(-1))
      assert.are.equal(mq.limits().msgmnb, q:stat().capacity)
      q:close()
    end)

    it("raises on a capacity of the wrong type", function()
      local q = H.fresh_key_queue()
      assert.has_error(function() q:set_capacity("big") end)
      q:close()
    end)
  end)

  describe("close", function()
    it("returns true and is idempotent", function()
      local q = H.fresh_key_queue()
      assert.is_true(q:close())
      assert.is_true(q:close())
    end)

    it("makes every other method fail with closed", function()
      local q = H.fresh_key_queue()
      assert(q:send("still here"))
      q:close()
      H.fails("closed", q:send("x"))
      H.fails("closed", q:receive())
      H.fails("closed", q:send_timeout("x", 1))
      H.fails("closed", q:receive_timeout(1))
      H.fails("closed", q:peek())
      H.fails("closed", q:set_blocking(false))
      H.fails("closed", q:stat())
      H.fails("closed", q:set_capacity(100))
      H.fails("closed", q:destroy())
      H.fails("closed", q:name())
      H.fails("closed", q:key())
      H.fails("closed", q:id())
    end)

    it("makes messages fail with closed", function()
      -- the original contract says both "fails with closed" (close row) and "raises" (messages row):
      -- accept a nil, message, "closed" triple or an error that says closed.
      local q = H.fresh_key_queue()
      q:close()
      local ok, a, b, c = pcall(q.messages, q)
      if ok then
        H.fails("closed", a, b, c)
      else
        assert.is_truthy(tostring(a):find("closed"), a)
      end
    end)

    it("never removes the queue or its messages", function()
      local q, key = H.fresh_key_queue()
      assert(q:send("kept"))
      q:close()
      local r = assert(mq.open(key))
      assert.are.equal("kept", (r:receive()))
      r:close()
    end)

    it("leaves other handles on the same queue working", function()
      local q, key = H.fresh_key_queue()
      local r = assert(mq.open(key))
      r:close()
      assert.is_true(q:send("x"))
      assert.are.equal("x", (q:receive()))
      q:close()
    end)

    it("is what __gc does", function()
      local q, key = H.fresh_key_queue()
      getmetatable(q).__gc(q)
      H.fails("closed", q:id())
      assert.is_truthy(assert(mq.open(key)):close())
    end)

    it("lets a collected handle's queue live on", function()
      local key
      do
        local q
        q, key = H.fresh_key_queue()
        assert(q:send("after gc"))
      end
      collectgarbage(); collectgarbage()
      local r = assert(mq.open(key))
      assert.are.equal("after gc", (r:receive()))
      r:close()
    end)

    it("is what __close does for a <close> variable", function()
      local _, key = H.fresh_key_queue()
      local saved
      do
        local q <close> = assert(mq.open(key))
        saved = q
        assert.is_true(q:send("in scope"))
      end
      H.fails("closed", saved:send("x"))
      assert.are.equal("mq.queue(closed)", tostring(saved))
      local r = assert(mq.open(key))
      assert.are.equal("in scope", (r:receive()))
      r:close()
    end)

    it("is done by __close when the scope is left by an error", function()
      local _, key = H.fresh_key_queue()
      local saved
      local ok = pcall(function()
        local q <close> = assert(mq.open(key))
        saved = q
        error("boom")
      end)
      assert.is_false(ok)
      H.fails("closed", saved:key())
    end)
  end)

  describe("destroy", function()
    it("closes the handle and removes a named queue and its key file", function()
      local n = H.name("hdestroy")
      local q = assert(mq.new(n))
      local id = q:id()
      assert.is_true(q:destroy())
      H.fails("closed", q:id())
      assert.is_nil(H.ipcs_queue(id))
      assert.is_false(H.exists(H.path(n)))
      H.fails("notfound", mq.open(n))
    end)

    it("removes a keyed queue", function()
      local q, key = H.fresh_key_queue()
      assert.is_true(q:destroy())
      H.fails("notfound", mq.open(key))
    end)

    it("makes other handles on the queue fail with removed", function()
      local q, key = H.fresh_key_queue()
      local r = assert(mq.open(key))
      assert(q:destroy())
      H.fails("removed", r:send("x"))
      H.fails("removed", r:receive())
      H.fails("removed", r:stat())
      r:close()
    end)

    it("succeeds when someone else already removed the queue, leaving the key file", function()
      local n = H.name("hdestroy")
      local q = assert(mq.new(n))
      assert(H.sh("ipcrm -q " .. q:id()))
      assert.is_true(q:destroy())
      assert.is_true(H.exists(H.path(n)))
      H.fails("closed", q:id())
    end)

    it("then leaves alone a new queue that took over the name", function()
      local n = H.name("hdestroy")
      local old = assert(mq.new(n))
      assert(H.sh("ipcrm -q " .. old:id()))
      local new = assert(mq.new(n))
      assert.is_true(old:destroy())
      assert.is_true(H.exists(H.path(n)))
      local r = assert(mq.open(n))
      assert.are.equal(new:id(), r:id())
      r:close(); new:close()
    end)

    it("of a private queue removes it", function()
      local q = assert(mq.new(mq.PRIVATE))
      local id = q:id()
      assert.is_true(q:destroy())
      assert.is_nil(H.ipcs_queue(id))
    end)
  end)

  describe("name, key and id", function()
    it("name is the name for a named queue, from new and from open", function()
      local n = H.name("nki")
      local q = assert(mq.new(n))
      local r = assert(mq.open(n))
      assert.are.equal(n, q:name())
      assert.are.equal(n, r:name())
      q:close(); r:close()
    end)

    it("name is nil for a keyed or private queue", function()
      local q = H.fresh_key_queue()
      assert.is_nil(q:name())
      assert.are.equal(1, select("#", q:name()))
      local p = assert(mq.new(mq.PRIVATE))
      finally(function() p:destroy() end)
      assert.is_nil(p:name())
      q:close()
    end)

    it("key is the queue's key_t", function()
      local n = H.name("nki")
      local named = assert(mq.new(n))
      assert.are.equal(mq.ftok(H.path(n), 0), named:key())
      local q, key = H.fresh_key_queue()
      assert.are.equal(key, q:key())
      local p = assert(mq.new(mq.PRIVATE))
      finally(function() p:destroy() end)
      assert.are.equal(0, p:key())
      named:close(); q:close()
    end)

    it("id is the kernel's queue id, the same for every handle", function()
      local q, key = H.fresh_key_queue()
      local r = assert(mq.open(key, mq.O_RDONLY))
      assert.are.equal("integer", math.type(q:id()))
      assert.are.equal(q:id(), r:id())
      assert.are.equal(key, assert(H.ipcs_queue(q:id())).key)
      q:close(); r:close()
    end)
  end)

  describe("tostring", function()
    it("reads mq.queue(name=<name>, id=<id>) for a named queue", function()
      local n = H.name("ts")
      local q = assert(mq.new(n))
      assert.are.equal(string.format("mq.queue(name=%s, id=%d)", n, q:id()), tostring(q))
      q:close()
    end)

    it("reads mq.queue(key=0x%08x, id=<id>) for a keyed queue", function()
      local q, key = H.fresh_key_queue()
      assert.are.equal(string.format("mq.queue(key=0x%08x, id=%d)", key, q:id()), tostring(q))
      q:close()
    end)

    it("shows a key at or above 2^31 as 8 unsigned hex digits", function()
      local key
      for _ = 1, 1000 do
        key = -math.random(1, 0x7fffffff)
        if select(3, mq.open(key)) == "notfound" then break end
      end
      local q = assert(mq.new(key))
      H.track(key)
      assert.are.equal(string.format("mq.queue(key=0x%08x, id=%d)", key & 0xffffffff, q:id()),
        tostring(q))
      q:close()
    end)

    it("shows a small key with leading zeros", function()
      local n = H.name("ts")
      local q = assert(mq.new(n))
      local r = assert(mq.open(q:key()))
      assert.are.equal(string.format("mq.queue(key=0x%08x, id=%d)", q:key(), r:id()),
        tostring(r))
      assert.is_truthy(tostring(r):match("^mq%.queue%(key=0x%x%x%x%x%x%x%x%x, id=%d+%)$"))
      q:close(); r:close()
    end)

    it("reads mq.queue(private, id=<id>) for a private queue", function()
      local q = assert(mq.new(mq.PRIVATE))
      finally(function() q:destroy() end)
      assert.are.equal(string.format("mq.queue(private, id=%d)", q:id()), tostring(q))
    end)

    it("reads mq.queue(closed) once closed", function()
      local q = H.fresh_key_queue()
      q:close()
      assert.are.equal("mq.queue(closed)", tostring(q))
    end)
  end)
end)
