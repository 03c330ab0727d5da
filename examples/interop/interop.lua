-- Lua, C and Python on one System V queue, found by ftok(path, proj_id) on all three sides.
-- A message goes round: Lua --type 1--> C (reverses it) --type 2--> Python (prefixes "py:")
-- --type 3--> Lua, which checks every byte.
-- usage: lua5.4 interop.lua C-PEER-BINARY PYTHON PEER.PY

local mq = require "mq"

local c_peer, python, py_peer = arg[1], arg[2], arg[3]
assert(py_peer, "usage: interop.lua C-PEER-BINARY PYTHON PEER.PY")

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local tmp = os.getenv("TMPDIR")
if tmp == nil or tmp == "" then tmp = "/tmp" end
local path = string.format("%s/mq-interop-%d.key", tmp,
  tonumber(io.open("/proc/self/stat"):read("l"):match("^%d+")))
local PROJ = 77   -- ftok's proj_id: any byte but 0 (0 is what named queues use)

-- The key file: any existing file will do for ftok.
assert(io.open(path, "w")):close()
local key = mq.ftok(path, PROJ)
print(string.format("Lua:         mq.ftok(path, %d) = 0x%08x", PROJ, key & 0xffffffff))

local q, err = mq.new(key)
if not q then
  os.remove(path)
  print("Lua: cannot create the queue: " .. err)
  os.exit(1)
end

local ok = true
local function check(cond, what)
  if not cond then
    print("FAILED: " .. what)
    ok = false
  end
end

-- Start both peers (io.popen returns at once), then send.
local args = quote(path) .. " " .. PROJ
local cproc = io.popen(quote(c_peer) .. " " .. args, "r")
local pproc = io.popen(quote(python) .. " " .. quote(py_peer) .. " " .. args, "r")

local payload = "binary \0\1\2\255 safe, hello from Lua"
assert(q:send(payload, 1))
print(string.format("Lua:         sent %d bytes as type 1", #payload))

local data, t = q:receive_timeout(10, 3)
local cout, pout = cproc:read("a"), pproc:read("a")
local cok, pok = cproc:close(), pproc:close()
io.write(cout, pout)
check(cok, "the C peer failed")
check(pok, "the Python peer failed")
check(cout:find(string.format("0x%08x", key & 0xffffffff), 1, true), "C computed another key")
check(pout:find(string.format("0x%08x", key & 0xffffffff), 1, true), "Python computed another key")

if data then
  print(string.format("Lua:         got %d bytes back as type %d", #data, t))
  check(data == "py:" .. payload:reverse(), "the bytes that came back differ")
else
  check(false, "no reply: " .. t)
end

q:destroy()
os.remove(path)
print(ok and "ok" or "FAILED")
os.exit(ok and 0 or 1)
