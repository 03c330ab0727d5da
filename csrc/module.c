/*
 * mq.core: registration of the C core. `require "mq"` (lua/mq.lua) builds
 * the public module on top of this table.
 */
#include <sys/ipc.h>

#include "mq.h"

static const luaL_Reg core_functions[] = {
  {"new", mq_new_where},
  {"open", mq_open_where},
  {"destroy", mq_destroy_where},
  {"ftok", mq_ftok},
  {"limits", mq_limits},
  {"ignore_sigpipe", mq_ignore_sigpipe},
  {NULL, NULL}
};

static void set_integer(lua_State *L, const char *name, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, name);
}

MQ_EXPORT int luaopen_mq_core(lua_State *L);

MQ_EXPORT int luaopen_mq_core(lua_State *L) {
  int module, methods;
  luaL_checkversion(L);
  luaL_newlib(L, core_functions);
  module = lua_gettop(L);
  mq_queue_register(L);                     /* pushes the metatable, then the methods */
  methods = module + 2;
  mq_transfer_register(L, methods, module);
  lua_setfield(L, module, "methods");       /* mq.lua adds the timed methods here */
  lua_setfield(L, module, "metatable");     /* lets mq.select tell a handle apart */
  mq_clock_register(L);
  mq_wait_register(L);
  mq_push_codes(L);
  lua_setfield(L, -2, "codes");
  set_integer(L, "O_RDONLY", MQ_O_RDONLY);
  set_integer(L, "O_WRONLY", MQ_O_WRONLY);
  set_integer(L, "O_RDWR", MQ_O_RDWR);
  set_integer(L, "O_NONBLOCK", MQ_O_NONBLOCK);
  set_integer(L, "PRIVATE", IPC_PRIVATE);
  lua_pushliteral(L, MQ_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
