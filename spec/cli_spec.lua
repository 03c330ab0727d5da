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

-- Wait until the process whose pid a shell wrote to `pidfile` has run and exited (gone or
-- a zombie): the reading end of a pipe is closed for good.
local function reader_gone(pidfile)
  local pid = H.wait_until(function()
    local s = H.read_file(pidfile)
    return s and tonumber(s:match("%d+"))
  end, 20)
  assert(pid, "the reader never ran")
  assert(H.wait_until(function()
    local st = H.read_file("/proc/" .. pid .. "/stat")
    return st == nil or st:match("^%d+ %b() Z") ~= nil
  end, 20), "the reader never exited")
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
    local COMMANDS = { "send", "recv", "stat", "ls", "create", "rm", "help" }

    it("prints the usage on stdout and exits 0 for --help, -h and help", function()
      for _, a in ipairs({ "--help", "-h", "help" }) do
        local code, out = cli({ a }, "2>/dev/null")
        assert.equal(0, code)
        assert.matches("^usage: mq COMMAND", out)
        for _, c in ipairs(COMMANDS) do
          assert.matches("\n  mq " .. c .. " ", out, 1, true)
        end
      end
    end)

    it("prints one command's help, the same, for 'mq help CMD', 'mq CMD --help' and 'mq CMD -h': exit 0",
      function()
      for _, c in ipairs(COMMANDS) do
        local code, out = cli({ "help", c }, "2>/dev/null")
        assert.equal(0, code, c)
        assert.matches("^usage: mq " .. c .. "[ \n]", out)
        assert.matches("\noptions:\n", out, 1, true)
        local forms = { { c, "--help" }, { c, "-h" } }
        -- Even where an option's value or an argument is due.
        if c ~= "help" then forms[3] = { c, "x", "--type", "--help" } end
        for _, form in ipairs(forms) do
          local code2, out2 = cli(form, "2>/dev/null")
          assert.equal(0, code2, table.concat(form, " "))
          assert.equal(out, out2, table.concat(form, " "))
        end
      end
    end)

    it("exits 2 for help on an unknown command, or with an extra argument", function()
      local code, out = cli({ "help", "frobnicate" })
      assert.equal(2, code)
      assert.matches("no help for 'frobnicate'", out, 1, true)
      code, out = cli({ "help", "send", "recv" })
      assert.equal(2, code)
      assert.matches("mq help: unexpected argument 'recv'", out, 1, true)
    end)

    it("takes --help after -- as an argument, not as a request for help", function()
      local name = H.name("cli")
      local q = assert(mq.new(name))
      assert.equal(0, (cli({ "send", name, "--", "--help" })))
      assert.equal("--help", (q:receive_timeout(0)))
      q:close()
    end)

    it("exits 2 with the usage on stderr when there is no command", function()
      local code, out = cli({}, "2>&1 >/dev/null")
      assert.equal(2, code)
      assert.matches("usage: mq COMMAND", out, 1, true)
    end)

    it("prints the version with --version, -V and version", function()
      for _, a in ipairs({ "--version", "-V", "version" }) do
        local code, out = cli({ a })
        assert.equal(0, code)
        assert.equal("mq " .. mq._VERSION .. "\n", out)
      end
    end)

    it("exits 3 when the help or the version cannot be written", function()
      for _, args in ipairs({ { "--help" }, { "help", "recv" }, { "ls", "--help" }, { "-V" } }) do
        local code, out = cli(args, "2>&1 >/dev/full")
        assert.equal(3, code, table.concat(args, " "))
        assert.matches("cannot write to standard output", out, 1, true)
      end
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

    it("for a bad --id, or --id beside QUEUE, in send, recv, stat and rm; create has no --id", function()
      for _, c in ipairs({ { "send", "x" }, { "recv" }, { "stat" }, { "rm" } }) do
        for _, id in ipairs({ "abc", "-1", "1.5", "0x10", "2147483648", "99999999999", "" }) do
          local code, out = cli({ c[1], "--id", id, c[2] })
          assert.equal(2, code, c[1] .. " --id " .. id .. ": " .. out)
          assert.matches("^mq " .. c[1] .. ": ", out)
        end
        local code, out = cli({ c[1], "--id", "1", name, c[2] })
        assert.equal(2, code, out)
        assert.matches("unexpected argument", out, 1, true)
      end
      local code, out = cli({ "create", "--id", "1" })
      assert.equal(2, code)
      assert.matches("mq create: unknown option '--id'", out, 1, true)
    end)

    it("for a bad --count or --framing, -0 beside --framing, an option given twice, a value given to a "
      .. "flag, an option another command has, and an extra argument to ls", function()
      for _, args in ipairs({
        { "recv", name, "--count", "0" }, { "recv", name, "--count", "-2" }, { "recv", name, "--count", "many" },
        { "recv", name, "--framing", "csv" }, { "recv", name, "--framing", "" },
        { "recv", name, "-0", "--framing", "length" }, { "recv", name, "-0", "-0" },
        { "recv", name, "--type", "1", "--type", "2" }, { "recv", name, "--follow", "--follow" },
        { "recv", name, "--follow=yes" }, { "recv", name, "--show-type=1" }, { "ls", "--named=1" },
        { "recv", name, "-x" }, { "recv", name, "--type", "x" }, { "ls", "extra" }, { "ls", "--bogus" },
        { "rm", name, "--perm", "0600" }, { "stat", name, "--follow" }, { "send", name, "-0", "x" },
        { "send", name, "--timeout", "soon", "x" }, { "send", name, "--count", "1", "x" },
        { "recv", name, "--timeout", "nan" }, { "create", name, "--named" },
      }) do
        local code, out = cli(args)
        assert.equal(2, code, table.concat(args, " ") .. ": " .. out)
        assert.matches("^mq " .. args[1] .. ": [^\n]*\ntry 'mq help " .. args[1] .. "'\n$", out)
      end
      assert.is_nil(mq.open(name))
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
        -- --type 5: "second" (type 6) is queued first, so that it is there before recv takes
        -- "the message" and puts it back behind it, however the processes are scheduled.
        for i, a in ipairs({ "recv", name, "--timeout", "20", "--type", "5" }) do quoted[i] = H.shell_quote(a) end
        os.execute(string.format("( { %s %s %s 2>%s; echo $? > %s; } | sh -c 'echo $$ > %s' ) >/dev/null 2>&1 &",
          env, MQ, table.concat(quoted, " "), err, status, readerpid))
        -- The reader must be gone (its end of the pipe closed) before there is a message.
        reader_gone(readerpid)
        assert(q:send("second", 6))
        assert(q:send("the message", 5))
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

    it("waits for room to put a message back while another sender takes the room it made: "
      .. "exit 3 with the message put back or saved, never an internal error", function()
      q:close()
      local kq, key = H.fresh_key_queue()
      q = kq
      assert(q:set_capacity(20))
      assert(q:send("two\nlines", 1))           -- 9 bytes line framing refuses, taken first
      assert(q:send(string.rep("x", 11), 2))    -- and the queue is full
      -- A sender spinning on the other CPU usually takes the room recv makes before the
      -- put-back can: then the put-back must wait (in recv's coroutine it used to yield).
      local P = require "support.proc"
      local ready = P.flag()
      local sender = P.spawn(string.format([[
        local mq = require "mq"
        local core = require "mq.core"
        local q = assert(mq.open(%d, mq.O_WRONLY | mq.O_NONBLOCK))
        io.open(%q, "w"):close()
        local stop = core.monotonic() + 20
        repeat local sent = q:send("refilled!", 3) until sent or core.monotonic() > stop
      ]], key, ready))
      assert(P.wait_file(ready, 20), "the sender never started")
      local code, err = cli({ "recv", tostring(key), "--count", "1" }, "2>&1 >/dev/null")
      assert.equal(3, code, err)
      local got = {}
      local path = err:match("it could not be put back %(send_timeout [^\n]*timed out[^\n]*%), so it "
        .. "was saved to (%S+)\n$")
      if path then
        files[#files + 1] = path
        got[1] = { H.read_file(path), 1 }
      else
        assert.matches("; it was put back at the end of the queue\n$", err)
      end
      -- Taking what the queue holds makes room for the sender, whose message comes last.
      for data, t in q:messages(2) do got[#got + 1] = { data, t } end
      assert(sender:finish(10))
      table.sort(got, function(a, b) return a[2] < b[2] end)
      assert.same({ { "two\nlines", 1 }, { string.rep("x", 11), 2 }, { "refilled!", 3 } }, got)
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

    -- Started in the background, left to wait, then sent SIGINT: exit code and output.
    local function interrupt(...)
      local P = require "support.proc"
      local t0 = require("mq.core").monotonic()
      local child = P.spawn(assert(H.read_file(here .. "/../bin/mq")), nil, ...)
      assert(H.wait_until(function()
        return require("mq.core").monotonic() - t0 > 0.3 and P.doing(child.pid) == "S"
      end, 20), "mq never settled into its wait")
      os.execute("kill -INT " .. child.pid)
      local ok, code, out = child:finish(5)
      assert(ok ~= nil, "mq was still running 5 s after SIGINT")
      return code, out
    end

    it("exit 130 when send waits on a full queue, with or without --timeout, and nothing is sent", function()
      local name = H.name("cli-int")
      local q = assert(mq.new(name))
      assert(q:set_capacity(8))
      assert(q:send("12345678"))
      for _, extra in ipairs({ {}, { "--timeout", "inf" }, { "--timeout", "30" } }) do
        local args = { "send", name }
        table.move(extra, 1, #extra, 3, args)
        args[#args + 1] = "x"
        local code, out = interrupt(table.unpack(args))
        assert.equal(130, code, out)
        assert.equal("mq: interrupted\n", out)
      end
      assert.same({ "12345678", 1 }, { q:receive_timeout(0) })
      assert.is_nil(q:receive_timeout(0))
      q:close()
    end)

    it("exit 130 when recv --count waits for its next message, having written the ones before", function()
      local name = H.name("cli-int")
      local q = assert(mq.new(name))
      assert(q:send("first"))
      local code, out = interrupt("recv", name, "--count", "3", "--timeout", "inf")
      assert.equal(130, code, out)
      assert.equal("first\nmq: interrupted\n", out)
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

  -- Issue 12: --id, recv --count, --follow and framing, ls.

  -- bin/mq with stdout and stderr in files of their own; `input` is a file for stdin.
  -- Returns exit code, stdout, stderr.
  local function run(args, input)
    local out, err = file("run-out"), file("run-err")
    local code = cli(args, string.format("%s >%s 2>%s", input and ("< " .. H.shell_quote(input)) or "",
      H.shell_quote(out), H.shell_quote(err)))
    return code, H.read_file(out) or "", H.read_file(err) or ""
  end

  -- bin/mq started in the background (stdout and stderr to one file), for the specs that
  -- signal it or let it wait: the child object of support.proc.
  local function start(...)
    return require("support.proc").spawn(assert(H.read_file(here .. "/../bin/mq")), nil, ...)
  end

  -- The frames of --framing length output: { data, type } each (type nil without --show-type).
  -- Fails unless the output is a whole number of well-formed frames.
  local function length_frames(out, show_type)
    local frames, at = {}, 1
    while at <= #out do
      local t, len, data_at
      if show_type then
        t, len, data_at = out:match("^(%d+)\t(%d+)\n()", at)
      else
        len, data_at = out:match("^(%d+)\n()", at)
      end
      assert(len, "no frame header at byte " .. at)
      len = tonumber(len)
      assert.equal("\n", out:sub(data_at + len, data_at + len), "no newline after the data")
      frames[#frames + 1] = { out:sub(data_at, data_at + len - 1), t and tonumber(t) }
      at = data_at + len + 1
    end
    return frames
  end

  -- The queue's messages, taken in order.
  local function drain(q)
    local got = {}
    for data, t in q:messages() do got[#got + 1] = { data, t } end
    return got
  end

  describe("recv --count, --follow and framing", function()
    local name, q
    before_each(function()
      name = H.name("cli-frame")
      q = assert(mq.new(name))
    end)
    after_each(function() q:close() end)

    it("a plain recv still writes one message's bytes exactly, a newline at its end or inside kept, "
      .. "nothing added", function()
      assert(q:send("echoed\n"))
      assert(q:send("two\nlines"))
      local code, out, err = run({ "recv", name })
      assert.equal(0, code, err)
      assert.equal("echoed\n", out)
      code, out = run({ "recv", name })
      assert.equal(0, code)
      assert.equal("two\nlines", out)
    end)

    it("--count N writes N messages, each followed by a newline, and exits 0", function()
      for _, m in ipairs({ "one", "two", "three", "four" }) do assert(q:send(m)) end
      local code, out, err = run({ "recv", name, "--count", "3" })
      assert.equal(0, code, err)
      assert.equal("one\ntwo\nthree\n", out)
      assert.equal("", err)
      assert.same({ { "four", 1 } }, drain(q))
    end)

    it("--count N exits 1 when the queue runs empty first, having written what there was", function()
      assert(q:send("a"))
      assert(q:send("b"))
      local code, out, err = run({ "recv", name, "--count", "5" })
      assert.equal(1, code)
      assert.equal("a\nb\n", out)
      assert.matches("^mq recv: [^\n]*: the queue is empty; 2 of 5 messages written\n$", err)
    end)

    it("--count N --timeout S waits up to S seconds for each message: exit 0 when they come, "
      .. "1 when one does not", function()
      local child = H.spawn_lua(string.format("os.exit(os.execute(%q))",
        MQ .. " recv " .. H.shell_quote(name) .. " --count 2 --timeout 20"))
      assert(q:send("x", 3))
      assert(q:send("y", 4))
      local ok, code, out = child:wait(30)
      assert.is_true(ok, out)
      assert.equal(0, code)
      assert.equal("x\ny\n", out)
      assert(q:send("z"))
      local err
      code, out, err = run({ "recv", name, "--count", "2", "--timeout", "0.1" })
      assert.equal(1, code)
      assert.equal("z\n", out)
      assert.matches("^mq recv: [^\n]*: timed out after 0.1 s; 1 of 2 messages written\n$", err)
    end)

    it("--follow --timeout S drains the queue and exits 0 once S seconds pass with no message; "
      .. "1 if none came", function()
      for _, m in ipairs({ "a", "b", "c" }) do assert(q:send(m)) end
      local code, out, err = run({ "recv", name, "--follow", "--timeout", "0.2" })
      assert.equal(0, code, err)
      assert.equal("a\nb\nc\n", out)
      assert.equal("", err)
      code, out, err = run({ "recv", name, "--follow", "--timeout", "0.1" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^mq recv: [^\n]*: timed out after 0.1 s\n$", err)
      assert(q:send("d"))
      code, out = run({ "recv", name, "--follow", "--timeout", "0" })
      assert.equal(0, code)
      assert.equal("d\n", out)
      code, out, err = run({ "recv", name, "--follow", "--timeout", "0" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("the queue is empty\n$", err)
    end)

    it("--follow waits for messages sent later, with --type, until Ctrl-C: exit 130, each message "
      .. "written as it came", function()
      local P = require "support.proc"
      local child = start("recv", name, "--follow", "--type", "2")
      assert(q:send("a", 2))
      assert(H.wait_until(function() return child.output() == "a\n" end, 20), child.output())
      assert(q:send("skipped", 1))
      assert(q:send("b", 2))
      assert(H.wait_until(function() return child.output() == "a\nb\n" end, 20), child.output())
      assert(H.wait_until(function() return P.doing(child.pid) == "S" end, 20))
      os.execute("kill -INT " .. child.pid)
      local ok, code, out = child:finish(10)
      assert(ok ~= nil, "recv --follow was still running 10 s after SIGINT")
      assert.equal(130, code, out)
      assert.equal("a\nb\nmq: interrupted\n", out)
      assert.same({ { "skipped", 1 } }, drain(q))
    end)

    it("--follow --count N waits as long as it takes for N messages, then exits 0", function()
      local child = start("recv", name, "--follow", "--count", "2")
      assert(q:send("a"))
      assert(H.wait_until(function() return child.output() == "a\n" end, 20), child.output())
      assert(q:send("b"))
      local ok, code, out = child:finish(20)
      assert.is_true(ok, out)
      assert.equal(0, code)
      assert.equal("a\nb\n", out)
    end)

    it("--follow exits 3 when the queue is removed, having written every message before", function()
      local child = start("recv", name, "--follow")
      assert(q:send("a"))
      assert(H.wait_until(function() return child.output() == "a\n" end, 20), child.output())
      assert(mq.destroy(name))
      local ok, code, out = child:finish(20)
      assert(ok ~= nil, "recv --follow was still running 20 s after the queue went")
      assert.equal(3, code, out)
      assert.matches("^a\nmq recv: [^\n]*the queue was removed\n$", out)
    end)

    it("line framing writes a message that ends with its only newline as it is, and refuses one "
      .. "with a newline before its end: put back at the end of the queue, exit 3", function()
      for t, m in ipairs({ "plain", "echoed\n", "", "\n", "two\nlines", "after" }) do assert(q:send(m, t)) end
      local code, out, err = run({ "recv", name, "--follow", "--timeout", "0", "--show-type" })
      assert.equal(3, code)
      assert.equal("1\tplain\n2\techoed\n3\t\n4\t\n", out)
      assert.matches("^mq recv: the message %(9 bytes, type 5%): line framing cannot carry it: [^\n]*"
        .. "; it was put back at the end of the queue\n$", err)
      assert.same({ { "after", 6 }, { "two\nlines", 5 } }, drain(q))
    end)

    it("-0 ends each message with a NUL byte, writes one that ends with its only NUL as it is, and "
      .. "refuses one with a NUL before its end (exit 3)", function()
      for t, m in ipairs({ "a", "c string\0", "", "new\nline", "x\0y", "after" }) do assert(q:send(m, t)) end
      local code, out, err = run({ "recv", name, "-0", "--count", "6" })
      assert.equal(3, code)
      assert.equal("a\0c string\0\0new\nline\0", out)
      assert.matches("^mq recv: the message %(3 bytes, type 5%): nul framing cannot carry it", err)
      assert.same({ { "after", 6 }, { "x\0y", 5 } }, drain(q))
      assert(q:send("b"))
      code, out = run({ "recv", name, "--framing", "nul" })
      assert.equal(0, code)
      assert.equal("b\0", out)
    end)

    it("--framing length carries any bytes: size, newline, the bytes, newline; --show-type puts "
      .. "the type and a tab first", function()
      local msgmax = mq.limits().msgmax
      local msgs = { H.all_bytes(), "", "\n", "\0", "two\nlines\n\n", string.rep("x", msgmax) }
      for i, m in ipairs(msgs) do assert(q:send(m, i + 10)) end
      local code, out, err = run({ "recv", name, "--count", tostring(#msgs), "--framing", "length",
        "--show-type" })
      assert.equal(0, code, err)
      local expected = {}
      for i, m in ipairs(msgs) do expected[i] = { m, i + 10 } end
      assert.same(expected, length_frames(out, true))
      assert(q:send("hello", 3))
      code, out = run({ "recv", name, "--framing", "length" })
      assert.equal(0, code)
      assert.equal("5\nhello\n", out)
    end)

    it("frames a single message with --framing, -0 or --show-type alone (line framing), and takes "
      .. "just one", function()
      for _, m in ipairs({ "a", "b", "c", "d", "e" }) do assert(q:send(m, 9)) end
      for _, case in ipairs({ { { "--show-type" }, "9\ta\n" }, { { "--framing", "line" }, "b\n" },
                              { { "-0" }, "c\0" }, { { "--framing", "length" }, "1\nd\n" },
                              { { "-0", "--show-type" }, "9\te\0" } }) do
        local args = { "recv", name }
        table.move(case[1], 1, #case[1], 3, args)
        local code, out, err = run(args)
        assert.equal(0, code, err)
        assert.equal(case[2], out)
      end
      assert.equal(0, q:stat().messages)
    end)
  end)

  -- Issue 9 item 8, for every message of --follow and --count.
  describe("when standard output fails, recv --follow and --count", function()
    local name, q
    before_each(function()
      name = H.name("cli-fout")
      q = assert(mq.new(name))
      for t, m in ipairs({ "m1", "m2", "m3" }) do assert(q:send(m, t)) end
    end)
    after_each(function() q:close() end)

    it("exit 3 and put the message back (its type kept, at the end of the queue) when writing to "
      .. "/dev/full", function()
      local code, err = cli({ "recv", name, "--count", "3" }, "2>&1 >/dev/full")
      assert.equal(3, code, err)
      assert.matches("^mq recv: cannot write the message %(2 bytes, type 1%) to standard output: [^\n]*"
        .. "put back at the end of the queue\n$", err)
      assert.same({ { "m2", 2 }, { "m3", 3 }, { "m1", 1 } }, drain(q))
    end)

    it("exit 3 and put the message back when standard output is closed", function()
      local code, err = cli({ "recv", name, "--follow", "--framing", "length" }, "2>&1 >&-")
      assert.equal(3, code, err)
      assert.matches("put back at the end of the queue\n$", err)
      assert.same({ { "m2", 2 }, { "m3", 3 }, { "m1", 1 } }, drain(q))
    end)

    -- The reader takes the first message and exits; the second message finds no reader. recv
    -- takes type 2 only, so that m3 (type 3) is queued before m2 and m2 goes back behind it
    -- however the processes are scheduled.
    for _, how in ipairs({ "default", "ignore" }) do
      it(string.format("exit 3 and put back the second message when the pipe's reader left after the "
        .. "first (SIGPIPE %s in the parent)", how == "default" and "at its default" or "ignored"), function()
        assert.same({ { "m1", 1 }, { "m2", 2 }, { "m3", 3 } }, drain(q))
        assert(q:send("m1", 2))
        local status, err, readerpid, got = file("fstatus"), file("ferr"), file("freader"), file("fgot")
        local env = how == "default" and "env --default-signal=PIPE" or "env --ignore-signal=PIPE"
        os.execute(string.format("( { %s %s recv %s --follow --type 2 2>%s; echo $? > %s; } | "
          .. "sh -c 'echo $$ > %s; exec head -n 1 > %s' ) >/dev/null 2>&1 &",
          env, MQ, H.shell_quote(name), err, status, readerpid, got))
        reader_gone(readerpid)
        assert.equal("m1\n", H.read_file(got))
        assert(q:send("m3", 3))
        assert(q:send("m2", 2))
        local code = H.wait_until(function()
          local s = H.read_file(status)
          return s and tonumber(s:match("%d+"))
        end, 30)
        assert(code, "mq recv never finished")
        assert.equal(3, code, H.read_file(err))
        assert.matches("^mq recv: cannot write the message %(2 bytes, type 2%) to standard output: [^\n]*"
          .. "put back at the end of the queue\n$", H.read_file(err))
        assert.same({ { "m3", 3 }, { "m2", 2 } }, drain(q))
      end)
    end

    it("exit 3 and save the message to a file they name when they cannot put it back", function()
      q:close()
      local kq, key = H.fresh_key_queue("0644")
      q = kq
      assert(q:send("first", 5))
      assert(q:send("second", 6))
      local prefix = H.nobody()
      local bin = H.TMPDIR .. "/nobody-lib/mq-cli"
      assert(os.execute(string.format("cp %s %s && chmod a+rx %s", H.shell_quote(here .. "/../bin/mq"),
        H.shell_quote(bin), H.shell_quote(bin))))
      local _, code, err = H.sh(string.format("%s %s %s recv %d --follow --framing length 2>&1 >/dev/full",
        prefix, H.LUA, H.shell_quote(bin), key))
      assert.equal(3, code, err)
      local path = err:match("so it was saved to (%S+)\n$")
      assert(path, err)
      files[#files + 1] = path
      assert.matches("^mq recv: cannot write the message %(5 bytes, type 5%) to standard output: ", err)
      assert.equal("first", H.read_file(path))
      assert.same({ { "second", 6 } }, drain(q))
    end)
  end)

  describe("Ctrl-C during recv --follow of a busy stream", function()
    -- A producer sends m000000001, m000000002, ... as fast as the queue takes them; recv
    -- --follow gets SIGINT at a random moment while they flow. Every message must be on recv's
    -- output or still in the queue, once and in order: SIGINT must never land between taking a
    -- message and writing it. The producer runs on after recv has gone, so a message recv
    -- took and lost would show as a gap before what the queue holds.
    local P = require "support.proc"
    local TRIALS = P.scaled(6, 2)
    it(string.format("loses and repeats nothing (%d trials)", TRIALS), function()
      for trial = 1, TRIALS do
        local name = H.name("cli-busy")
        local q = assert(mq.new(name))
        local stop = P.flag()
        local producer = P.spawn(string.format([[
          local mq = require "mq"
          local q = assert(mq.open(%q, mq.O_WRONLY))
          for i = 1, math.huge do
            assert(q:send_timeout(string.format("m%%09d", i), -1))
            if i %% 256 == 0 and io.open(%q) then break end
          end
        ]], name, stop))
        local child = start("recv", name, "--follow")
        assert(H.wait_until(function() return #child.output() > 0 end, 20), "recv wrote nothing")
        require("mq.core").sleep(math.random() * 0.3)
        os.execute("kill -INT " .. child.pid)
        local ok, code, out = child:finish(20)
        assert(ok ~= nil, "recv --follow was still running 20 s after SIGINT")
        assert.equal(130, code, out:sub(-200))
        assert(H.wait_until(function() return q:stat().messages > 0 end, 20), "the producer stopped")
        H.write_file(stop, "")
        out = out:gsub("mq: interrupted\n$", "")
        local k = 0
        for line in out:gmatch("([^\n]*)\n") do
          k = k + 1
          if line ~= string.format("m%09d", k) then
            error(string.format("trial %d: line %d of recv's output is %q", trial, k, line))
          end
        end
        assert.equal(#out, 11 * k, "a partial line at the end of recv's output")
        -- The producer stops at its next multiple of 256: drain until it has, or it could block
        -- on a full queue.
        local i = k
        local function check_queue()
          for data in q:messages() do
            i = i + 1
            if data ~= string.format("m%09d", i) then
              error(string.format("trial %d: recv wrote %d messages, then the queue gave %q as message %d",
                trial, k, data, i))
            end
          end
        end
        local deadline = require("mq.core").monotonic() + 30
        repeat
          check_queue()
          local done = producer:wait(0.01)
        until done ~= nil or require("mq.core").monotonic() > deadline
        check_queue()
        os.remove(stop)
        assert.is_true((producer:finish(1)))
        assert.is_true(i > k)
        q:close()
      end
    end)
  end)

  describe("--id", function()
    it("send, stat, recv and rm reach a private queue by its id", function()
      local p = assert(mq.new(mq.PRIVATE))
      finally(function() p:destroy() end)
      local id = tostring(p:id())
      assert.equal(0, (cli({ "send", "--id", id, "--type", "4", "by id" })))
      local code, out = cli({ "stat", "--id", id })
      assert.equal(0, code, out)
      local st = parse_stat(out)
      assert.is_nil(st.name)
      assert.equal(id, st.id)
      assert.equal("0x00000000", st.key)
      assert.equal("1", st.messages)
      local err
      code, out, err = run({ "recv", "--id", id, "--show-type" })
      assert.equal(0, code, err)
      assert.equal("4\tby id\n", out)
      assert.equal(0, (cli({ "rm", "--id", id })))
      assert.equal("removed", select(3, p:stat()))
    end)

    it("recv --id puts a message it cannot write back into that queue, by id", function()
      local kq, key = H.fresh_key_queue()
      assert(kq:send("m1", 1))
      assert(kq:send("m2", 2))
      local code, err = cli({ "recv", "--id", tostring(kq:id()), "--count", "2" }, "2>&1 >/dev/full")
      assert.equal(3, code, err)
      assert.matches("put back at the end of the queue\n$", err)
      assert.same({ { "m2", 2 }, { "m1", 1 } }, drain(kq))
      kq:close()
      assert(mq.destroy(key))
    end)

    it("send --id --timeout exits 1 when the queue stays full", function()
      local kq = H.fresh_key_queue()
      assert(kq:set_capacity(4))
      assert(kq:send("1234"))
      local code, out = cli({ "send", "--id", tostring(kq:id()), "--timeout", "0.05", "x" })
      assert.equal(1, code)
      assert.matches("^mq send: .*timed out", out)
      kq:close()
    end)

    it("rm --id removes a named queue and leaves its key file, which mq rm NAME then removes", function()
      local q, name = H.fresh_name_queue("cli-id")
      local id = q:id()
      q:close()
      assert.equal(0, (cli({ "rm", "--id", tostring(id) })))
      assert.is_nil(mq.open_id(id))
      assert.is_true(H.exists(H.path(name)))
      assert.equal(0, (cli({ "rm", name })))
      assert.is_false(H.exists(H.path(name)))
    end)

    it("exit 3 for an id that is no queue (send, recv, stat); rm of it succeeds", function()
      local p = assert(mq.new(mq.PRIVATE))
      local id = tostring(p:id())
      assert(p:destroy())
      for _, args in ipairs({ { "send", "--id", id, "x" }, { "recv", "--id", id }, { "stat", "--id", id } }) do
        local code, out = cli(args)
        assert.equal(3, code, out)
        assert.matches("^mq " .. args[1] .. ": .*no such queue", out)
      end
      assert.equal(0, (cli({ "rm", "--id", id })))
    end)
  end)

  describe("permission denied exits 3", function()
    it("for send, recv, stat and rm, by key and by --id, on another user's 0600 queue", function()
      local kq, key = H.fresh_key_queue("0600")
      assert(kq:send("kept"))
      local prefix = H.nobody()
      local bin = H.TMPDIR .. "/nobody-lib/mq-cli"
      assert(os.execute(string.format("cp %s %s && chmod a+rx %s", H.shell_quote(here .. "/../bin/mq"),
        H.shell_quote(bin), H.shell_quote(bin))))
      local id = tostring(kq:id())
      for _, args in ipairs({ { "send", key, "x" }, { "recv", key }, { "stat", key }, { "rm", key },
                              { "send", "--id", id, "x" }, { "recv", "--id", id }, { "stat", "--id", id },
                              { "rm", "--id", id } }) do
        local quoted = {}
        for i, a in ipairs(args) do quoted[i] = H.shell_quote(a) end
        local _, code, out = H.sh(string.format("%s %s %s %s", prefix, H.LUA, H.shell_quote(bin),
          table.concat(quoted, " ")))
        assert.equal(3, code, table.concat(args, " ") .. ": " .. out)
        assert.matches("^mq " .. args[1] .. ": [^\n]*: Permission denied\n$", (out:gsub(
          "Operation not permitted", "Permission denied")))   -- EACCES, or EPERM for a removal
      end
      assert.same({ { "kept", 1 } }, drain(kq))
      kq:close()
    end)
  end)

  describe("ls", function()
    local HEADER = "key        id         owner      perms      used-bytes   messages     name"

    -- The rows of `mq ls` by id: { key =, owner =, perms =, bytes =, messages =, name = }.
    local function ls_rows(out)
      local rows, first = {}, true
      for line in out:gmatch("([^\n]*)\n") do
        if first then
          assert.equal(HEADER, line)
          first = false
        else
          local key, id, owner, perms, bytes, messages, name =
            line:match("^0x(%x%x%x%x%x%x%x%x) +(%d+) +(%S+) +([0-7]+) +(%d+) +(%d+) *(.*)$")
          assert(key, "not a row of mq ls: " .. line)
          rows[tonumber(id)] = { key = tonumber(key, 16), owner = owner, perms = perms,
            bytes = tonumber(bytes), messages = tonumber(messages), name = name ~= "" and name or nil }
        end
      end
      assert.is_false(first, "no header line")
      return rows
    end

    local me = select(3, H.sh("id -un")):match("%S+")

    it("shows, in ipcs's columns after a header line, a queue a Perl IPC::Msg peer made (no name) "
      .. "and the name of a queue mq made: exit 0", function()
      if not H.sh("perl -MIPC::Msg -e 1") then
        pending("perl with core IPC::Msg is not installed")
        return
      end
      local key = H.track(H.unused_key())
      local ok, _, out = H.sh(string.format([[perl -MIPC::SysV=IPC_CREAT -MIPC::Msg -e '
        my $q = IPC::Msg->new(%d, IPC_CREAT | 0640) or die "msgget: $!";
        $q->snd(3, "hello") or die "msgsnd: $!";
        print $q->id, "\n";']], key))
      assert(ok, out)
      local perl_id = assert(tonumber(out:match("^(%d+)\n$")), out)
      local q, name = H.fresh_name_queue("cli-ls")
      assert(q:send("abc"))
      local code, err
      code, out, err = run({ "ls" })
      assert.equal(0, code, err)
      local rows = ls_rows(out)
      assert.same({ key = key, owner = me, perms = "640", bytes = 5, messages = 1 }, rows[perl_id])
      assert.same({ key = q:key() & 0xffffffff, owner = me, perms = "600", bytes = 3, messages = 1,
                    name = name }, rows[q:id()])
      -- The same as ipcs -q says.
      for _, id in ipairs({ perl_id, q:id() }) do
        local i = H.ipcs_queue(id)
        if i then   -- gone already only if another run removed it: not ours to check
          assert.same({ i.key, string.format("%o", i.perms), i.bytes, i.messages },
            { rows[id].key, rows[id].perms, rows[id].bytes, rows[id].messages })
        end
      end
      q:close()
    end)

    it("--named lists only the queues that have a name", function()
      local q, name = H.fresh_name_queue("cli-ls")
      local kq = H.fresh_key_queue()
      local code, out, err = run({ "ls", "--named" })
      assert.equal(0, code, err)
      local rows = ls_rows(out)
      assert.equal(name, rows[q:id()].name)
      assert.is_nil(rows[kq:id()])
      for _, r in pairs(rows) do assert.is_string(r.name) end
      q:close()
      kq:close()
    end)

    it("shows a private queue with key 0x00000000, and a name's control characters, backslash and "
      .. "end spaces as \\xHH", function()
      local p = assert(mq.new(mq.PRIVATE))
      finally(function() p:destroy() end)
      local odd = " odd\\name\nwith\tcontrols "
      local oq = assert(mq.new(H.track(odd)))
      local code, out, err = run({ "ls" })
      assert.equal(0, code, err)
      local rows = ls_rows(out)
      assert.equal(0, rows[p:id()].key)
      assert.is_nil(rows[p:id()].name)
      assert.equal("\\x20odd\\x5cname\\x0awith\\x09controls\\x20", rows[oq:id()].name)
      oq:close()
    end)

    it("exits 3 when it cannot write its output, or read the kernel's table", function()
      local code, out = cli({ "ls" }, "2>&1 >/dev/full")
      assert.equal(3, code, out)
      assert.matches("^mq ls: cannot write to standard output", out)
      -- /proc/sysvipc hidden under an empty tmpfs, in a mount namespace of its own.
      if not H.sh("unshare -m true") then return end
      local _, code2, out2 = H.sh(string.format("unshare -m sh -c %s",
        H.shell_quote("mount -t tmpfs none /proc/sysvipc && exec " .. MQ .. " ls")))
      assert.equal(3, code2, out2)
      assert.matches("^mq ls: .*/proc/sysvipc/msg", out2)
    end)
  end)
end)
