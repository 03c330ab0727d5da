-- Security: planted symlinks, directories and FIFOs at a key path are refused and their
-- targets untouched; names never leave $TMPDIR; a 0600 queue is denied to an unprivileged
-- user for every use; the key file is created 0600 whatever the umask.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

local function stat_of(path)
  local ok, _, out = H.sh("stat -c '%a %F %i' " .. H.shell_quote(path))
  if not ok then return nil end
  local mode, kind, ino = out:match("^(%d+) (.-) (%d+)\n")
  return { mode = mode, kind = kind, ino = ino }
end

local function code_of(...)
  local r = table.pack(...)
  if r[1] == nil then return r[3] end
  return "ok"
end

describe("a planted key path", function()
  after_each(H.cleanup)

  local function assert_refused(name)
    assert.are.equal("invalid", code_of(mq.new(name)))
    assert.are.equal("invalid", code_of(mq.new(name, "0666")))
    assert.are.equal("invalid", code_of(mq.sysv.create(name)))
    assert.are.equal("invalid", code_of(mq.open(name)))
    assert.are.equal("invalid", code_of(mq.destroy(name)))
    assert.are.equal("invalid", code_of(mq.sysv.destroy(name)))
  end

  it("that is a symlink to a file is refused, and neither the link nor its target is touched", function()
    local target = H.path(H.name("target"))
    H.write_file(target, "precious contents\n")
    assert(os.execute("chmod 0644 " .. H.shell_quote(target)))
    local before = stat_of(target)
    local name = H.name("link")
    assert(os.execute("ln -s " .. H.shell_quote(target) .. " " .. H.shell_quote(H.path(name))))
    assert_refused(name)
    assert.are.equal("precious contents\n", H.read_file(target))
    assert.are.same(before, stat_of(target))
    assert.are.equal("symbolic link", stat_of(H.path(name)).kind)
    os.remove(H.path(name))
    os.remove(target)
  end)

  it("that is a dangling symlink is refused, and its target is never created", function()
    local target = H.path(H.name("nowhere"))
    local name = H.name("dangling")
    assert(os.execute("ln -s " .. H.shell_quote(target) .. " " .. H.shell_quote(H.path(name))))
    assert_refused(name)
    assert.is_false(H.exists(target))
    assert.is_true(H.exists(H.path(name)))
    os.remove(H.path(name))
  end)

  it("that is a symlink to another queue's key file does not reach that queue", function()
    local q, real = H.fresh_name_queue("real")
    assert(q:send("for the real queue only"))
    local name = H.name("alias")
    assert(os.execute("ln -s " .. H.shell_quote(H.path(real)) .. " " .. H.shell_quote(H.path(name))))
    assert.are.equal("invalid", code_of(mq.open(name)))
    assert.are.equal("invalid", code_of(mq.destroy(name)))
    assert.are.equal(1, q:stat().messages)
    assert.are.equal("for the real queue only", (q:receive()))
    os.remove(H.path(name))
    q:close()
  end)

  it("that is a directory is refused, and the directory and its contents stay", function()
    local name = H.name("dir")
    local dir = H.path(name)
    assert(os.execute("mkdir " .. H.shell_quote(dir)))
    H.write_file(dir .. "/inside", "x")
    local before = stat_of(dir)
    assert_refused(name)
    assert.are.same(before, stat_of(dir))
    assert.are.equal("x", H.read_file(dir .. "/inside"))
    assert(os.execute("rm -r " .. H.shell_quote(dir)))
  end)

  it("that is a FIFO is refused without blocking on it", function()
    local name = H.name("fifo")
    assert(os.execute("mkfifo " .. H.shell_quote(H.path(name))))
    -- In a child: opening a FIFO that has no writer would block for ever.
    local child = P.spawn([[
      local mq = require "mq"
      for _, f in ipairs({ mq.new, mq.open, mq.destroy }) do
        local r, _, code = f(arg[1])
        io.write(tostring(r and "ok" or code), " ")
      end
    ]], nil, name)
    local ok, code, out = child:finish(20)
    assert(ok ~= nil, "a call blocked on the FIFO")
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.are.equal("invalid invalid invalid ", out)
    assert.are.equal("fifo", stat_of(H.path(name)).kind)
    os.remove(H.path(name))
  end)

  it("that is an existing regular file is used as the key file and never truncated", function()
    local name = H.name("planted")
    H.write_file(H.path(name), "left here before")
    local ino = stat_of(H.path(name)).ino
    local q = assert(mq.new(name))
    assert.are.equal("left here before", H.read_file(H.path(name)))
    assert.are.equal(ino, stat_of(H.path(name)).ino)
    q:close()
  end)
end)

describe("a name with / or ..", function()
  after_each(H.cleanup)

  it("never reaches outside $TMPDIR", function()
    local jail = H.path(H.name("jail"))
    assert(os.execute("mkdir -p " .. H.shell_quote(jail .. "/sub")))
    local victim_name = H.name("victim")
    H.write_file(H.path(victim_name), "victim")
    local child = P.spawn([[
      local mq = require "mq"
      local victim = arg[1]
      local names = { "..", ".", "../" .. victim, "../escape", "sub/../../escape", "/tmp/escape",
        "sub/x", "./x", "x/", "/", "../" .. victim .. "/" }
      for _, name in ipairs(names) do
        for _, f in ipairs({ mq.new, mq.open, mq.destroy, mq.sysv.create, mq.sysv.open, mq.sysv.destroy }) do
          local r, _, code = f(name)
          if r ~= nil or code ~= "invalid" then
            print(string.format("%q gave %s %s", name, tostring(r), tostring(code)))
            if r and type(r) ~= "boolean" then r:destroy() end
          end
        end
      end
      print("DONE")
    ]], { prefix = "env TMPDIR=" .. H.shell_quote(jail) }, victim_name)
    local ok, code, out = child:finish(30)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.are.equal("DONE\n", out)
    assert.are.equal("victim", H.read_file(H.path(victim_name)))
    assert.is_false(H.exists(H.path("escape")))
    assert.is_false(H.exists("/tmp/escape"))
    local _, _, listing = H.sh("ls -A " .. H.shell_quote(jail))
    assert.are.equal("sub\n", listing)
    local _, _, sub = H.sh("ls -A " .. H.shell_quote(jail .. "/sub"))
    assert.are.equal("", sub)
    os.remove(H.path(victim_name))
    assert(os.execute("rm -r " .. H.shell_quote(jail)))
  end)
end)

describe("a 0600 queue seen by an unprivileged user", function()
  local saved_mode
  setup(function()
    -- The unprivileged child reaches key files by name through $TMPDIR: let it search it
    -- (not list it) for the length of these tests.
    local _, _, out = H.sh("stat -c %a " .. H.shell_quote(H.TMPDIR))
    saved_mode = out:match("%d+")
    assert(os.execute("chmod o+x " .. H.shell_quote(H.TMPDIR)))
  end)
  teardown(function()
    os.execute("chmod " .. saved_mode .. " " .. H.shell_quote(H.TMPDIR))
  end)
  after_each(H.cleanup)

  -- Run Lua source as uid/gid 65534 with no groups; returns ok, code, output.
  local function as_nobody(source, ...)
    local child = P.spawn("io.stdout:setvbuf('no')\n" .. source, { prefix = H.nobody(), inline = true }, ...)
    return child:finish(30)
  end

  it("is usable by that user once it is 0666 (the control case)", function()
    local q, key = H.fresh_key_queue("0666")
    local n, name = H.fresh_name_queue("open", "0666")
    local ok, code, out = as_nobody([[
      local mq = require "mq"
      for _, where in ipairs({ tonumber(arg[1]), arg[2] }) do
        local q = assert(mq.open(where))
        assert(q:send("from nobody"))
        assert(q:receive() == "from nobody")
        q:close()
      end
      print("OK")
    ]], key, name)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.are.equal("OK\n", out)
    q:close()
    n:close()
  end)

  it("is denied to open, by key and by name, for any access, and to destroy", function()
    local q, key = H.fresh_key_queue("0600")
    local n, name = H.fresh_name_queue("private", "0600")
    assert(q:send("secret"))
    assert(n:send("secret"))
    local ok, code, out = as_nobody([[
      local mq = require "mq"
      for _, where in ipairs({ tonumber(arg[1]), arg[2] }) do
        for _, flags in ipairs({ mq.O_RDWR, mq.O_RDONLY, mq.O_WRONLY, mq.O_RDWR | mq.O_NONBLOCK }) do
          local r, _, code = mq.open(where, flags)
          print("open", flags, r and "ok" or code)
        end
        local r, _, code = mq.destroy(where)
        print("destroy", r and "ok" or code)
        r, _, code = mq.sysv.destroy(where)
        print("sysv.destroy", r and "ok" or code)
      end
    ]], key, name)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    local lines = 0
    for line in out:gmatch("[^\n]+") do
      lines = lines + 1
      assert.matches("denied$", line)
    end
    assert.are.equal(12, lines)
    -- Both queues, their messages and the key file are still there.
    assert.are.equal("secret", (q:receive()))
    assert.are.equal("secret", (n:receive()))
    local _, _, mode = H.sh("stat -c %a " .. H.shell_quote(H.path(name)))
    assert.are.equal("600\n", mode)
    q:close()
    n:close()
  end)

  it("denies send, receive, peek, stat and destroy through a handle opened before it became 0600", function()
    local q, key = H.fresh_key_queue("0666")
    local ctl, ctlkey = H.fresh_key_queue("0666")
    assert(q:send("secret", 1))
    local child = P.spawn("io.stdout:setvbuf('no')\n" .. [[
      local mq = require "mq"
      local q = assert(mq.open(tonumber(arg[1])))
      local ctl = assert(mq.open(tonumber(arg[2])))
      assert(ctl:send("opened", 1))
      assert(ctl:receive_timeout(20, 2))          -- the parent has made it 0600
      local function show(what, ...)
        local r = table.pack(...)
        print(what, r[1] == nil and r[3] or "ok")
      end
      show("send", q:send("intruder"))
      show("receive", q:receive())
      show("receive_timeout", q:receive_timeout(0))
      show("send_timeout", q:send_timeout("intruder", 0))
      local peek = table.pack(q:peek())
      if peek[3] ~= "unsupported" then show("peek", table.unpack(peek, 1, peek.n)) end
      show("stat", q:stat())
      show("set_capacity", q:set_capacity(100))
      show("destroy", q:destroy())
    ]], { prefix = H.nobody(), inline = true }, key, ctlkey)
    local opened = ctl:receive_timeout(20, 1)
    assert.are.equal("opened", opened, child.output())
    local ok, _, out = H.sh(string.format(
      "/usr/bin/python3 -c 'import sysv_ipc, sys; q = sysv_ipc.MessageQueue(int(sys.argv[1])); q.mode = 0o600' %d",
      key))
    assert(ok, "could not chmod the queue: " .. out)
    assert.are.equal(tonumber("600", 8), q:stat().mode & tonumber("777", 8))
    assert(ctl:send("go", 2))
    local code
    ok, code, out = child:finish(30)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    local lines = 0
    for line in out:gmatch("[^\n]+") do
      lines = lines + 1
      assert.matches("\tdenied$", line)
    end
    assert(lines >= 7, out)
    local st = q:stat()
    assert.are.equal(1, st.messages)
    assert.are.equal("secret", (q:receive()))
    q:close()
    ctl:close()
  end)
end)

describe("a key file", function()
  after_each(H.cleanup)

  it("is created 0600 whatever the queue's perm and the umask", function()
    local base = H.name("umask")
    for i = 1, 4 do H.track(base .. "-" .. i) end
    local child = P.spawn([[
      local mq = require "mq"
      for i, perm in ipairs({ "0600", "0666", "0640", "0" }) do
        local name = arg[1] .. "-" .. i
        local q = assert(mq.new(name, perm))
        local p = assert(io.popen("stat -c %a " .. os.getenv("TMPDIR") .. "/" .. name))
        print(perm, p:read("l"), string.format("%o", q:stat().mode & 511))
        p:close()
        assert(q:destroy())
      end
    ]], { before = "umask 000;" }, base)
    local ok, code, out = child:finish(30)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.are.equal("0600\t600\t600\n0666\t600\t666\n0640\t600\t640\n0\t600\t0\n", out)
  end)

  it("of a queue made here is 0600", function()
    local q, name = H.fresh_name_queue("mode", "0666")
    local _, _, mode = H.sh("stat -c '%a %F' " .. H.shell_quote(H.path(name)))
    assert.are.equal("600 regular empty file\n", mode)
    q:close()
  end)
end)
