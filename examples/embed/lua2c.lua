-- Turns a Lua source file into a C source file holding it as a byte array, so a C host can
-- compile the Lua layer in. Used by the Makefile for examples/embed (build/mq_lua.c).
-- usage: lua5.4 lua2c.lua INPUT.lua SYMBOL > OUTPUT.c
-- The C file defines `const unsigned char SYMBOL[]` and `const size_t SYMBOL_size`.

local input, symbol = arg[1], arg[2]
if not (input and symbol and symbol:match("^[%a_][%w_]*$")) then
  io.stderr:write("usage: lua2c.lua INPUT.lua C_SYMBOL > OUTPUT.c\n")
  os.exit(2)
end

local f = assert(io.open(input, "rb"))
local src = f:read("a")
f:close()
-- Refuse to embed a file that does not even compile.
assert(load(src, "=" .. input, "t"))

local out = {
  "/* Generated from " .. input .. " by examples/embed/lua2c.lua. Do not edit. */",
  "#include <stddef.h>",
  "",
  "extern const unsigned char " .. symbol .. "[];",
  "extern const size_t " .. symbol .. "_size;",
  "",
  "const unsigned char " .. symbol .. "[] = {",
}
for i = 1, #src, 16 do
  local row = {}
  for j = i, math.min(i + 15, #src) do row[#row + 1] = string.format("%3d,", src:byte(j)) end
  out[#out + 1] = "  " .. table.concat(row)
end
out[#out + 1] = "};"
out[#out + 1] = "const size_t " .. symbol .. "_size = " .. #src .. ";"
io.write(table.concat(out, "\n"), "\n")
