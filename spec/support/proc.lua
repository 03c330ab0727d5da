-- Test-only process helpers for the load, fault and security specs (never shipped).
-- Children are lua5.4 processes started through sh; each child object knows the pid of
-- its lua5.4 process, so a spec can signal it, see it blocked in a system call, or kill
-- it when it hangs.

local H = require "helpers"

local P = {}

-- busted reloads this module for every spec file (insulation), so a counter alone would
-- repeat names across files: add the load time and skip names already taken.
local core = require "mq.core"
local nonce = string.format("%x", math.floor(core.monotonic() * 1e6))
local seq = 0
local function tmpname(tag)
  local name
  repeat
    seq = seq + 1
    name = string.format("%s/%s-%d-%s-%d", H.TMPDIR, tag, H.pid, nonce, seq)
  until not H.exists(name .. ".pid") and not H.exists(name)
  return name
end

-- System call numbers of msgsnd/msgrcv, to see a child blocked in one (/proc/PID/syscall).
local SYSCALLS = {
  x86_64 = { msgsnd = 69, msgrcv = 70 },
  aarch64 = { msgsnd = 189, msgrcv = 188 },
}
local machine = (select(3, H.sh("uname -m")) or ""):match("%S+")
P.SYSCALL = SYSCALLS[machine]


-- Start Lua source in a background lua5.4. opts.prefix is a command put before lua5.4
-- (e.g. H.nobody()), opts.before shell code run before it; opts.inline passes the source
-- with -e instead of a script file (for a child that cannot read this run's private
-- TMPDIR). Extra arguments reach the child's `arg`.
function P.spawn(source, opts, ...)
  opts = opts or {}
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  local base = tmpname("child")
  local out, status, pidf = base .. ".out", base .. ".status", base .. ".pid"
  local prog
  if opts.inline then
    prog = "-e " .. H.shell_quote(source)
    if #args > 0 then prog = prog .. " - " .. table.concat(args, " ") end
  else
    prog = H.script(source) .. " " .. table.concat(args, " ")
  end
  -- `exec` makes the pid in the pid file that of lua5.4 itself (setpriv execs too).
  -- opts.before is shell code run first in the child's shell (e.g. "umask 000;").
  local run = "(sh -c %s > %s 2>&1 & echo $! > %s.tmp && mv %s.tmp %s; wait $!; echo $? > %s.tmp && mv %s.tmp %s) &"
  local cmd = string.format("%s exec %s %s %s", opts.before or "", opts.prefix or "", H.LUA, prog)
  os.execute(string.format(run, H.shell_quote(cmd), out, pidf, pidf, pidf, status, status, status))
  local child = { out = out }
  child.pid = H.wait_until(function()
    local s = H.read_file(pidf)
    return s and tonumber(s:match("%d+"))
  end, 10)
  assert(child.pid, "child did not start")

  -- wait([timeout]) -> ok, exit code, output; or nil, "timeout", output (child left running).
  function child.wait(_, timeout)
    local code = H.wait_until(function()
      local s = H.read_file(status)
      return s and tonumber(s:match("%d+"))
    end, timeout or 30)
    if not code then return nil, "timeout", H.read_file(out) or "" end
    return code == 0, code, H.read_file(out) or ""
  end

  function child.output() return H.read_file(out) or "" end

  function child.kill(_, sig)
    os.execute(string.format("kill -%s %d 2>/dev/null", sig or "KILL", child.pid))
  end

  -- Wait for the child to finish; kill it if it has not after `timeout` seconds.
  function child.finish(self, timeout)
    local ok, code, output = self:wait(timeout)
    if ok == nil then
      self:kill()
      self:wait(10)
    end
    return ok, code, output
  end

  return child
end

-- What /proc says pid is doing: state letter, syscall number (nil when running), wchan.
function P.doing(pid)
  local st = H.read_file("/proc/" .. pid .. "/stat")
  if not st then return nil end
  local state = st:match("^%d+ %b() (%a)")
  local sc = H.read_file("/proc/" .. pid .. "/syscall") or ""
  local wchan = H.read_file("/proc/" .. pid .. "/wchan") or ""
  return state, tonumber(sc:match("^(%-?%d+)")), wchan
end

-- Wait until pid sleeps inside the msgsnd or msgrcv system call ("msgsnd"/"msgrcv").
function P.wait_blocked(pid, call, timeout)
  return H.wait_until(function()
    local state, nr, wchan = P.doing(pid)
    if state ~= "S" then return false end
    if P.SYSCALL then return nr == P.SYSCALL[call] end
    return wchan:find(call, 1, true) ~= nil
  end, timeout or 10)
end

-- A file the child creates to say it reached a point; wait_file waits for it.
function P.flag()
  return tmpname("flag")
end

function P.wait_file(path, timeout)
  return H.wait_until(function() return H.exists(path) end, timeout or 10)
end

-- Compile the test-only C module spec/support/testproc.c (once per process) into a
-- private directory and load it. Returns the module and the package.cpath entry a child
-- needs to load it too.
local native, native_cpath
function P.native()
  if native then return native, native_cpath end
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
  local dir = tmpname("native")
  assert(os.execute("mkdir -p " .. H.shell_quote(dir)))
  local cflags = select(3, H.sh("pkg-config --cflags lua5.4 2>/dev/null")) or ""
  if not cflags:match("%S") then cflags = "-I/usr/include/lua5.4" end
  local cmd = string.format("%s -std=c99 -D_GNU_SOURCE -O1 -shared -fPIC -Wall -Wextra -Werror %s -o %s %s",
    os.getenv("TEST_CC") or "cc", cflags:gsub("%s+$", ""), H.shell_quote(dir .. "/testproc.so"),
    H.shell_quote(here .. "/testproc.c"))
  local ok, _, out = H.sh(cmd)
  assert(ok, "cannot build spec/support/testproc.c: " .. out)
  native_cpath = dir .. "/?.so"
  local saved = package.cpath
  package.cpath = native_cpath .. ";" .. saved
  native = require "testproc"
  package.cpath = saved
  return native, native_cpath
end

-- Number of open file descriptors of this process.
function P.fd_count()
  return (assert(P.native().fd_count()))
end

-- Resident set size of this process in KiB (VmRSS of /proc/self/status).
function P.rss_kb()
  local s = H.read_file("/proc/self/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Multiplier for iteration counts: 1 normally, smaller under valgrind (MQ_TEST_SCALE).
P.SCALE = tonumber(os.getenv("MQ_TEST_SCALE") or "") or 1
function P.scaled(n, min)
  return math.max(min or 1, math.floor(n * P.SCALE))
end

-- Set when the suite runs under ASan or valgrind, whose allocators make RSS meaningless.
P.MEMTOOL = os.getenv("MQ_MEMTOOL")

return P
