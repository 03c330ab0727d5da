/*
 * mq: System V message queues for Lua 5.4 -- the public C interface, for
 * programs that link mq in (libmq.a, `make install-embed`) instead of
 * loading mq/core.so. The version is given here and nowhere else: the
 * module's _VERSION, the command-line tool and the rockspec follow it.
 */
#ifndef LUAMQ_H
#define LUAMQ_H

#include "lua.h"

#define LUAMQ_VERSION "0.2.0"

/* The C core, as `require "mq.core"` loads it: pushes the core table. */
int luaopen_mq_core(lua_State *L);

/* libmq.a only: register "mq.core" and the compiled-in Lua layer ("mq",
 * "mq.loop", "mq.cqueues", "mq.luv") in package.preload, so that
 * `require "mq"` works with no file on disk. Call it after luaL_openlibs. */
void luamq_preload(lua_State *L);

#endif
