-- Issue 8, P4: another user sharing TMPDIR cannot hijack a name. mq.new refuses a key file
-- someone else owns ("denied", naming the owner's uid); a name is honoured only while its
-- key file's owner is the queue's creator (cuid), otherwise mq.open and mq.destroy by name
-- are "denied" and touch nothing, with no exception for root. Both attacks of the issue are
-- replayed: a planted key file, and a key file made to map to the victim's other queue.
--
-- Both users run with TMPDIR set to one sticky (1777) directory inside this run's TMPDIR;
-- the other user is uid/gid 65534 through setpriv (H.nobody()).

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"
local R = require "support.races"

local NOBODY = 65534
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local MQ_CLI = here .. "/../bin/mq"

-- Run in every child: show(tag, ...) prints one line per call result,
-- "tag ok [id key cuid]" or "tag code message".
local SHOW = [[
io.stdout:setvbuf("no")
local mq = require "mq"
local function show(tag, r, msg, code)
  if type(r) == "userdata" then
    local st = r:stat()
    io.write(tag, "\tok\t", r:id(), "\t", r:key(), "\t", st and st.cuid or "?", "\n")
    r:close()
  elseif r then
    io.write(tag, "\tok\n")
  else
    io.write(tag, "\t", tostring(code), "\t", tostring(msg), "\n")
  end
end
local function path(name) return os.getenv("TMPDIR") .. "/" .. name end
]]

-- { tag = { status = "ok" or code, id =, key =, cuid =, msg = } } from SHOW's lines.
local function parse(out)
  local t = {}
  for line in out:gmatch("[^\n]+") do
    local f = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
    if f[2] == "ok" then
      t[f[1]] = { status = "ok", id = tonumber(f[3]), key = tonumber(f[4]), cuid = tonumber(f[5]) }
    elseif f[2] then
      t[f[1]] = { status = f[2], msg = f[3] }
    end
  end
  return t
end

local function stat_of(path)
  local ok, _, out = H.sh("stat -c '%u %i' " .. H.shell_quote(path))
  if not ok then return nil end
  local uid, ino = out:match("^(%d+) (%d+)")
  return { uid = tonumber(uid), ino = tonumber(ino) }
end

describe("a name in a TMPDIR shared with another user", function()
  local shared
  local made = {}          -- { id, key, uid } of queues a test made, removed after it

  -- Start `source` (after SHOW) as "root" or "nobody" with TMPDIR = the shared directory.
  local function start(user, source, ...)
    local prefix = "env TMPDIR=" .. H.shell_quote(shared) .. " " .. (user == "nobody" and H.nobody() or "")
    return P.spawn(SHOW .. source, { prefix = prefix, inline = true }, ...)
  end

  -- Run `source` to completion as `user`; returns the parsed results and the raw output.
  local function as(user, source, ...)
    local ok, code, out = start(user, source, ...):finish(30)
    assert(ok, string.format("%s child exited %s: %s", user, tostring(code), out))
    return parse(out), out
  end

  -- The queue now on `key` (made by `cuid`, if given), if any.
  local function queue_on(key, cuid)
    for _, q in pairs(R.queues()) do
      if q.key == key and (cuid == nil or q.cuid == cuid) then return q end
    end
    return nil
  end

  -- Remember every queue a call made (a handle shown as "ok"), to remove it afterwards.
  local function note(results, uid)
    for _, r in pairs(results) do
      if r.status == "ok" and r.id then made[#made + 1] = { r.id, r.key, r.cuid or uid } end
    end
    return results
  end

  local function expect_denied(r, what)
    assert(r, what .. ": no result")
    assert(r.status == "denied", string.format("%s: expected denied, got %s %s", what, r.status,
      r.id and ("(queue " .. r.id .. ")") or (r.msg or "")))
  end

  setup(function()
    shared = P.flag()
    assert(os.execute("mkdir " .. H.shell_quote(shared) .. " && chmod 1777 " .. H.shell_quote(shared)))
  end)

  teardown(function()
    if shared then os.execute("rm -rf " .. H.shell_quote(shared)) end
  end)

  before_each(function()
    if R.UID ~= 0 then pending("needs root to run a child as another user (setpriv)") end
  end)

  after_each(function()
    for i = #made, 1, -1 do
      R.remove(made[i][1], made[i][2], made[i][3])
      made[i] = nil
    end
    os.execute("rm -f " .. H.shell_quote(shared) .. "/*")
  end)

  describe("mq.new on a key file another user owns", function()
    it("is denied, names the owner's uid, and makes no queue", function()
      if R.UID ~= 0 then return end
      local name = "planted-" .. H.pid
      as("nobody", "io.open(path(arg[1]), 'w'):close()", name)
      local file = shared .. "/" .. name
      local before = stat_of(file)
      assert.are.equal(NOBODY, before.uid)
      local key = mq.ftok(file, 0)
      local r = note(as("root", "show('new', mq.new(arg[1])) show('new0666', mq.new(arg[1], '0666'))", name), 0)
      expect_denied(r.new, "mq.new by root")
      assert.matches("uid " .. NOBODY, r.new.msg, 1, true)
      expect_denied(r.new0666, "mq.new(name, '0666') by root")
      assert.is_nil(queue_on(key), "a queue was made on the planted file's key")
      assert.are.same(before, stat_of(file))
    end)

    it("is denied to the other user too when root owns it, naming uid 0", function()
      if R.UID ~= 0 then return end
      local name = "rootfile-" .. H.pid
      local file = shared .. "/" .. name
      H.write_file(file, "")
      assert(os.execute("chmod 0600 " .. H.shell_quote(file)))
      local key = mq.ftok(file, 0)
      local r = note(as("nobody", "show('new', mq.new(arg[1], '0666'))", name), NOBODY)
      expect_denied(r.new, "mq.new by uid " .. NOBODY)
      assert.matches("uid 0", r.new.msg, 1, true)
      assert.is_nil(queue_on(key), "a queue was made on root's key file")
      assert.are.equal(0, stat_of(file).uid)
    end)
  end)

  describe("a key file whose owner did not create the queue on its key", function()
    -- Both users try open and destroy by name; each must be denied and leave the queue,
    -- its message and the key file as they were.
    local function both_denied(name, file, id, key)
      local before = stat_of(file)
      local script = "show('open', mq.open(arg[1])) show('destroy', mq.destroy(arg[1])) show('reopen', mq.open(arg[1]))"
      for _, user in ipairs({ "root", "nobody" }) do
        local r = note(as(user, script, name), user == "root" and 0 or NOBODY)
        expect_denied(r.open, "mq.open by " .. user)
        expect_denied(r.destroy, "mq.destroy by " .. user)
        expect_denied(r.reopen, "mq.open after mq.destroy by " .. user)
        local q = R.queues()[id]
        assert(q and q.key == key, "the queue was removed by " .. user .. "'s mq.destroy(name)")
        assert.are.equal(1, q.messages)
        assert.are.same(before, stat_of(file))
      end
    end

    it("is denied to root and to the file's owner when the file is another user's and root made the queue",
      function()
        if R.UID ~= 0 then return end
        local name = "theirs-" .. H.pid
        local file = shared .. "/" .. name
        as("nobody", "io.open(path(arg[1]), 'w'):close()", name)
        local key = mq.ftok(file, 0)
        local q = mq.new(key, "0666")
        if not q then return pending("the key file's key is in use by an unrelated queue") end
        made[#made + 1] = { q:id(), key, 0 }
        assert(q:send("keep"))
        both_denied(name, file, q:id(), key)
        q:close()
      end)

    it("is denied to root, no exception, and to the other user when root's stale file meets their queue",
      function()
        if R.UID ~= 0 then return end
        local name = "stale-" .. H.pid
        local file = shared .. "/" .. name
        H.write_file(file, "")
        assert(os.execute("chmod 0600 " .. H.shell_quote(file)))
        local key = mq.ftok(file, 0)
        local r = note(as("nobody",
          "local q = mq.new(tonumber(arg[1]), '0666') if q then q:send('keep') end show('new', q)", key), NOBODY)
        if r.new.status ~= "ok" then return pending("the key file's key is in use: " .. r.new.status) end
        both_denied(name, file, r.new.id, key)
      end)
  end)

  describe("replaying the attacks of issue 8", function()
    it("refuses a planted key file, so the planter cannot take the victim's queue off its name",
      function()
        if R.UID ~= 0 then return end
        local name = "jobs-" .. H.pid
        local file = shared .. "/" .. name
        -- 1. The planter leaves an empty file under the name.
        as("nobody", "io.open(path(arg[1]), 'w'):close()", name)
        local planted = mq.ftok(file, 0)
        -- 2. The victim creates its queue under the name and puts work in it.
        local v = note(as("root", "local q, m, c = mq.new(arg[1]) if q then q:send('secret') end show('new', q, m, c)",
          name), 0)
        -- 3. The planter removes its file and makes the name anew with a 0666 queue of its own.
        local p = note(as("nobody", "os.remove(path(arg[1])) show('new', mq.new(arg[1], '0666'))", name), NOBODY)
        -- 4. The victim's peer looks the name up.
        local o = note(as("root", "show('open', mq.open(arg[1]))", name), 0)
        expect_denied(v.new, "the victim's mq.new on the planted file")
        assert.matches("uid " .. NOBODY, v.new.msg, 1, true)
        -- (The planter's new key file may have got the planted file's inode back, and its key.)
        assert.is_nil(queue_on(planted, 0), "the victim's queue was built on the planter's key")
        -- What the planter made afterwards is the planter's name, first come, and says so.
        assert.are.equal("ok", p.new.status)
        if o.open.status == "ok" then assert.are.equal(NOBODY, o.open.cuid) end
      end)

    it("keeps the victim's mq.open, mq.destroy and mq rm off its other queue that a planted name maps to",
      function()
        if R.UID ~= 0 then return end
        local mail, jobs = "mail-" .. H.pid, "jobs-" .. H.pid
        local mail_id, mail_key, jobs_key
        for _ = 1, 10 do
          -- The victim's queue "mail" holds a letter; a cleaner then deletes its key file
          -- (README: the key file's lifetime), freeing the inode that gave its key.
          local r = note(as("root", "local q = mq.new(arg[1]) if q then q:send('letter') end show('new', q)", mail), 0)
          assert.are.equal("ok", r.new.status)
          mail_id, mail_key = r.new.id, r.new.key
          -- The other user waits for that inode and makes "jobs" on it at once (ext4 and
          -- tmpfs hand a freed inode straight back).
          local planter = start("nobody", [[
            local core = require "mq.core"
            print("ready")
            local deadline = core.monotonic() + 20
            while core.monotonic() < deadline do
              local f, _, err = io.open(path(arg[1]))
              if f then f:close() elseif err == 2 then break end
            end
            io.open(path(arg[2]), "w"):close()
            print("key", mq.ftok(path(arg[2]), 0))
          ]], mail, jobs)
          assert(H.wait_until(function() return planter.output():find("ready") end, 20), "the planter did not start")
          assert(os.remove(shared .. "/" .. mail))
          local ok, code, out = planter:finish(30)
          assert(ok, string.format("planter exited %s: %s", tostring(code), out))
          jobs_key = tonumber(out:match("key\t(%-?%d+)"))
          if jobs_key == mail_key then break end
          -- Someone else took the inode first: start over.
          R.remove(mail_id, mail_key, 0)
          as("nobody", "os.remove(path(arg[1]))", jobs)
        end
        if jobs_key ~= mail_key then return pending("the freed inode was never handed back to the planter") end
        local file = shared .. "/" .. jobs
        local before = stat_of(file)
        -- The victim's routine look-up and removal of "jobs".
        local _, rm_code, rm_out = H.sh(string.format("env TMPDIR=%s %s %s rm %s", H.shell_quote(shared), H.LUA,
          H.shell_quote(MQ_CLI), H.shell_quote(jobs)))
        local r = note(as("root", "show('open', mq.open(arg[1])) show('destroy', mq.destroy(arg[1]))", jobs), 0)
        local q = R.ours(mail_id, mail_key, 0)
        assert(q, "the victim's mail queue was removed through the planted name (mq rm jobs exited "
          .. tostring(rm_code) .. ")")
        assert.are.equal(1, q.messages)
        assert.are.equal(3, rm_code, "mq rm jobs should fail as an error (exit 3): " .. rm_out)
        expect_denied(r.open, "the victim's mq.open(jobs)")
        expect_denied(r.destroy, "the victim's mq.destroy(jobs)")
        assert.are.same(before, stat_of(file))
      end)
  end)
end)
