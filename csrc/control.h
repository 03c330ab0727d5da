/*
 * Reading and changing a queue's kernel state: q:stat, q:set_capacity, q:set_mode,
 * q:set_owner.
 * Depends on handle.h and errors.h.
 */
#ifndef LMQ_CONTROL_H
#define LMQ_CONTROL_H

#include "lua.h"

/* Add the control methods to the methods table at `methods`. */
void lmq_control_register(lua_State *L, int methods);

#endif
