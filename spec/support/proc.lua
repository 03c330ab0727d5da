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

-- System call numbers of msgsnd/msgrcv, to see a child blocked in one (/proc/PID/syscall),
-- and of ppoll, where a timed receive sleeps on its readiness helpers' fds.
local SYSCALLS = {
  x86_64 = { msgsnd = 69, msgrcv = 70, ppoll = 271 },
  aarch64 = { msgsnd = 189, msgrcv = 188, ppoll = 73 },
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

-- Whether pid's main thread sleeps in ppoll on at least one fd (a timed receive waiting
-- on readiness helpers, or mq.loop blocking); a back-off sleep polls no fd.
-- Where /proc/PID/syscall cannot be read (another architecture, or a ptrace policy that
-- hides a parent from its child) a sleeping main thread has to do.
function P.in_ppoll(pid)
  local state = P.doing(pid)
  if state ~= "S" then return false end
  local sc = H.read_file("/proc/" .. pid .. "/syscall")
  if not P.SYSCALL or not sc or sc == "" then return true end
  local nr, _, nfds = sc:match("^(%-?%d+) (%S+) (%S+)")
  return tonumber(nr) == P.SYSCALL.ppoll and (tonumber(nfds) or 0) >= 1
end

-- How many fds pid's main thread polls in ppoll, or nil when it is not in ppoll.
function P.ppoll_nfds(pid)
  local sc = H.read_file("/proc/" .. pid .. "/syscall") or ""
  local nr, _, nfds = sc:match("^(%-?%d+) (%S+) (%S+)")
  if not P.SYSCALL or tonumber(nr) ~= P.SYSCALL.ppoll then return nil end
  return tonumber(nfds)
end

-- Wait until pid sleeps in ppoll on readiness fds; true, or nil on timeout.
function P.wait_in_ppoll(pid, timeout)
  return H.wait_until(function() return P.in_ppoll(pid) end, timeout or 20)
end

-- How many threads process pid (default: this one) has (Threads: of /proc/PID/status).
function P.threads(pid)
  local s = H.read_file("/proc/" .. (pid or "self") .. "/status") or ""
  return tonumber(s:match("Threads:%s*(%d+)"))
end

-- How many of mq's readiness helper threads process pid (default: this one) runs: they
-- name themselves "mq-ready", which tells them from a runtime's own (TSan's background
-- thread, for one).
function P.helpers(pid)
  return (assert(P.native().threads_named(pid or 0, "mq-ready")))
end

-- How many helpers of pid (default: this process) are parked: kept by a handle between two
-- waits, taking nothing ("mq-parked").
function P.parked(pid)
  return (assert(P.native().threads_named(pid or 0, "mq-parked")))
end

-- Wait until pid (default: this process) has exactly n helper threads alive, watching or
-- parked; true, or nil on timeout.
function P.wait_alive(n, pid, timeout)
  return H.wait_until(function() return P.helpers(pid) + P.parked(pid) == n end, timeout or 10)
end

-- Wait until pid (default: this process) runs exactly n helpers (a new one names itself
-- once it runs); true, or nil on timeout.
function P.wait_helpers(n, pid, timeout)
  return H.wait_until(function() return P.helpers(pid) == n end, timeout or 10)
end

-- Assert that no readiness helper of this process is left watching. pthread_join returns
-- when a helper's tid is cleared, a moment before the kernel drops the thread: wait for the
-- count, never time it. Call it after a wait ends and before its handle is closed (closing
-- would join a leftover and hide it).
function P.no_helper_left()
  assert(P.wait_helpers(0), "a wait left " .. P.helpers() .. " helper thread(s) running")
end

-- The after_each of the waiting specs: mq's own waiter and poll settings back, no helper
-- left behind, every queue the spec made gone.
function P.reset_waiting()
  local mq = require "mq"
  mq.set_waiter(nil)
  mq.set_poll { spins = 3, min = 50e-6, max = 1e-3, threads = true }
  P.no_helper_left()
  H.cleanup()
end

-- The thread ids of this process's helpers (named `name`, default "mq-ready").
function P.helper_tids(name)
  local p = io.popen("grep -lx " .. (name or "mq-ready") .. " /proc/" .. P.native().getpid()
    .. "/task/*/comm 2>/dev/null")
  local tids = {}
  for line in p:lines() do
    local tid = tonumber(line:match("/task/(%d+)/comm$"))
    if tid then tids[#tids + 1] = tid end
  end
  p:close()
  return tids
end

-- Fork; the child runs fn() and leaves with _exit (0 when fn returned, 1 after printing
-- its error): it never returns into busted. Returns the child's pid; P.reap(pid) waits.
-- Inside a busted test, a child still running when the test ends (it failed before
-- reaping it) is killed then, so that nothing outlives the test.
function P.fork(fn)
  local tp = P.native()
  local pid = assert(tp.fork())
  if pid == 0 then
    local ok, err = xpcall(fn, debug.traceback)
    if not ok then io.stderr:write("forked child: ", tostring(err), "\n") end
    io.stderr:flush()
    tp._exit(ok and 0 or 1)
  end
  if type(finally) == "function" then
    finally(function()
      if tp.waitpid(pid, true) == 0 then
        tp.kill(pid, tp.SIGKILL)
        tp.waitpid(pid)
      end
    end)
  end
  return pid
end

-- Fork a child that waits until this process sleeps in ppoll on readiness fds, then runs
-- fn(): a message "sent while the parent waits".
function P.fork_when_waiting(fn)
  local parent = P.native().getpid()
  return P.fork(function()
    assert(P.wait_in_ppoll(parent), "the parent never waited in ppoll")
    fn()
  end)
end

-- Wait for a forked child (at most `timeout` seconds, then it is killed); its exit code,
-- or nil, "timeout".
function P.reap(pid, timeout)
  local tp = P.native()
  local done = H.wait_until(function()
    local r, code = tp.waitpid(pid, true)
    return r ~= 0 and { code }
  end, timeout or 30)
  if done then return done[1] end
  tp.kill(pid, tp.SIGKILL)
  tp.waitpid(pid)
  return nil, "timeout"
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
