-- Issue 8, P5: a name of any valid length (1 to 255 bytes) gets past an ftok collision:
-- when the key of the fresh key file mq.new makes is already held by an unrelated queue,
-- mq.new still creates the name's queue, on another key.

local mq = require "mq"
local H = require "helpers"
local R = require "support.races"

-- A name of exactly `len` bytes that nothing in $TMPDIR uses yet (checked without starting
-- a process: the inode probe must stay close to the mq.new it predicts for).
local ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local function name_of_length(len)
  for _ = 1, 1000 do
    local t = {}
    for i = 1, len do
      local c = math.random(#ALPHABET)
      t[i] = ALPHABET:sub(c, c)
    end
    local name = table.concat(t)
    local f = io.open(H.path(name))
    if f then f:close() else return H.track(name) end
  end
  error("no free name of length " .. len)
end

describe("mq.new on a name whose fresh key file's key is taken", function()
  after_each(H.cleanup)

  it("creates the queue for a name of every length from 1 to 255 bytes", function()
    local lengths = { 1, 2, 8, 32, 100, 200, 240, 247, 248, 249, 250, 251, 252, 253, 254, 255 }
    local failures, forced = {}, 0
    for _, len in ipairs(lengths) do
      local name = name_of_length(len)
      local taken = H.next_key()
      if not taken then return pending("this filesystem does not reuse inodes at once") end
      -- Block the key with a queue of our own, unless an unrelated queue already holds it
      -- (then that one is the collision, and is left alone).
      local blocker, _, why = mq.new(taken)
      assert(blocker or why == "exists", why)
      forced = forced + 1
      local q, msg, code = mq.new(name)
      if not q then
        failures[#failures + 1] = string.format("%d bytes: %s (%s)", len, tostring(code), tostring(msg))
      else
        assert.are_not.equal(taken, q:key())
        assert.are.equal(mq.ftok(H.path(name), 0), q:key())
        local again = assert(mq.open(name))
        assert.are.equal(q:id(), again:id())
        again:close()
        assert(q:destroy())
      end
      if blocker then blocker:destroy() end
    end
    assert(#failures == 0, string.format("mq.new failed for %d of %d lengths:\n  %s", #failures, forced,
      table.concat(failures, "\n  ")))
    assert.are.same({}, R.stray_temporaries())
  end)
end)
