-- Changing a queue (issue 11): q:set_mode(perm) and q:set_owner(uid [, gid]), which share
-- one IPC_SET helper with q:set_capacity(bytes): each changes its own field only, whoever
-- changed the others (mq or a peer). The kernel's rules decide who may (owner, creator,
-- privileged); Python's sysv_ipc and Perl's IPC::Msg see the changes, and mq sees theirs.
--
-- Codes that cannot be produced here: `unsupported` and `nospace` are never returned by
-- these calls on Linux.

local mq = require "mq"
local H = require "helpers"
local X = require "support.peers"

local O = function(s) return tonumber(s, 8) end

describe("q:set_mode", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  it("sets the permission bits from an integer or 1 to 4 octal digits, and nothing else", function()
    local q = H.fresh_key_queue()
    assert(q:set_capacity(4000))
    assert(q:set_owner(65534, 65534))
    local before = q:stat()
    for _, case in ipairs({ { "0640", O"640" }, { "604", O"604" }, { "6", O"6" }, { "0", 0 },
                            { O"666", O"666" }, { 0x1a0, O"640" }, { 0, 0 }, { "0066", O"66" } }) do
      assert.is_true(q:set_mode(case[1]))
      local st = q:stat()
      assert.are.equal(case[2], st.mode, tostring(case[1]))
      for _, f in ipairs({ "capacity", "uid", "gid", "cuid", "cgid", "messages" }) do
        assert.are.equal(before[f], st[f], f)
      end
    end
    q:close()
  end)

  it("is invalid outside 0666 or for a malformed string, and leaves the mode", function()
    local q = H.fresh_key_queue("0640")
    for _, perm in ipairs({ O"777", O"700", O"1666", 600, -1, 1.5, 0 / 0, math.huge, 1 << 40,
                            "0777", "0700", "8", "9", "01234", "06666", "", "x", "-1", " 640",
                            "64 ", "0x1a0" }) do
      H.fails("invalid", q:set_mode(perm))
    end
    assert.are.equal(O"640", q:stat().mode)
    for _, perm in ipairs({ true, {}, print }) do
      assert.has_error(function() q:set_mode(perm) end)
    end
    assert.has_error(function() q:set_mode() end)
    q:close()
  end)

  it("is closed on a closed handle, whatever the value, and removed once the queue goes", function()
    local q, key = H.fresh_key_queue()
    local other = assert(mq.open(key))
    assert.is_true(q:destroy())
    H.fails("removed", other:set_mode("0600"))
    other:close()
    H.fails("closed", other:set_mode("0600"))
    H.fails("closed", other:set_mode("0777"))
    H.fails("closed", q:set_mode(0))
    assert.has_error(function() other:set_mode(true) end)   -- wrong types raise first
  end)
end)

describe("q:set_owner", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  it("sets the owner, and the group when given; the creator and the rest stay", function()
    local q = H.fresh_key_queue("0640")
    assert(q:set_capacity(5000))
    local before = q:stat()
    assert.is_true(q:set_owner(65534))
    local st = q:stat()
    assert.are.same({ 65534, before.gid, before.cuid, before.cgid, O"640", 5000 },
      { st.uid, st.gid, st.cuid, st.cgid, st.mode, st.capacity })
    assert.is_true(q:set_owner(1234, 65534))
    st = q:stat()
    assert.are.same({ 1234, 65534, before.cuid, before.cgid }, { st.uid, st.gid, st.cuid, st.cgid })
    assert.is_true(q:set_owner(4294967294, 4294967294))
    st = q:stat()
    assert.are.same({ 4294967294, 4294967294 }, { st.uid, st.gid })
    assert.is_true(q:set_owner(before.uid, before.gid))
    st = q:stat()
    assert.are.same({ before.uid, before.gid, O"640", 5000 }, { st.uid, st.gid, st.mode, st.capacity })
    q:close()
  end)

  it("is invalid outside 0 .. 2^32-2 or without an integer value, and changes nothing", function()
    local q = H.fresh_key_queue()
    local before = q:stat()
    for _, ids in ipairs({ { -1 }, { 4294967295 }, { 1 << 32 }, { 1.5 }, { 0 / 0 }, { math.huge },
                           { 0, -1 }, { 0, 4294967295 }, { 0, 0.5 }, { -1, 0 }, { 65534, 1 << 40 } }) do
      H.fails("invalid", q:set_owner(ids[1], ids[2]))
    end
    local st = q:stat()
    assert.are.same({ before.uid, before.gid }, { st.uid, st.gid })
    assert.has_error(function() q:set_owner("0") end)
    assert.has_error(function() q:set_owner(0, "0") end)
    assert.has_error(function() q:set_owner() end)
    assert.has_error(function() q:set_owner(0, true) end)
    q:close()
  end)

  it("is closed on a closed handle, whatever the value, and removed once the queue goes", function()
    local q, key = H.fresh_key_queue()
    local other = assert(mq.open(key))
    assert.is_true(q:destroy())
    H.fails("removed", other:set_owner(0))
    H.fails("removed", other:set_owner(0, 0))
    other:close()
    H.fails("closed", other:set_owner(0))
    H.fails("closed", other:set_owner(-1))
    assert.has_error(function() other:set_owner("x") end)
  end)
end)

describe("set_mode, set_owner and set_capacity", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  it("each change only their own field, over changes made through other handles", function()
    local q, key = H.fresh_key_queue("0600")
    local other = assert(mq.open(key))                      -- a second handle, opened first
    assert(other:set_capacity(3000))
    assert(q:set_mode("0640"))
    assert.are.equal(3000, q:stat().capacity)
    assert(other:set_owner(65534, 65534))
    assert(q:set_capacity(2500))
    local st = q:stat()
    assert.are.same({ O"640", 65534, 65534, 2500 }, { st.mode, st.uid, st.gid, st.capacity })
    assert(other:set_mode("0604"))
    assert(q:set_owner(0, 0))
    st = q:stat()
    assert.are.same({ O"604", 0, 0, 2500 }, { st.mode, st.uid, st.gid, st.capacity })
    q:close()
    other:close()
  end)

  it("are denied to a user who neither owns nor made the queue", function()
    local q, key = H.fresh_key_queue("0666")
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1])))
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
      io.write(c(q:set_mode("0600")), " ", c(q:set_owner(65534)), " ", c(q:set_owner(65534, 65534)),
               " ", c(q:set_capacity(100)), " ", c(q:stat()):match("^table") and "stat" or "nostat")]], key)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("denied denied denied denied stat", out)    -- reading is not changing
    local st = q:stat()
    assert.are.same({ O"666", 0, 0 }, { st.mode, st.uid, st.gid })
    q:close()
  end)

  it("let the new owner change the mode and give the queue back, then no more", function()
    local q, key = H.fresh_key_queue("0600")
    assert(q:set_capacity(3333))
    assert(q:set_owner(65534))
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1])))             -- owner bits apply to the owner
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
      io.write(c(q:set_mode("0644")), " ", c(q:set_capacity(2222)), " ", c(q:set_owner(0)), " ",
               c(q:set_mode("0600")), " ", c(q:set_owner(65534)))]], key)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("true true true denied denied", out)
    local st = q:stat()
    assert.are.same({ O"644", 0, 0, 2222 }, { st.mode, st.uid, st.cuid, st.capacity })
    q:close()
  end)

  it("are allowed to the creator after it gave the queue away", function()
    local key = H.track(H.unused_key())
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1]), mq.O_CREAT, "0644"))
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
      io.write(c(q:set_owner(0, 0)), " ", c(q:set_mode("0640")), " ", c(q:set_owner(65534)), " ",
               c(q:set_capacity(1000)))]], key)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("true true true true", out)
    local q = assert(mq.open(key))
    local st = q:stat()
    assert.are.same({ O"640", 65534, 0, 65534, 1000 }, { st.mode, st.uid, st.gid, st.cuid, st.capacity })
    q:close()
  end)

  it("let an owner without read permission restore its mode (the kernel allows it)", function()
    local key = H.track(H.unused_key())
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1]), mq.O_WRONLY | mq.O_CREAT, "0600"))
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
      io.write(c(q:set_mode("0200")), " ", c(q:stat()), " ", c(q:set_capacity(1500)), " ",
               c(q:set_mode("0600")), " ", c(q:set_owner(65534, 65534)))]], key)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("true denied true true true", out)
    local st = assert(mq.open(key)):stat()
    assert.are.same({ O"600", 1500, 65534 }, { st.mode, st.capacity, st.cuid })
  end)

  -- In a user namespace that maps only uid/gid 0 (unshare -U -r), IPC_SET refuses ids
  -- without a mapping with EINVAL, which must not read as a removed queue.
  local can_userns = (H.sh("unshare -U -r true"))
  if not can_userns then pending("unmapped ids: cannot unshare a user namespace here") end
  if can_userns then
    it("say invalid, not removed, for a uid or gid with no mapping in the user namespace", function()
      local ok, code, out = H.lua_e([[
        local mq = require "mq"
        local q = assert(mq.new(mq.PRIVATE))
        local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
        io.write(c(q:set_owner(1234)), " ", c(q:set_owner(0, 4321)), " ", c(q:set_owner(0, 0)), " ",
                 c(q:set_mode("0640")), " ", q:stat().mode, " ", c(q:destroy()))]], "unshare -U -r")
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(string.format("invalid invalid true true %d true", O"640"), out)
    end)

    it("say system, not removed, when the queue's own owner has no mapping there", function()
      local q, key = H.fresh_key_queue("0600")
      assert(q:set_owner(1234))
      local ok, code, out = H.lua_e(string.format([[
        local mq = require "mq"
        local q = assert(mq.open(%d))                           -- its creator, uid 0
        local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
        io.write(c(q:set_mode("0640")), " ", c(q:set_capacity(1000)), " ", q:stat().uid)]], key),
        "unshare -U -r")
      assert(ok, tostring(code) .. ": " .. out)
      local overflow = tonumber(H.read_file("/proc/sys/kernel/overflowuid") or "65534")
      assert.are.equal("system system " .. overflow, out)
      local st = q:stat()
      assert.are.same({ O"600", 1234 }, { st.mode, st.uid })
      q:close()
    end)
  end

  it("keep set_capacity's rules: 1 .. 2^31-1, beyond msgmnb only with privilege", function()
    local q = H.fresh_key_queue()
    for _, bytes in ipairs({ 0, -1, 1 << 31, 1.5, 0 / 0 }) do H.fails("invalid", q:set_capacity(bytes)) end
    local key = H.track(H.unused_key())
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1]), mq.O_CREAT))
      local mnb = mq.limits().msgmnb
      local function c(...) local r = table.pack(...) return r[1] == nil and r[3] or tostring(r[1]) end
      io.write(c(q:set_capacity(mnb + 1)), " ", c(q:set_capacity(mnb)), " ",
               q:stat().capacity == mnb and "mnb" or "?")]], key)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("denied true mnb", out)
    q:close()
  end)
end)

describe("changes seen by peers", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  if not X.have_python then pending("Python sysv_ipc: python3-sysv-ipc is missing") end
  if X.have_python then
    it("Python sysv_ipc sees mq's mode and owner, and mq sees Python's", function()
      local q, key = H.fresh_key_queue("0600")
      assert(q:set_mode("0640"))
      assert(q:set_owner(65534, 65534))
      local ok, code, out = X.python([[
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
print(oct(q.mode & 0o777), q.uid, q.gid, q.cuid, q.max_size, end=" ")
q.mode = 0o604
q.uid = 4321
print("set", end="")]], nil, key)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(string.format("0o640 65534 65534 0 %d set", q:stat().capacity), out)
      local st = q:stat()
      assert.are.same({ O"604", 4321, 65534 }, { st.mode, st.uid, st.gid })
      -- mq's next change keeps Python's.
      assert(q:set_capacity(1234))
      st = q:stat()
      assert.are.same({ O"604", 4321, 65534, 1234 }, { st.mode, st.uid, st.gid, st.capacity })
      q:close()
    end)
  end

  if not X.have_perl then pending("Perl IPC::Msg: perl with core IPC::Msg is not installed") end
  if X.have_perl then
    it("Perl IPC::Msg sees mq's mode and owner, and mq's changes keep Perl's", function()
      local q, key = H.fresh_key_queue("0600")
      assert(q:set_owner(65534))
      assert(q:set_mode("0460"))
      local ok, code, out = X.perl([[
        my $q = IPC::Msg->new($ARGV[0], 0) or die "msgget: $!";
        my $s = $q->stat or die "stat: $!";
        printf "%o %d %d %d ", $s->mode & 0777, $s->uid, $s->gid, $s->cuid;
        $q->set(qbytes => 2000, gid => 65534) or die "set: $!";
        print "set";]], nil, key)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal("460 65534 0 0 set", out)
      assert(q:set_mode("0606"))                           -- keeps Perl's qbytes and gid
      local st = q:stat()
      assert.are.same({ O"606", 65534, 65534, 2000 }, { st.mode, st.uid, st.gid, st.capacity })
      q:close()
    end)
  end
end)
