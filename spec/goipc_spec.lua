-- Issue 8: go-ipc peers keep working. A Go program using go-ipc (mq v0.1.0) meets mq on one
-- name: what one side creates the other opens, either side's destroy removes queue and key
-- file, and when both race to create one name at most one of them succeeds.
-- spec/support/goipc.pl (core Perl) does exactly what go-ipc does: os.Create of the key file
-- (O_RDWR|O_CREAT|O_TRUNC, 0666), stat for the key, msgget with IPC_CREAT|IPC_EXCL to create,
-- msgget(key, 0) to open, msgctl(IPC_RMID) then removing the file to destroy.

local mq = require "mq"
local H = require "helpers"
local R = require "support.races"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local PEER = "perl " .. H.shell_quote(here .. "/support/goipc.pl")
local have_perl = (H.sh("perl -MIPC::SysV -MTime::HiRes -e 1"))

-- Run the go-ipc stand-in; returns its words ("ok", id, key / "fail", code, reason).
local function goipc(...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  local _, _, out = H.sh("timeout 20 " .. PEER .. " " .. table.concat(args, " "))
  local words = {}
  for w in out:gmatch("%S+") do words[#words + 1] = w end
  return words, out
end

describe("a go-ipc program on the same name", function()
  after_each(function()
    H.cleanup()
    R.sweep()
  end)

  if not have_perl then
    pending("needs perl with IPC::SysV and Time::HiRes (core modules)")
    return
  end

  it("creates a queue that mq.open(name) opens, and messages pass both ways", function()
    local name = H.name("go2lua")
    local w, out = goipc("create", name, "0600")
    assert.are.equal("ok", w[1], out)
    local q = assert(mq.open(name))
    assert.are.equal(tonumber(w[2]), q:id())
    assert.are.equal(tonumber(w[3]), q:key())
    assert.are.equal("ok", goipc("send", name, "from-go")[1])
    local data, mtype = q:receive_timeout(5)
    assert.are.equal("from-go", data)
    assert.are.equal(1, mtype)
    assert(q:send("from-lua"))
    w, out = goipc("recv", name)
    assert.are.same({ "ok", "from-lua" }, w, out)
    q:close()
  end)

  it("opens a queue mq.new(name) created, and messages pass both ways", function()
    local name = H.name("lua2go")
    local q = assert(mq.new(name))
    local w, out = goipc("open", name)
    assert.are.equal("ok", w[1], out)
    assert.are.equal(q:id(), tonumber(w[2]))
    assert(q:send("from-lua"))
    w, out = goipc("recv", name)
    assert.are.same({ "ok", "from-lua" }, w, out)
    assert.are.equal("ok", goipc("send", name, "from-go")[1])
    assert.are.equal("from-go", (q:receive_timeout(5)))
    -- go-ipc's open truncated and reused the key file: mq still finds the same queue.
    local again = assert(mq.open(name))
    assert.are.equal(q:id(), again:id())
    again:close()
    q:close()
  end)

  it("destroys a queue mq.new(name) created: the queue and its key file go", function()
    local name = H.name("godestroys")
    local q = assert(mq.new(name))
    local id, key = q:id(), q:key()
    q:close()
    local w, out = goipc("destroy", name)
    assert.are.equal("ok", w[1], out)
    assert.is_nil(R.ours(id, key))
    assert.is_false(H.exists(H.path(name)))
    H.fails("notfound", mq.open(name))
  end)

  it("has its queue removed by mq.destroy(name): the queue and its key file go", function()
    local name = H.name("luadestroys")
    local w, out = goipc("create", name, "0600")
    assert.are.equal("ok", w[1], out)
    assert.is_true(mq.destroy(name))
    assert.is_nil(R.ours(tonumber(w[2]), tonumber(w[3])))
    assert.is_false(H.exists(H.path(name)))
    w = goipc("open", name)
    assert.are.same({ "fail", "notfound" }, { w[1], w[2] })
    os.remove(H.path(name))         -- go-ipc's open made the key file again
  end)

  it("racing mq.new to create one fresh name, lets at most one of them succeed", function()
    local period = 0.004
    local seconds = R.duration(1.5)
    local rounds = math.floor(seconds / period)
    local base = H.name("vsgo")
    local names = {}
    for k = 0, rounds - 1 do names[k] = H.track(base .. "-" .. k) end
    local jitter = R.jitter(200, "*,msgget:1000")
    local results = R.run({
      { tag = "go-ipc", command = PEER .. " rounds", args = { base, period, rounds }, prefix = jitter },
      { tag = "mq", source = [[
        local base, period, rounds = arg[3], tonumber(arg[4]), tonumber(arg[5])
        for k = 0, rounds - 1 do
          local late = now() - (T0 + k * period)
          if late < 0 then sleep(-late) end
          if late <= period then
            local q, msg, code = mq.new(base .. "-" .. k)
            if q then say(k, "ok", q:id(), q:key()) q:close() else say(k, "fail", code, msg) end
          end
        end
        finish()
      ]], args = { base, period, rounds }, prefix = jitter },
    }, seconds)
    local by_round, created = {}, {}
    for k = 0, rounds - 1 do by_round[k] = {} end
    for _, r in ipairs(results) do
      for _, f in ipairs(r.lines) do
        local k = tonumber(f[1])
        if k then
          local entry = { who = r.tag, ok = f[2] == "ok", id = tonumber(f[3]), key = tonumber(f[4]),
            code = f[3], msg = f[4] }
          table.insert(by_round[k], entry)
          if entry.ok then created[#created + 1] = { name = names[k], id = entry.id, key = entry.key } end
        end
      end
    end
    local both, neither, misdirected, won = {}, {}, {}, { ["go-ipc"] = 0, mq = 0 }
    for k = 0, rounds - 1 do
      local winners = {}
      for _, e in ipairs(by_round[k]) do
        if e.ok then winners[#winners + 1] = e end
      end
      if #winners > 1 then
        both[#both + 1] = string.format("round %d: go-ipc made queue %d and mq.new made queue %d", k,
          winners[1].who == "go-ipc" and winners[1].id or winners[2].id,
          winners[1].who == "mq" and winners[1].id or winners[2].id)
      elseif #winners == 0 then
        local why = {}
        for _, e in ipairs(by_round[k]) do
          why[#why + 1] = e.who .. ": " .. tostring(e.code) .. " " .. tostring(e.msg)
        end
        neither[#neither + 1] = string.format("round %d: %s", k, table.concat(why, "; "))
      else
        won[winners[1].who] = won[winners[1].who] + 1
        local q, _, code = mq.open(names[k])
        local got = q and q:id() or code
        if q then q:close() end
        if got ~= winners[1].id then
          misdirected[#misdirected + 1] = string.format("round %d: %s won with queue %d, the name opens to %s",
            k, winners[1].who, winners[1].id, tostring(got))
        end
      end
    end
    local parts = {}
    for _, s in ipairs({
      { "rounds where both go-ipc and mq.new created the name", both, rounds },
      { "names that do not open to their winner's queue", misdirected },
      { "queues left without their name once quiet", R.orphans(created), #created },
      { "temporary files left in TMPDIR", R.stray_temporaries() },
    }) do
      parts[#parts + 1] = R.summary(s[1], s[2], s[3])
    end
    assert(#parts == 0, string.format("\n%s\n(go-ipc won %d rounds, mq %d, neither %d%s)",
      table.concat(parts, "\n"), won["go-ipc"], won.mq, #neither, #neither > 0 and (": " .. neither[1]) or ""))
  end)
end)
