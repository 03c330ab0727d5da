/*
 * mq: System V message queues for Lua 5.4 -- the public C interface, for
 * programs that link mq in (libmq.a) instead of loading mq/core.so.
 */
#ifndef LUAMQ_H
#define LUAMQ_H

#include "lua.h"

#define LUAMQ_VERSION "0.2.0"

/* The C core, as `require "mq.core"` loads it: pushes the core table. */
int luaopen_mq_core(lua_State *L);

#endif
