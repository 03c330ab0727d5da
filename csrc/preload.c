/*
 * luamq_preload (luamq.h), for C programs that link libmq.a: registers the C
 * core and the compiled-in Lua layer in package.preload, so that
 * `require "mq"` (and mq.loop, mq.cqueues, mq.luv) needs no file on disk.
 * Only libmq.a holds this file, with the generated table of chunks.
 */
#include "lauxlib.h"

#include "luamq.h"
#include "preload.h"

/* The loader of chunk i (upvalue 1): runs the file's source as require would. */
static int load_chunk(lua_State *L) {
  const struct luamq_chunk *c = &luamq_chunks[lua_tointeger(L, lua_upvalueindex(1))];
  const char *module = lua_tostring(L, 1);
  lua_pushfstring(L, "=%s (built in)", c->module);
  if (luaL_loadbufferx(L, c->source, c->size, lua_tostring(L, -1), "t") != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, module != NULL ? module : c->module);
  lua_call(L, 1, 1);
  return 1;
}

void luamq_preload(lua_State *L) {
  lua_Integer i;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_mq_core);
  lua_setfield(L, -2, "mq.core");
  for (i = 0; luamq_chunks[i].module != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_chunk, 1);
    lua_setfield(L, -2, luamq_chunks[i].module);
  }
  lua_pop(L, 1);
}
