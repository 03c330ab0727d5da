-- README "Names and keys": names, key files, integer keys, mq.PRIVATE, mq.ftok.

local mq = require "mq"
local H = require "helpers"

-- The go-ipc key of a file, computed without mq: `stat` gives st_ino and st_dev.
local function stat_key(path, proj)
  local ok, _, out = H.sh("stat -c '%i %d' " .. H.shell_quote(path))
  assert(ok, out)
  local ino, dev = out:match("^(%d+) (%d+)")
  ino, dev = math.tointeger(tonumber(ino)), math.tointeger(tonumber(dev))
  local k = (ino & 0xffff) | ((dev & 0xff) << 16) | (((proj or 0) & 0xff) << 24)
  if k >= 0x80000000 then k = k - 0x100000000 end   -- key_t is signed
  return k
end

local function file_mode(path)
  local ok, _, out = H.sh("stat -c '%a %F' " .. H.shell_quote(path))
  assert(ok, out)
  local mode, kind = out:match("^(%d+) ([^\n]+)")
  return tonumber(mode, 8), kind
end

-- A negative key_t no queue uses right now.
local function unused_negative_key()
  for _ = 1, 1000 do
    local key = -math.random(0x10000000, 0x7fffffff)
    local q, _, code = mq.open(key)
    if not q and code == "notfound" then return key end
    if q then q:close() end
  end
  error("no unused negative key")
end

describe("addressing", function()
  after_each(H.cleanup)

  describe("a name", function()
    it("makes its key file at $TMPDIR/<name> when new creates the queue", function()
      local n = H.name("addr")
      assert.is_false(H.exists(H.path(n)))
      local q = assert(mq.new(n))
      assert.is_true(H.exists(H.path(n)))
      assert.are.equal(n, q:name())
      q:close()
    end)

    it("creates the key file with mode 0600 whatever the umask", function()
      local n = H.name("addr")
      local ok, code, out = H.lua_e(string.format(
        "local mq = require 'mq'; assert(mq.new(%q)); io.write('made')", n),
        "umask 0;")
      assert(ok, tostring(code) .. ": " .. out)
      local mode, kind = file_mode(H.path(n))
      assert.are.equal("regular empty file", kind)
      assert.are.equal(tonumber("600", 8), mode)
    end)

    it("keeps an existing key file's contents (never truncates)", function()
      local n = H.name("addr")
      H.write_file(H.path(n), "keep me")
      local q = assert(mq.new(n))
      assert.are.equal("keep me", H.read_file(H.path(n)))
      q:close()
    end)

    it("uses the go-ipc key (st_ino & 0xffff) | ((st_dev & 0xff) << 16) of the key file", function()
      local n = H.name("addr")
      local q = assert(mq.new(n))
      local want = stat_key(H.path(n), 0)
      assert.are.equal(want, q:key())
      assert.are.equal(want, q:stat().key)
      local row = assert(H.ipcs_queue(q:id()), "queue not in ipcs -q")
      assert.are.equal(want, row.key)
      q:close()
    end)

    it("reaches the same queue from open as from new", function()
      local n = H.name("addr")
      local q = assert(mq.new(n))
      local r = assert(mq.open(n))
      assert.are.equal(q:id(), r:id())
      assert.is_true(q:send("hello", 3))
      local data, t = r:receive()
      assert.are.equal("hello", data)
      assert.are.equal(3, t)
      q:close(); r:close()
    end)

    it("reaches the same queue from another process", function()
      local n = H.name("addr")
      local q = assert(mq.new(n))
      local ok, code, out = H.lua_e(string.format([[
        local r = assert(require("mq").open(%q))
        assert(r:send("from child " .. r:id(), 11))
        io.write(r:key())]], n))
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(q:key(), tonumber(out))
      local data, t = q:receive()
      assert.are.equal("from child " .. q:id(), data)
      assert.are.equal(11, t)
      q:close()
    end)

    it("is opened with notfound and no key file created when the key file is missing", function()
      local n = H.name("addr")
      H.fails("notfound", mq.open(n))
      assert.is_false(H.exists(H.path(n)))
    end)

    it("uses /tmp when TMPDIR is empty or unset", function()
      for _, prefix in ipairs({ "TMPDIR=", "env -u TMPDIR" }) do
        local n = string.format("mq-spec-tmp-%d-%d", H.pid, math.random(1, 1 << 30))
        local path = "/tmp/" .. n
        finally(function()
          H.lua_e(string.format("require('mq').destroy(%q)", n), prefix)
          os.remove(path)
        end)
        local ok, code, out = H.lua_e(string.format(
          "local q = assert(require('mq').new(%q)); io.write(q:key())", n), prefix)
        assert(ok, tostring(code) .. ": " .. out)
        assert.is_true(H.exists(path))
        assert.are.equal(stat_key(path, 0), tonumber(out))
        ok, code, out = H.lua_e(string.format(
          "assert(require('mq').destroy(%q)); io.write('gone')", n), prefix)
        assert(ok, tostring(code) .. ": " .. out)
        assert.is_false(H.exists(path))
      end
    end)

    it("of 255 bytes is valid", function()
      local n = H.name("long")
      n = n .. string.rep("x", 255 - #n)
      H.track(n)
      local q = assert(mq.new(n))
      assert.are.equal(n, q:name())
      q:close()
    end)

    local bad = {
      ["empty"] = "",
      ["of 256 bytes"] = string.rep("n", 256),
      ["with a slash"] = "a/b",
      ["that is a lone slash"] = "/",
      ["with a NUL byte"] = "ab\0cd",
      ["'.'"] = ".",
      ["'..'"] = "..",
    }
    for what, n in pairs(bad) do
      it(what .. " is invalid for new, open and destroy", function()
        H.fails("invalid", mq.new(n))
        H.fails("invalid", mq.open(n))
        H.fails("invalid", mq.destroy(n))
        H.fails("invalid", mq.sysv.create(n))
        H.fails("invalid", mq.sysv.open(n))
        H.fails("invalid", mq.sysv.destroy(n))
      end)
    end

    it("with a NUL byte creates nothing at the prefix before the NUL", function()
      local n = H.name("nul")
      H.fails("invalid", mq.new(n .. "\0tail"))
      assert.is_false(H.exists(H.path(n)))
    end)
  end)

  describe("a key path that is not a regular file", function()
    it("is invalid when it is a symlink, and the target file is untouched", function()
      local n, target = H.name("link"), H.name("target")
      H.write_file(H.path(target), "target data")
      assert(H.sh("chmod 0640 " .. H.shell_quote(H.path(target))))
      assert(H.sh(string.format("ln -s %s %s", H.shell_quote(H.path(target)),
        H.shell_quote(H.path(n)))))
      finally(function() os.remove(H.path(n)); os.remove(H.path(target)) end)
      local target_key = stat_key(H.path(target), 0)
      H.fails("invalid", mq.new(n))
      H.fails("invalid", mq.open(n))
      H.fails("invalid", mq.destroy(n))
      assert.are.equal("target data", H.read_file(H.path(target)))
      assert.are.equal(tonumber("640", 8), (file_mode(H.path(target))))
      -- no queue was made on the target's key either
      H.fails("notfound", mq.open(target_key))
      assert.is_true((H.sh("test -L " .. H.shell_quote(H.path(n)))))
    end)

    it("is invalid when it is a dangling symlink, and the target is not created", function()
      local n, target = H.name("dangle"), H.name("nowhere")
      assert(H.sh(string.format("ln -s %s %s", H.shell_quote(H.path(target)),
        H.shell_quote(H.path(n)))))
      finally(function() os.remove(H.path(n)); os.remove(H.path(target)) end)
      H.fails("invalid", mq.new(n))
      assert.is_false(H.exists(H.path(target)))
      assert.is_true(H.exists(H.path(n)))
    end)

    it("is invalid when it is a directory, and the directory stays", function()
      local n = H.name("dir")
      assert(H.sh("mkdir " .. H.shell_quote(H.path(n))))
      finally(function() os.remove(H.path(n)) end)
      H.fails("invalid", mq.new(n))
      H.fails("invalid", mq.open(n))
      H.fails("invalid", mq.destroy(n))
      assert.are.equal("directory", select(2, file_mode(H.path(n))))
    end)

    it("is invalid when it is a FIFO, without blocking on it", function()
      local n = H.name("fifo")
      assert(H.sh("mkfifo " .. H.shell_quote(H.path(n))))
      finally(function() os.remove(H.path(n)) end)
      -- in a child under `timeout`: opening a FIFO without O_NONBLOCK would hang
      local ok, code, out = H.lua_e(string.format([[
        local mq = require "mq"
        local codes = {}
        for _, f in ipairs({ mq.new, mq.open, mq.destroy }) do
          codes[#codes + 1] = tostring(select(3, f(%q)))
        end
        io.write(table.concat(codes, " "))]], n), nil, 10)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("invalid invalid invalid", out)
      assert.are.equal("fifo", select(2, file_mode(H.path(n))))
    end)
  end)

  describe("an integer key", function()
    it("creates and opens the same queue", function()
      local q, key = H.fresh_key_queue()
      local r = assert(mq.open(key))
      assert.are.equal(q:id(), r:id())
      assert.are.equal(key, r:key())
      assert.is_nil(r:name())
      q:close(); r:close()
    end)

    it("makes no key file", function()
      local q, key = H.fresh_key_queue()
      assert.is_false(H.exists(H.path(tostring(key))))
      q:close()
    end)

    it("is shown by ipcs with that key", function()
      local q, key = H.fresh_key_queue()
      local row = assert(H.ipcs_queue(q:id()))
      assert.are.equal(key, row.key)
      q:close()
    end)

    it("at or above 2^31 is taken modulo 2^32 (new(k + 2^32) and open(k) meet)", function()
      local k = unused_negative_key()
      local q = assert(mq.new(k + (1 << 32)))
      H.track(k)
      local r = assert(mq.open(k))
      assert.are.equal(q:id(), r:id())
      assert.are.equal(k, q:key())          -- key_t is signed
      assert.are.equal(k, q:stat().key)
      assert.are.equal(k & 0xffffffff, assert(H.ipcs_queue(q:id())).key)
      q:close(); r:close()
    end)

    it("2^32-1 and -1 reach the same queue", function()
      -- 0xffffffff is a fixed key: an overlapping run may hold it, so share it if it exists
      -- and retry if that run removes it under us.
      for _ = 1, 100 do
        local q = mq.new(2^32 - 1)
        local mine = q ~= nil
        q = q or mq.open(0xffffffff)
        local r = q and mq.open(-1)
        if r then
          local qid, rid, rkey, qkey = q:id(), r:id(), r:key(), q:key()
          q:close(); r:close()
          if mine then assert(mq.destroy(-1)) end
          assert.are.equal(qid, rid)
          assert.are.equal(-1, rkey)
          assert.are.equal(-1, qkey)
          return
        end
        if q then q:close() end
        if mine then mq.destroy(-1) end
      end
      error("could not reach key 0xffffffff")
    end)

    it("-2^31 is in range", function()
      local q, _, code = mq.open(-(1 << 31))
      if q then q:close() end
      assert.is_true(q ~= nil or code == "notfound", code)
    end)

    for _, k in ipairs({ -(1 << 31) - 1, 1 << 32, math.maxinteger, math.mininteger }) do
      it(string.format("%d is out of range: invalid for new, open and destroy", k), function()
        H.fails("invalid", mq.new(k))
        H.fails("invalid", mq.open(k))
        H.fails("invalid", mq.destroy(k))
      end)
    end
  end)

  describe("mq.PRIVATE", function()
    it("is 0", function()
      assert.are.equal(0, mq.PRIVATE)
    end)

    it("with new makes a fresh queue every time", function()
      local a = assert(mq.new(mq.PRIVATE))
      local b = assert(mq.new(mq.PRIVATE))
      finally(function() a:destroy(); b:destroy() end)
      assert.are_not.equal(a:id(), b:id())
      assert.are.equal(0, a:key())
      assert.is_nil(a:name())
      assert.is_true(a:send("private"))
      assert.are.equal("private", (a:receive()))
    end)

    it("with new accepts a perm", function()
      local q = assert(mq.new(mq.PRIVATE, "0640"))
      finally(function() q:destroy() end)
      assert.are.equal(tonumber("640", 8), q:stat().mode & tonumber("777", 8))
    end)

    it("is invalid for open and destroy", function()
      H.fails("invalid", mq.open(mq.PRIVATE))
      H.fails("invalid", mq.destroy(mq.PRIVATE))
      H.fails("invalid", mq.sysv.open(mq.PRIVATE))
      H.fails("invalid", mq.sysv.destroy(mq.PRIVATE))
    end)
  end)

  describe("mq.ftok", function()
    it("equals the go-ipc key of a file for proj_id 0", function()
      local n = H.name("ftok")
      H.write_file(H.path(n), "")
      assert.are.equal(stat_key(H.path(n), 0), mq.ftok(H.path(n), 0))
    end)

    it("puts proj_id's low 8 bits in the top byte", function()
      local n = H.name("ftok")
      H.write_file(H.path(n), "")
      assert.are.equal(stat_key(H.path(n), 0x2a), mq.ftok(H.path(n), 0x2a))
      assert.are.equal(stat_key(H.path(n), 0x81), mq.ftok(H.path(n), 0x81))
    end)

    it("gives the key of the queue mq.new(name) makes", function()
      local n = H.name("ftok")
      local q = assert(mq.new(n))
      assert.are.equal(mq.ftok(H.path(n), 0), q:key())
      assert.are.equal(mq.ftok(H.path(n), 0), assert(H.ipcs_queue(q:id())).key)
      q:close()
    end)

    it("fails with notfound for a missing file", function()
      H.fails("notfound", mq.ftok(H.path(H.name("nofile")), 0))
    end)
  end)
end)
