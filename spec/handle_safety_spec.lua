-- Handle safety (issue 9, items 1 and 2): a forged handle is refused by every method and
-- metamethod, and a finalizer that closes a handle while a call on that handle runs cannot
-- pull the handle's buffer away from under the call.
-- Every case runs in a child lua5.4: on a library without these guards the child crashes
-- (or frees memory twice), and the spec sees its exit status instead of dying with it.

local H = require "helpers"
local P = require "support.proc"

-- Run Lua source in a child lua5.4 under `timeout` (exit 124 when it hangs); returns
-- success, exit code, output.
local function run_child(seconds, source, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  return H.sh(string.format("timeout -k 5 %d %s %s %s", seconds, H.LUA, H.script(source),
    table.concat(args, " ")))
end

-- The child for forged handles. arg: kind, testproc cpath, key of a queue the parent made.
-- It prints ACCEPTED <fn> for every call that did not raise (or, for a C function, raised
-- something other than "mq.queue expected"), MISNAMED <fn> for a Lua-layer call whose error
-- does not name that call, WROTE <fn> when the call changed the forgery's
-- bytes, and DONE when the real handle and queue came through unharmed.
local FORGERY_CHILD = [[
package.cpath = arg[2] .. ";" .. package.cpath
local tp = require "testproc"
local mq = require "mq"
local core = require "mq.core"
local kind, key = arg[1], tonumber(arg[3])
local q = assert(mq.open(key, mq.O_RDWR | mq.O_NONBLOCK))  -- a full queue must not hang us
local mt = getmetatable(q)
assert(q:send("warm up")); assert(q:receive())      -- the real handle owns a buffer now
local real = tp.bytes(q)
local forgery
if kind == "copy" then forgery = tp.udata(real)
elseif kind == "copy+64" then forgery = tp.udata(real .. string.rep("\0", 64))
elseif kind == "copy-1" then forgery = tp.udata(real:sub(1, -2))
elseif kind == "copy with the handle metatable" then
  forgery = debug.setmetatable(tp.udata(real), mt)
elseif kind == "0-byte with the handle metatable" then
  forgery = debug.setmetatable(tp.udata(""), mt)
else error("unknown kind " .. kind) end
local before = tp.bytes(forgery)
local baits = 0
local bad = false

local function try(label, f, must_raise, ...)
  if q:send("bait " .. label, 1) then baits = baits + 1 end
  local ok, err = pcall(f, forgery, ...)
  if must_raise then
    local is_c = debug.getinfo(f, "S").what == "C"
    if ok or (is_c and not tostring(err):find("mq.queue expected", 1, true)) then
      print("ACCEPTED", label, tostring(err)); bad = true
    elseif not is_c and not tostring(err):find("to '" .. (label:match("^mq%.(.+)$") or label) .. "'", 1, true) then
      -- The Lua layer's own methods refuse it themselves, naming the call, not an internal.
      print("MISNAMED", label, tostring(err)); bad = true
    end
  elseif ok and label == "__tostring" and type(err) ~= "string" then
    print("ACCEPTED", label, "returned " .. type(err)); bad = true
  end
  if tp.bytes(forgery) ~= before then print("WROTE", label); bad = true end
  before = tp.bytes(forgery)
end

local ARGS = {
  send = { "forged" }, send_timeout = { "forged", 0 }, receive_timeout = { 0 },
  set_blocking = { true }, set_capacity = { 100 }, messages = { 0 }, peek = { 0 },
}
local LAST = { close = true, destroy = true }
local names = {}
for name, f in pairs(mt.__index) do
  if type(f) == "function" and not LAST[name] then names[#names + 1] = name end
end
table.sort(names)
for _, name in ipairs(names) do try(name, mt.__index[name], true, table.unpack(ARGS[name] or {})) end
local now = core.monotonic()
try("core.poll_send", core.poll_send, true, "x", nil, "poll_send")
try("core.poll_receive", core.poll_receive, true, nil, nil, "poll_receive")
try("core.wait_send", core.wait_send, true, "x", nil, "wait_send", now + 0.01, 0, 1e-3, 1e-3)
try("core.wait_receive", core.wait_receive, true, nil, nil, "wait_receive", now + 0.01, 0, 1e-3, 1e-3)
try("mq.select", function(f) return mq.select({ f }, 0) end, true)
try("__tostring", mt.__tostring, false)
try("__close", mt.__close, false)
try("__gc", mt.__gc, false)
try("close", mt.__index.close, true)
try("destroy", mt.__index.destroy, true)

-- The real handle still works and the queue holds exactly the baits.
local st = assert(q:stat())
if st.messages ~= baits then print("QUEUE", st.messages, "messages, want", baits); bad = true end
for _ = 1, baits do assert((assert(q:receive_timeout(0))):match("^bait ")) end
assert(q:send("after")); assert(q:receive() == "after")
-- Let the collector finalize the forgery, then the real handle.
forgery = nil
collectgarbage(); collectgarbage()
q:close(); q = nil
collectgarbage(); collectgarbage()
print(bad and "BAD" or "DONE")
]]

describe("a forged handle", function()
  local cpath
  setup(function() cpath = select(2, P.native()) end)
  after_each(H.cleanup)

  local kinds = {
    { "copy", "a full userdata holding a byte-for-byte copy of a real handle" },
    { "copy+64", "a byte copy of a real handle with 64 more bytes after it" },
    { "copy-1", "a byte copy of a real handle without its last byte" },
    { "copy with the handle metatable", "a byte copy given the handle metatable by debug.setmetatable" },
    { "0-byte with the handle metatable", "a 0-byte userdata given the handle metatable by debug.setmetatable" },
  }
  for _, k in ipairs(kinds) do
    it(k[2] .. " is refused by every method, core entry point and select, and __gc/__close/"
      .. "__tostring neither write nor free", function()
      local _, key = H.fresh_key_queue()
      local ok, code, out = run_child(30, FORGERY_CHILD, k[1], cpath, key)
      assert(ok and out:match("DONE\n$"),
        string.format("child exited %s:\n%s", tostring(code), out))
      assert.not_matches("ACCEPTED", out)
      assert.not_matches("MISNAMED", out)
      assert.not_matches("WROTE", out)
    end)
  end
end)

-- The child for a finalizer that closes the handle inside a call. arg: op, key.
-- Generational mode with a 1% minor multiplier makes nearly every 8 KB string the call
-- pushes start a minor collection, which runs pending finalizers before the call returns.
-- A finalizer that ran before the call started makes the call fail with `closed`; one that
-- ran inside it (after the message was taken or copied) must leave the result intact.
local FINALIZER_CHILD = [[
local mq = require "mq"
local op, key = arg[1], tonumber(arg[2])
local keep = assert(mq.open(key))
collectgarbage("generational", 1, 100)
local big = string.rep("b", 8000)
local hits, attempts = 0, tonumber(arg[3])
for i = 1, attempts do
  local h = assert(mq.open(key))
  local want = big .. i
  assert(h:send(want, 7))
  local list = { h }
  local iter = op == "messages" and h:messages(0) or nil
  local ran = false
  setmetatable({}, { __gc = function() h:close(); ran = true end })
  local ok, d, t, code
  if op == "receive" then ok, d, t, code = pcall(h.receive, h)
  elseif op == "receive_timeout" then ok, d, t, code = pcall(h.receive_timeout, h, 1)
  elseif op == "peek" then ok, d, t, code = pcall(h.peek, h)
  elseif op == "messages" then ok, d, t = pcall(iter)
  elseif op == "select" then
    local r1
    ok, r1, d, t = pcall(mq.select, list, 1)
    if ok and r1 == nil then d, t, code = nil, d, t end
  end
  if ok and d ~= nil then
    if d ~= want or t ~= 7 then error(("attempt %d: got %d bytes of type %s"):format(i, #d, tostring(t))) end
    if ran then
      hits = hits + 1
      assert(select(3, h:id()) == "closed", "the handle is not closed after its finalizer ran")
    end
  elseif not ran then
    error(("attempt %d: the call failed without the finalizer: %s %s"):format(i, tostring(t), tostring(code)))
  end
  -- Whatever happened, empty the queue for the next attempt.
  while keep:receive_timeout(0) do end
end
keep:close()
print("HITS " .. hits)
]]

describe("a finalizer that closes the handle while a call on it runs", function()
  after_each(H.cleanup)

  local ops = {
    receive = "q:receive()",
    receive_timeout = "q:receive_timeout(1)",
    peek = "q:peek()",
    select = "mq.select({q}, 1)",
    messages = "the q:messages(0) iterator",
  }
  for _, op in ipairs({ "receive", "receive_timeout", "peek", "select", "messages" }) do
    it(string.format("leaves %s returning the message intact (data and type), then the handle closed",
      ops[op]), function()
      local _, key = H.fresh_key_queue()
      local ok, code, out = run_child(60, FINALIZER_CHILD, op, key, P.scaled(400, 100))
      assert(ok, string.format("child exited %s:\n%s", tostring(code), out))
      local hits = tonumber(out:match("HITS (%d+)"))
      assert(hits and hits > 0, "the finalizer never ran inside the call: " .. out)
    end)
  end
end)
