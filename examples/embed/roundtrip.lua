-- Run by the embed host (build/embed-host): uses mq with no mq.lua or mq.so on any path.

local mq, from = require "mq"
print(string.format("require 'mq' came from %s, version %s", from, mq._VERSION))
assert(from == ":preload:", "mq was not loaded from package.preload")

-- Show that no file on disk could have supplied it.
assert(package.searchpath("mq", package.path) == nil, "an mq.lua is on package.path")
assert(package.searchpath("mq", package.cpath) == nil, "an mq.so is on package.cpath")
assert(package.searchpath("mq.core", package.cpath) == nil, "an mq/core.so is on package.cpath")
assert(package.searchpath("mq.loop", package.path) == nil, "an mq/loop.lua is on package.path")
local _, loop_from = require "mq.loop"
assert(loop_from == ":preload:", "mq.loop was not loaded from package.preload")

local payload = "from the embedded interpreter \0\255"

-- A private queue...
local q = assert(mq.new(mq.PRIVATE))
assert(q:send(payload, 5))
local data, mtype = assert(q:receive_timeout(1))
assert(data == payload and mtype == 5, "the private round trip changed the message")
print(string.format("%s: sent and received %d bytes of type %d", tostring(q), #data, mtype))
assert(q:destroy())

-- ...and a named one, with its key file in TMPDIR, like any other program would use.
local name = string.format("embed-%d", tonumber(io.open("/proc/self/stat"):read("l"):match("^%d+")))
local n = assert(mq.new(name))
assert(n:send(payload))
data = assert(n:receive_timeout(1))
assert(data == payload, "the named round trip changed the message")
print(string.format("%s: sent and received %d bytes", tostring(n), #data))
assert(n:destroy())
return true
