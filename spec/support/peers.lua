-- Test-only runners for the peers of the System V feature specs: Python's sysv_ipc
-- (/usr/bin/python3, Debian's python3-sysv-ipc), Perl's core IPC::Msg, and Lua children
-- running as the unprivileged uid 65534. Never shipped.

local H = require "helpers"
local P = require "support.proc"
local core = require "mq.core"

local X = {}

X.PYTHON = "/usr/bin/python3"
X.have_python = (H.sh(X.PYTHON .. " -c 'import sysv_ipc'"))
X.have_perl = (H.sh("perl -MIPC::Msg -e 1"))

local function args_of(...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  return table.concat(args, " ")
end

-- Python source run with sysv_ipc and sys imported; extra arguments reach sys.argv[1..].
-- opts.prefix goes before the interpreter (e.g. H.nobody()). Returns ok, code, output.
function X.python(code, opts, ...)
  return H.sh(string.format("%s timeout 20 %s -c %s %s", opts and opts.prefix or "", X.PYTHON,
    H.shell_quote("import sys, sysv_ipc\n" .. code), args_of(...)))
end

-- Perl source run with IPC::Msg and the IPC::SysV constants it needs; extra arguments
-- reach @ARGV. Returns ok, code, output.
function X.perl(code, opts, ...)
  return H.sh(string.format("%s timeout 20 perl -MIPC::Msg -MIPC::SysV=%s -e %s %s",
    opts and opts.prefix or "", "IPC_PRIVATE,IPC_CREAT,IPC_EXCL,IPC_NOWAIT,S_IRUSR,S_IWUSR",
    H.shell_quote(code), args_of(...)))
end

-- Start a Python peer in the background. Returns an object whose output() is what the peer
-- printed so far and whose wait([timeout]) returns ok, exit code, output once it has ended.
local seq = 0
function X.spawn_python(code, ...)
  seq = seq + 1
  local base = string.format("%s/peer-%d-%x-%d", H.TMPDIR, H.pid,
    math.floor(core.monotonic() * 1e6), seq)
  os.execute(string.format("(timeout 30 %s -u -c %s %s > %s.out 2>&1; echo $? > %s.status) &",
    X.PYTHON, H.shell_quote("import sys, sysv_ipc\n" .. code), args_of(...), base, base))
  local peer = {}
  function peer.output() return H.read_file(base .. ".out") or "" end
  function peer.wait(_, timeout)
    local code_ = H.wait_until(function()
      local s = H.read_file(base .. ".status")
      return s and tonumber(s:match("%d+"))
    end, timeout or 30)
    if not code_ then return nil, "timeout", peer.output() end
    return code_ == 0, code_, peer.output()
  end
  return peer
end

-- Run Lua source as uid/gid 65534 (no groups) with `lua5.4 -e`; extra arguments reach `arg`.
-- That user cannot list or write $TMPDIR, only search it. Returns ok, code, output.
function X.as_nobody(source, ...)
  local extra = select("#", ...) > 0 and (" - " .. args_of(...)) or ""
  return H.sh(string.format("%s timeout 20 %s -e %s%s", H.nobody(), H.LUA, H.shell_quote(source),
    extra))
end

-- The kernel's row of queue `id` as `ipcs -q -i` would give it, read from
-- /proc/sysvipc/msg: {key=, mode=, uid=, gid=, cuid=, cgid=, messages=}, or nil.
function X.proc_row(id)
  for line in (H.read_file("/proc/sysvipc/msg") or ""):gmatch("[^\n]+") do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    if tonumber(f[2]) == id then
      return { key = tonumber(f[1]), mode = tonumber(f[3], 8), bytes = tonumber(f[4]),
               messages = tonumber(f[5]), uid = tonumber(f[8]), gid = tonumber(f[9]),
               cuid = tonumber(f[10]), cgid = tonumber(f[11]) }
    end
  end
  return nil
end

-- Remove queue `id` if it is still there and still has key `key` (queues made by peers and
-- by the second user; the key check keeps a reused id of someone else's queue safe).
function X.remove_id(id, key)
  local row = id and X.proc_row(id)
  if row and row.key == key then os.execute(string.format("ipcrm -q %d 2>/dev/null", id)) end
end

-- Queues made outside the helpers (private ones, by peers, by the second user), each with
-- the key it must still have to be removed; X.cleanup removes them, newest first, and then
-- what the helpers made.
local made = {}
function X.made_id(id, key)
  made[#made + 1] = { id = id, key = key or 0 }
  return id
end

function X.cleanup()
  for i = #made, 1, -1 do
    X.remove_id(made[i].id, made[i].key)
    made[i] = nil
  end
  H.cleanup()
end

-- Run the rest of a spec file in an IPC namespace of its own (setup), and come back
-- (teardown). Key files of names from different directories of one filesystem often map
-- to one key (ext4 spreads directories over block groups 8192 inodes apart, and a key
-- keeps 16 bits of the inode), so another run's destroy of a stale key file can remove a
-- live queue of this run: apart, no other program's queue meets these. Peers and second
-- users started from here share the namespace; the key files stay in $TMPDIR. Where no
-- namespace can be made (no CAP_SYS_ADMIN), the specs run in the machine's own.
local saved_ns
function X.isolate()
  local ok, tp = pcall(P.native)
  if ok then saved_ns = tp.ipc_isolate() end
end

function X.restore()
  if saved_ns then assert(P.native().ipc_restore(saved_ns)) end
  saved_ns = nil
end

return X
