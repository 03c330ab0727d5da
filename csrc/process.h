/*
 * Process-wide settings for programs built on mq (the command-line tool).
 * Depends on errors.h.
 */
#ifndef LMQ_PROCESS_H
#define LMQ_PROCESS_H

#include "lua.h"

/* core.ignore_sigpipe() -> true | nil, message, "system". */
int lmq_ignore_sigpipe(lua_State *L);

/* core.getpid() -> the process id. */
int lmq_getpid(lua_State *L);

#endif
