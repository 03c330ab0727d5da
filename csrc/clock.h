/*
 * The monotonic clock of deadlines, and a sleep. Depends on nothing else in csrc/.
 */
#ifndef LMQ_CLOCK_H
#define LMQ_CLOCK_H

#include "lua.h"

/* Seconds on CLOCK_MONOTONIC. */
double lmq_now(void);

/* Sleep `seconds` (nothing for <= 0 or NaN); -1 if a signal cut it short. */
int lmq_sleep(double seconds);

/* core.monotonic and core.sleep, into the table on top of the stack. */
void lmq_clock_register(lua_State *L);

#endif
