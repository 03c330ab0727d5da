-- Errors raised for wrong Lua types point at the caller's line, whether the function is
-- C (mq.core) or Lua (mq.lua, mq.loop): never into mq's own files, never without a position.

local mq = require "mq"
local H = require "helpers"

-- Calls `f` from this file's line `line`; returns the error message.
local function error_of(f)
  local ok, err = pcall(f)
  assert(not ok, "no error raised")
  return tostring(err)
end

local THIS = debug.getinfo(1, "S").short_src

describe("a wrong-type error", function()
  local q
  setup(function() q = H.fresh_key_queue() end)
  teardown(function() q:close(); H.cleanup() end)

  local cases = {
    { "q:send_timeout", function() local _ = q:send_timeout({}, 1) end },
    { "q:receive_timeout", function() local _ = q:receive_timeout("soon") end },
    { "q:receive_timeout selector", function() local _ = q:receive_timeout(1, true) end },
    { "q:messages", function() local _ = q:messages("x") end },
    { "a timed method on a non-handle", function() local _ = q.receive_timeout(5, 1) end },
    { "mq.select list", function() local _ = mq.select(5, 1) end },
    { "mq.select entry", function() local _ = mq.select({ q, "x" }, 1) end },
    { "mq.select timeout", function() local _ = mq.select({ q }, "x") end },
    { "mq.set_waiter", function() local _ = mq.set_waiter(5) end },
    { "mq.set_poll", function() local _ = mq.set_poll({ threads = 1 }) end },
    { "q:send (C)", function() local _ = q:send({}) end },
    { "mq.new (C)", function() local _ = mq.new({}) end },
    { "mq.loop spawn", function() local _ = require("mq.loop").new():spawn(5) end },
  }
  for _, c in ipairs(cases) do
    it("from " .. c[1] .. " points at the caller's line", function()
      local line = debug.getinfo(c[2], "S").linedefined
      local err = error_of(c[2])
      assert.truthy(err:find(THIS .. ":" .. line .. ":", 1, true),
        string.format("expected %s:%d:, got %s", THIS, line, err))
    end)
  end
end)
