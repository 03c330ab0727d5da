-- Model-based: random nonblocking operations against a real queue and against a pure-Lua
-- model of System V semantics must agree, result for result and byte for byte.
-- A failure prints the seed; MQ_MODEL_SEED=<seed> replays that run.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"

local OPS = P.scaled(25000, 2000)

-- xorshift64: a generator of our own, so the run does not depend on (or disturb) math.random.
local function generator(seed)
  local s = (seed ~ 0x2545F4914F6CDD1D)
  if s == 0 then s = 1 end
  return function(lo, hi)
    s = s ~ (s << 13); s = s ~ (s >> 7); s = s ~ (s << 17)
    return lo + ((s >> 1) % (hi - lo + 1))
  end
end

-- The model: a FIFO of {mtype, data} with the kernel's admission rule and search modes.
local Model = {}
Model.__index = Model

local function new_model(capacity, msgmax)
  return setmetatable({ list = {}, bytes = 0, capacity = capacity, msgmax = msgmax }, Model)
end

function Model:send(data, mtype)
  local len = #data
  if len > self.msgmax then return nil, "toobig" end
  -- ipc/msg.c msg_fits_inqueue(): bytes and message count both bounded by msg_qbytes.
  if self.bytes + len <= self.capacity and #self.list + 1 <= self.capacity then
    self.list[#self.list + 1] = { mtype = mtype, data = data }
    self.bytes = self.bytes + len
    return true
  end
  if len > self.capacity then return nil, "toobig" end   -- could never fit
  return nil, "again"
end

-- Index of the message msgrcv(selector) picks, or nil.
function Model:find(selector)
  if selector == 0 then return (#self.list > 0) and 1 or nil end
  if selector > 0 then
    for i, m in ipairs(self.list) do
      if m.mtype == selector then return i end
    end
    return nil
  end
  local bound = (selector == math.mininteger) and math.maxinteger or -selector
  local best
  for i, m in ipairs(self.list) do
    if m.mtype <= bound and (best == nil or m.mtype < self.list[best].mtype) then best = i end
  end
  return best
end

function Model:receive(selector, maxsize)
  local i = self:find(selector)
  if not i then return nil, "again" end
  local m = self.list[i]
  if #m.data > (maxsize or self.msgmax) then return nil, "toobig" end   -- stays queued
  table.remove(self.list, i)
  self.bytes = self.bytes - #m.data
  return m.data, m.mtype
end

function Model:peek(index)
  local m = self.list[index + 1]
  if not m then return nil, "again" end
  return m.data, m.mtype
end

local function show(s)
  if s == nil then return "nil" end
  if type(s) ~= "string" then return tostring(s) end
  return string.format("<%d bytes %q...>", #s, s:sub(1, 12))
end

describe("a queue driven by random nonblocking operations", function()
  after_each(H.cleanup)

  it("matches a pure-Lua model of System V semantics (MQ_MODEL_SEED replays)", function()
    local seed = tonumber(os.getenv("MQ_MODEL_SEED") or "") or ((os.time() * 1000003) ~ H.pid) % 2147483647
    local rnd = generator(seed)
    local limits = mq.limits()
    local msgmax = limits.msgmax

    local a, name = H.fresh_name_queue("model")
    assert(a:set_blocking(false))
    local b = assert(mq.open(name, mq.O_RDWR | mq.O_NONBLOCK))

    -- Capacity: the default, or smaller than msgmax so that "could never fit" happens too.
    local capacities = { a:stat().capacity, 4096, rnd(1000, 3000), msgmax // 2 }
    local capacity = capacities[rnd(1, #capacities)]
    assert(a:set_capacity(capacity))
    local model = new_model(capacity, msgmax)

    local peek_ok = select(3, a:peek()) ~= "unsupported"

    local pool = {}
    for i = 1, msgmax + 400 do pool[i] = string.char(rnd(0, 255)) end
    pool = table.concat(pool)

    local big_types = { 2147483647, 2147483648, math.maxinteger, 1000000007 }
    local function random_type()
      if rnd(1, 20) == 1 then return big_types[rnd(1, #big_types)] end
      return rnd(1, 6)
    end
    local function random_selector()
      local r = rnd(1, 20)
      if r <= 5 then return 0 end
      if r == 6 then return math.mininteger end
      if r == 7 then return big_types[rnd(1, #big_types)] * (rnd(0, 1) * 2 - 1) end
      return rnd(-7, 7)
    end
    local function random_size()
      local r = rnd(1, 100)
      if r <= 60 then return rnd(0, 200) end
      if r <= 90 then return rnd(0, 2000) end
      if r <= 97 then return rnd(0, msgmax) end
      return msgmax + rnd(1, 300)
    end
    local function random_maxsize()
      local r = rnd(1, 20)
      if r <= 10 then return nil end
      if r <= 15 then return rnd(1, 300) end
      if r <= 17 then return msgmax end
      if r <= 19 then return 2147483647 end
      return rnd(1, msgmax)
    end

    local history, now = {}, 0   -- the last operations, for the failure message
    local function note(...)
      history[now] = string.format(...)
      history[now - 16] = nil
    end
    local function fail(i, what)
      local last = {}
      for k = math.max(1, now - 15), now do last[#last + 1] = history[k] end
      error(string.format("model mismatch with MQ_MODEL_SEED=%d at operation %d: %s\nlast operations:\n  %s",
        seed, i, what, table.concat(last, "\n  ")), 0)
    end

    local counts = { send = 0, receive = 0, stat = 0, peek = 0, ok = 0, again = 0, toobig = 0 }
    local ran, why = pcall(function()
      for i = 1, OPS do
        now = i
        local q = (rnd(0, 1) == 0) and a or b
        local r = rnd(1, 100)
        if r <= 45 then
          local len = random_size()
          local off = rnd(1, 400)
          local data = pool:sub(off, off + len - 1)
          if #data < len then data = data .. string.rep("\0", len - #data) end
          local mtype = random_type()
          note("#%d send(%d bytes, %d)", i, len, mtype)
          local ok, err, code = q:send(data, mtype)
          local mok, mcode = model:send(data, mtype)
          if (ok == true) ~= (mok == true) or (not ok and code ~= mcode) then
            fail(i, string.format("send(%d bytes, type %d) gave %s, %s, %s; the model says %s",
              len, mtype, tostring(ok), tostring(err), tostring(code), tostring(mok or mcode)))
          end
          counts.send = counts.send + 1
          counts[mok and "ok" or mcode] = counts[mok and "ok" or mcode] + 1
        elseif r <= 85 then
          local selector, maxsize = random_selector(), random_maxsize()
          note("#%d receive(%d, %s)", i, selector, tostring(maxsize))
          local data, mtype, code
          if maxsize then data, mtype, code = q:receive(selector, maxsize)
          else data, mtype, code = q:receive(selector) end
          local mdata, mtype2 = model:receive(selector, maxsize)
          if mdata then
            if data ~= mdata or mtype ~= mtype2 then
              fail(i, string.format("receive(%d, %s) gave %s, %s, %s; the model says %s, %s", selector,
                tostring(maxsize), show(data), tostring(mtype), tostring(code), show(mdata), tostring(mtype2)))
            end
            counts.ok = counts.ok + 1
          else
            if data ~= nil or code ~= mtype2 then
              fail(i, string.format("receive(%d, %s) gave %s, %s, %s; the model says %s", selector,
                tostring(maxsize), show(data), tostring(mtype), tostring(code), mtype2))
            end
            counts[mtype2] = counts[mtype2] + 1
          end
          counts.receive = counts.receive + 1
        elseif r <= 95 or not peek_ok then
          note("#%d stat()", i)
          local st, err = q:stat()
          if not st then fail(i, "stat failed: " .. tostring(err)) end
          if st.messages ~= #model.list or st.bytes ~= model.bytes or st.capacity ~= model.capacity then
            fail(i, string.format("stat gave messages=%s bytes=%s capacity=%s; the model has %d, %d, %d",
              tostring(st.messages), tostring(st.bytes), tostring(st.capacity), #model.list, model.bytes,
              model.capacity))
          end
          counts.stat = counts.stat + 1
        else
          local index = rnd(0, #model.list + 1)
          note("#%d peek(%d)", i, index)
          local data, mtype, code = q:peek(index)
          local mdata, mtype2 = model:peek(index)
          if data ~= mdata or (mdata and mtype ~= mtype2) or (not mdata and code ~= mtype2) then
            fail(i, string.format("peek(%d) gave %s, %s, %s; the model says %s, %s", index, show(data),
              tostring(mtype), tostring(code), show(mdata), tostring(mtype2)))
          end
          counts.peek = counts.peek + 1
        end
      end

      -- Whatever is left comes out in the model's order.
      for n = 1, #model.list do
        local data, mtype, code = a:receive(0)
        local want = model.list[n]
        if data ~= want.data or mtype ~= want.mtype then
          fail(OPS + n, string.format("draining gave %s, %s, %s; the model says %s, %d",
            show(data), tostring(mtype), tostring(code), show(want.data), want.mtype))
        end
      end
      local _, _, code = a:receive(0)
      if code ~= "again" then fail(OPS, "the queue holds more than the model: " .. tostring(code)) end
    end)
    -- Whatever went wrong (an error raised by mq too), say how to replay it.
    if not ran then
      error(tostring(why):find("MQ_MODEL_SEED=", 1, true) and why or
        string.format("with MQ_MODEL_SEED=%d at operation %d: %s", seed, now, tostring(why)), 0)
    end

    -- The run must have exercised every outcome, or it proves little.
    assert(counts.ok > OPS / 10 and counts.again > 0 and counts.toobig > 0,
      string.format("seed %d exercised too little: ok=%d again=%d toobig=%d", seed, counts.ok,
        counts.again, counts.toobig))
    a:close()
    b:close()
  end)
end)
