-- Out of memory (issue 9, item 4): with a Lua allocator that refuses every allocation after
-- the first N (N = 0, 1, 2, ... until the call runs without a refusal), mq.new, mq.open and
-- mq.destroy either succeed, or raise "not enough memory", or return a failure, and never
-- leave a queue or a key file behind without a handle.
-- (A receive that took a message before pushing its string cannot avoid losing it; the
-- README says so, and no spec pretends otherwise.)
-- Each function runs in a child lua5.4, so an allocator bug cannot take busted down.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

-- The child. arg: testproc cpath, function, where (name or key), perm, key file path or "".
-- For every N it prints LEAK lines for anything left behind; at the end "DONE <N>".
-- Leftovers are found by key file, by mq.open, and in /proc/sysvipc/msg by the unusual
-- perm the parent chose (a queue whose key file is gone cannot be found by name); the
-- child removes nothing it finds there, since it cannot prove the queue is its own.
local CHILD = [==[
package.cpath = arg[1] .. ";" .. package.cpath
local tp = require "testproc"
local mq = require "mq"
local fn, where, perm, keyfile = arg[2], arg[3], tonumber(arg[4], 8), arg[5]
if where:match("^%d+$") then where = tonumber(where) end
local PERM = string.format("%04o", perm)

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- Ids of the queues with our perm, from /proc/sysvipc/msg.
local function ours()
  local ids, f = {}, assert(io.open("/proc/sysvipc/msg"))
  f:read("l")
  for line in f:lines() do
    local id, mode = line:match("^%s*%-?%d+%s+(%d+)%s+(%d+)")
    if id and tonumber(mode, 8) & 0x1ff == perm then ids[tonumber(id)] = true end
  end
  f:close()
  return ids
end

local function present()
  local q = mq.open(where)
  if q then q:close() end
  return q ~= nil, keyfile ~= "" and exists(keyfile)
end

local bad = false
local function leak(n, fmt, ...)
  print(string.format("LEAK N=%d " .. fmt, n, ...))
  bad = true
end

for n = 0, 400 do
  if fn == "new" then
    mq.destroy(where)
  else
    mq.destroy(where)
    local q = assert(mq.new(where, PERM)); q:close()
  end
  local before = ours()
  local refused, ok, r, msg, code = tp.with_alloc_limit(n, mq[fn], where, fn == "new" and PERM or nil)
  if not ok and r ~= "not enough memory" then leak(n, "raised %s", tostring(r)) end
  local handle = ok and type(r) == "userdata" and r or nil
  local has_queue, has_file = present()
  if fn == "new" then
    if handle then
      if not has_queue then leak(n, "a handle without its queue") end
      if keyfile ~= "" and not has_file then leak(n, "a handle without its key file") end
      assert(handle:destroy())
    else
      if has_queue then leak(n, "a queue without a handle (%s)", tostring(msg or r)) end
      if has_file then leak(n, "a key file without a handle (%s)", tostring(msg or r)) end
    end
    -- A new queue with our perm may be another run's of this spec (same perm by chance):
    -- that one is destroyed at once, a leak stays. Only reported: the next round's
    -- mq.destroy(where) removes what is reachable.
    local suspects = {}
    for id in pairs(ours()) do
      if not before[id] then suspects[#suspects + 1] = id end
    end
    if #suspects > 0 then
      require("mq.core").sleep(0.05)
      local now = ours()
      for _, id in ipairs(suspects) do
        if now[id] then leak(n, "queue id %d appeared without a handle", id) end
      end
    end
  elseif fn == "open" then
    if not has_queue then leak(n, "open removed the queue") end
    if keyfile ~= "" and not has_file then leak(n, "open removed the key file") end
    if handle then handle:close() end
  elseif fn == "destroy" then
    if ok and r == true and (has_queue or has_file) then leak(n, "destroy said true but left something") end
    if has_queue and keyfile ~= "" and not has_file then leak(n, "a queue without its key file") end
    if ok and r == nil and code == nil then leak(n, "destroy returned nothing") end
  end
  if ok and refused == 0 then
    mq.destroy(where)
    print(bad and "BAD" or ("DONE " .. n))
    os.exit(bad and 1 or 0)
  end
end
mq.destroy(where)
print("NEVER SUCCEEDED")
os.exit(1)
]==]

describe("out of memory", function()
  local cpath
  setup(function() cpath = select(2, P.native()) end)
  after_each(H.cleanup)

  -- An unusual perm marks this run's queues in /proc/sysvipc/msg: write without read for
  -- group or other, which nobody uses (never 0600, 0640, 0644, 0660, 0666 and the like).
  local function perm()
    return ({ "0602", "0620", "0622", "0626", "0662", "0642", "0624" })[math.random(7)]
  end

  local cases = {
    { "new", "name" }, { "new", "key" }, { "open", "name" }, { "open", "key" },
    { "destroy", "name" }, { "destroy", "key" },
  }
  for _, c in ipairs(cases) do
    it(string.format("mq.%s(%s) under an allocator failing after N allocations (N = 0, 1, ...) succeeds, "
      .. "raises 'not enough memory' or fails, and leaves no queue or key file without a handle", c[1], c[2]),
      function()
        local where, keyfile
        if c[2] == "name" then
          where = H.name("oom")
          keyfile = H.path(where)
        else
          where = H.track(H.unused_key())
          keyfile = ""
        end
        local ok, code, out = H.sh(string.format("timeout -k 5 60 %s %s %s %s %s %s %s", H.LUA,
          H.script(CHILD), H.shell_quote(cpath), c[1], H.shell_quote(where), perm(),
          H.shell_quote(keyfile)))
        assert(ok and out:match("DONE %d+\n$"), string.format("child exited %s:\n%s", tostring(code), out))
        assert.is_nil((mq.open(where)))
      end)
  end
end)
