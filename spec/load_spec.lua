-- Load: several producer processes and two consumer processes share one queue. Every
-- message must arrive exactly once, uncorrupted, and each producer's messages must keep
-- their order at each consumer (per type where a consumer's selector reorders types).

local H = require "helpers"
local P = require "support.proc"

local PRODUCERS = 4
local PER_PRODUCER = P.scaled(5000, 200)

-- Shared by producers and consumers: an FNV-style checksum over 8-byte words.
local COMMON = [[
local mq = require "mq"
local HEADER = "<I1I4I4I8i8"   -- producer, seq, payload length, mtype, checksum
local function checksum(s)
  local h = #s
  local n = #s - #s % 8
  for i = 1, n, 8 do h = (h ~ string.unpack("<i8", s, i)) * 0x100000001b3 end
  for i = n + 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return h
end
local function die(...) io.stderr:write(string.format(...), "\n") os.exit(1) end
]]

local PRODUCER = COMMON .. [[
local name, id, count, seed, typed = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]), arg[5] == "typed"
math.randomseed(seed)
local q = assert(mq.open(name, mq.O_WRONLY))
local room = mq.limits().msgmax - string.packsize(HEADER)
local pool = {}
for i = 1, room + 256 do pool[i] = string.char(math.random(0, 255)) end
pool = table.concat(pool)
for seq = 1, count do
  local r, len = math.random(), nil
  if r < 0.6 then len = math.random(0, 256)
  elseif r < 0.9 then len = math.random(0, 2048)
  elseif r < 0.98 then len = math.random(0, room)
  else len = (r < 0.99) and 0 or room end
  local off = math.random(1, 256)
  local payload = pool:sub(off, off + len - 1)
  local mtype = typed and math.random(1, 3) or 1
  local ok, err, code = q:send(string.pack(HEADER, id, seq, len, mtype, checksum(payload)) .. payload, mtype)
  if not ok then die("producer %d seq %d: send failed: %s (%s)", id, seq, tostring(err), tostring(code)) end
end
q:close()
]]

local CONSUMER = COMMON .. [[
local name, selector = arg[1], tonumber(arg[2])
local q = assert(mq.open(name, mq.O_RDONLY))
local out = {}
while true do
  local data, mtype, code = q:receive(selector)
  if not data then die("receive(%d) failed: %s (%s)", selector, tostring(mtype), tostring(code)) end
  local id, seq, len, htype, sum, pos = string.unpack(HEADER, data)
  if id == 0 then break end
  local payload = data:sub(pos)
  if #payload ~= len then die("producer %d seq %d: length %d, expected %d", id, seq, #payload, len) end
  if checksum(payload) ~= sum then die("producer %d seq %d: checksum mismatch", id, seq) end
  if htype ~= mtype then die("producer %d seq %d: mtype %d, sent as %d", id, seq, mtype, htype) end
  out[#out + 1] = string.format("%d %d %d", id, seq, mtype)
end
io.write(table.concat(out, "\n"), "\nEND\n")
q:close()
]]

local STOP_HEADER = "<I1I4I4I8i8"

local function run_load(typed)
  local q, name = H.fresh_name_queue("load", "0600")
  local children = {}
  local ok_all, why = pcall(function()
    -- Consumers: plain mode takes everything in order (0); typed mode has one consumer
    -- take only type 2 and the other the lowest type <= 3 first.
    local selectors = typed and { 2, -3 } or { 0, 0 }
    local consumers = {}
    for c = 1, 2 do
      consumers[c] = P.spawn(CONSUMER, nil, name, selectors[c])
      children[#children + 1] = consumers[c]
    end
    local producers = {}
    for p = 1, PRODUCERS do
      producers[p] = P.spawn(PRODUCER, nil, name, p, PER_PRODUCER, H.pid * 10 + p, typed and "typed" or "plain")
      children[#children + 1] = producers[p]
    end
    for p = 1, PRODUCERS do
      local ok, code, out = producers[p]:wait(90)
      assert(ok, string.format("producer %d failed (%s): %s", p, tostring(code), out))
    end
    if typed then
      -- The -3 consumer would take a type-2 stop before leftover type-3 messages: drain first.
      assert(H.wait_until(function() return q:stat().messages == 0 end, 60), "consumers stopped draining")
    end
    -- One stop per consumer; each consumer leaves at its first stop, so each gets one.
    local stop_type = typed and 2 or 1
    for _ = 1, 2 do assert(q:send(string.pack(STOP_HEADER, 0, 0, 0, stop_type, 0), stop_type)) end

    local seen, total = {}, 0
    for c = 1, 2 do
      local ok, code, out = consumers[c]:wait(60)
      assert(ok, string.format("consumer %d failed (%s): %s", c, tostring(code), out))
      assert(out:match("END\n$"), "consumer " .. c .. " output truncated")
      local last = {}
      for id, seq, mtype in out:gmatch("(%d+) (%d+) (%d+)") do
        id, seq, mtype = tonumber(id), tonumber(seq), tonumber(mtype)
        local k = id * 1000000 + seq
        if seen[k] then error(string.format("producer %d seq %d delivered twice", id, seq)) end
        seen[k] = true
        total = total + 1
        -- Order: per producer, or per producer and type for the lowest-type-first selector.
        local lane = (selectors[c] < 0) and (id * 10 + mtype) or id
        if (last[lane] or 0) >= seq then
          error(string.format("consumer %d (selector %d): producer %d seq %d after seq %d", c, selectors[c],
            id, seq, last[lane]))
        end
        last[lane] = seq
      end
    end
    for p = 1, PRODUCERS do
      for seq = 1, PER_PRODUCER do
        if not seen[p * 1000000 + seq] then error(string.format("producer %d seq %d lost", p, seq)) end
      end
    end
    assert.are.equal(PRODUCERS * PER_PRODUCER, total)
    assert.are.equal(0, q:stat().messages)
  end)
  for _, child in ipairs(children) do child:finish(0) end
  q:close()
  assert(ok_all, why)
end

describe("under load", function()
  after_each(H.cleanup)

  it("delivers every message of 4 producers to 2 consumers exactly once, intact and in order", function()
    run_load(false)
  end)

  it("does the same with message types and type selectors in play", function()
    run_load(true)
  end)
end)
