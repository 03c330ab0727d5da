-- ftok collisions: a name's key keeps 16 bits of its key file's inode, so a fresh key file
-- can map to a key that an unrelated queue (a stale one, or another name's) already holds.

local mq = require "mq"
local H = require "helpers"

describe("mq.new on a name whose fresh key file's key is taken", function()
  after_each(H.cleanup)

  it("gives the key file another inode and makes the queue there", function()
    local taken = H.next_key()
    if not taken then return pending("this filesystem does not reuse inodes at once") end
    local blocker, _, code = mq.new(taken)
    if not blocker then return pending("the probed key is in use: " .. tostring(code)) end
    H.track(taken)
    local name = H.name("renewed")
    local q = assert(mq.new(name))
    assert.are_not.equal(taken, q:key())
    assert.are.equal(mq.ftok(H.path(name), 0), q:key())
    local again = assert(mq.open(name))
    assert.are.equal(q:id(), again:id())
    assert.are_not.equal(blocker:id(), again:id())
    -- No temporary file is left beside the key file.
    local _, _, listing = H.sh("ls -a " .. H.shell_quote(H.TMPDIR))
    assert.is_nil(listing:match(name:gsub("%p", "%%%0") .. "%.%w%w%w%w%w%w"))
    again:close()
    q:close()
    blocker:close()
  end)

  it("still says exists for a name whose queue is there", function()
    local name = H.name("there")
    local q = assert(mq.new(name))
    local msg = H.fails("exists", mq.new(name))
    assert.matches("already exists", msg)
    q:close()
  end)
end)
