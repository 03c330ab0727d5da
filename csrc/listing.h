/*
 * mq.list: the kernel's table of queues with the names that map to them.
 * Depends on control.h (a row as a table), sysvtable.h, names.h and errors.h.
 */
#ifndef LMQ_LISTING_H
#define LMQ_LISTING_H

#include "lua.h"

/* core.list, into the table on top of the stack. */
void lmq_listing_register(lua_State *L);

#endif
