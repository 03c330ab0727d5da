-- Shared helpers for the busted specs.
-- `make test` runs the suite with a private TMPDIR and LUA_PATH/LUA_CPATH pointing at this
-- tree, and child processes started from here inherit both.

local mq = require "mq"
local core = require "mq.core"

local H = {}

H.LUA = os.getenv("LUA") or "lua5.4"
H.TMPDIR = (os.getenv("TMPDIR") ~= nil and os.getenv("TMPDIR") ~= "") and os.getenv("TMPDIR") or "/tmp"

local tracked = {}   -- names and keys to destroy in cleanup()
local seq = 0

local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("l")
  f:close()
  return tonumber(s:match("^(%d+)"))
end
H.pid = pid()

-- busted reloads this module for every spec file: seed and name scripts per load, not per
-- process, or two files would reuse the same keys and script/status paths.
local load_id = math.floor(core.monotonic() * 1e9) % 0x7fffffff
math.randomseed(os.time() ~ H.pid, load_id)

-- A queue name unique within this run; the run's private TMPDIR makes it unique across runs.
function H.name(prefix)
  seq = seq + 1
  local n = string.format("%s-%d-%d", prefix or "q", H.pid, seq)
  tracked[#tracked + 1] = n
  return n
end

-- Remember a name or key so that cleanup() destroys its queue.
function H.track(where)
  tracked[#tracked + 1] = where
  return where
end

-- A fresh queue on a random integer key no other live queue uses; returns handle, key.
function H.fresh_key_queue(perm)
  for _ = 1, 1000 do
    local key = math.random(0x10000000, 0x7ffffffe)
    local q, _, code = mq.new(key, perm)
    if q then
      H.track(key)
      return q, key
    end
    assert(code == "exists", code)
  end
  error("no free System V key found")
end

-- An integer key that no queue uses right now (nothing is created).
function H.unused_key()
  for _ = 1, 1000 do
    local key = math.random(0x10000000, 0x7ffffffe)
    local q, _, code = mq.open(key)
    if not q and code == "notfound" then return key end
    if q then q:close() end
  end
  error("no unused System V key found")
end

-- A second handle on q's queue, opened by key: a sender or receiver that is not q.
function H.other(q)
  return assert(mq.open(q:key()))
end

-- The key the next file created in $TMPDIR will get, if this filesystem hands a freed
-- inode straight back (ext4 and tmpfs do); nil if it does not. Another process creating
-- files on the same filesystem can take the inode between two probes: try a few times.
function H.next_key()
  for _ = 1, 10 do
    local keys = {}
    for i = 1, 2 do
      local probe = H.path(H.name("probe"))
      H.write_file(probe, "")
      keys[i] = assert(mq.ftok(probe, 0))
      os.remove(probe)
    end
    if keys[1] == keys[2] then return keys[1] end
  end
  return nil
end

-- Destroy every queue created through the helpers (and their key files).
function H.cleanup()
  for i = #tracked, 1, -1 do
    mq.destroy(tracked[i])
    tracked[i] = nil
  end
end

function H.path(name)
  return H.TMPDIR .. "/" .. name
end

function H.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function H.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function H.exists(path)
  return os.execute("test -e '" .. path .. "' || test -L '" .. path .. "'") == true
end

function H.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a shell command; returns success, exit code, combined output.
function H.sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok == true, code, out
end

-- Write Lua source to a file in TMPDIR and return its path.
function H.script(source)
  seq = seq + 1
  local path = string.format("%s/script-%d-%x-%d.lua", H.TMPDIR, H.pid, load_id, seq)
  H.write_file(path, source)
  return path
end

-- Run Lua source in a child lua5.4 to completion; returns success, exit code, output.
function H.run_lua(source, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  return H.sh(H.LUA .. " " .. H.script(source) .. " " .. table.concat(args, " "))
end

-- Start Lua source in a background lua5.4; returns an object whose wait([timeout]) returns
-- success, exit code, output once the child has exited (or nil, "timeout").
function H.spawn_lua(source, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  local script = H.script(source)
  local out, status = script .. ".out", script .. ".status"
  os.execute(string.format("(%s %s %s > %s 2>&1; echo $? > %s) &",
    H.LUA, script, table.concat(args, " "), out, status))
  local child = {}
  function child.wait(_, timeout)
    local deadline = core.monotonic() + (timeout or 30)
    while core.monotonic() < deadline do
      local st = H.read_file(status)
      if st and st:match("%d") then
        local code = tonumber(st:match("%d+"))
        return code == 0, code, H.read_file(out) or ""
      end
      core.sleep(0.005)
    end
    return nil, "timeout", H.read_file(out) or ""
  end
  return child
end

-- Wait until fn() returns a true value, polling; returns that value or nil on timeout.
function H.wait_until(fn, timeout)
  local deadline = core.monotonic() + (timeout or 10)
  repeat
    local v = fn()
    if v then return v end
    core.sleep(0.002)
  until core.monotonic() > deadline
  return nil
end

-- Bytes 0..255, each once: a payload that exercises binary safety.
function H.all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

-- The `ipcs -q` row of queue `id` as {key=, perms=, bytes=, messages=} (key unsigned), or nil.
function H.ipcs_queue(id)
  local ok, _, out = H.sh("ipcs -q")
  if not ok then return nil end
  for line in out:gmatch("[^\n]+") do
    local key, qid, perms, bytes, msgs =
      line:match("^0x(%x+)%s+(%d+)%s+%S+%s+(%d+)%s+(%d+)%s+(%d+)")
    if qid and tonumber(qid) == id then
      return { key = tonumber(key, 16), perms = tonumber(perms, 8),
               bytes = tonumber(bytes), messages = tonumber(msgs) }
    end
  end
  return nil
end

-- Run Lua source with `lua5.4 -e` under `timeout` (exit code 124 when it ran out of time),
-- behind an optional shell prefix such as "setpriv ..." or "umask 0;".
-- Returns success, exit code, output. The source must not rely on TMPDIR being readable.
function H.lua_e(source, prefix, seconds)
  return H.sh(string.format("%s timeout %d %s -e %s", prefix or "", seconds or 20,
    H.LUA, H.shell_quote(source)))
end

-- Check that a call returned the failure triple nil, message, `code`; returns the message.
function H.fails(code, v, msg, got)
  if v ~= nil or type(msg) ~= "string" or got ~= code then
    error(string.format("expected nil, <message>, %q; got %s, %s, %s", code, tostring(v),
      tostring(msg), tostring(got)), 2)
  end
  return msg
end

-- Lua source a child can start with to learn its own pid as `PID`.
H.CHILD_PID = 'local PID = tonumber(io.open("/proc/self/stat"):read("l"):match("^%d+"))\n'

-- Wait until process `child_pid` sleeps in the kernel function `fn` (e.g. "do_msgrcv",
-- "do_msgsnd") as /proc/<pid>/wchan shows; returns true, or nil on timeout.
function H.wait_blocked_in(child_pid, fn, timeout)
  return H.wait_until(function()
    local w = H.read_file("/proc/" .. child_pid .. "/wchan")
    return w ~= nil and w:find(fn, 1, true) ~= nil
  end, timeout or 10)
end

-- A fresh queue on a new name; returns handle, name. (A key file whose key a stale queue
-- holds is mq.new's own business now: it gives the name another inode and retries.)
function H.fresh_name_queue(prefix, perm)
  local name = H.name(prefix)
  return assert(mq.new(name, perm)), name
end

-- The command prefix that runs a child as uid/gid 65534 with no groups. That user may not
-- be able to read this tree (a checkout under a 0700 directory), so mq.lua and mq/core.so
-- are copied once into $TMPDIR/nobody-lib, and $TMPDIR is made searchable (not listable) by
-- others for the rest of the run; `make test` removes it all.
local nobody_prefix
function H.nobody()
  if nobody_prefix then return nobody_prefix end
  local lua_file = assert(package.searchpath("mq", package.path), "mq.lua not on LUA_PATH")
  local so_file = assert(package.searchpath("mq.core", package.cpath), "mq/core.so not on LUA_CPATH")
  local dir = H.TMPDIR .. "/nobody-lib"
  assert(os.execute(string.format(
    "chmod o+x %s && mkdir -p %s/mq && cp %s %s && cp %s %s/mq/core.so && chmod -R a+rX %s",
    H.shell_quote(H.TMPDIR), H.shell_quote(dir), H.shell_quote(lua_file), H.shell_quote(dir),
    H.shell_quote(so_file), H.shell_quote(dir), H.shell_quote(dir))))
  nobody_prefix = string.format("env LUA_PATH=%s LUA_CPATH=%s setpriv --reuid=65534 --regid=65534 --clear-groups",
    H.shell_quote(dir .. "/?.lua"), H.shell_quote(dir .. "/?.so"))
  return nobody_prefix
end

return H
