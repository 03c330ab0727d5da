-- A name is one queue under concurrent processes (issue 8, P1 to P3): exclusive create,
-- lookups that never reach another name's queue, and no queue left without its name.
--
-- Each race runs lua5.4 children for a couple of seconds (MQ_TEST_SCALE shortens them),
-- started together from a start file and stopped by the clock. Children log queue ids to
-- files; the parent compares ids, never payloads, and once all are quiet checks every
-- live queue they made against its key file and /proc/sysvipc/msg. The windows are a few
-- microseconds wide, so children run under spec/support/jitter.c, which sleeps a random
-- moment before each file and System V call: a correct implementation passes under any
-- timing, and the shim only makes rare interleavings common.

local mq = require "mq"
local H = require "helpers"
local P = require "support.proc"
local R = require "support.races"

-- Children of the lock-step rounds: round k (k = 0 .. rounds-1) starts at T0 + k*period,
-- when every child calls mq.new(base .. "-" .. k) once. A child more than a period late
-- skips rounds until it is back on the clock, so the race ends on time on a loaded machine.
-- arg[6] lists rounds to leave out (",k,k,").
local ROUNDS = [[
local base, period, rounds, skip = arg[3], tonumber(arg[4]), tonumber(arg[5]), arg[6]
for k = 0, rounds - 1 do
  local late = now() - (T0 + k * period)
  if late < 0 then sleep(-late) end
  if late <= period and not skip:find("," .. k .. ",", 1, true) then
    local q, msg, code = mq.new(base .. "-" .. k)
    if q then
      say(k, "ok", q:id(), q:key())
      q:close()
    else
      say(k, "fail", code, msg)
    end
  end
end
finish()
]]

-- A creator looping mq.new(name) until T1; it keeps what it makes (closing the handle).
-- Right after each success it looks the name up: while its queue lives, no one may have
-- taken the key file off the name (only a destroyer that removed the queue first may), so
-- a name that opens to another queue while this one still lives has two queues.
local CREATOR = [[
local name = arg[3]
while now() < T1 do
  local q, msg, code = mq.new(name)
  if q then
    say("made", name, q:id(), q:key())
    local o = mq.open(name)
    if o and o:id() ~= q:id() and q:stat() then say("split", q:id(), o:id()) end
    if o then o:close() end
    q:close()
  elseif code ~= "exists" then
    say("bad", "mq.new", code, msg)
  end
end
finish()
]]

-- A destroyer looping mq.destroy(name), or opening the name and destroying the handle.
local DESTROY_BY_NAME = [[
local name = arg[3]
while now() < T1 do
  local ok, msg, code = mq.destroy(name)
  if not ok then say("bad", "mq.destroy " .. name, code, msg) end
end
finish()
]]

local DESTROY_BY_HANDLE = [[
local name = arg[3]
while now() < T1 do
  local q, msg, code = mq.open(name)
  if q then
    local ok, msg2, code2 = q:destroy()
    if not ok then say("bad", "q:destroy", code2, msg2) end
  elseif code ~= "notfound" then
    say("bad", "mq.open", code, msg)
  end
end
finish()
]]

-- The only process that creates and destroys names a and b, alternately, holding each
-- queue a random moment. On ext4 and tmpfs, b's new key file gets the inode a's has just
-- freed, and so a's old key, and the other way round.
local CHURN = [[
local names, hold = { arg[3], arg[4] }, tonumber(arg[5])
local i = 0
while now() < T1 do
  i = i + 1
  local name = names[i % 2 + 1]
  local q, msg, code = mq.new(name)
  if q then
    say("made", name, q:id(), q:key())
    pause(hold)
    local ok, msg2, code2 = q:destroy()
    if not ok then say("bad", "q:destroy", code2, msg2) end
  else
    say("bad", "mq.new " .. name, code, msg)
  end
end
finish()
]]

-- Like CHURN, but each queue of b carries a sentinel message and, before its creator
-- destroys it, must still be alive, hold the sentinel, and be what mq.open(b) gives: no
-- one else removes a queue of b.
local CHURN_GUARDED = [[
local a, b, hold = arg[3], arg[4], tonumber(arg[5])
while now() < T1 do
  local q, msg, code = mq.new(a)
  if q then
    say("made", a, q:id(), q:key())
    pause(hold)
    q:destroy()
  else
    say("bad", "mq.new " .. a, code, msg)
  end
  q, msg, code = mq.new(b)
  if q then
    say("made", b, q:id(), q:key())
    local sent, msg1, code1 = q:send("sentinel")
    pause(hold)
    local st, msg2, code2 = q:stat()
    if not sent then
      say("lost", q:id(), "send: " .. tostring(code1) .. " " .. tostring(msg1))
    elseif not st then
      say("lost", q:id(), "stat: " .. tostring(code2) .. " " .. tostring(msg2))
    elseif st.messages ~= 1 then
      say("lost", q:id(), "its sentinel is gone (" .. st.messages .. " messages)")
    else
      local o, msg3, code3 = mq.open(b)
      if not o then
        say("lost", q:id(), "mq.open(b): " .. tostring(code3) .. " " .. tostring(msg3))
      else
        if o:id() ~= q:id() then say("lost", q:id(), "mq.open(b) gives queue " .. o:id()) end
        o:close()
      end
    end
    q:destroy()
  else
    say("bad", "mq.new " .. b, code, msg)
  end
end
finish()
]]

-- Opens a and b alternately until T1; logs how often each (name, id) came back.
local OPENER = [[
local names = { arg[3], arg[4] }
local seen, i = {}, 0
while now() < T1 do
  i = i + 1
  local name = names[i % 2 + 1]
  local q, msg, code = mq.open(name)
  if q then
    local k = name .. "\t" .. q:id()
    seen[k] = (seen[k] or 0) + 1
    q:close()
  elseif code ~= "notfound" then
    say("bad", "mq.open " .. name, code, msg)
  end
end
for k, n in pairs(seen) do say("opened", k, n) end
finish()
]]

-- Lines of all children whose first field is `what`.
local function lines_of(results, what)
  local out = {}
  for _, r in ipairs(results) do
    for _, f in ipairs(r.lines) do
      if f[1] == what then out[#out + 1] = { tag = r.tag, f = f } end
    end
  end
  return out
end

-- "bad" lines (a call returned what it never may) as problem strings.
local function bad_calls(results)
  local out = {}
  for _, l in ipairs(lines_of(results, "bad")) do
    out[#out + 1] = string.format("%s: %s returned %s: %s", l.tag, l.f[2], l.f[3], l.f[4] or "")
  end
  return out
end

-- Fail with every non-empty summary.
local function check(sections)
  local parts = {}
  for _, s in ipairs(sections) do
    local text = R.summary(s[1], s[2], s[3])
    if text then parts[#parts + 1] = text end
  end
  assert(#parts == 0, "\n" .. table.concat(parts, "\n"))
end

describe("mq.new racing on one name", function()
  after_each(function()
    H.cleanup()
    R.sweep()
  end)

  -- N children create names in lock-step rounds; `prepare(name)` readies each name.
  local function lockstep(tag, prepare, prepared)
    local N, period = 4, 0.004
    local seconds = R.duration(2)
    local rounds = math.floor(seconds / period)
    local base = H.name(tag)
    local names, excluded = {}, {}
    for k = 0, rounds - 1 do
      names[k] = H.track(base .. "-" .. k)
      if prepare then excluded[k] = not prepare(names[k]) end
    end
    if prepared then prepared() end
    local skip = { "" }
    for k = 0, rounds - 1 do
      if excluded[k] then skip[#skip + 1] = k end
    end
    skip[#skip + 1] = ""
    skip = table.concat(skip, ",")
    -- Every call delayed up to 0.2 ms, msgget up to 1 ms: the gap between a key file
    -- appearing and its queue being made is where creators overtake one another.
    local children = {}
    for i = 1, N do
      children[i] = { tag = "creator " .. i, source = ROUNDS, args = { base, period, rounds, skip },
        prefix = R.jitter(200, "*,msgget:1000") }
    end
    local results = R.run(children, seconds)

    local by_round = {}
    for k = 0, rounds - 1 do by_round[k] = { ok = {}, fail = {} } end
    for _, r in ipairs(results) do
      for _, f in ipairs(r.lines) do
        local k = tonumber(f[1])
        if k then
          local t = by_round[k]
          if f[2] == "ok" then
            t.ok[#t.ok + 1] = { name = names[k], id = tonumber(f[3]), key = tonumber(f[4]) }
          else
            t.fail[#t.fail + 1] = { code = f[3], msg = f[4] }
          end
        end
      end
    end
    local not_one, other_codes, misdirected, created, judged = {}, {}, {}, {}, 0
    for k = 0, rounds - 1 do
      local t = by_round[k]
      for _, c in ipairs(t.ok) do created[#created + 1] = c end
      if not excluded[k] and #t.ok + #t.fail > 0 then
        judged = judged + 1
        if #t.ok ~= 1 then
          local ids = {}
          for i, c in ipairs(t.ok) do ids[i] = c.id end
          not_one[#not_one + 1] = string.format("round %d: %d of %d calls returned a handle (%s)",
            k, #t.ok, #t.ok + #t.fail, #ids > 0 and "ids " .. table.concat(ids, ", ")
              or "the first failure: " .. tostring(t.fail[1] and t.fail[1].msg))
        end
        for _, f in ipairs(t.fail) do
          if f.code ~= "exists" then
            other_codes[#other_codes + 1] = string.format("round %d: %s: %s", k, f.code, f.msg or "")
          end
        end
        if #t.ok == 1 then
          local q, _, code = mq.open(names[k])
          local got = q and q:id() or code
          if q then q:close() end
          if got ~= t.ok[1].id then
            misdirected[#misdirected + 1] = string.format("round %d: the winner made queue %d, the name opens to %s",
              k, t.ok[1].id, tostring(got))
          end
        end
      end
    end
    assert(judged >= rounds / 4, string.format("only %d of %d rounds could be judged", judged, rounds))
    check({
      { "rounds where not exactly one mq.new returned a handle", not_one, judged },
      { "losers that did not get exists", other_codes },
      { "names that do not open to their winner's queue", misdirected },
      { "queues left without their name once quiet", R.orphans(created) },
      { "temporary files left in TMPDIR", R.stray_temporaries() },
    })
  end

  it("lets exactly one of four processes create a fresh name, and the name then opens to its queue", function()
    lockstep("fresh")
  end)

  it("lets exactly one of four processes claim a stale key file, and the name then opens to its queue", function()
    local keys, held = nil, {}
    lockstep("stale", function(name)
      keys = keys or (function()
        local k = {}
        for _, q in pairs(R.queues()) do k[q.key] = true end
        return k
      end)()
      H.write_file(H.path(name), "")
      -- A stale key file has no queue on its key. A file whose key an unrelated queue
      -- happens to hold (ftok keeps 16 bits of the inode) is moved off the name, so that
      -- nothing of this test reaches that queue, and held until every file is made (or the
      -- next file would get its inode back); its round is left out.
      if keys[mq.ftok(H.path(name), 0)] then
        held[#held + 1] = P.flag()
        assert(os.rename(H.path(name), held[#held]))
        return false
      end
      return true
    end, function()
      for _, f in ipairs(held) do os.remove(f) end
    end)
  end)
end)

describe("creators racing a destroyer on one name", function()
  after_each(function()
    H.cleanup()
    R.sweep()
  end)

  -- Two creators loop mq.new(name) against one destroyer for a couple of seconds.
  local function three_way(tag, destroyer)
    local name = H.name(tag)
    local jitter = R.jitter(200)
    local results = R.run({
      { tag = "creator 1", source = CREATOR, args = { name }, prefix = jitter },
      { tag = "creator 2", source = CREATOR, args = { name }, prefix = jitter },
      { tag = "destroyer", source = destroyer, args = { name }, prefix = jitter },
    }, R.duration(2.5))
    local created = {}
    for _, l in ipairs(lines_of(results, "made")) do
      created[#created + 1] = { name = l.f[2], id = tonumber(l.f[3]), key = tonumber(l.f[4]) }
    end
    assert(#created > 0, "the creators made no queue at all")
    local split = {}
    for _, l in ipairs(lines_of(results, "split")) do
      split[#split + 1] = string.format("%s: its queue %s was alive, but the name opened to queue %s",
        l.tag, l.f[2], l.f[3])
    end
    check({
      { "calls that returned what they never may", bad_calls(results) },
      { "times a creator's live queue was not the one its name opened to", split },
      { "queues left without their name once quiet", R.orphans(created), #created },
      { "temporary files left in TMPDIR", R.stray_temporaries() },
    })
  end

  it("leave every queue they made reachable by name when the destroyer uses mq.destroy(name)", function()
    three_way("byname", DESTROY_BY_NAME)
  end)

  it("leave every queue they made reachable by name when the destroyer uses q:destroy()", function()
    three_way("byhandle", DESTROY_BY_HANDLE)
  end)
end)

describe("two names churned over recycled inodes", function()
  after_each(function()
    H.cleanup()
    R.sweep()
  end)

  -- The ids CHURN / CHURN_GUARDED made, as id -> name, and the `created` list for R.orphans.
  local function made(results)
    local owner, created = {}, {}
    for _, l in ipairs(lines_of(results, "made")) do
      local id = tonumber(l.f[3])
      owner[id] = l.f[2]
      created[#created + 1] = { name = l.f[2], id = id, key = tonumber(l.f[4]) }
    end
    return owner, created
  end

  it("never let mq.open of one name return the other name's queue", function()
    local a, b = H.name("a"), H.name("b")
    -- Delays before msgget and before each look at the key file widen both windows of a
    -- look-up: the key file changing before msgget, and changing back (a->b->a on one inode)
    -- before the second look.
    local opener = R.jitter(500, R.LOOKS .. ",msgget")
    local results = R.run({
      { tag = "churner", source = CHURN, args = { a, b, 0.0005 } },
      { tag = "opener 1", source = OPENER, args = { a, b }, prefix = opener },
      { tag = "opener 2", source = OPENER, args = { a, b }, prefix = opener },
    }, R.duration(2))
    local owner, created = made(results)
    local wrong, opens = {}, 0
    for _, l in ipairs(lines_of(results, "opened")) do
      local name, id, n = l.f[2], tonumber(l.f[3]), tonumber(l.f[4])
      opens = opens + n
      if owner[id] ~= name then
        wrong[#wrong + 1] = string.format("%s: mq.open(%q) returned queue %d, made for %s (%d times)",
          l.tag, name, id, owner[id] and string.format("%q", owner[id]) or "no name of this test", n)
      end
    end
    assert(opens > 0, "no mq.open succeeded at all")
    check({
      { "calls that returned what they never may", bad_calls(results) },
      { "(name, queue) pairs mq.open got wrong", wrong },
      { "queues left without their name once quiet", R.orphans(created), #created },
      { "temporary files left in TMPDIR", R.stray_temporaries() },
    })
  end)

  it("never let mq.destroy of one name remove the other name's queue", function()
    local a, b = H.name("a"), H.name("b")
    -- Two destroyers of a, each delayed up to 1 ms before msgget: the gap between reading
    -- a's key and acting on it, in which a goes and b comes on a's inode.
    local destroyer = R.jitter(1000, "msgget")
    local results = R.run({
      { tag = "churner", source = CHURN_GUARDED, args = { a, b, 0.001 } },
      { tag = "destroyer 1", source = DESTROY_BY_NAME, args = { a }, prefix = destroyer },
      { tag = "destroyer 2", source = DESTROY_BY_NAME, args = { a }, prefix = destroyer },
    }, R.duration(2))
    local _, created = made(results)
    local lost = {}
    for _, l in ipairs(lines_of(results, "lost")) do
      lost[#lost + 1] = string.format("queue %s of %q: %s", l.f[2], b, l.f[3])
    end
    assert(#created > 0, "the churner made no queue at all")
    check({
      { "calls that returned what they never may", bad_calls(results) },
      { "queues of b touched while only their creator may", lost },
      { "queues left without their name once quiet", R.orphans(created), #created },
      { "temporary files left in TMPDIR", R.stray_temporaries() },
    })
  end)
end)
