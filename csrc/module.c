/*
 * mq.core: registration of the C core, the top layer: it depends on every
 * other file and none depends on it. `require "mq"` (lua/mq.lua) builds the
 * public module on top of this table.
 */
#include <sys/ipc.h>

#include "lauxlib.h"

#include "address.h"
#include "clock.h"
#include "control.h"
#include "errors.h"
#include "handle.h"
#include "listing.h"
#include "luamq.h"
#include "msglimits.h"
#include "process.h"
#include "transfer.h"
#include "wait.h"

#if defined(__GNUC__)
#define LUAMQ_EXPORT __attribute__((visibility("default")))
#else
#define LUAMQ_EXPORT
#endif

static void set_integer(lua_State *L, const char *name, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, name);
}

LUAMQ_EXPORT int luaopen_mq_core(lua_State *L) {
  int module, methods;
  luaL_checkversion(L);
  lmq_seal_init();
  lua_newtable(L);
  module = lua_gettop(L);
  lmq_handle_register(L);                   /* pushes the metatable, then the methods */
  methods = module + 2;
  lmq_transfer_register(L, methods, module);
  lmq_address_register(L, methods, module);
  lmq_control_register(L, methods);
  lmq_wait_register(L, module, methods);
  lua_setfield(L, module, "methods");       /* mq.lua adds the timed methods here */
  lua_setfield(L, module, "metatable");
  lua_pushcfunction(L, lmq_is_queue);       /* lets the Lua layer tell a handle apart */
  lua_setfield(L, module, "is_queue");
  lua_pushcfunction(L, lmq_limits);
  lua_setfield(L, module, "limits");
  lua_pushcfunction(L, lmq_ignore_sigpipe);
  lua_setfield(L, module, "ignore_sigpipe");
  lua_pushcfunction(L, lmq_getpid);
  lua_setfield(L, module, "getpid");
  lmq_listing_register(L);
  lmq_clock_register(L);
  lmq_push_codes(L);
  lua_setfield(L, -2, "codes");
  set_integer(L, "O_RDONLY", LMQ_O_RDONLY);
  set_integer(L, "O_WRONLY", LMQ_O_WRONLY);
  set_integer(L, "O_RDWR", LMQ_O_RDWR);
  set_integer(L, "O_NONBLOCK", LMQ_O_NONBLOCK);
  set_integer(L, "O_CREAT", LMQ_O_CREAT);
  set_integer(L, "PRIVATE", IPC_PRIVATE);
  lua_pushliteral(L, LUAMQ_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
