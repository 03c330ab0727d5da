/*
 * The monotonic clock of deadlines. Depends on nothing else in csrc/.
 */
#ifndef LMQ_CLOCK_H
#define LMQ_CLOCK_H

#include "lua.h"

/* Seconds on CLOCK_MONOTONIC. */
double lmq_now(void);

/* core.monotonic, into the table on top of the stack. */
void lmq_clock_register(lua_State *L);

#endif
