-- Create-or-open and open by id (issue 11): mq.open(where, flags | mq.O_CREAT [, perm]) and
-- mq.open_id(id [, flags]), their success paths and every failure code they can return,
-- checked against the kernel (a second user, uid 65534) and against Python's sysv_ipc.
--
-- Codes that cannot be produced here: `exists` from open with O_CREAT needs 64 fresh key
-- files in a row whose keys are all taken (names.c, PUBLISH_TRIES); `nospace` needs the
-- system's queue table full (msgmni), which would break everyone else on a shared machine;
-- `unsupported` is never returned by these calls on Linux.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"
local X = require "support.peers"

local ROOT = (select(3, H.sh("id -u")) or ""):match("^0\n") ~= nil

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

describe("mq.open with mq.O_CREAT", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  it("creates a missing named queue and says so; later calls open it and say not", function()
    local n = H.name("oc")
    local q, created = mq.open(n, mq.O_RDWR | mq.O_CREAT, "0640")
    assert.is_true(created)
    assert.are.equal(n, q:name())
    assert.are.equal(mq.ftok(H.path(n), 0), q:key())
    local st = q:stat()
    assert.are.equal(tonumber("640", 8), st.mode)
    local again, created2 = mq.open(n, mq.O_CREAT, "0600")
    assert.is_false(created2)
    assert.are.equal(q:id(), again:id())
    assert.are.equal(tonumber("640", 8), again:stat().mode)   -- perm only counts when it creates
    assert(q:send("through the created handle", 4))
    assert.are.same({ "through the created handle", 4 }, { again:receive() })
    assert.are.equal(q:id(), assert(mq.open(n)):id())
    q:close()
    again:close()
  end)

  it("creates a missing keyed queue, 0600 by default, and opens it afterwards", function()
    local key = H.track(H.unused_key())
    local q, created = mq.open(key, mq.O_CREAT)
    assert.is_true(created)
    assert.are.equal(key, q:key())
    assert.is_nil(q:name())
    assert.are.equal(tonumber("600", 8), q:stat().mode)
    assert.are.equal(string.format("mq.queue(key=0x%08x, id=%d)", key, q:id()), tostring(q))
    local again, created2 = mq.open(key, mq.O_WRONLY | mq.O_CREAT, tonumber("666", 8))
    assert.is_false(created2)
    assert.are.equal(q:id(), again:id())
    assert.are.equal(tonumber("600", 8), q:stat().mode)
    q:close()
    again:close()
  end)

  it("gives a handle with the access and blocking mode the flags ask for", function()
    local key = H.track(H.unused_key())
    local ro, created = mq.open(key, mq.O_RDONLY | mq.O_NONBLOCK | mq.O_CREAT)
    assert.is_true(created)
    H.fails("denied", ro:send("x"))
    H.fails("again", ro:receive())
    local wo, created2 = mq.open(key, mq.O_WRONLY | mq.O_CREAT)
    assert.is_false(created2)
    H.fails("denied", wo:receive())
    assert(wo:send("from the write-only handle", 2))
    assert.are.same({ "from the write-only handle", 2 }, { ro:receive() })
    local rw = mq.open(key, mq.O_NONBLOCK | mq.O_CREAT)   -- no access bit: read-write
    assert(rw:send("x"))
    assert.are.equal("x", (rw:receive()))
    ro:close()
    wo:close()
    rw:close()
  end)

  it("with mq.PRIVATE always creates a new private queue", function()
    local a, created = mq.open(mq.PRIVATE, mq.O_CREAT, "0640")
    X.made_id(a:id())
    local b, created2 = mq.open(mq.PRIVATE, mq.O_RDWR | mq.O_CREAT)
    X.made_id(b:id())
    assert.is_true(created)
    assert.is_true(created2)
    assert.are_not.equal(a:id(), b:id())
    assert.are.equal(0, a:key())
    assert.are.equal(tonumber("640", 8), a:stat().mode)
    assert.are.equal(tonumber("600", 8), b:stat().mode)
    assert.are.equal(string.format("mq.queue(private, id=%d)", a:id()), tostring(a))
    assert.is_true(a:destroy())
    assert.is_true(b:destroy())
  end)

  it("without O_CREAT returns the handle alone", function()
    local _, key = H.fresh_key_queue()
    local _, n = H.fresh_name_queue("alone")
    assert.are.equal(1, select("#", mq.open(key)))
    assert.are.equal(1, select("#", mq.open(n, mq.O_RDONLY)))
    assert.are.equal(2, select("#", mq.open(key, mq.O_CREAT)))
  end)

  it("on a stale key file (no queue) gives the name a queue and says created", function()
    local q, n = H.fresh_name_queue("stale")
    local id = q:id()
    q:close()
    assert(H.sh("ipcrm -q " .. id))                     -- the queue goes, the key file stays
    assert.is_true(H.exists(H.path(n)))
    H.fails("notfound", mq.open(n))
    local r, created = mq.open(n, mq.O_CREAT)
    assert.is_true(created)
    assert.are_not.equal(id, r:id())
    -- The key file still names it (usually the same file; a new one if the old one's
    -- key was taken meanwhile).
    assert.are.equal(mq.ftok(H.path(n), 0), r:key())
    local again, created2 = mq.open(n, mq.O_CREAT)
    assert.is_false(created2)
    assert.are.equal(r:id(), again:id())
    r:close()
    again:close()
  end)

  -- The key file is ours but its queue is gone and another user's queue took its key: the
  -- name has no queue (a name is honoured only while its key file's owner made the queue),
  -- so O_CREAT makes one as mq.new does, and the other user's queue is left alone.
  it("on a key file whose key another user's queue took, creates the name's queue as new does", function()
    local q, n = H.fresh_name_queue("taken")
    local key, id = q:key(), q:id()
    q:close()
    assert(H.sh("ipcrm -q " .. id))
    local ok, code, out = X.as_nobody([[
      local q, msg = require("mq").new(tonumber(arg[1]), "0666")
      io.write(q and "made" or msg)]], key)
    assert(ok, tostring(code) .. ": " .. out)
    if out ~= "made" then pending("the key was taken again meanwhile: " .. out) return end
    H.track(key)
    H.fails("denied", mq.open(n))                       -- theirs is not the name's queue
    local r, created = mq.open(n, mq.O_CREAT)
    assert(r, created)
    assert.is_true(created)
    assert.are_not.equal(key, r:key())
    assert.are.equal(mq.ftok(H.path(n), 0), r:key())
    assert.are.equal(0, r:stat().cuid)
    local theirs = assert(mq.open(key))
    assert.are.equal(65534, theirs:stat().cuid)
    local again, created2 = mq.open(n, mq.O_CREAT)
    assert.is_false(created2)
    assert.are.equal(r:id(), again:id())
    r:close()
    again:close()
    theirs:close()
  end)

  -- Children that all wait for one flag file, then open-or-create the same addresses in the
  -- same order; each prints "index created id" per address.
  local RACER = [[
    local mq = require "mq"
    local core = require "mq.core"
    local flag = arg[1]
    local function exists(p) local f = io.open(p) if f then f:close() return true end end
    while not exists(flag) do core.sleep(0.0002) end
    for i = 2, #arg do
      local where = math.tointeger(tonumber(arg[i])) or arg[i]
      local q, created, code = mq.open(where, mq.O_RDWR | mq.O_CREAT)
      if q then
        print(i - 1, created and 1 or 0, q:id())
        q:close()
      else
        print(i - 1, "error", code, created)
      end
    end
  ]]

  -- After the race, in the same IPC namespace: "index id" of each address's queue; then the
  -- addresses are destroyed (names with their key files).
  local VERIFY = [[
    local mq = require "mq"
    for i = 1, #arg do
      local where = math.tointeger(tonumber(arg[i])) or arg[i]
      local q, msg = mq.open(where)
      print(i, q and q:id() or msg)
      assert(mq.destroy(where))
    end
  ]]

  -- The racers run in an IPC namespace of their own when one can be made, so that no other
  -- program on this machine (another run whose stale key file's key collides with one of
  -- these, say) can remove or take their queues mid-race; the key files are in $TMPDIR all
  -- the same.
  local ISOLATE = (H.sh("unshare -i true")) and "unshare -i " or ""

  local function race(addresses, children)
    local flag = P.flag()
    local racer, verify = H.script(RACER), H.script(VERIFY)
    local args = {}
    for i, a in ipairs(addresses) do args[i] = H.shell_quote(a) end
    args = table.concat(args, " ")
    local cmds = {}
    for c = 1, children do
      cmds[c] = string.format("%s %s %s %s > %s.%d 2>&1 &", H.LUA, racer, flag, args, flag, c)
    end
    local ok, code, out = H.sh(string.format("%stimeout 120 sh -c %s", ISOLATE, H.shell_quote(
      string.format("%s : > %s; wait; %s %s %s", table.concat(cmds, " "), flag, H.LUA, verify, args))))
    assert(ok, tostring(code) .. ": " .. out)
    local final = {}
    for line in out:gmatch("[^\n]+") do
      local i, id = line:match("^(%d+)\t(%d+)$")
      assert(i, line)
      final[tonumber(i)] = tonumber(id)
    end
    local seen = {}
    for i = 1, #addresses do seen[i] = { created = 0, ids = {}, opened = 0 } end
    for c = 1, children do
      local result = H.read_file(flag .. "." .. c) or ""
      os.remove(flag .. "." .. c)
      for line in result:gmatch("[^\n]+") do
        local i, created, id = line:match("^(%d+)\t(%S+)\t(%S+)")
        assert(i and created ~= "error", line)
        local s = seen[tonumber(i)]
        s.created = s.created + tonumber(created)
        s.ids[tonumber(id)] = true
        s.opened = s.opened + 1
      end
    end
    os.remove(flag)
    for i, s in ipairs(seen) do
      local ids = {}
      for id in pairs(s.ids) do ids[#ids + 1] = id end
      assert.are.equal(children, s.opened, "address " .. i)
      assert.are.equal(1, s.created, "address " .. i .. ": callers that got created == true")
      assert.are.equal(1, #ids, "address " .. i .. ": distinct queue ids")
      assert.are.equal(ids[1], final[i], "address " .. i .. ": the queue it has afterwards")
    end
  end

  it("by many concurrent processes on one name: exactly one gets created, all one queue", function()
    local names = {}
    for i = 1, 40 do names[i] = H.name("race") end
    race(names, 6)
    -- No temporary key file is left behind by the callers that lost.
    local _, _, listing = H.sh("ls -A " .. H.shell_quote(H.TMPDIR))
    assert.is_nil(listing:match("%.mq"))
  end)

  it("by many concurrent processes on one key: exactly one gets created, all one queue", function()
    local keys = {}
    for i = 1, 40 do keys[i] = H.track(H.unused_key()) end
    race(keys, 6)
  end)

  it("is invalid for perm without O_CREAT, perm outside 0666, unknown flags, a bad name or key", function()
    local key = H.track(H.unused_key())
    H.fails("invalid", mq.open(key, mq.O_RDWR, "0600"))
    H.fails("invalid", mq.open(key, 0, 384))
    H.fails("invalid", mq.open(key, mq.O_CREAT, tonumber("700", 8)))
    H.fails("invalid", mq.open(key, mq.O_CREAT, "0777"))
    H.fails("invalid", mq.open(key, mq.O_CREAT, "8"))
    H.fails("invalid", mq.open(key, mq.O_CREAT, "01234"))
    H.fails("invalid", mq.open(key, mq.O_CREAT, ""))
    H.fails("invalid", mq.open(key, mq.O_CREAT, -1))
    H.fails("invalid", mq.open(key, mq.O_CREAT, 1.5))
    H.fails("invalid", mq.open(key, mq.O_CREAT | 16))
    H.fails("invalid", mq.open(key, -1))
    H.fails("invalid", mq.open("a/b", mq.O_CREAT))
    H.fails("invalid", mq.open("", mq.O_CREAT))
    H.fails("invalid", mq.open(2 ^ 32, mq.O_CREAT))
    H.fails("notfound", mq.open(key))                     -- none of them made the queue
    assert.has_error(function() mq.open(key, mq.O_CREAT, true) end)
    assert.has_error(function() mq.open(key, "8") end)
  end)

  it("is invalid for an unprivileged caller whose perm denies its owner the access asked", function()
    local key = H.track(H.unused_key())
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local key = tonumber(arg[1])
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[2]) end
      io.write(c(mq.open(key, mq.O_CREAT, "0400")), " ",
               c(mq.open(key, mq.O_WRONLY | mq.O_CREAT, "0400")), " ",
               c(mq.open(key, mq.O_RDONLY | mq.O_CREAT, "0200")), " ",
               c(mq.open(key, mq.O_CREAT, "0066")), " ",
               c(mq.open(key, mq.O_RDONLY | mq.O_CREAT, "0400")), " ",
               c(mq.open(key, mq.O_WRONLY | mq.O_CREAT, "0200")), " ",
               c(mq.open(key, mq.O_RDONLY | mq.O_CREAT, "0600")))]], key)
    assert(ok, tostring(code) .. ": " .. out)
    -- Once made, the queue's own mode decides: perm is not looked at when it opens.
    assert.are.equal("invalid invalid invalid invalid true denied false", out)
    local row = X.proc_row(assert(mq.open(key)):id())
    assert.are.equal(65534, row.cuid)
    assert.are.equal(tonumber("400", 8), row.mode)
  end)

  if ROOT then
    it("lets root create with a perm that denies its owner (root's access does not need it)", function()
      local key = H.track(H.unused_key())
      local q, created = mq.open(key, mq.O_CREAT, "0000")
      assert.is_true(created)
      assert.are.equal(0, q:stat().mode)
      assert(q:send("root needs no permission bits"))
      assert.are.equal("root needs no permission bits", (q:receive()))
      q:close()
    end)
  end

  it("is denied a queue that exists but may not be used that way, by key and by name", function()
    local q, key = H.fresh_key_queue("0640")
    local nq, n = H.fresh_name_queue("denied", "0604")
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local key, name = tonumber(arg[1]), arg[2]
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[2]) end
      io.write(c(mq.open(key, mq.O_CREAT)), " ",
               c(mq.open(key, mq.O_RDONLY | mq.O_CREAT)), " ",
               c(mq.open(name, mq.O_CREAT)), " ",
               c(mq.open(name, mq.O_WRONLY | mq.O_CREAT)), " ",
               c(mq.open(name, mq.O_RDONLY | mq.O_CREAT)))]], key, n)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("denied denied denied denied false", out)
    assert.are.equal(0, q:stat().cuid)
    q:close()
    nq:close()
  end)

  it("is denied a new name where the caller cannot make a key file, and leaves nothing", function()
    local n = H.name("nowrite")
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local q, msg, code = mq.open(arg[1], mq.O_CREAT)
      io.write(tostring(code), " ", tostring(msg))]], n)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("denied", out:match("^%S+"))
    assert.is_false(H.exists(H.path(n)))
  end)

  it("is denied a stale key file of another user, which stays untouched", function()
    local q, n = H.fresh_name_queue("theirs")
    local id = q:id()
    q:close()
    assert(H.sh("ipcrm -q " .. id))
    assert(H.sh("chown 65534:65534 " .. H.shell_quote(H.path(n))))
    local key = mq.ftok(H.path(n), 0)
    local msg = H.fails("denied", mq.open(n, mq.O_CREAT))
    assert.matches("another user", msg)
    H.fails("notfound", mq.open(key))                     -- no queue was made on its key
    assert.are.equal(key, mq.ftok(H.path(n), 0))
    os.remove(H.path(n))
  end)

  it("is denied a name whose key file's owner did not make the queue on its key", function()
    local q, n = H.fresh_name_queue("notnamed")
    assert(H.sh("chown 65534:65534 " .. H.shell_quote(H.path(n))))
    local msg = H.fails("denied", mq.open(n, mq.O_CREAT))
    assert.matches("does not name it", msg)
    assert.are.equal(1, select("#", q:stat()))            -- the queue is untouched
    assert(H.sh("chown 0:0 " .. H.shell_quote(H.path(n))))
    q:close()
  end)

  it("is notfound when $TMPDIR does not exist", function()
    local ok, code, out = H.lua_e([[
      local mq = require "mq"
      local q, msg, code = mq.open("nowhere", mq.O_CREAT)
      io.write(tostring(code))]], "env TMPDIR=" .. H.shell_quote(H.TMPDIR .. "/no-such-dir"))
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("notfound", out)
  end)
end)

describe("mq.open_id", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  it("opens a keyed queue by its id: no name, the kernel's key, mq.queue(id=N)", function()
    local q, key = H.fresh_key_queue()
    local byid = assert(mq.open_id(q:id()))
    assert.are.equal(q:id(), byid:id())
    assert.are.equal(key, byid:key())
    assert.is_nil(byid:name())
    assert.are.equal(string.format("mq.queue(id=%d)", q:id()), tostring(byid))
    assert(q:send("to the id handle", 3))
    assert.are.same({ "to the id handle", 3 }, { byid:receive() })
    assert(byid:send("from the id handle", 5))
    assert.are.same({ "from the id handle", 5 }, { q:receive() })
    assert.are.equal(q:id(), byid:stat().id)
    assert.are.equal(1, select("#", mq.open_id(q:id())))
    q:close()
    byid:close()
  end)

  it("takes the access and blocking flags of open", function()
    local q = H.fresh_key_queue()
    local ro = assert(mq.open_id(q:id(), mq.O_RDONLY))
    local wo = assert(mq.open_id(q:id(), mq.O_WRONLY | mq.O_NONBLOCK))
    local nb = assert(mq.open_id(q:id(), mq.O_NONBLOCK))
    H.fails("denied", ro:send("x"))
    H.fails("denied", wo:receive())
    H.fails("denied", wo:peek())
    H.fails("again", nb:receive())
    assert(wo:send("w"))
    assert.are.equal("w", (nb:receive()))
    assert(nb:send("n"))
    assert.are.equal("n", (ro:receive()))
    q:close()
  end)

  it("reaches a named queue whose key file is gone, and removes it", function()
    local q, n = H.fresh_name_queue("lost")
    local id = q:id()
    assert(q:send("still here"))
    q:close()
    os.remove(H.path(n))
    H.fails("notfound", mq.open(n))
    local r = assert(mq.open_id(id))
    assert.is_nil(r:name())
    assert.are.equal("still here", (r:receive()))
    assert.is_true(r:destroy())
    H.fails("notfound", mq.open_id(id))
  end)

  it("reaches a private queue by its id", function()
    local p = assert(mq.new(mq.PRIVATE))
    X.made_id(p:id())
    local r = assert(mq.open_id(p:id()))
    assert.are.equal(0, r:key())
    assert.are.equal(string.format("mq.queue(id=%d)", p:id()), tostring(r))
    assert(p:send("private"))
    assert.are.equal("private", (r:receive()))
    assert.is_true(r:destroy())
    H.fails("removed", p:send("x"))
  end)

  it("is invalid for an id outside 0 .. 2^31-1 or without an integer value, and for bad flags", function()
    local q = H.fresh_key_queue()
    for _, id in ipairs({ -1, math.mininteger, 2 ^ 31, 1 << 40, math.maxinteger, 1.5, 0 / 0,
                          math.huge, -math.huge }) do
      H.fails("invalid", mq.open_id(id))
    end
    H.fails("invalid", mq.open_id(q:id(), mq.O_CREAT))
    H.fails("invalid", mq.open_id(q:id(), mq.O_RDWR | mq.O_CREAT))
    H.fails("invalid", mq.open_id(q:id(), 16))
    H.fails("invalid", mq.open_id(q:id(), -1))
    H.fails("invalid", mq.open_id(q:id(), 1.5))
    assert.has_error(function() mq.open_id(tostring(q:id())) end)
    assert.has_error(function() mq.open_id() end)
    assert.has_error(function() mq.open_id(q:id(), "1") end)
    q:close()
  end)

  it("is notfound for an id no queue has", function()
    local q = H.fresh_key_queue()
    local id = q:id()
    assert.is_true(q:destroy())
    H.fails("notfound", mq.open_id(id))
    -- Index 0 of a sequence number no queue has had yet is not a queue either.
    H.fails("notfound", mq.open_id(2147483647))
  end)

  it("gives handles that say removed once the queue goes, and closed once closed", function()
    local q = H.fresh_key_queue()
    local r = assert(mq.open_id(q:id(), mq.O_NONBLOCK))
    assert.is_true(q:destroy())
    H.fails("removed", r:send("x"))
    H.fails("removed", r:receive())
    H.fails("removed", r:stat())
    r:close()
    H.fails("closed", r:send("x"))
    H.fails("closed", r:id())
    assert.are.equal("mq.queue(closed)", tostring(r))
  end)

  -- The second user opens, by id, private queues and keyed twins with the same owner, group
  -- and mode. For a keyed queue open_id asks msgget, i.e. the kernel; for a private one it
  -- applies the kernel's rules itself: the two must agree for every access.
  it("checks the access asked for exactly as the kernel does, for private and keyed queues", function()
    local modes = { "0600", "0060", "0006", "0066", "0640", "0604", "0460", "0406", "0000", "0666" }
    local owners = { { 0, 0 }, { 65534, 0 }, { 0, 65534 } }
    local cases = {}
    for _, mode in ipairs(modes) do
      for _, o in ipairs(owners) do
        local keyed = H.fresh_key_queue(mode)
        local private = assert(mq.new(mq.PRIVATE, mode))
        X.made_id(private:id())
        for _, h in ipairs({ keyed, private }) do assert(h:set_owner(o[1], o[2])) end
        cases[#cases + 1] = { mode = mode, owner = o, keyed = keyed, private = private }
      end
    end
    local ids = {}
    for _, c in ipairs(cases) do ids[#ids + 1] = c.keyed:id() .. ":" .. c.private:id() end
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local flags = { r = mq.O_RDONLY, w = mq.O_WRONLY, rw = mq.O_RDWR }
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or "ok" end
      for i = 1, #arg do
        local keyed, private = arg[i]:match("^(%d+):(%d+)$")
        for _, f in ipairs({ "r", "w", "rw" }) do
          print(i, f, c(mq.open_id(tonumber(keyed), flags[f])), c(mq.open_id(tonumber(private), flags[f])))
        end
      end]], table.unpack(ids))
    assert(ok, tostring(code) .. ": " .. out)
    -- The kernel's rule (ipcperms) for uid 65534, gid 65534, no groups, on queues root made:
    -- owner bits when it owns the queue, else group bits when the queue's group is its
    -- group (even where other bits would allow more), else other bits.
    local function expected(c, f)
      local mode = tonumber(c.mode, 8)
      local bits = c.owner[1] == 65534 and mode >> 6 or c.owner[2] == 65534 and mode >> 3 or mode
      local want = ({ r = 4, w = 2, rw = 6 })[f]
      return (bits & want) == want and "ok" or "denied"
    end
    local lines, allowed = 0, 0
    for line in out:gmatch("[^\n]+") do
      local i, f, keyed, private = line:match("^(%d+)\t(%a+)\t(%a+)\t(%a+)$")
      local c = cases[tonumber(i)]
      local what = string.format("mode %s, owner %d, group %d, access %s", c.mode, c.owner[1],
        c.owner[2], f)
      assert.are.equal(expected(c, f), keyed, what .. " (keyed, msgget)")
      assert.are.equal(keyed, private, what .. " (private)")
      lines = lines + 1
      if keyed == "ok" then allowed = allowed + 1 end
    end
    assert.are.equal(#cases * 3, lines)
    assert.is_true(allowed > 0 and allowed < lines)        -- both outcomes were exercised
    for _, c in ipairs(cases) do
      c.keyed:close()
      c.private:close()
    end
  end)

  -- Group bits count for every supplementary group, however many: the kernel's rule. With
  -- the queue's group 301st of the second user's groups, open_id of a private queue must
  -- agree with msgget on its keyed twin.
  it("counts a supplementary group however many the process has, as the kernel does", function()
    if not ROOT then return pending("needs root to run a child with 301 groups (setpriv)") end
    local keyed = H.fresh_key_queue("0060")
    local private = assert(mq.new(mq.PRIVATE, "0060"))
    X.made_id(private:id())
    for _, h in ipairs({ keyed, private }) do assert(h:set_owner(0, 4242)) end
    local groups = {}
    for g = 1, 300 do groups[g] = tostring(20000 + g) end
    groups[#groups + 1] = "4242"
    local prefix = H.nobody():gsub("%-%-clear%-groups", "--groups=" .. table.concat(groups, ","))
    local ok, code, out = H.sh(string.format("%s timeout 20 %s -e %s - %d %d", prefix, H.LUA,
      H.shell_quote([[
        local mq = require "mq"
        local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or "ok" end
        print(c(mq.open_id(tonumber(arg[1]), mq.O_RDONLY)), c(mq.open_id(tonumber(arg[2]), mq.O_RDONLY)))
      ]]), keyed:id(), private:id()))
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("ok\tok\n", out)
    keyed:close()
    private:close()
  end)

  -- The kernel lets a process with CAP_IPC_OWNER past the permission bits, whatever its uid,
  -- and no other: root without it is held to them, uid 65534 with it is not. open_id of a
  -- private queue and open with O_CREAT's owner-bits check must follow the same rule as
  -- msgget does for a keyed queue.
  local can_set_caps = ROOT and (H.sh("setpriv --bounding-set -ipc_owner true")) and
    (H.sh("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+ipc_owner " ..
      "--ambient-caps=+ipc_owner true"))
  if not can_set_caps then pending("CAP_IPC_OWNER rules: needs root and setpriv with capabilities") end
  if can_set_caps then
    local PROBE = [[
      local mq = require "mq"
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or "ok" end
      local function created(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[2]) end
      io.write(c(mq.open_id(%d)), " ", c(mq.open_id(%d)), " ", c(mq.open(%d)), " ",
               created(mq.open(%d, mq.O_CREAT, "0000")))]]

    it("follows CAP_IPC_OWNER, not uid 0: root without it is held to the bits", function()
      local key, fresh = H.track(H.unused_key()), H.track(H.unused_key())
      local ok, code, out = X.as_nobody([[
        local mq = require "mq"
        local p = assert(mq.new(mq.PRIVATE, "0600"))
        local k = assert(mq.new(tonumber(arg[1]), "0600"))
        io.write(p:id(), " ", k:id())]], key)
      assert(ok, tostring(code) .. ": " .. out)
      local pid, kid = out:match("^(%d+) (%d+)$")
      X.made_id(tonumber(pid))
      ok, code, out = H.lua_e(string.format(PROBE, pid, kid, key, fresh), "setpriv --bounding-set -ipc_owner")
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("denied denied denied invalid", out)
      H.fails("notfound", mq.open(fresh))
    end)

    it("follows CAP_IPC_OWNER, not uid 0: another uid with it passes the bits", function()
      local p = assert(mq.new(mq.PRIVATE, "0600"))
      X.made_id(p:id())
      local k, key = H.fresh_key_queue("0600")
      local fresh = H.track(H.unused_key())
      local ok, code, out = H.lua_e(string.format(PROBE, p:id(), k:id(), key, fresh),
        H.nobody() .. " --inh-caps=+ipc_owner --ambient-caps=+ipc_owner")
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("ok ok ok true", out)
      assert.are.equal(0, assert(mq.open(fresh)):stat().mode)
      p:close()
      k:close()
    end)
  end

  -- A private queue made by Python (sysv_ipc.IPC_PRIVATE; note that MessageQueue(None, ...)
  -- picks a random key instead), reached by its id; messages go both ways while the Python
  -- peer keeps running.
  if not X.have_python then pending("with a Python sysv_ipc private queue: python3-sysv-ipc is missing") end
  if X.have_python then
    it("reaches a private queue that Python sysv_ipc made, and messages go both ways", function()
      local peer = X.spawn_python([[
q = sysv_ipc.MessageQueue(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, mode=0o600)
q.send(b"from python\x00\xff", type=7)
print(q.id, q.key, flush=True)
try:
    msg, t = q.receive(type=9)
    print(t, msg.hex(), flush=True)
finally:
    q.remove()]])
      local line = H.wait_until(function() return peer.output():match("^(%d+ %-?%d+)\n") end, 20)
      assert(line, peer.output())
      local id, key = line:match("^(%d+) (%-?%d+)")
      id = X.made_id(tonumber(id))
      assert.are.equal("0", key)
      local q = assert(mq.open_id(id))
      assert.are.equal(0, q:key())
      assert.are.equal(string.format("mq.queue(id=%d)", id), tostring(q))
      assert.are.same({ "from python\0\255", 7 }, { q:receive_timeout(5) })
      assert(q:send("from mq\0\1", 9))
      local ok, code, out = peer:wait(20)
      assert(ok, tostring(code) .. ": " .. out)
      assert.matches("\n9 " .. hex("from mq\0\1") .. "\n", out)
      H.fails("removed", q:send("after python removed it"))
      q:close()
    end)
  end
end)
