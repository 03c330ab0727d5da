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

  -- Issue 9, items 8 to 10 and 12: a failed standard output, keys that wrap or mean
  -- IPC_PRIVATE, exit codes for internal errors and Ctrl-C, a bounded standard input.
  describe("when standard output fails, recv", function()
    local name, q
    before_each(function()
      name = H.name("cli-out")
      q = assert(mq.new(name))
    end)
    after_each(function() q:close() end)

    local function assert_put_back(code, err)
      assert.equal(3, code, err)
      assert.matches("^mq recv: cannot write the message %(11 bytes, type 5%) to standard output: .*"
        .. "put back at the end of the queue\n$", err)
      -- Back at the end of the queue, with its type.
      assert.same({ "second", 6 }, { q:receive_timeout(0) })
      assert.same({ "the message", 5 }, { q:receive_timeout(0) })
    end

    it("exits 3 and puts the message back (same type, end of the queue) when writing to /dev/full", function()
      assert(q:send("the message", 5))
      assert(q:send("second", 6))
      assert_put_back(cli({ "recv", name }, "2>&1 >/dev/full"))
    end)

    it("exits 3 and puts the message back when standard output is closed", function()
      assert(q:send("the message", 5))
      assert(q:send("second", 6))
      assert_put_back(cli({ "recv", name }, "2>&1 >&-"))
    end)

    -- recv --timeout 20 into a pipe whose reader has exited before the message is sent.
    for _, how in ipairs({ "default", "ignore" }) do
      it(string.format("exits 3 and puts the message back when the pipe's reader is gone (SIGPIPE %s "
        .. "in the parent)", how == "default" and "at its default" or "ignored"), function()
        local status, err, readerpid = file("status"), file("err"), file("reader")
        local env = how == "default" and "env --default-signal=PIPE" or "env --ignore-signal=PIPE"
        local quoted = {}
        for i, a in ipairs({ "recv", name, "--timeout", "20" }) do quoted[i] = H.shell_quote(a) end
        os.execute(string.format("( { %s %s %s 2>%s; echo $? > %s; } | sh -c 'echo $$ > %s' ) >/dev/null 2>&1 &",
          env, MQ, table.concat(quoted, " "), err, status, readerpid))
        -- The reader must be gone (its end of the pipe closed) before there is a message.
        local pid = H.wait_until(function()
          local s = H.read_file(readerpid)
          return s and tonumber(s:match("%d+"))
        end, 20)
        assert(pid, "the reader never ran")
        assert(H.wait_until(function()
          local st = H.read_file("/proc/" .. pid .. "/stat")
          return st == nil or st:match("^%d+ %b() Z") ~= nil
        end, 20), "the reader never exited")
        assert(q:send("the message", 5))
        assert(q:send("second", 6))
        local code = H.wait_until(function()
          local s = H.read_file(status)
          return s and tonumber(s:match("%d+"))
        end, 30)
        assert(code, "mq recv never finished")
        assert_put_back(code, H.read_file(err))
      end)
    end

    it("exits 3 and saves the message to a file it names when it cannot put it back", function()
      -- A queue the user `nobody` may read but not write: recv works, the put-back is denied.
      q:close()
      local kq, key = H.fresh_key_queue("0644")
      q = kq
      assert(q:send("the message", 5))
      local prefix = H.nobody()
      local bin = H.TMPDIR .. "/nobody-lib/mq-cli"
      assert(os.execute(string.format("cp %s %s && chmod a+rx %s", H.shell_quote(here .. "/../bin/mq"),
        H.shell_quote(bin), H.shell_quote(bin))))
      local _, code, err = H.sh(string.format("%s %s %s recv %d 2>&1 >/dev/full", prefix, H.LUA,
        H.shell_quote(bin), key))
      assert.equal(3, code, err)
      local path = err:match("so it was saved to (%S+)\n$")
      assert(path, err)
      files[#files + 1] = path
      assert.matches("^mq recv: cannot write the message %(11 bytes, type 5%) to standard output: ", err)
      assert.equal("the message", H.read_file(path))
      assert.equal(0, q:stat().messages)
    end)
  end)

  describe("refuses keys that are IPC_PRIVATE or wider than 32 bits", function()
    for _, k in ipairs({ "0", "00", "0x0", "0x00000000", "0x100000000", "0x10000000000000000",
                         "4294967296", "18446744073709551616" }) do
      it(string.format("exits 2 for 'mq create %s' (a usage error)", k), function()
        local code, out = cli({ "create", k })
        assert.equal(2, code, out)
        assert.matches("^mq create: .*key", out)
      end)
    end

    -- 0x1 followed by 16 hex digits is 2^64 + key: tonumber wraps it to the 32-bit key.
    it("exits 2 for 'mq create 0x1<16 hex digits>' (2^64 + key) and leaves that key unused", function()
      local key = H.track(H.unused_key())
      local code, out = cli({ "create", string.format("0x1%016x", key) })
      assert.equal(2, code, out)
      assert.equal("notfound", select(3, mq.open(key)))
    end)

    it("exits 2 for 'mq rm 0x1<16 hex digits>' (like 0x1000000005ad132c6) and leaves the queue "
      .. "with that 32-bit key alone; likewise stat, recv, send and keys above 2^32-1", function()
      local kq, key = H.fresh_key_queue()
      assert(kq:send("still here"))
      for _, args in ipairs({ { "rm" }, { "stat" }, { "recv" }, { "send", "x" } }) do
        for _, k in ipairs({ string.format("0x1%016x", key), string.format("0x1%08x", key),
                             string.format("0x%x%016x", 0xabc, key), tostring(0x100000000 + key) }) do
          local code, out = cli({ args[1], k, args[2] })
          assert.equal(2, code, args[1] .. " " .. k .. ": " .. out)
        end
      end
      assert.same({ "still here", 1 }, { kq:receive_timeout(0) })
      kq:close()
    end)

    it("still takes 0x prefixed keys with leading zeros and 0xffffffff-range keys", function()
      local key = H.track(H.unused_key())
      assert.equal(0, (cli({ "create", string.format("0x0000%08x", key) })))
      local k = assert(mq.open(key))
      k:close()
      assert.equal(0, (cli({ "rm", string.format("%012d", key) })))
      assert.equal("notfound", select(3, mq.open(key)))
    end)
  end)

  describe("exit codes", function()
    it("are documented in the usage text: 4 internal error, 130 interrupted", function()
      local _, out = cli({ "--help" })
      assert.matches("4 internal error", out, 1, true)
      assert.matches("130 interrupted", out, 1, true)
    end)

    it("exit 4 with 'internal error' and the error on stderr for an uncaught Lua error", function()
      local name = H.name("cli-init")
      assert(mq.new(name)):close()
      local _, code, out = H.sh(string.format(
        "LUA_INIT_5_4=%s %s stat %s 2>&1 >/dev/null",
        H.shell_quote('function table.concat() error("broken by LUA_INIT") end'), MQ, H.shell_quote(name)))
      assert.equal(4, code, out)
      assert.matches("internal error", out, 1, true)
      assert.matches("broken by LUA_INIT", out, 1, true)
    end)

    it("exit 130, saying so, when recv --timeout inf gets SIGINT (Ctrl-C) while it waits", function()
      local P = require "support.proc"
      local core = require "mq.core"
      local name = H.name("cli-int")
      local q = assert(mq.new(name))
      local t0 = core.monotonic()
      local child = P.spawn(assert(H.read_file(here .. "/../bin/mq")), nil, "recv", name, "--timeout", "inf")
      -- Well past start-up (lua5.4 handles SIGINT only once the script runs), sleeping.
      assert(H.wait_until(function()
        return core.monotonic() - t0 > 0.3 and P.doing(child.pid) == "S"
      end, 20), "recv never settled into its wait")
      os.execute("kill -INT " .. child.pid)
      local ok, code, out = child:finish(5)
      assert(ok ~= nil, "recv was still running 5 s after SIGINT")
      assert.equal(130, code, out)
      assert.matches("^mq: interrupted\n$", out)   -- not killed by the signal: it exited 130
      assert.equal(0, q:stat().messages)
      q:close()
    end)

    it("exit 3 for create, recv and send when TMPDIR is a regular file (an environment problem, "
      .. "not a usage error)", function()
      local f = file("tmpdir-file")
      H.write_file(f, "not a directory\n")
      for _, args in ipairs({ "create jobs", "recv jobs", "send jobs x" }) do
        local _, code, out = H.sh(string.format("TMPDIR=%s %s %s 2>&1", H.shell_quote(f), MQ, args))
        assert.equal(3, code, args .. ": " .. out)
      end
    end)
  end)

  describe("send from standard input", function()
    local name, q, msgmax
    before_each(function()
      name = H.name("cli-in")
      q = assert(mq.new(name))
      msgmax = mq.limits().msgmax
    end)
    after_each(function() q:close() end)

    it("sends exactly msgmax bytes", function()
      local input = file("max")
      H.write_file(input, string.rep("m", msgmax))
      assert.equal(0, (cli({ "send", name }, "< " .. input)))
      assert.equal(msgmax, #q:receive_timeout(0))
    end)

    it("exits 3 (toobig) for msgmax + 1 bytes and sends nothing", function()
      local input = file("max1")
      H.write_file(input, string.rep("m", msgmax + 1))
      local code, out = cli({ "send", name }, "< " .. input)
      assert.equal(3, code, out)
      assert.matches("msgmax", out, 1, true)
      assert.equal(0, q:stat().messages)
    end)

    it("stops at once with bounded memory on an endless input (< /dev/zero): exit 3", function()
      local t0 = require("mq.core").monotonic()
      local quoted = H.shell_quote(name)
      -- 256 MiB of address space at most (not under ASan, whose shadow memory needs more).
      local limit = require("support.proc").MEMTOOL and "" or "ulimit -v 262144; "
      local _, code, out = H.sh(string.format("%stimeout -k 2 10 %s send %s < /dev/zero", limit,
        MQ, quoted))
      assert.equal(3, code, out)
      assert.matches("msgmax", out, 1, true)
      assert(require("mq.core").monotonic() - t0 < 5)
      assert.equal(0, q:stat().messages)
    end)
  end)
end)
