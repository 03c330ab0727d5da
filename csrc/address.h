/*
 * Addressing a queue by name or integer key: mq.new, mq.open, mq.destroy,
 * q:destroy and mq.ftok. Names go through names.c, handles come from
 * handle.c, perm is read as control.c reads it. Depends on names.h, handle.h, control.h
 * and errors.h.
 */
#ifndef LMQ_ADDRESS_H
#define LMQ_ADDRESS_H

#include "lua.h"

/* Add new/open/destroy/ftok to the module table at `module` and destroy to
 * the methods table at `methods`. */
void lmq_address_register(lua_State *L, int methods, int module);

#endif
