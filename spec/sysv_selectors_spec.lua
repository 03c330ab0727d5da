-- Receive selectors {except = T} (MSG_EXCEPT) and select with a selector per entry (issue
-- 11): checked against a model of the queue for receive, receive_timeout, messages and
-- select; waits that must skip the excepted type (readiness helpers, polling, coroutines,
-- fd-aware waiters); every failure code of each call with such a selector.
--
-- `unsupported` (a system without MSG_EXCEPT) cannot be produced on Linux, where the
-- headers always define it. peek keeps its index argument and takes no selector.

local mq = require "mq"
local core = require "mq.core"
local H = require "helpers"
local P = require "support.proc"
local X = require "support.peers"

-- The model: which queued message a selector takes (System V's rules, msgrcv(2)).
local function pick(model, sel)
  if type(sel) == "table" then
    for i, m in ipairs(model) do
      if m.type ~= sel.except then return i end
    end
    return nil
  end
  sel = sel or 0
  if sel == 0 then return model[1] and 1 or nil end
  if sel > 0 then
    for i, m in ipairs(model) do
      if m.type == sel then return i end
    end
    return nil
  end
  local best
  for i, m in ipairs(model) do
    if m.type <= -sel and (best == nil or m.type < model[best].type) then best = i end
  end
  return best
end

local function show(sel)
  if type(sel) == "table" then return "{except = " .. tostring(sel.except) .. "}" end
  return tostring(sel)
end

describe("a receive selector {except = T}", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(function()
    mq.set_poll{ threads = true }
    mq.set_waiter(nil)
    H.cleanup()
  end)

  it("takes what the model says, through receive, receive_timeout, messages and select", function()
    local seed = tonumber(os.getenv("MQ_MODEL_SEED") or "") or math.random(1, 1 << 30)
    local rng = function(a, b) return math.random(a, b) end
    math.randomseed(seed)
    local q = H.fresh_key_queue()
    local other = H.fresh_key_queue()                      -- always empty
    assert(q:set_blocking(false))
    local model, sent, taken = {}, 0, 0
    local function check(what, sel, data, t, code)
      local i = pick(model, sel)
      local where = string.format("seed %d, step %s: %s %s", seed, sent + taken, what, show(sel))
      if i == nil then
        assert.is_nil(data, where)
        assert.is_truthy(code == "again" or code == "timeout", where .. ": " .. tostring(code))
        return
      end
      assert.are.same({ model[i].data, model[i].type }, { data, t }, where)
      table.remove(model, i)
      taken = taken + 1
    end
    for _ = 1, 600 do
      if #model < 3 or rng(1, 5) <= 2 then
        sent = sent + 1
        local t = rng(1, 5)
        local data = "m" .. sent
        assert(q:send(data, t))
        model[#model + 1] = { type = t, data = data }
      else
        local sel
        local kind = rng(1, 4)
        if kind <= 2 then sel = { except = rng(1, 6) }
        elseif kind == 3 then sel = rng(-6, 6)
        else sel = nil end
        local how = rng(1, 7)
        if how == 1 then
          local data, t, code = q:receive(sel)
          check("receive", sel, data, t, code)
        elseif how == 2 then
          local data, t, code = q:receive_timeout(0, sel)
          check("receive_timeout", sel, data, t, code)
        elseif how == 3 then
          local h, data, t = mq.select({ q, other }, 0, sel)
          if h ~= nil then assert.are.equal(q, h) end
          check("select default", sel, h and data, h and t, h == nil and t)
        elseif how == 4 then
          -- {q, nil} is {q}: the default selector applies.
          local h, data, t = mq.select({ other, { q, sel } }, 0, { except = 1 })
          if h ~= nil then assert.are.equal(q, h) end
          if sel == nil then sel = { except = 1 } end
          check("select entry", sel, h and data, h and t, h == nil and t)
        elseif how == 5 then
          local h, data, t = mq.select({ { other }, { q } }, 0, sel)
          if h ~= nil then assert.are.equal(q, h) end
          check("select {handle}", sel, h and data, h and t, h == nil and t)
        elseif how == 6 and rng(1, 4) == 1 then
          for data, t in q:messages(0, sel) do check("messages", sel, data, t) end
          assert.is_nil(pick(model, sel), "messages left a match behind, seed " .. seed)
        else
          local data, t = q:peek(0)
          if model[1] then
            assert.are.same({ model[1].data, model[1].type }, { data, t }, "peek, seed " .. seed)
          end
        end
      end
      assert.are.equal(#model, q:stat().messages, "seed " .. seed)
    end
    assert.is_true(taken > 100)
    q:close()
    other:close()
  end)

  it("skips only T: every other type, in queue order, then again", function()
    local q = H.fresh_key_queue()
    assert(q:set_blocking(false))
    for i, t in ipairs({ 3, 1, 3, 2, 1, 7 }) do assert(q:send("m" .. i, t)) end
    assert.are.same({ "m2", 1 }, { q:receive({ except = 3 }) })
    assert.are.same({ "m1", 3 }, { q:receive({ except = 1 }) })
    assert.are.same({ "m3", 3 }, { q:receive({ except = 1 }) })
    assert.are.same({ "m4", 2 }, { q:receive({ except = 1 }) })
    assert.are.same({ "m6", 7 }, { q:receive({ except = 1 }) })
    H.fails("again", q:receive({ except = 1 }))
    assert.are.same({ "m5", 1 }, { q:receive({ except = 1 << 40 }) })
    H.fails("again", q:receive({ except = 1 }))
    q:close()
  end)

  it("is honoured by messages, which ends when only T is left", function()
    local q = H.fresh_key_queue()
    for i, t in ipairs({ 2, 4, 2, 5 }) do assert(q:send("m" .. i, t)) end
    local got = {}
    for data, t in q:messages(0, { except = 2 }) do got[#got + 1] = data .. ":" .. t end
    assert.are.same({ "m2:4", "m4:5" }, got)
    assert.are.equal(2, q:stat().messages)
    q:close()
  end)

  it("leaves a longer message queued with toobig (maxsize), and takes it with room", function()
    local q = H.fresh_key_queue()
    assert(q:send("short", 1))
    assert(q:send("a longer message", 2))
    H.fails("toobig", q:receive({ except = 1 }, 5))
    H.fails("toobig", q:receive_timeout(0, { except = 1 }, 5))
    assert.are.same({ "a longer message", 2 }, { q:receive({ except = 1 }, 100) })
    assert.are.same({ "short", 1 }, { q:receive() })
    q:close()
  end)

  -- A child sends the excepted type first, then another type a moment later: the waiting
  -- receiver must let the first pass and wake for the second.
  local SENDER = [[
    local mq = require "mq"
    local core = require "mq.core"
    local q = assert(mq.open(tonumber(arg[1])))
    assert(q:send(arg[2], tonumber(arg[3])))
    core.sleep(tonumber(arg[6]))
    assert(q:send(arg[4], tonumber(arg[5])))
  ]]

  local function wait_past(setup, run)
    local q, key = H.fresh_key_queue()
    if setup then setup() end
    local child = P.spawn(SENDER, nil, key, "skip me", 1, "take me", 2, 0.15)
    local t0 = core.monotonic()
    local data, t = run(q)
    local elapsed = core.monotonic() - t0
    local ok, code, out = child:finish(10)
    assert(ok, tostring(code) .. ": " .. out)
    assert.are.same({ "take me", 2 }, { data, t })
    assert.is_true(elapsed >= 0.1, "woke after " .. elapsed .. " s")
    assert.are.same({ "skip me", 1 }, { q:receive() })
    q:close()
  end

  it("makes a waiting receive_timeout wait past T (readiness helpers)", function()
    wait_past(nil, function(q) return q:receive_timeout(10, { except = 1 }) end)
  end)

  it("makes a waiting receive_timeout wait past T (polling, no helper threads)", function()
    wait_past(function() assert(mq.set_poll{ threads = false }) end,
      function(q) return q:receive_timeout(10, { except = 1 }) end)
  end)

  it("makes a waiting receive_timeout wait past T inside a coroutine", function()
    wait_past(nil, function(q)
      local co = coroutine.create(function() return q:receive_timeout(10, { except = 1 }) end)
      local ok, data, t = coroutine.resume(co)
      while coroutine.status(co) ~= "dead" do
        core.sleep(0.001)
        ok, data, t = coroutine.resume(co)
      end
      assert(ok, data)
      return data, t
    end)
  end)

  it("makes a waiting receive_timeout wait past T with an fd-aware waiter", function()
    local calls = 0
    mq.set_waiter(function(seconds, fds)
      calls = calls + 1
      if fds then core.block(fds, seconds) else core.sleep(seconds) end
    end, { fds = true })
    wait_past(nil, function(q) return q:receive_timeout(10, { except = 1 }) end)
    assert.is_true(calls >= 1)
  end)

  it("makes a blocking receive wait past T", function()
    wait_past(nil, function(q) return q:receive({ except = 1 }) end)
  end)

  it("waits past empty messages of type T and loses none of them", function()
    local q, key = H.fresh_key_queue()
    local child = P.spawn(SENDER, nil, key, "", 1, "", 2, 0.15)
    local data, t = q:receive_timeout(10, { except = 1 })
    assert(child:finish(10))
    assert.are.same({ "", 2 }, { data, t })
    assert.are.same({ "", 1 }, { q:receive_timeout(1) })
    assert.are.equal(0, q:stat().messages)
    -- Empty messages of several types, taken by helpers while waiting, come out by selector.
    child = P.spawn(SENDER, nil, key, "", 3, "", 4, 0.1)
    assert.are.same({ "", 4 }, { q:receive_timeout(10, { except = 3 }) })
    assert(child:finish(10))
    assert.are.same({ "", 3 }, { q:receive_timeout(1, { except = 4 }) })
    H.fails("timeout", q:receive_timeout(0.05))
    q:close()
  end)

  it("arms a readiness fd that wakes for other types only", function()
    local q = H.fresh_key_queue()
    local fd = assert(q:arm({ except = 1 }))
    assert(q:send("not for the fd", 1))
    assert.are.same({}, core.block({ fd }, 0.1))
    assert(q:send("for the fd", 2))
    assert.are.same({ fd }, core.block({ fd }, 5))
    assert.are.same({ "for the fd", 2 }, { q:receive({ except = 1 }) })
    assert.is_true(q:disarm())
    H.fails("invalid", q:arm({ except = 0 }))
    q:close()
    H.fails("closed", q:arm({ except = 1 }))
  end)

  it("is invalid as any other table or T < 1, for every call that takes a selector", function()
    local q = H.fresh_key_queue()
    assert(q:send("stays", 1))
    local bad = { {}, { except = 0 }, { except = -1 }, { except = 1.5 }, { except = "2" },
                  { except = true }, { type = 2 }, { 2 }, { except = math.mininteger } }
    for _, sel in ipairs(bad) do
      local what = show(sel)
      H.fails("invalid", q:receive(sel))
      H.fails("invalid", q:receive_timeout(0, sel))
      H.fails("invalid", q:receive_timeout(1, sel))
      H.fails("invalid", mq.select({ q }, 0, sel))
      H.fails("invalid", mq.select({ { q, sel } }, 0))
      H.fails("invalid", mq.select({ { q, sel } }, 1, 0))
      -- messages can only fail by raising, and does so once it receives.
      local iter = assert(q:messages(0, sel), what)
      assert.has_error(function() iter() end)
    end
    assert.are.equal(1, q:stat().messages)
    q:close()
  end)

  it("raises for a selector of the wrong type", function()
    local q = H.fresh_key_queue()
    for _, sel in ipairs({ "1", true, print }) do
      assert.has_error(function() q:receive(sel) end)
      assert.has_error(function() q:receive_timeout(0, sel) end)
      assert.has_error(function() q:messages(0, sel) end)
      assert.has_error(function() mq.select({ q }, 0, sel) end)
      assert.has_error(function() mq.select({ { q, sel } }, 0) end)
    end
    q:close()
  end)

  it("on a closed handle is closed, on a write-only one denied, on a removed queue removed", function()
    local q, key = H.fresh_key_queue()
    local wo = assert(mq.open(key, mq.O_WRONLY))
    local sel = { except = 1 }
    H.fails("denied", wo:receive(sel))
    H.fails("denied", wo:receive_timeout(0, sel))
    H.fails("denied", mq.select({ { wo, sel } }, 0))
    assert.has_error(function() for _ in wo:messages(0, sel) do end end)
    local other = assert(mq.open(key, mq.O_NONBLOCK))
    assert.is_true(q:destroy())
    H.fails("removed", other:receive(sel))
    H.fails("removed", other:receive_timeout(0, sel))
    H.fails("removed", other:receive_timeout(1, sel))
    H.fails("removed", mq.select({ { other, sel } }, 1))
    assert.has_error(function() for _ in other:messages(0, sel) do end end)
    other:close()
    H.fails("closed", other:receive(sel))
    H.fails("closed", other:receive_timeout(1, sel))
    H.fails("closed", other:messages(0, sel))
    H.fails("closed", mq.select({ { other, sel } }, 1))
    H.fails("closed", mq.select({ other }, 1, sel))
    H.fails("closed", q:receive({}))                       -- closed comes before invalid
    wo:close()
  end)

  it("times out and says again when only T is queued", function()
    local q = H.fresh_key_queue()
    assert(q:send("only T", 4))
    local t0 = core.monotonic()
    H.fails("timeout", q:receive_timeout(0.1, { except = 4 }))
    assert.is_true(core.monotonic() - t0 >= 0.1)
    H.fails("timeout", mq.select({ { q, { except = 4 } } }, 0.05))
    assert(q:set_blocking(false))
    H.fails("again", q:receive({ except = 4 }))
    assert.are.equal(1, q:stat().messages)
    q:close()
  end)
end)

describe("mq.select with a selector per entry", function()
  setup(X.isolate)
  teardown(X.restore)

  after_each(function()
    mq.set_waiter(nil)
    H.cleanup()
  end)

  it("uses the entry's selector, else the default, and returns the handle itself", function()
    local a = H.fresh_key_queue()
    local b = H.fresh_key_queue()
    assert(a:send("a1", 1))
    assert(b:send("b2", 2))
    assert(b:send("b3", 3))
    -- a has only type 1; the default (3) passes it over, b's entry takes type 2.
    local h, data, t = mq.select({ a, { b, 2 } }, 0, 3)
    assert.are.equal(b, h)
    assert.are.same({ "b2", 2 }, { data, t })
    -- {handle} takes the default selector.
    h, data, t = mq.select({ { a }, { b } }, 0, { except = 1 })
    assert.are.equal(b, h)
    assert.are.same({ "b3", 3 }, { data, t })
    -- An entry's selector wins over the default in list order.
    h, data, t = mq.select({ { a, { except = 2 } }, b }, 0, 2)
    assert.are.equal(a, h)
    assert.are.same({ "a1", 1 }, { data, t })
    H.fails("timeout", mq.select({ { a, 1 }, { b, -9 } }, 0))
    a:close()
    b:close()
  end)

  it("tries the entries in list order, one handle under several selectors too", function()
    local q = H.fresh_key_queue()
    for i, t in ipairs({ 5, 2, 9 }) do assert(q:send("m" .. i, t)) end
    local order = {}
    for _ = 1, 3 do
      local _, data = mq.select({ { q, 9 }, { q, { except = 5 } }, { q, -5 } }, 0)
      order[#order + 1] = data
    end
    assert.are.same({ "m3", "m2", "m1" }, order)
    q:close()
  end)

  -- One child sends a message no entry takes, then one that the second entry's selector
  -- takes: the waiting select wakes for the second only.
  local function waits_for_its_entry(setup)
    local a, ka = H.fresh_key_queue()
    local b = H.fresh_key_queue()
    if setup then setup() end
    local child = P.spawn([[
      local mq = require "mq"
      local core = require "mq.core"
      local q = assert(mq.open(tonumber(arg[1])))
      assert(q:send("excepted", 1))
      core.sleep(0.15)
      assert(q:send("wanted", 6))
    ]], nil, ka)
    local t0 = core.monotonic()
    local h, data, t = mq.select({ { b, 1 }, { a, { except = 1 } }, { a, 7 } }, 10)
    local elapsed = core.monotonic() - t0
    assert(child:finish(10))
    assert.are.equal(a, h)
    assert.are.same({ "wanted", 6 }, { data, t })
    assert.is_true(elapsed >= 0.1, "woke after " .. elapsed .. " s")
    assert.are.same({ "excepted", 1 }, { a:receive() })
    a:close()
    b:close()
  end

  it("waits for a message its entries' selectors take (readiness helpers)", function()
    waits_for_its_entry()
  end)

  it("waits for a message its entries' selectors take (fd-aware waiter)", function()
    waits_for_its_entry(function()
      mq.set_waiter(function(seconds, fds)
        if fds then core.block(fds, seconds) else core.sleep(seconds) end
      end, { fds = true })
    end)
  end)

  it("fails with the first entry in list order that cannot be polled", function()
    local a, key = H.fresh_key_queue()
    local b = H.fresh_key_queue()
    local wo = assert(mq.open(key, mq.O_WRONLY))
    H.fails("denied", mq.select({ { b, 1 }, { wo, 2 } }, 0))
    local closed = assert(mq.open(key))
    closed:close()
    H.fails("closed", mq.select({ { b }, { closed, { except = 1 } }, { wo } }, 0))
    H.fails("invalid", mq.select({ { b, 1 }, { a, { except = 0 } } }, 0))
    H.fails("invalid", mq.select({ { b, {} } }, 0))
    H.fails("invalid", mq.select({}, 0))
    H.fails("invalid", mq.select({ { a, 1 } }, 0 / 0))
    H.fails("closed", mq.select({ { closed, 1 } }, 0 / 0))
    assert.has_error(function() mq.select({ {} }, 0) end)
    assert.has_error(function() mq.select({ { "not a handle", 1 } }, 0) end)
    assert.has_error(function() mq.select({ { a, 1 } }, "0") end)
    wo:close()
    a:close()
    b:close()
  end)
end)
