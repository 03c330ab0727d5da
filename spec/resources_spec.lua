-- Resources: handles dropped without close are collected with everything they own, and
-- no path through open/new/destroy (failing ones included) leaks a file descriptor.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

local HANDLES = P.scaled(100000, 2000)
local CYCLES = P.scaled(100000, 2000)

local function full_gc()
  collectgarbage()
  collectgarbage()
end

describe("resources", function()
  after_each(H.cleanup)

  it("stay flat after 100000 handles are dropped without close and collected", function()
    local keep, name = H.fresh_name_queue("drop")
    local payload = string.rep("p", 3000)
    -- Every fourth handle also sends and receives, so it owns a receive buffer to free.
    local function churn(n)
      for i = 1, n do
        local q = assert(mq.open(name))
        if i % 4 == 0 then
          assert(q:send(payload))
          assert.are.equal(payload, (q:receive()))
        end
      end
    end
    churn(P.scaled(20000, 500))   -- warm up: allocator pools, string interning, GC pace
    full_gc()
    local lua0, rss0 = collectgarbage("count"), P.rss_kb()
    churn(HANDLES)
    full_gc()
    local lua1, rss1 = collectgarbage("count"), P.rss_kb()
    -- A leak of even one byte a handle would be ~98 KiB here.
    assert(lua1 - lua0 < 64, string.format("Lua heap grew from %.0f KiB to %.0f KiB", lua0, lua1))
    if not P.MEMTOOL then   -- ASan and valgrind allocators keep freed memory: RSS means nothing there
      assert(rss1 - rss0 < 2048, string.format("RSS grew from %d KiB to %d KiB", rss0, rss1))
    end
    assert.are.equal(0, keep:stat().messages)
    keep:close()
  end)

  it("leak no file descriptor over 100000 open/close cycles", function()
    local keep, name = H.fresh_name_queue("fds")
    local key = select(2, H.fresh_key_queue())
    local fd0 = P.fd_count()
    for i = 1, CYCLES do
      local q = assert(mq.open((i % 2 == 0) and name or key))
      assert(q:close())
    end
    assert.are.equal(fd0, P.fd_count())
    keep:close()
  end)

  it("leak no file descriptor through creating, destroying and failing calls", function()
    local n = P.scaled(5000, 200)
    local missing = H.name("missing")
    local link, dir = H.name("link"), H.name("dir")
    assert(os.execute("ln -s /etc/hostname " .. H.shell_quote(H.path(link))))
    assert(os.execute("mkdir " .. H.shell_quote(H.path(dir))))
    local fd0 = P.fd_count()
    for _ = 1, n do
      local q, name = H.fresh_name_queue("cycle")
      assert.are.equal("exists", select(3, mq.new(name)))
      assert(q:destroy())
      assert.are.equal("notfound", select(3, mq.open(missing)))
      assert.are.equal("invalid", select(3, mq.open(link)))
      assert.are.equal("invalid", select(3, mq.new(link)))
      assert.are.equal("invalid", select(3, mq.open(dir)))
      assert.are.equal("invalid", select(3, mq.new(dir)))
      assert.are.equal("invalid", select(3, mq.destroy(dir)))
    end
    full_gc()
    assert.are.equal(fd0, P.fd_count())
    os.remove(H.path(link))
    os.remove(H.path(dir))
  end)
end)
