-- Robustness at the edges (issue 9, items 3, 5, 6, 11, 12, 13 and 14): the message buffer
-- counts for the garbage collector, the embedding example survives many arguments, the
-- internal wait entry points refuse nonsense instead of spinning for ever, closed handles
-- name their own operation, key file errors name the queue, and the README says what it
-- must about perms and set_capacity.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local ROOT = here .. "/.."

-- Run Lua source in a child lua5.4 under `timeout` (exit 124 when it runs out of time);
-- returns success, exit code, output. `env` is a shell prefix such as "TMPDIR=/x".
local function run_child(seconds, env, source, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  return H.sh(string.format("%s timeout -k 5 %d %s %s %s", env or "", seconds, H.LUA,
    H.script(source), table.concat(args, " ")))
end

describe("the message buffer", function()
  after_each(H.cleanup)

  -- The child: a 300 MiB Lua heap of live strings, then handles that each send and receive
  -- (so each grows a buffer of at least 8 KiB) dropped without close. With the buffers
  -- invisible to the collector, its next cycle waits for the heap to double and the buffers
  -- pile up (15c873e: +398 MiB); counted, they go with their handles.
  local CHILD = [[
    local mq = require "mq"
    local key, n, mib = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
    local function rss()
      local f = assert(io.open("/proc/self/status")); local s = f:read("a"); f:close()
      return tonumber(s:match("VmRSS:%s*(%d+)"))
    end
    local heap, chunk = {}, string.rep("h", 1 << 20)
    for i = 1, mib do heap[i] = chunk .. i end        -- distinct strings, all live
    chunk = nil
    for _ = 1, 1000 do local q = assert(mq.open(key)); assert(q:send("x")); assert(q:receive()) end
    collectgarbage(); collectgarbage()
    local rss0 = rss()
    for _ = 1, n do
      local q = assert(mq.open(key))
      assert(q:send("x")); assert(q:receive())
    end
    print(string.format("GROWTH %d", (rss() - rss0) // 1024))
    assert(#heap == mib)
  ]]

  it("counts for the collector: 100000 dropped handles with buffers leave RSS within 200 MiB "
    .. "of its start under a 300 MiB Lua heap", function()
    if P.MEMTOOL then
      pending("RSS means nothing under " .. P.MEMTOOL)
      return
    end
    local _, key = H.fresh_key_queue()
    local ok, code, out = run_child(60, nil, CHILD, key, 100000, 300)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    local growth = assert(tonumber(out:match("GROWTH (%-?%d+)")), out)
    assert(growth < 200, string.format("RSS grew by %d MiB over 100000 handles", growth))
  end)
end)

describe("examples/embed/host.c", function()
  local dir, host
  setup(function()
    -- Build the host as the Makefile does, into a private directory: the core's sources
    -- directly (no libmq.a in the tree needed) and the Lua layer compiled in.
    dir = H.TMPDIR .. string.format("/embed-%d-%d", H.pid, math.random(1 << 30))
    assert(os.execute("mkdir -p " .. H.shell_quote(dir)))
    local cflags = select(3, H.sh("pkg-config --cflags lua5.4 2>/dev/null")):gsub("%s+$", "")
    local libs = select(3, H.sh("pkg-config --libs lua5.4 2>/dev/null")):gsub("%s+$", "")
    if libs == "" then libs = "-llua5.4" end
    if cflags == "" then cflags = "-I/usr/include/lua5.4" end
    local q = H.shell_quote
    local ok, _, out = H.sh(string.format("cd %s && %s tools/lua2c.lua mq=lua/mq.lua mq.loop=lua/mq/loop.lua > %s",
      q(ROOT), H.LUA, q(dir .. "/luamq_chunks.c")))
    assert(ok, out)
    host = dir .. "/embed-host"
    ok, _, out = H.sh(string.format("%s -std=c99 -D_GNU_SOURCE -pthread -O0 %s -I%s -o %s %s %s %s/csrc/*.c %s",
      os.getenv("TEST_CC") or "cc", cflags, q(ROOT .. "/csrc"), q(host),
      q(ROOT .. "/examples/embed/host.c"), q(dir .. "/luamq_chunks.c"), q(ROOT), libs))
    assert(ok, "cannot build the embed host: " .. out)
    H.write_file(dir .. "/args.lua", [[
      local n = select("#", ...)
      for i = 1, n do assert(select(i, ...) == "arg" .. i, "argument " .. i .. " damaged") end
      print("ARGS " .. n)
      return true
    ]])
  end)
  teardown(function()
    if dir then os.execute("rm -rf " .. H.shell_quote(dir)) end
  end)

  for _, n in ipairs({ 45, 1000 }) do
    it(string.format("passes %d command-line arguments to the script intact, without a crash", n), function()
      local args = {}
      for i = 1, n do args[i] = "arg" .. i end
      local ok, code, out = H.sh(string.format("timeout -k 2 5 %s %s %s", H.shell_quote(host),
        H.shell_quote(dir .. "/args.lua"), table.concat(args, " ")))
      assert(ok, string.format("the host exited %s: %s", tostring(code), out))
      assert.equal("ARGS " .. n .. "\n", out)
    end)
  end
end)

describe("the internal wait entry points of mq.core", function()
  after_each(H.cleanup)

  -- arg: key, the call to make. Prints RETURNED or RAISED.
  local NAN_CHILD = [[
    local mq = require "mq"
    local core = require "mq.core"
    local q = assert(mq.open(tonumber(arg[1])))
    local ok, r1, r2 = pcall(function()
      if arg[2] == "receive" then return core.wait_receive(q, nil, nil, "x", 0/0, 3, 50e-6, 1e-3) end
      return core.wait_send(q, "d", nil, "x", 0/0, 3, 50e-6, 1e-3)
    end)
    print(ok and "RETURNED" or "RAISED", tostring(r1), tostring(r2))
  ]]

  it("wait_receive(q, nil, nil, 'x', NaN, 3, 50e-6, 1e-3) on an empty queue returns or raises "
    .. "within 2 s", function()
    local _, key = H.fresh_key_queue()
    local ok, code, out = run_child(2, nil, NAN_CHILD, key, "receive")
    assert(code ~= 124, "still waiting after 2 s")
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.truthy(out:match("^RETURNED") or out:match("^RAISED"), out)
  end)

  it("wait_send(q, 'd', nil, 'x', NaN, 3, 50e-6, 1e-3) on a full queue returns or raises "
    .. "within 2 s", function()
    local q, key = H.fresh_key_queue()
    assert(q:set_capacity(8))
    assert(q:send("12345678"))
    local ok, code, out = run_child(2, nil, NAN_CHILD, key, "send")
    assert(code ~= 124, "still waiting after 2 s")
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    assert.truthy(out:match("^RETURNED") or out:match("^RAISED"), out)
    assert.equal(1, q:stat().messages)
    q:close()
  end)

  it("return or raise within 2 s for negative, NaN, infinite and huge spins, min and max "
    .. "(an interval timer kills the child on the first case that hangs)", function()
    local q, key = H.fresh_key_queue()
    assert(q:set_capacity(8))
    local full = select(2, H.fresh_key_queue())
    local fq = assert(mq.open(full))
    assert(fq:set_capacity(8))
    assert(fq:send("12345678"))
    fq:close()
    local cpath = select(2, P.native())
    local ok, code, out = run_child(60, nil, [[
      package.cpath = arg[3] .. ";" .. package.cpath
      local tp = require "testproc"
      local mq = require "mq"
      local core = require "mq.core"
      local empty, full = assert(mq.open(tonumber(arg[1]))), assert(mq.open(tonumber(arg[2])))
      local NAN, INF = 0/0, math.huge
      local spins = { -1, 0, NAN, INF, -INF, math.mininteger, math.maxinteger, 1e300 }
      local steps = { 0, -1, -0.0, NAN, INF, -INF, 1e300, 1e-300, math.mininteger }
      local cases = {}
      for _, s in ipairs(spins) do cases[#cases + 1] = { s, 50e-6, 1e-3 } end
      for _, m in ipairs(steps) do
        cases[#cases + 1] = { 3, m, 1e-3 }
        cases[#cases + 1] = { 3, 50e-6, m }
        cases[#cases + 1] = { 3, m, m }
      end
      io.stdout:setvbuf("no")
      for i, c in ipairs(cases) do
        for _, w in ipairs({ { core.wait_receive, empty, nil }, { core.wait_send, full, "d" } }) do
          print("CASE", i, tostring(c[1]), tostring(c[2]), tostring(c[3]))
          assert(tp.setitimer(2))            -- SIGALRM's default action ends a hang here
          pcall(w[1], w[2], w[3], nil, "x", core.monotonic() + 0.005, c[1], c[2], c[3])
          assert(tp.setitimer(0))
        end
      end
      print("DONE " .. #cases)
    ]], key, full, cpath)
    assert(ok and out:match("DONE %d+\n$"),
      string.format("child exited %s; the last case is the one that hung:\n%s", tostring(code),
        out:match("[^\n]*\n?[^\n]*$")))
    q:close()
  end)
end)

describe("a closed handle", function()
  after_each(H.cleanup)

  local calls = {
    { "receive_timeout", "q:receive_timeout(NaN)", function(q) return q:receive_timeout(0 / 0) end },
    { "send_timeout", "q:send_timeout('x', NaN)", function(q) return q:send_timeout("x", 0 / 0) end },
    { "messages", "q:messages()", function(q) return q:messages() end },
  }
  for _, c in ipairs(calls) do
    it(string.format("fails %s with `closed` and a message naming %s, not id", c[2], c[1]), function()
      local q = H.fresh_key_queue()
      assert(q:close())
      local msg = H.fails("closed", c[3](q))
      assert.equal(c[1] .. " mq.queue(closed): the handle is closed", msg)
    end)
  end
end)

describe("a key file that cannot be made or read", function()
  local file
  before_each(function()
    file = H.path(string.format("not-a-dir-%d-%d", H.pid, math.random(1 << 30)))
    H.write_file(file, "a regular file as TMPDIR\n")
  end)
  after_each(function() os.remove(file) end)

  -- Runs mq.<fn>(name) with TMPDIR a regular file; prints the result triple.
  local CHILD = [==[
    local mq = require "mq"
    local r, msg, code = mq[arg[1]](arg[2])
    print(tostring(r == true and true or r and "handle" or nil) .. "|" .. tostring(msg) .. "|" .. tostring(code))
  ]==]
  local function call(fn, name)
    local ok, code, out = run_child(10, "TMPDIR=" .. H.shell_quote(file), CHILD, fn, name)
    assert(ok, string.format("child exited %s: %s", tostring(code), out))
    local r, msg, c = out:match("^(.-)|(.*)|(.-)\n$")
    return r, msg, c
  end

  it("names the queue as mq.queue(name=...) in mq.new's message, not the key file's path", function()
    local r, msg = call("new", "jobs")
    assert.equal("nil", r)
    assert.matches("^mq%.new mq%.queue%(name=jobs%): ", msg)
    assert.not_matches(file, msg, 1, true)
  end)

  for _, fn in ipairs({ "new", "open" }) do
    it(string.format("gives mq.%s(name) the code `notfound`, not `invalid`, when TMPDIR is a regular file", fn),
      function()
        local r, msg, code = call(fn, "jobs")
        assert.equal("nil", r)
        assert.equal("notfound", code, msg)
      end)
  end

  it("gives mq.destroy(name) no `invalid` when TMPDIR is a regular file (success or `notfound`)", function()
    local r, msg, code = call("destroy", "jobs")
    assert(r == "true" or code == "notfound", string.format("got %s, %s, %s", r, msg, code))
  end)
end)

describe("README", function()
  local readme
  setup(function() readme = assert(H.read_file(ROOT .. "/README.md")) end)

  -- Every file under examples/ and the README, as {path, text}.
  local function documents()
    local docs = { { "README.md", readme } }
    local p = assert(io.popen("find " .. H.shell_quote(ROOT .. "/examples") .. " -type f "
      .. "\\( -name '*.lua' -o -name '*.md' -o -name run -o -name '*.sh' -o -name '*.c' \\) | sort"))
    for path in p:lines() do docs[#docs + 1] = { path:sub(#ROOT + 2), assert(H.read_file(path)) } end
    p:close()
    return docs
  end

  it("and the examples never pass a decimal integer literal as perm (mq.new(x, 400) means 0620)", function()
    local found = {}
    for _, d in ipairs(documents()) do
      for call in d[2]:gsub("mq%.sysv%.create", "mq.new"):gmatch("mq%.new%b()") do
        -- the second argument, when it is a bare decimal number (0x.. and strings are fine)
        local perm = call:match("^mq%.new%(.*,%s*(%d+)%s*%)$")
        if perm then found[#found + 1] = d[1] .. ": " .. call end
      end
      for perm in d[2]:gmatch("%-%-perm[ =]+(%S+)") do
        if not perm:match("^[0-7]+$") then found[#found + 1] = d[1] .. ": --perm " .. perm end
      end
    end
    assert(#found == 0, "perm given as a decimal integer:\n" .. table.concat(found, "\n"))
  end)

  it("leads mq.new's perm with the string form (\"0640\") and says why (Lua has no octal literals)", function()
    local row = assert(readme:match("\n| `mq%.new%(where %[, perm%]%)` |[^\n]*"), "no mq.new row")
    local s = row:find('"0%d%d%d"')
    local i = row:find("tonumber%(") or row:find("0x%x")
    assert(s, "no string perm in the mq.new row")
    assert(not i or s < i, "the mq.new row shows an integer perm before the string form")
    assert(readme:lower():find("octal literal", 1, true), "the README does not say that Lua has no octal literals")
  end)

  it("says that set_capacity's IPC_STAT/IPC_SET can undo a concurrent chmod or chown by the owner", function()
    local found
    for para in (readme .. "\n\n"):gmatch("(.-)\n\n") do
      if para:find("set_capacity", 1, true) and para:find("chmod", 1, true) then found = para end
    end
    assert(found, "no paragraph or table row mentions set_capacity together with chmod")
  end)
end)
