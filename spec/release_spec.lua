-- Release files: the version is given once (csrc/luamq.h) and everything else agrees with it,
-- the rockspec builds every module the tree has, and the licence is there.

local mq = require "mq"
local H = require "helpers"

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$")) or "."

local function read(path) return assert(H.read_file(ROOT .. "/" .. path), "cannot read " .. path) end

local function list(cmd)
  local out, t = select(3, H.sh("cd " .. H.shell_quote(ROOT) .. " && " .. cmd)), {}
  for line in out:gmatch("[^\n]+") do t[#t + 1] = line end
  table.sort(t)
  return t
end

-- The rockspec, run as luarocks runs it (a table of globals).
local function rockspec()
  local files = list("ls mq-*.rockspec")
  assert(#files == 1, "expected one rockspec, found " .. #files)
  local env = {}
  assert(load(read(files[1]), "=" .. files[1], "t", env))()
  return env, files[1]
end

describe("the release files", function()
  it("give one version: luamq.h's, as mq._VERSION, the rockspec and its file name", function()
    local version = read("csrc/luamq.h"):match('#define LUAMQ_VERSION "([^"]+)"')
    assert.is_string(version)
    assert.are.equal(version, mq._VERSION)
    local spec, file = rockspec()
    assert.are.equal(version .. "-1", spec.version)
    assert.are.equal("mq-" .. version .. "-1.rockspec", file)
    assert.are.equal("v" .. version, spec.source.tag)
  end)

  it("have a changelog whose newest entry is that version", function()
    local first = read("CHANGELOG.md"):match("\n## ([%d.]+)")
    assert.are.equal(mq._VERSION, first)
  end)

  it("have the MIT licence the rockspec names", function()
    assert.are.equal("MIT", rockspec().description.license)
    assert.truthy(read("LICENSE"):find("MIT License", 1, true))
  end)

  it("build every C file of the core and install every Lua module of the tree", function()
    local build = rockspec().build
    assert.are.equal("builtin", build.type)
    local sources = {}
    for _, f in ipairs(build.modules["mq.core"].sources) do sources[#sources + 1] = f end
    table.sort(sources)
    local want = {}
    for _, f in ipairs(list("ls csrc/*.c")) do
      if f ~= "csrc/preload.c" then want[#want + 1] = f end   -- libmq.a only
    end
    assert.are.same(want, sources)
    local lua_files = {}
    for name, f in pairs(build.modules) do
      if type(f) == "string" then
        lua_files[#lua_files + 1] = f
        assert.are.equal(f, "lua/" .. name:gsub("%.", "/") .. ".lua")
      end
    end
    table.sort(lua_files)
    assert.are.same(list("ls lua/*.lua lua/mq/*.lua"), lua_files)
    assert.are.equal("bin/mq", build.install.bin.mq)
  end)

  it("carry the same Lua modules in libmq.a as the rockspec installs", function()
    local modules = {}
    for name, f in pairs(rockspec().build.modules) do
      if type(f) == "string" then modules[#modules + 1] = name .. "=" .. f end
    end
    table.sort(modules)
    local made = read("Makefile"):match("\nLUA_MODULES := ([^\n]+)")
    local listed = {}
    for m in made:gmatch("%S+") do listed[#listed + 1] = m end
    table.sort(listed)
    assert.are.same(modules, listed)
  end)
end)
