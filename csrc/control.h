/*
 * Reading and changing a queue's kernel state: q:stat, q:set_capacity, q:set_mode,
 * q:set_owner.
 * Depends on handle.h, errors.h and sysvtable.h.
 */
#ifndef LMQ_CONTROL_H
#define LMQ_CONTROL_H

#include "lua.h"

#include "sysvtable.h"

/* A perm argument at `arg`, as new, open and set_mode take it: nil (only when `optional`;
 * then 0600), an integer, or a string of 1 to 4 octal digits; bits of 0666 only. A wrong
 * Lua type raises. Returns NULL with *perm set, or why the value is invalid. */
const char *lmq_check_perm(lua_State *L, int arg, int optional, int *perm);

/* Push a queue's row as the table q:stat returns, the one shape mq.list's rows share;
 * `capacity` only when the row has it (/proc/sysvipc/msg does not show it). */
void lmq_push_queue_row(lua_State *L, const lmq_queue_row *row, int with_capacity);

/* Add the control methods to the methods table at `methods`. */
void lmq_control_register(lua_State *L, int methods);

#endif
