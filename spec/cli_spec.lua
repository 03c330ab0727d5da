-- The command-line tool bin/mq, run as a child process: each subcommand and each exit code.

local mq = require "mq"
local H = require "helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local MQ = H.LUA .. " " .. H.shell_quote(here .. "/../bin/mq")

-- Run bin/mq with arguments (each shell-quoted) and an optional shell suffix such as a
-- redirection; returns exit code, combined stdout and stderr.
local function cli(args, suffix)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = H.shell_quote(a) end
  local _, code, out = H.sh(MQ .. " " .. table.concat(quoted, " ") .. " " .. (suffix or ""))
  return code, out
end

local function tmpfile(tag)
  return H.path(string.format("cli-%d-%s", H.pid, tag))
end

-- The lines "field value" of `mq stat` as a table.
local function parse_stat(out)
  local t = {}
  for field, value in out:gmatch("([%w_]+) ([^\n]*)\n") do t[field] = value end
  return t
end

describe("bin/mq", function()
  local files = {}
  local function file(tag)
    local p = tmpfile(tag)
    files[#files + 1] = p
    return p
  end

  after_each(function()
    H.cleanup()
    for i = #files, 1, -1 do
      os.remove(files[i])
      files[i] = nil
    end
  end)

  describe("help", function()
    it("prints the usage on stdout and exits 0 for --help and help", function()
      for _, a in ipairs({ "--help", "help" }) do
        local code, out = cli({ a })
        assert.equal(0, code)
        assert.matches("usage: mq COMMAND", out, 1, true)
        for _, c in ipairs({ "send", "recv", "stat", "rm", "create" }) do
          assert.matches("mq " .. c .. " QUEUE", out, 1, true)
        end
      end
    end)

    it("exits 2 with the usage on stderr when there is no command", function()
      local code, out = cli({}, "2>&1 >/dev/null")
      assert.equal(2, code)
      assert.matches("usage: mq COMMAND", out, 1, true)
    end)

    it("prints the version with --version", function()
      local code, out = cli({ "--version" })
      assert.equal(0, code)
      assert.equal("mq " .. mq._VERSION .. "\n", out)
    end)
  end)

  describe("usage errors exit 2", function()
    local name
    before_each(function() name = H.name("cli") end)

    it("for an unknown command", function()
      local code, out = cli({ "frobnicate", name })
      assert.equal(2, code)
      assert.matches("unknown command 'frobnicate'", out, 1, true)
    end)

    it("for a missing QUEUE", function()
      for _, c in ipairs({ "send", "recv", "stat", "rm", "create" }) do
        local code, out = cli({ c })
        assert.equal(2, code)
        assert.matches("mq " .. c .. ": missing QUEUE", out, 1, true)
      end
    end)

    it("for an unknown option, a missing option value and an extra argument", function()
      local code, out = cli({ "recv", name, "--bogus", "1" })
      assert.equal(2, code)
      assert.matches("mq recv: unknown option '--bogus'", out, 1, true)
      code, out = cli({ "recv", name, "--timeout" })
      assert.equal(2, code)
      assert.matches("option --timeout needs a value", out, 1, true)
      code, out = cli({ "stat", name, "extra" })
      assert.equal(2, code)
      assert.matches("unexpected argument 'extra'", out, 1, true)
    end)

    it("for a bad --type, --timeout or --perm", function()
      assert.equal(2, (cli({ "send", name, "--type", "0", "x" })))
      assert.equal(2, (cli({ "send", name, "--type", "abc", "x" })))
      assert.equal(2, (cli({ "recv", name, "--timeout", "soon" })))
      assert.equal(2, (cli({ "create", name, "--perm", "rw" })))
      -- an execute bit is refused by mq.new itself ("invalid"), still a usage error
      assert.equal(2, (cli({ "create", name, "--perm", "0700" })))
      assert.is_nil(mq.open(name))
    end)

    it("for an invalid queue name", function()
      local code, out = cli({ "create", "a/b" })
      assert.equal(2, code)
      assert.matches("mq create: ", out, 1, true)
    end)
  end)

  describe("create", function()
    it("creates a named queue with the given permissions", function()
      local name = H.name("cli")
      local code, out = cli({ "create", name, "--perm", "0640" })
      assert.equal(0, code, out)
      assert.equal("", out)
      local q = assert(mq.open(name))
      assert.equal(tonumber("640", 8), q:stat().mode & tonumber("777", 8))
      q:close()
    end)

    it("exits 3 naming the operation when the queue exists", function()
      local name = H.name("cli")
      assert(mq.new(name)):close()
      local code, out = cli({ "create", name })
      assert.equal(3, code)
      assert.matches("^mq create: .*exists", out)
    end)

    it("takes decimal and hex integer keys", function()
      local k1, k2 = H.unused_key(), H.unused_key()
      H.track(k1)
      H.track(k2)
      assert.equal(0, (cli({ "create", tostring(k1) })))
      assert.equal(0, (cli({ "create", string.format("0x%x", k2) })))
      local q1, q2 = assert(mq.open(k1)), assert(mq.open(k2))
      assert.equal(k1, q1:key())
      assert.equal(k2, q2:key())
      q1:close()
      q2:close()
    end)
  end)

  describe("send", function()
    local name, q
    before_each(function()
      name = H.name("cli")
      q = assert(mq.new(name))
    end)
    after_each(function() q:close() end)

    it("sends the DATA argument as one message of type 1", function()
      local code, out = cli({ "send", name, "hello world" })
      assert.equal(0, code, out)
      assert.same({ "hello world", 1 }, { q:receive_timeout(0) })
    end)

    it("sends standard input, binary-safe, for - and for no DATA, with --type", function()
      local input = file("in")
      H.write_file(input, H.all_bytes())
      assert.equal(0, (cli({ "send", name, "--type", "7", "-" }, "< " .. input)))
      assert.equal(0, (cli({ "send", name, "--type=9" }, "< " .. input)))
      assert.same({ H.all_bytes(), 7 }, { q:receive_timeout(0) })
      assert.same({ H.all_bytes(), 9 }, { q:receive_timeout(0) })
    end)

    it("sends data that begins with a dash after --", function()
      assert.equal(0, (cli({ "send", name, "--", "--not-an-option" })))
      assert.equal("--not-an-option", (q:receive_timeout(0)))
    end)

    it("sends to an integer key", function()
      local kq, key = H.fresh_key_queue()
      assert.equal(0, (cli({ "send", string.format("0x%08x", key), "by key" })))
      assert.equal("by key", (kq:receive_timeout(0)))
      kq:close()
    end)

    it("exits 1 when --timeout runs out on a full queue", function()
      assert(q:set_capacity(8))
      assert(q:send("12345678"))
      local code, out = cli({ "send", name, "--timeout", "0.05", "x" })
      assert.equal(1, code)
      assert.matches("^mq send: .*timed out", out)
      assert.equal(1, q:stat().messages)
    end)

    it("exits 3 naming the operation when the queue does not exist", function()
      local code, out = cli({ "send", H.name("cli-missing"), "x" })
      assert.equal(3, code)
      assert.matches("^mq send: .*no such queue", out)
    end)
  end)

  describe("recv", function()
    local name, q
    before_each(function()
      name = H.name("cli")
      q = assert(mq.new(name))
    end)
    after_each(function() q:close() end)

    it("writes the message raw to stdout, binary-safe, and exits 0", function()
      assert(q:send(H.all_bytes()))
      local output = file("out")
      local code, err = cli({ "recv", name }, "> " .. output)
      assert.equal(0, code, err)
      assert.equal("", err)
      assert.equal(H.all_bytes(), H.read_file(output))
      assert.equal(0, q:stat().messages)
    end)

    it("selects by --type", function()
      assert(q:send("one", 1))
      assert(q:send("five", 5))
      assert(q:send("three", 3))
      local code, out = cli({ "recv", name, "--type", "5" })
      assert.equal(0, code)
      assert.equal("five", out)
      code, out = cli({ "recv", name, "--type", "-4" })
      assert.equal(0, code)
      assert.equal("one", out)
    end)

    it("exits 1 at once on an empty queue without --timeout", function()
      local code, out = cli({ "recv", name })
      assert.equal(1, code)
      assert.matches("^mq recv: .*empty", out)
    end)

    it("exits 1 when --timeout runs out", function()
      local code, out = cli({ "recv", name, "--timeout", "0.05" })
      assert.equal(1, code)
      assert.matches("^mq recv: .*timed out", out)
    end)

    it("waits with --timeout for a message that another process sends", function()
      local child = H.spawn_lua(string.format(
        "os.exit(os.execute(%q))", MQ .. " recv " .. H.shell_quote(name) .. " --timeout 20"))
      assert(q:send("late"))
      local ok, code, out = child:wait(30)
      assert.is_true(ok, out)
      assert.equal(0, code)
      assert.equal("late", out)
    end)

    it("exits 3 naming the operation when the queue does not exist", function()
      local code, out = cli({ "recv", H.name("cli-missing") })
      assert.equal(3, code)
      assert.matches("^mq recv: .*no such queue", out)
    end)
  end)

  describe("stat", function()
    it("prints field value lines", function()
      local name = H.name("cli")
      local q = assert(mq.new(name, "0640"))
      assert(q:send("abc"))
      assert(q:send("de"))
      local code, out = cli({ "stat", name })
      assert.equal(0, code, out)
      local st = parse_stat(out)
      assert.equal(name, st.name)
      assert.equal("2", st.messages)
      assert.equal("5", st.bytes)
      assert.equal("0640", st.mode)
      assert.equal(string.format("0x%08x", q:key() & 0xffffffff), st.key)
      assert.equal(tostring(q:id()), st.id)
      for _, f in ipairs({ "capacity", "last_send_pid", "last_receive_pid", "last_send_time",
                           "last_receive_time", "last_change_time", "uid", "gid", "cuid",
                           "cgid" }) do
        assert.is_truthy(st[f] and st[f]:match("^%d+$"), f)
      end
      q:close()
    end)

    it("exits 3 naming the operation when the queue does not exist", function()
      local code, out = cli({ "stat", H.name("cli-missing") })
      assert.equal(3, code)
      assert.matches("^mq stat: .*no such queue", out)
    end)
  end)

  describe("rm", function()
    it("removes a named queue and its key file", function()
      local name = H.name("cli")
      assert(mq.new(name)):close()
      local code, out = cli({ "rm", name })
      assert.equal(0, code, out)
      local _, _, err = mq.open(name)
      assert.equal("notfound", err)
      assert.is_false(H.exists(H.path(name)))
    end)

    it("removes a queue by integer key", function()
      local _, key = H.fresh_key_queue()
      assert.equal(0, (cli({ "rm", tostring(key) })))
      local _, _, code = mq.open(key)
      assert.equal("notfound", code)
    end)

    it("succeeds when the queue is already gone", function()
      assert.equal(0, (cli({ "rm", H.name("cli-missing") })))
    end)
  end)
end)
