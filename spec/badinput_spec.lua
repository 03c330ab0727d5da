-- Bad input: every argument of every function gets values of the wrong type and values
-- out of its domain. The contract: a wrong Lua type raises (as luaL_check* does);
-- anything else returns nil, message, code with the right code (a number with no integer
-- representation where an integer is expected is a bad value: `invalid`). Never a crash or a hang:
-- timed calls run under a waiter that gives up after a bounded number of polls.

local mq = require "mq"
local H = require "helpers"

local HANG = "HANG GUARD: the call kept polling"
local NAN = 0 / 0
local MiB = string.rep("m", 1 << 20)

-- Values of the wrong Lua type for any argument (numbers convert to strings, so they are
-- not wrong for a string argument and are listed per argument instead).
local function wrong_types(optional)
  local t = {
    { "a table", {} }, { "a boolean", true }, { "false", false }, { "a function", print },
    { "a userdata", io.stdout }, { "a thread", coroutine.create(print) },
  }
  if not optional then t[#t + 1] = { "nil", nil } end
  return t
end

-- Where an integer is expected, a string that is no number is the wrong Lua type (raise);
-- a number with no integer representation is the right type with a bad value (`invalid`,
-- README "Errors": "a bad name, perm, flag, type, size or timeout value").
local NON_NUMBERS = { { '"abc"', "abc" }, { '""', "" } }
local FRACTIONS = {
  { "1.5", 1.5 }, { "-0.5", -0.5 }, { "NaN", NAN }, { "inf", math.huge }, { "-inf", -math.huge },
  { "2^63 (float)", 2.0 ^ 63 }, { "-2^64 (float)", -(2.0 ^ 64) },
}

local function join(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, v in ipairs(list) do out[#out + 1] = v end
  end
  return out
end

local function expect(code, list)
  local out = {}
  for i, v in ipairs(list) do out[i] = { v[1], v[2], code } end
  return out
end

-- The cases of an integer argument: wrong types raise, fractions and `extra` are invalid.
local function integer_arg(optional, extra)
  return join(expect("raise", join(wrong_types(optional), NON_NUMBERS)),
    expect("invalid", join(FRACTIONS, extra or {})))
end

local BAD_NAMES = expect("invalid", {
  { '""', "" }, { '"/"', "/" }, { '"a/b"', "a/b" }, { '"."', "." }, { '".."', ".." },
  { '"../x"', "../x" }, { '"x/.."', "x/.." }, { '"/etc/passwd"', "/etc/passwd" },
  { "a name with NUL", "a\0b" }, { "a lone NUL", "\0" }, { "256 bytes", string.rep("n", 256) },
  { "1 MiB", MiB },
})
local BAD_KEYS = expect("invalid", {
  { "2^32", 1 << 32 }, { "-2^31-1", -(1 << 31) - 1 }, { "maxinteger", math.maxinteger },
  { "mininteger", math.mininteger }, { "2^32 as a float", 2.0 ^ 32 },
})
local WHERE = join(expect("raise", wrong_types(false)), expect("invalid", FRACTIONS), BAD_NAMES, BAD_KEYS)
local WHERE_EXISTING = join(WHERE, { { "mq.PRIVATE", mq.PRIVATE, "invalid" } })

local PERM = join(expect("raise", wrong_types(true)), expect("invalid", FRACTIONS), expect("invalid", {
  { '""', "" }, { '"abc"', "abc" }, { '"8"', "8" }, { '"0800"', "0800" }, { '"06000"', "06000" },
  { '"0700" (execute)', "0700" }, { '"0777"', "0777" }, { '"1666" (sticky)', "1666" },
  { '"0x1b6"', "0x1b6" }, { '" 600"', " 600" }, { '"600 "', "600 " }, { '"-600"', "-600" },
  { '"+600"', "+600" }, { "a string with NUL", "60\0" }, { "1 MiB", MiB },
  { "-1", -1 }, { "0700", 448 }, { "0777", 511 }, { "01000", 512 }, { "04600 (setuid)", 2432 },
  { "2^40", 1 << 40 }, { "mininteger", math.mininteger }, { "maxinteger", math.maxinteger },
}))

local FLAGS = integer_arg(true, {
  { "16", 16 }, { "32", 32 }, { "0x100", 0x100 }, { "-1", -1 }, { "mininteger", math.mininteger },
  { "maxinteger", math.maxinteger },
})

local SEND_TYPE = integer_arg(true, { { "0", 0 }, { "-1", -1 }, { "mininteger", math.mininteger } })
-- A receive selector is an integer type or a table {except = type >= 1}: any other table is
-- a bad value of the right type.
local NON_TABLES = {}
for _, c in ipairs(wrong_types(true)) do
  if c[1] ~= "a table" then NON_TABLES[#NON_TABLES + 1] = c end
end
local RECV_TYPE = join(expect("raise", join(NON_TABLES, NON_NUMBERS)),
  expect("invalid", join(FRACTIONS, {
    { "{}", {} }, { "{except = 0}", { except = 0 } }, { "{except = -1}", { except = -1 } },
    { "{except = 1.5}", { except = 1.5 } }, { '{except = "1"}', { except = "1" } },
    { "{except = mininteger}", { except = math.mininteger } } })))
local MAXSIZE = integer_arg(true, {
  { "0", 0 }, { "-1", -1 }, { "2^31", 1 << 31 }, { "2^32", 1 << 32 }, { "2^40", 1 << 40 },
  { "maxinteger", math.maxinteger }, { "mininteger", math.mininteger },
})
local TIMEOUT = join(expect("raise", join(wrong_types(false), { { '"abc"', "abc" }, { '""', "" } })),
  expect("invalid", { { "NaN", NAN }, { "-NaN", -NAN } }))
local INDEX = integer_arg(true, { { "-1", -1 }, { "mininteger", math.mininteger } })
local CAPACITY = integer_arg(false, { { "-1", -1 }, { "mininteger", math.mininteger } })
local DATA = expect("raise", wrong_types(false))
local PATH = join(expect("raise", wrong_types(false)), expect("invalid", { { "a path with NUL", "/etc\0x" } }),
  expect("notfound", { { "a missing file", "/nonexistent/mq-missing" } }))
local SELF = expect("raise", join(wrong_types(false), {
  { "a number", 1 }, { "a string", "q" },
}))

describe("bad input", function()
  local name, q, nb, ro, wo, closed, default, polls, msgmax

  setup(function()
    msgmax = mq.limits().msgmax
    q, name = H.fresh_name_queue("bad", "0666")
    nb = assert(mq.open(name, mq.O_RDWR | mq.O_NONBLOCK))
    ro = assert(mq.open(name, mq.O_RDONLY | mq.O_NONBLOCK))
    wo = assert(mq.open(name, mq.O_WRONLY | mq.O_NONBLOCK))
    closed = assert(mq.open(name))
    assert(closed:close())
    -- Names that a float or NaN key would turn into if it were taken as a string.
    for _, s in ipairs({ "1.5", "-0.5", "nan", "-nan", "inf", "-inf" }) do H.track(s) end
    default = mq.set_waiter(function(s)
      polls = polls + 1
      if polls > 500 then error(HANG, 0) end
      return default(s)
    end)
  end)

  teardown(function()
    mq.set_waiter(nil)
    for _, h in ipairs({ q, nb, ro, wo }) do h:close() end
    H.cleanup()
  end)

  -- What a call did: "raise", "ok", "hang" or the code of its nil, message, code.
  local function outcome(f, v)
    polls = 0
    local r = table.pack(pcall(f, v))
    if not r[1] then
      if tostring(r[2]):find(HANG, 1, true) then return "hang", r[2] end
      return "raise", r[2]
    end
    if r[2] == nil then
      if type(r[3]) ~= "string" or r[3] == "" then return "no message", tostring(r[3]) end
      return tostring(r[4]), r[3]
    end
    return "ok", tostring(r[2])
  end

  -- Each case's outcome must be its expected one; with `mention`, a message that is not a
  -- Lua type error (raised or returned) must also contain that text: the operation's name,
  -- or the argument at fault.
  local function check(label, f, cases, mention)
    local wrong = {}
    for _, c in ipairs(cases) do
      local got, detail = outcome(f, c[2])
      if got ~= c[3] then
        wrong[#wrong + 1] = string.format("%s with %s: expected %s, got %s (%s)", label, c[1], c[3], got,
          tostring(detail):sub(1, 120))
      elseif mention and not tostring(detail):find("bad argument #", 1, true)
        and not tostring(detail):find(mention, 1, true) then
        wrong[#wrong + 1] = string.format("%s with %s: the message does not mention %q (%s)", label,
          c[1], mention, tostring(detail):sub(1, 120))
      end
    end
    -- The queue must be untouched by all of it.
    local st = q:stat()
    if st and st.messages ~= 0 then
      wrong[#wrong + 1] = label .. " left " .. st.messages .. " message(s) in the queue"
      while q:receive_timeout(0) do end
    end
    assert(#wrong == 0, "\n" .. table.concat(wrong, "\n"))
  end

  local creators = { ["mq.new"] = function(...) return mq.new(...) end,
                     ["mq.sysv.create"] = function(...) return mq.sysv.create(...) end }
  local openers = { ["mq.open"] = function(...) return mq.open(...) end,
                    ["mq.sysv.open"] = function(...) return mq.sysv.open(...) end }
  local destroyers = { ["mq.destroy"] = function(...) return mq.destroy(...) end,
                       ["mq.sysv.destroy"] = function(...) return mq.sysv.destroy(...) end }

  for label, create in pairs(creators) do
    it(label .. "(where)", function() check(label .. "(where)", create, WHERE) end)
    it(label .. "(name, perm)", function()
      check(label .. "(name, perm)", function(v) return create(H.name("perm"), v) end, PERM)
    end)
    it(label .. "(key, perm)", function()
      check(label .. "(key, perm)", function(v) return create(H.track(H.unused_key()), v) end, PERM)
    end)
  end

  for label, open in pairs(openers) do
    it(label .. "(where)", function() check(label .. "(where)", open, WHERE_EXISTING) end)
    it(label .. "(name, flags)", function()
      check(label .. "(name, flags)", function(v) return open(name, v) end, FLAGS)
    end)
  end

  for label, destroy in pairs(destroyers) do
    it(label .. "(where)", function() check(label .. "(where)", destroy, WHERE_EXISTING) end)
  end

  it("mq.ftok(path, proj_id)", function()
    check("mq.ftok(path)", function(v) return mq.ftok(v, 1) end, PATH)
    check("mq.ftok(_, proj_id)", function(v) return mq.ftok("/", v) end, integer_arg(false))
  end)

  it("mq.select(handles, timeout, mtype)", function()
    local not_lists = {}
    for _, c in ipairs(wrong_types(false)) do
      if c[1] ~= "a table" then not_lists[#not_lists + 1] = c end
    end
    check("mq.select(handles)", function(v) return mq.select(v, 0) end, join(expect("raise", join(
      not_lists, { { "a number", 1 }, { "a string", "q" }, { "{1}", { 1 } }, { '{"q"}', { "q" } },
        { "{{}}", { {} } }, { "{io.stdout}", { io.stdout } }, { "{nb, 1}", { nb, 1 } } })),
      { { "{}", {}, "invalid" } }))
    -- The list is read raw, as the wait in C reads it: a proxy's __index and __len are not
    -- called, so a proxy is an empty list, and a __len that under-reports changes nothing.
    local proxy = setmetatable({}, { __index = function() return nb end, __len = function() return 1 end })
    local short = setmetatable({ nb, 7 }, { __len = function() return 1 end })
    check("mq.select(proxy)", function(v) return mq.select(v, 0) end, join(
      { { "a proxy list", proxy, "invalid" } },
      expect("raise", { { "a __len that hides a bad entry", short } })), "select")
    check("mq.select(_, timeout)", function(v) return mq.select({ nb }, v) end, TIMEOUT)
    check("mq.select(_, _, mtype)", function(v) return mq.select({ nb }, 0, v) end, RECV_TYPE)
  end)

  it("mq.set_waiter(fn)", function()
    local mine = mq.set_waiter(nil)   -- our guard, restored below
    local ok, why = pcall(check, "mq.set_waiter(fn)", function(v) return mq.set_waiter(v) end,
      expect("raise", { { "a number", 1 }, { "a string", "f" }, { "a table", {} }, { "a boolean", true },
        { "a userdata", io.stdout } }))
    mq.set_waiter(mine)
    assert(ok, why)
  end)

  it("q:send(data, mtype)", function()
    check("q:send(data)", function(v) return nb:send(v) end, join(DATA, expect("toobig", {
      { "msgmax + 1 bytes", string.rep("d", msgmax + 1) }, { "1 MiB", MiB } })))
    check("q:send(_, mtype)", function(v) return nb:send("x", v) end, SEND_TYPE)
  end)

  it("q:receive(mtype, maxsize)", function()
    check("q:receive(mtype)", function(v) return nb:receive(v) end, RECV_TYPE)
    check("q:receive(_, maxsize)", function(v) return nb:receive(0, v) end, MAXSIZE, "maxsize")
  end)

  it("q:send_timeout(data, timeout, mtype)", function()
    check("q:send_timeout(data)", function(v) return nb:send_timeout(v, 0) end, join(DATA,
      expect("toobig", { { "msgmax + 1 bytes", string.rep("d", msgmax + 1) }, { "1 MiB", MiB } })))
    check("q:send_timeout(_, timeout)", function(v) return q:send_timeout("x", v) end, TIMEOUT)
    check("q:send_timeout(_, _, mtype)", function(v) return nb:send_timeout("x", 0, v) end, SEND_TYPE)
  end)

  it("q:receive_timeout(timeout, mtype, maxsize)", function()
    check("q:receive_timeout(timeout)", function(v) return q:receive_timeout(v) end, TIMEOUT)
    check("q:receive_timeout(_, mtype)", function(v) return nb:receive_timeout(0, v) end, RECV_TYPE)
    check("q:receive_timeout(_, _, maxsize)", function(v) return nb:receive_timeout(0, 0, v) end, MAXSIZE,
      "maxsize")
    check("q:receive_timeout(_, 5, maxsize)", function(v) return nb:receive_timeout(0, 5, v) end, MAXSIZE,
      "maxsize")
  end)

  it("q:peek(index)", function()
    check("q:peek(index)", function(v) return nb:peek(v) end, INDEX)
  end)

  it("q:messages(timeout, mtype) raises for any bad argument", function()
    -- A for loop cannot take nil, message, code: every bad argument raises, NaN included.
    local bad = expect("raise", join(wrong_types(true), {
      { '"abc"', "abc" }, { '""', "" }, { "NaN", NAN }, { "-NaN", -NAN } }))
    check("q:messages(timeout)", function(v) for _ in nb:messages(v) do end return true end, bad,
      "messages")
    check("q:messages(_, mtype)", function(v) for _ in nb:messages(0, v) do end return true end,
      expect("raise", RECV_TYPE), "messages")
  end)

  it("q:set_blocking(flag)", function()
    check("q:set_blocking(flag)", function(v) return nb:set_blocking(v) end, expect("raise", {
      { "nil", nil }, { "1", 1 }, { "0", 0 }, { '"true"', "true" }, { "a table", {} }, { "a function", print } }))
    assert(nb:set_blocking(false))
  end)

  it("q:set_capacity(bytes)", function()
    check("q:set_capacity(bytes)", function(v) return nb:set_capacity(v) end, CAPACITY)
  end)

  it("every method called on something that is not a handle", function()
    local methods = { "send", "receive", "send_timeout", "receive_timeout", "peek", "messages",
      "set_blocking", "stat", "set_capacity", "close", "destroy", "name", "key", "id" }
    for _, m in ipairs(methods) do
      local f = q[m]
      check("q." .. m .. "(self)", function(v) return f(v, 1, 1) end, SELF)
    end
  end)

  it("every method of a closed handle says `closed`, even with bad arguments", function()
    local calls = {
      { "send", function() return closed:send("x") end },
      { "send(x, 0)", function() return closed:send("x", 0) end },
      { "receive", function() return closed:receive() end },
      { "receive(0, -1)", function() return closed:receive(0, -1) end },
      { "send_timeout", function() return closed:send_timeout("x", 0) end },
      { "send_timeout(NaN)", function() return closed:send_timeout("x", NAN) end },
      { "receive_timeout", function() return closed:receive_timeout(0) end },
      { "receive_timeout(NaN)", function() return closed:receive_timeout(NAN) end },
      { "peek", function() return closed:peek() end },
      { "peek(-1)", function() return closed:peek(-1) end },
      { "set_blocking", function() return closed:set_blocking(true) end },
      { "stat", function() return closed:stat() end },
      { "set_capacity", function() return closed:set_capacity(1000) end },
      { "set_capacity(-1)", function() return closed:set_capacity(-1) end },
      { "destroy", function() return closed:destroy() end },
      { "name", function() return closed:name() end },
      { "key", function() return closed:key() end },
      { "id", function() return closed:id() end },
      { "select", function() return mq.select({ closed }, 0) end },
    }
    local wrong = {}
    for _, c in ipairs(calls) do
      local got, detail = outcome(c[2])
      if got ~= "closed" then wrong[#wrong + 1] = c[1] .. ": " .. got .. " (" .. tostring(detail) .. ")" end
    end
    local got = outcome(function() for _ in closed:messages() do end end)
    if got ~= "raise" then wrong[#wrong + 1] = "messages: " .. got end
    assert.are.equal(true, closed:close())
    assert(#wrong == 0, "\n" .. table.concat(wrong, "\n"))
    assert(q:stat())   -- the queue itself is still there
  end)

  it("says `invalid` before `denied` on a handle opened for the other direction", function()
    local wrong = {}
    local calls = {
      { "read-only send(x, 0)", function() return ro:send("x", 0) end, "invalid" },
      { "read-only send_timeout(x, NaN)", function() return ro:send_timeout("x", NAN) end, "invalid" },
      { "write-only receive(0, 0)", function() return wo:receive(0, 0) end, "invalid" },
      { "write-only receive_timeout(NaN)", function() return wo:receive_timeout(NAN) end, "invalid" },
      { "write-only peek(-1)", function() return wo:peek(-1) end, "invalid" },
      { "read-only send(x)", function() return ro:send("x") end, "denied" },
      { "write-only receive()", function() return wo:receive() end, "denied" },
      { "write-only peek()", function() return wo:peek() end, "denied" },
    }
    for _, c in ipairs(calls) do
      local got, detail = outcome(c[2])
      if got ~= c[3] then
        wrong[#wrong + 1] = string.format("%s: expected %s, got %s (%s)", c[1], c[3], got, tostring(detail))
      end
    end
    assert(#wrong == 0, "\n" .. table.concat(wrong, "\n"))
  end)

  it("takes empty data, NUL bytes and msgmax bytes as ordinary messages, on fresh handles too", function()
    for _, data in ipairs({ "", "\0", "a\0b\0", H.all_bytes(), string.rep("\0", msgmax) }) do
      -- A handle's first operation (nothing allocated yet) as well as a used one.
      for _, fresh in ipairs({ true, false }) do
        local s = fresh and assert(mq.open(name)) or nb
        assert.are.equal(true, s:send(data, 7))
        local r = fresh and assert(mq.open(name)) or nb
        local got, mtype = r:receive(7)
        assert.are.equal(data, got)
        assert.are.equal(7, mtype)
        if fresh then s:close(); r:close() end
      end
    end
  end)
end)
