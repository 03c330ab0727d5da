/*
 * The kernel's message queue limits (/proc/sys/kernel). Depends on nothing
 * else in csrc/. msgmax is cached for the hot path and re-read whenever a
 * size failure suggests an administrator changed it.
 */
#ifndef LMQ_MSGLIMITS_H
#define LMQ_MSGLIMITS_H

#include "lua.h"

extern long lmq_msgmax_cache;

/* msgmax, re-read from /proc when `refresh` or not yet read. */
long lmq_msgmax(int refresh);

/* The cached msgmax without a call in the common case. */
#define LMQ_MSGMAX() (lmq_msgmax_cache > 0 ? lmq_msgmax_cache : lmq_msgmax(0))

/* mq.limits() -> {msgmax=, msgmnb=, msgmni=}, read now. */
int lmq_limits(lua_State *L);

#endif
