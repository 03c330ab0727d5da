/*
 * Reading and changing a queue's kernel state: q:stat, q:set_capacity, q:set_mode,
 * q:set_owner.
 * Depends on handle.h, errors.h and sysvtable.h.
 */
#ifndef LMQ_CONTROL_H
#define LMQ_CONTROL_H

#include "lua.h"

#include "sysvtable.h"

/* Push a queue's row as the table q:stat returns, the one shape mq.list's rows share;
 * `capacity` only when the row has it (/proc/sysvipc/msg does not show it). */
void lmq_push_queue_row(lua_State *L, const lmq_queue_row *row, int with_capacity);

/* Add the control methods to the methods table at `methods`. */
void lmq_control_register(lua_State *L, int methods);

#endif
