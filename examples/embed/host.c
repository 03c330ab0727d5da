/*
 * A C application that hosts Lua and has mq built in: libmq.a holds the C core and the Lua
 * layer compiled in, and luamq_preload (luamq.h) registers both in package.preload, so
 * `require "mq"` needs no file on disk.
 *
 * usage: embed-host SCRIPT.lua [ARGS...]   (the script gets ARGS as `...`)
 */
#include <stdio.h>
#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "luamq.h"

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

int main(int argc, char **argv)
{
  lua_State *L;
  int status;

  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT.lua [ARGS...]\n", argv[0]);
    return 2;
  }
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
    return 1;
  }
  luaL_openlibs(L);
  luamq_preload(L);

  lua_pushcfunction(L, traceback);
  status = luaL_loadfile(L, argv[1]);
  /* One stack slot per argument: Lua guarantees only LUA_MINSTACK (20) free slots. */
  if (status == LUA_OK && !lua_checkstack(L, argc)) {
    lua_pushfstring(L, "too many arguments (%d)", argc - 2);
    status = LUA_ERRRUN;
  }
  if (status == LUA_OK) {
    for (int i = 2; i < argc; i++)
      lua_pushstring(L, argv[i]);
    status = lua_pcall(L, argc - 2, 1, 1);
  }
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  /* The script may return false to report failure. */
  status = lua_toboolean(L, -1) || lua_isnil(L, -1) ? EXIT_SUCCESS : EXIT_FAILURE;
  lua_close(L);
  return status;
}
