-- The mq command's documentation and installation: the man page (man/mq.1) lists exactly the
-- options the help texts of bin/mq list, command by command, and groff finds nothing to warn
-- about in it; `make install` gives a command that runs with no environment set, and
-- `make uninstall` takes every file away again.

local mq = require "mq"
local H = require "helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local ROOT = here .. "/.."
local MQ = H.LUA .. " " .. H.shell_quote(ROOT .. "/bin/mq")
local MAN = ROOT .. "/man/mq.1"
-- Tools that are not mq run without the sanitizer runtime `make asan` preloads (it would
-- report their own bugs, troff's included).
local PLAIN = "env -u LD_PRELOAD "

local function help(args)
  local ok, code, out = H.sh(MQ .. " " .. args .. " 2>/dev/null")
  assert(ok, args .. ": exit " .. tostring(code))
  return out
end

-- A set's members, sorted, for comparing sets with a readable failure.
local function sorted(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return t
end

-- The options of a help text's "options:" block: each line that starts with an option, as
-- "  -h, --help     ..." or "  --type T       ...".
local function help_options(text)
  local set = {}
  local block = text:match("\noptions:\n(.-)\n\n") or text:match("\noptions:\n(.*)$")
  assert(block, "no options block in:\n" .. text)
  for line in block:gmatch("[^\n]+") do
    local first = line:match("^  (%-%-?[%w][%w-]*)")
    if first then
      set[first] = true
      local second = line:match("^  %-%-?[%w][%w-]*, (%-%-[%w][%w-]*)")
      if second then set[second] = true end
    end
  end
  return set
end

-- Every long option written anywhere in a text.
local function long_options(text)
  local set = {}
  for o in text:gmatch("%f[%-]%-%-%a[%w-]*") do set[o] = true end
  return set
end

-- The man page as text: roff escapes for a minus, fonts, and zero-width marks taken out.
local function man_text(src)
  return (src:gsub("\\%-", "-"):gsub("\\f[BIRP]", ""):gsub("\\f%(..", ""):gsub("\\[&%%]", ""))
end

-- The options of the man page, by where they are listed: the tag lines of .TP paragraphs in
-- the OPTIONS section ("mq") and in each command's subsection of COMMANDS.
local function man_options(src)
  local by, section, sub, tag_next = {}, nil, nil, false
  for line in man_text(src):gmatch("([^\n]*)\n") do
    local sh = line:match('^%.SH "?([^"]*)"?$')
    local ss = line:match('^%.SS "?([^"]*)"?$')
    if sh then
      section, sub = sh, nil
    elseif ss then
      sub = ss
    elseif line == ".TP" then
      tag_next = true
    elseif tag_next then
      tag_next = false
      local where = (section == "OPTIONS" and "mq") or (section == "COMMANDS" and sub) or nil
      if where then
        by[where] = by[where] or {}
        for o in line:gmatch("%f[%-]%-%-?[%w][%w-]*") do by[where][o] = true end
      end
    end
  end
  return by
end

describe("the man page", function()
  local src = assert(H.read_file(MAN), "no man/mq.1")
  local usage = help("--help")
  local commands = {}
  for c in usage:gmatch("\n  mq (%l+) ") do commands[#commands + 1] = c end

  it("has the sections of a man page, and the version of mq", function()
    for _, s in ipairs({ "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "QUEUE ADDRESSING",
                         "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "SEE ALSO" }) do
      assert.matches("\n%.SH " .. s .. "\n", src)
    end
    local version = src:match('\n%.TH MQ 1 [%d-]+ "mq ([^"]+)"')
    assert.equal(mq._VERSION, version)
    for _, ref in ipairs({ "ipcs", "ipcrm", "msgget" }) do
      assert.matches("%.BR " .. ref .. " %(%d%)", src)
    end
  end)

  it("lists exactly the options of the usage text (mq --help), and of each command's help in that "
    .. "command's subsection", function()
    assert.is_true(#commands >= 7, usage)
    local by = man_options(src)
    assert.same(sorted(help_options(usage)), sorted(by.mq or {}))
    for _, c in ipairs(commands) do
      assert.same(sorted(help_options(help("help " .. c))), sorted(by[c] or {}), "mq " .. c)
    end
  end)

  it("mentions no option that no help lists, and every help mentions only listed options", function()
    local listed = help_options(usage)
    local texts = { usage }
    for _, c in ipairs(commands) do
      local text = help("help " .. c)
      texts[#texts + 1] = text
      for o in pairs(help_options(text)) do listed[o] = true end
    end
    local mentioned = long_options(man_text(src))
    for _, text in ipairs(texts) do
      for o in pairs(long_options(text)) do mentioned[o] = true end
    end
    for o in pairs(mentioned) do
      assert.is_true(listed[o] == true, o .. " is mentioned but no help lists it")
    end
    for o in pairs(listed) do
      if o:sub(1, 2) == "--" then assert.is_true(mentioned[o] == true, o) end
    end
  end)

  it("has a subsection for each command and nothing else under COMMANDS", function()
    local subs = {}
    for s in src:match("\n%.SH COMMANDS\n(.-)\n%.SH "):gmatch("\n?%.SS ([^\n]+)") do subs[s] = true end
    local want = {}
    for _, c in ipairs(commands) do want[c] = true end
    assert.same(sorted(want), sorted(subs))
  end)

  it("gives groff no warning (groff -man -ww), nor man --warnings", function()
    assert(H.sh("command -v groff"), "groff is not installed (Debian groff-base; see .ci/deps)")
    local ok, code, out = H.sh(PLAIN .. "groff -man -Tutf8 -ww -z " .. H.shell_quote(MAN))
    assert.is_true(ok, "exit " .. tostring(code) .. ": " .. out)
    assert.equal("", out)
    if H.sh("command -v man") then
      ok, code, out = H.sh(PLAIN .. "MANWIDTH=80 man --warnings -E UTF-8 -l " .. H.shell_quote(MAN) .. " >/dev/null")
      assert.is_true(ok, "exit " .. tostring(code) .. ": " .. out)
      assert.equal("", out)
    end
  end)
end)

describe("make install", function()
  it("installs an mq command that runs with no environment set, and its man page; make uninstall "
    .. "leaves no file behind", function()
    local prefix = H.TMPDIR .. "/install-" .. H.pid .. "-" .. math.random(1e9)
    finally(function() os.execute("rm -rf " .. H.shell_quote(prefix)) end)
    -- make may have to build the plain core.
    local make = string.format("%smake -s -C %s PREFIX=%s", PLAIN, H.shell_quote(ROOT),
      H.shell_quote(prefix))
    local ok, code, out = H.sh(make .. " install")
    assert.is_true(ok, "make install: exit " .. tostring(code) .. ": " .. out)
    local bin = prefix .. "/bin/mq"
    assert.is_nil(H.read_file(bin):find("@MQ_PATHS@", 1, true))
    assert.equal(H.read_file(MAN), H.read_file(prefix .. "/share/man/man1/mq.1"))
    -- No LUA_PATH, LUA_CPATH, LUA_INIT nor TMPDIR: only PATH, for env to find lua5.4.
    local clean = "env -i PATH=" .. H.shell_quote(os.getenv("PATH") or "/usr/bin:/bin")
    ok, code, out = H.sh(clean .. " " .. H.shell_quote(bin) .. " --version")
    assert.is_true(ok, "exit " .. tostring(code) .. ": " .. out)
    assert.equal("mq " .. mq._VERSION .. "\n", out)
    -- It loads the installed core: a round trip through a queue of its own.
    local key = H.track(H.unused_key())
    local round = string.format("%s %s create %d && echo hi | %s %s send %d && %s %s recv %d && %s %s rm %d",
      clean, H.shell_quote(bin), key, clean, H.shell_quote(bin), key, clean, H.shell_quote(bin), key,
      clean, H.shell_quote(bin), key)
    ok, code, out = H.sh(round)
    assert.is_true(ok, "exit " .. tostring(code) .. ": " .. out)
    assert.equal("hi\n", out)
    ok, code, out = H.sh(make .. " uninstall")
    assert.is_true(ok, "make uninstall: exit " .. tostring(code) .. ": " .. out)
    local _, _, left = H.sh("find " .. H.shell_quote(prefix) .. " ! -type d")
    assert.equal("", left)
  end)
end)
