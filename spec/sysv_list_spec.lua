-- mq.list() (issue 11): every queue of the kernel's table, with the name of a key file in
-- $TMPDIR that maps to it only when that file's owner made the queue; a queue Perl's
-- IPC::Msg made is listed as the kernel has it; the failure codes when /proc cannot be read.
-- Other users' queues come and go on this machine: the specs only look at rows they made.

local mq = require "mq"
local H = require "helpers"
local X = require "support.peers"

local FIELDS = { "key", "id", "uid", "gid", "cuid", "cgid", "mode", "bytes", "messages",
                 "last_send_pid", "last_receive_pid", "last_send_time", "last_receive_time",
                 "last_change_time" }

local function row_of(list, id)
  for _, r in ipairs(list) do
    if r.id == id then return r end
  end
  return nil
end

-- Whether this process may make a mount namespace of its own (to hide /proc/sysvipc/msg).
local can_unshare = (H.sh("unshare -m sh -c 'mount -t tmpfs none /proc/sysvipc'"))

describe("mq.list", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(X.cleanup)

  it("gives every queue's row with the fields stat has, as integers", function()
    local q, n = H.fresh_name_queue("listed", "0640")
    assert(q:send("abc", 2))
    assert(q:send("defgh", 3))
    assert(q:receive(3))
    local ok, code, out = H.lua_e(string.format(
      "assert(require('mq').open(%q)):send('from a child', 9)", n))
    assert(ok, tostring(code) .. ": " .. out)
    local list = mq.list()
    assert.is_true(#list >= 1)
    for i, r in ipairs(list) do
      for _, f in ipairs(FIELDS) do assert.is_true(math.type(r[f]) == "integer", i .. "." .. f) end
      assert.is_true(r.name == nil or type(r.name) == "string")
      assert.is_nil(r.capacity, "the kernel's table does not show a capacity")
    end
    local r = assert(row_of(list, q:id()))
    local st = q:stat()
    for _, f in ipairs(FIELDS) do assert.are.equal(st[f], r[f], f) end
    assert.are.equal(2, r.messages)
    assert.are.equal(#"abc" + #"from a child", r.bytes)
    assert.are.equal(tonumber("640", 8), r.mode)
    assert.are.equal(H.pid, r.last_receive_pid)
    assert.are_not.equal(H.pid, r.last_send_pid)           -- the child sent last
    assert.is_true(r.last_send_time > 0 and r.last_receive_time > 0)
    q:close()
  end)

  it("names a queue made by name, and only that one; keyed and private queues have no name", function()
    local nq, n = H.fresh_name_queue("named")
    local kq = H.fresh_key_queue()
    local pq = assert(mq.new(mq.PRIVATE))
    X.made_id(pq:id())
    local list = mq.list()
    assert.are.equal(n, row_of(list, nq:id()).name)
    assert.are.equal(nq:key(), row_of(list, nq:id()).key)
    assert.is_nil(row_of(list, kq:id()).name)
    assert.is_nil(row_of(list, pq:id()).name)
    assert.are.equal(0, row_of(list, pq:id()).key)
    assert.is_true(pq:destroy())
    assert.is_nil(row_of(mq.list(), pq:id()))               -- a removed queue is not listed
    nq:close()
    kq:close()
  end)

  it("does not name a queue whose key file belongs to another user", function()
    local q, n = H.fresh_name_queue("foreign")
    assert.are.equal(n, row_of(mq.list(), q:id()).name)
    assert(H.sh("chown 65534:65534 " .. H.shell_quote(H.path(n))))
    local r = row_of(mq.list(), q:id())
    assert.is_nil(r.name)
    assert.are.equal(q:key(), r.key)                        -- the row itself is still there
    assert(H.sh("chown 0:0 " .. H.shell_quote(H.path(n))))
    assert.are.equal(n, row_of(mq.list(), q:id()).name)
    q:close()
  end)

  it("takes no name from a symlink, and the smallest of several hard-linked names", function()
    local q, n = H.fresh_name_queue("m-linked")
    local link = H.name("a-symlink")
    assert(H.sh("ln -s " .. H.shell_quote(H.path(n)) .. " " .. H.shell_quote(H.path(link))))
    assert.are.equal(n, row_of(mq.list(), q:id()).name)
    local alias = H.name("b-hardlink")                      -- same inode: same key, same owner
    assert(H.sh("ln " .. H.shell_quote(H.path(n)) .. " " .. H.shell_quote(H.path(alias))))
    assert.are.equal(alias, row_of(mq.list(), q:id()).name)  -- "b-..." < "m-..."
    os.remove(H.path(alias))
    os.remove(H.path(link))
    assert.are.equal(n, row_of(mq.list(), q:id()).name)
    q:close()
  end)

  it("gives keys at or above 2^31 signed, as q:key() does", function()
    local q, key
    for _ = 1, 100 do
      key = math.random(0x80000000, 0xfffffffe)
      q = mq.new(key)
      if q then break end
    end
    assert(q, "no free key above 2^31")
    H.track(key)
    local r = row_of(mq.list(), q:id())
    assert.is_true(r.key < 0)
    assert.are.equal(q:key(), r.key)
    assert.are.equal(key - (1 << 32), r.key)
    q:close()
  end)

  it("lists queues the caller may not read, for a second user too", function()
    local q = H.fresh_key_queue("0600")
    assert(q:send("hidden", 4))
    local ok, code, out = X.as_nobody([[
      local mq = require "mq"
      local id = tonumber(arg[1])
      assert(select(3, mq.open_id(id)) == "denied")
      for _, r in ipairs(mq.list()) do
        if r.id == id then io.write(r.key, " ", r.mode, " ", r.messages, " ", r.bytes, " ", r.cuid) end
      end]], q:id())
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal(string.format("%d %d 1 6 0", q:key(), tonumber("600", 8)), out)
    q:close()
  end)

  it("still lists, without names, when $TMPDIR does not exist", function()
    local q, n = H.fresh_name_queue("nodir")
    local ok, code, out = H.lua_e(string.format([[
      for _, r in ipairs(require("mq").list()) do
        if r.id == %d then io.write(tostring(r.name), " ", r.key) end
      end]], q:id()), "env TMPDIR=" .. H.shell_quote(H.TMPDIR .. "/no-such-dir"))
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.equal("nil " .. q:key(), out)
    assert.are.equal(n, row_of(mq.list(), q:id()).name)
    q:close()
  end)

  if not X.have_perl then pending("a queue Perl made: perl with core IPC::Msg is not installed") end
  if X.have_perl then
    it("shows a queue Perl's IPC::Msg made by key, as Perl's own stat sees it", function()
      local key = H.track(H.unused_key())
      local ok, code, out = X.perl([[
        my $q = IPC::Msg->new($ARGV[0], IPC_CREAT | IPC_EXCL | 0640) or die "msgget: $!";
        $q->snd(3, "ab", 0) or die "msgsnd: $!";
        $q->snd(5, "cde", 0) or die "msgsnd: $!";
        my $s = $q->stat or die "stat: $!";
        print join(" ", $q->id, $$, $s->qnum, $s->lspid, $s->mode & 0777, $s->uid, $s->cuid, $s->stime);]],
        nil, key)
      assert(ok, tostring(code) .. ": " .. out)
      local id, pid, qnum, lspid, mode, uid, cuid, stime = out:match(
        "^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$")
      assert(id, out)
      local r = row_of(mq.list(), tonumber(id))
      assert(r, "the queue Perl made is not listed")
      assert.are.equal(key, r.key)
      assert.is_nil(r.name)
      assert.are.equal(tonumber("640", 8), r.mode)
      assert.are.equal(tonumber(mode), r.mode)
      assert.are.equal(2, r.messages)
      assert.are.equal(tonumber(qnum), r.messages)
      assert.are.equal(5, r.bytes)
      assert.are.equal(tonumber(pid), r.last_send_pid)
      assert.are.equal(tonumber(lspid), r.last_send_pid)
      assert.are.equal(tonumber(uid), r.uid)
      assert.are.equal(tonumber(cuid), r.cuid)
      assert.are.equal(tonumber(stime), r.last_send_time)
      assert.are.equal(0, r.last_receive_pid)
      -- mq reaches it through the id the listing gave.
      local q = assert(mq.open_id(r.id))
      assert.are.same({ "ab", 3 }, { q:receive() })
      assert.is_true(q:destroy())
      assert.is_nil(row_of(mq.list(), r.id))
    end)
  end

  -- The failure codes: /proc/sysvipc/msg hidden or unreadable in a mount namespace of the
  -- child's own (the machine's table is not touched).
  if not can_unshare then pending("list failures: cannot unshare a mount namespace here") end
  if can_unshare then
    local function list_in(setup, prefix)
      return H.sh(string.format("unshare -m sh -c %s", H.shell_quote(string.format(
        "%s && exec %s timeout 20 %s -e %s", setup, prefix or "", H.LUA, H.shell_quote([[
          local list, msg, code = require("mq").list()
          io.write(tostring(code), " ", tostring(msg))]])))))
    end

    it("is notfound without /proc/sysvipc/msg", function()
      local ok, code, out = list_in("mount -t tmpfs none /proc/sysvipc")
      assert(ok, tostring(code) .. ": " .. out)
      assert.matches("^notfound mq.list /proc/sysvipc/msg: ", out)
    end)

    it("is system when /proc/sysvipc/msg has not even its header", function()
      local ok, code, out = list_in("mount --bind /dev/null /proc/sysvipc/msg")
      assert(ok, tostring(code) .. ": " .. out)
      assert.matches("^system mq.list /proc/sysvipc/msg: ", out)
    end)

    it("is denied when the caller may not read /proc/sysvipc/msg", function()
      local ok, code, out = list_in("mount -t tmpfs -o mode=0755 none /proc/sysvipc && " ..
        ": > /proc/sysvipc/msg && chmod 000 /proc/sysvipc/msg", H.nobody())
      assert(ok, tostring(code) .. ": " .. out)
      assert.matches("^denied mq.list /proc/sysvipc/msg: ", out)
    end)
  end
end)
