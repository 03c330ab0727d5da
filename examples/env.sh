# Sourced by each example's run script: finds lua5.4 and, when run from a built source tree
# without LUA_PATH/LUA_CPATH set, points Lua at this tree's lua/mq.lua and build/mq/core.so.
# An installed mq (luarocks install mq) is found through the usual paths instead.

root=$(cd "$(dirname "$0")/../.." && pwd)
LUA=${LUA:-lua5.4}
if [ -z "${LUA_PATH+set}" ] && [ -f "$root/lua/mq.lua" ]; then
  LUA_PATH="$root/lua/?.lua;;"
  export LUA_PATH
fi
if [ -z "${LUA_CPATH+set}" ] && [ -f "$root/build/mq/core.so" ]; then
  LUA_CPATH="$root/build/?.so;;"
  export LUA_CPATH
fi
export LUA
