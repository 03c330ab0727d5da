-- Test-only helpers for the multi-process name specs (never shipped): groups of lua5.4
-- children that start together and stop at a deadline, logging to files; the jitter shim
-- (spec/support/jitter.c) that widens race windows; and the quiet-state checks against
-- /proc/sysvipc/msg.

local mq = require "mq"
local core = require "mq.core"
local H = require "helpers"
local P = require "support.proc"

local R = {}

R.UID = tonumber((H.read_file("/proc/self/status") or ""):match("\nUid:%s*(%d+)"))

-- Seconds a race runs: `seconds` scaled by MQ_TEST_SCALE, never below `min` (default 0.3).
function R.duration(seconds, min)
  return math.max(min or 0.3, seconds * P.SCALE)
end

-- Compile spec/support/jitter.c once per process; returns the path of the shared object.
local jitter_so
function R.jitter_so()
  if jitter_so then return jitter_so end
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
  local dir = P.flag()
  assert(os.execute("mkdir -p " .. H.shell_quote(dir)))
  local so = dir .. "/jitter.so"
  local cmd = string.format("%s -std=c99 -D_GNU_SOURCE -O1 -shared -fPIC -Wall -Wextra -Werror -o %s %s -ldl",
    os.getenv("TEST_CC") or "cc", H.shell_quote(so), H.shell_quote(here .. "/jitter.c"))
  local ok, _, out = H.sh(cmd)
  assert(ok, "cannot build spec/support/jitter.c: " .. out)
  jitter_so = so
  return so
end

-- The calls that look at a file, for R.jitter's `calls`.
R.LOOKS = "lstat,lstat64,stat,stat64,fstatat,fstatat64,statx"

-- The `env ...` prefix that runs a child with the jitter shim: `us` the largest delay in
-- microseconds, `calls` an optional comma-separated list of the calls to delay. Keeps an
-- LD_PRELOAD already set (the ASan runtime must stay first). MQ_TEST_JITTER=0 in the
-- environment runs every race without the shim (to see how often a bug shows unaided).
function R.jitter(us, calls)
  if not us or us <= 0 or os.getenv("MQ_TEST_JITTER") == "0" then return "" end
  local pre = os.getenv("LD_PRELOAD")
  local preload = (pre and pre ~= "") and (pre .. ":" .. R.jitter_so()) or R.jitter_so()
  return string.format("env LD_PRELOAD=%s MQ_JITTER_US=%d MQ_JITTER_CALLS=%s ",
    H.shell_quote(preload), us, H.shell_quote(calls or ""))
end

-- Prepended to every child's source. arg[1] is its log file, arg[2] the start file the
-- parent writes once every child is running ("T0 T1": start and stop, CLOCK_MONOTONIC
-- seconds, the same clock in every process); the child sleeps until T0. Its own arguments
-- follow from arg[3]. say(...) logs one tab-separated
-- line (buffered: a file, never a pipe nobody reads); finish() logs "done" and exits.
R.PRELUDE = [[
local mq = require "mq"
local core = require "mq.core"
local now, sleep = core.monotonic, core.sleep
local log = assert(io.open(arg[1], "w"))
log:setvbuf("full")
local function say(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  log:write(table.concat(t, "\t", 1, t.n), "\n")
end
local T0, T1
do
  local give_up = now() + 60
  repeat
    local f = io.open(arg[2])
    if f then T0, T1 = f:read("n", "n"); f:close() end
    if not T1 then
      if now() > give_up then say("no start file"); log:close(); os.exit(1) end
      sleep(0.001)
    end
  until T1
end
if T0 > now() then sleep(T0 - now()) end
math.randomseed(tonumber(io.open("/proc/self/stat"):read("l"):match("^%d+")), math.floor(now() * 1e6))
local function pause(max) if max > 0 then sleep(math.random() * max) end end
local function finish() say("done"); log:close(); os.exit(0) end
]]

-- Runs another program as a child of R.run: arg[1] is a shell command, to which the log
-- and start files are added as arguments, then the rest of arg.
local COMMAND = [[
local words = {}
for i = 2, #arg do words[#words + 1] = "'" .. arg[i]:gsub("'", "'\\''") .. "'" end
local ok, _, code = os.execute(arg[1] .. " " .. table.concat(words, " "))
os.exit(ok and 0 or (code ~= 0 and code or 1))
]]

-- Every queue children logged as made, { id, key }, for R.sweep.
local made = {}

-- Record the queues in log lines: "made <name> <id> <key>" or "<round> ok <id> <key>".
function R.note_created(lines)
  for _, f in ipairs(lines) do
    if f[1] == "made" then
      made[#made + 1] = { tonumber(f[3]), tonumber(f[4]) }
    elseif f[2] == "ok" and tonumber(f[1]) then
      made[#made + 1] = { tonumber(f[3]), tonumber(f[4]) }
    end
  end
end

-- Remove every queue the children of this process made that is still alive and still ours
-- (for after_each, after H.cleanup: whatever a test's outcome, no orphan stays behind).
function R.sweep()
  if #made == 0 then return end
  local live = R.queues()
  for i = #made, 1, -1 do
    local id, key = made[i][1], made[i][2]
    local q = id and live[id]
    if q and q.key == key and q.cuid == R.UID then mq.destroy(key) end
    made[i] = nil
  end
end

-- Run a group of children together for `seconds`. Each entry of `children` is
-- { source = <Lua after R.PRELUDE>, args = {...}, prefix = <shell prefix>, tag = <label> },
-- or has `command` (a shell command that follows the same protocol: log file and start file
-- as its first arguments, then args) instead of `source`.
-- Returns the list of { tag =, lines = { {field, ...}, ... } } once all have exited;
-- raises if one fails, hangs or does not finish its log.
function R.run(children, seconds)
  local start = P.flag()
  local procs = {}
  for i, c in ipairs(children) do
    local logf = P.flag()
    local child
    if c.command then
      child = P.spawn(COMMAND, { prefix = c.prefix }, c.command, logf, start, table.unpack(c.args or {}))
    else
      child = P.spawn(R.PRELUDE .. c.source, { prefix = c.prefix }, logf, start, table.unpack(c.args or {}))
    end
    procs[i] = { tag = c.tag or ("child " .. i), log = logf, child = child }
  end
  -- Every child is running (or about to): give the last one a moment to load mq.
  local t0 = core.monotonic() + 0.1
  H.write_file(start .. ".tmp", string.format("%.6f %.6f\n", t0, t0 + seconds))
  assert(os.rename(start .. ".tmp", start))
  local results, problems = {}, {}
  for i, p in ipairs(procs) do
    local ok, code, out = p.child:finish(seconds + 30)
    local text = H.read_file(p.log) or ""
    local lines = {}
    for line in text:gmatch("[^\n]+") do
      local f = {}
      for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
      lines[#lines + 1] = f
    end
    if ok == nil then
      problems[#problems + 1] = string.format("%s did not finish within %.0f s (killed)", p.tag, seconds + 30)
    elseif not ok or #lines == 0 or lines[#lines][1] ~= "done" then
      problems[#problems + 1] = string.format("%s exited %s without finishing its log: %s", p.tag,
        tostring(code), out)
    end
    results[i] = { tag = p.tag, lines = lines }
    os.remove(p.log)
    R.note_created(lines)
  end
  os.remove(start)
  assert(#problems == 0, table.concat(problems, "\n"))
  return results
end

-- The message queues in /proc/sysvipc/msg, by id: { key =, id =, cuid =, uid =, mode =, messages = }.
function R.queues()
  local text = assert(H.read_file("/proc/sysvipc/msg"), "cannot read /proc/sysvipc/msg")
  local cols, byid = nil, {}
  for line in text:gmatch("[^\n]+") do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    if not cols then
      cols = {}
      for i, w in ipairs(f) do cols[w] = i end
    else
      local q = { key = tonumber(f[cols.key]), id = tonumber(f[cols.msqid]), cuid = tonumber(f[cols.cuid]),
        uid = tonumber(f[cols.uid]), mode = tonumber(f[cols.perms], 8), messages = tonumber(f[cols.qnum]) }
      byid[q.id] = q
    end
  end
  return byid
end

-- The queue `id` if it is alive and still the one made with `key` by this user, else nil.
function R.ours(id, key, uid)
  local q = R.queues()[id]
  if q and q.key == key and q.cuid == (uid or R.UID) then return q end
  return nil
end

-- Remove queue `id` (made with `key`) if it is still alive and ours; never anyone else's.
function R.remove(id, key, uid)
  if R.ours(id, key, uid) then mq.destroy(key) end
end

-- The quiet-state check (P3). `created` lists { name =, id =, key = } for every queue the
-- children's mq.new calls made; `open` is a function(name) -> id or nil, code (by default
-- mq.open in this process). Every such queue still alive must be its name's queue: the key
-- file is there, maps to the queue's key, and open(name) gives its id. Returns the list of
-- problems, and removes each orphan found (they are ours, and nothing else would).
function R.orphans(created, open)
  open = open or function(name)
    local q, _, code = mq.open(name)
    if not q then return nil, code end
    local id = q:id()
    q:close()
    return id
  end
  local live, problems, seen = R.queues(), {}, {}
  for _, c in ipairs(created) do
    local q = live[c.id]
    if q and q.key == c.key and q.cuid == R.UID and not seen[c.id] then
      seen[c.id] = true
      local got, code = open(c.name)
      if got ~= c.id then
        local file = mq.ftok(H.path(c.name), 0)
        problems[#problems + 1] = string.format(
          "queue %d (key 0x%08x) made by mq.new(%q) is alive, but the name opens to %s (its key file %s)",
          c.id, c.key & 0xffffffff, c.name, tostring(got or code),
          file and string.format("maps to 0x%08x", file & 0xffffffff) or "is gone")
        mq.destroy(c.key)
      end
    end
  end
  return problems
end

-- Files left in `dir` whose name starts with ".mq" (a publisher's temporary key files).
function R.stray_temporaries(dir)
  local _, _, out = H.sh("ls -A " .. H.shell_quote(dir or H.TMPDIR))
  local found = {}
  for f in out:gmatch("[^\n]+") do
    if f:sub(1, 3) == ".mq" then found[#found + 1] = f end
  end
  return found
end

-- A short summary of a list of problems: the count and the first few.
function R.summary(what, problems, total)
  if #problems == 0 then return nil end
  local shown = {}
  for i = 1, math.min(#problems, 5) do shown[i] = "  " .. problems[i] end
  return string.format("%s: %d%s\n%s%s", what, #problems, total and (" of " .. total) or "",
    table.concat(shown, "\n"), #problems > 5 and "\n  ..." or "")
end

return R
