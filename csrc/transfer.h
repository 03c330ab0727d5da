/*
 * Message transfer: send, receive, peek, and the one-attempt polls of the
 * timed calls. Depends on handle.h, errors.h and msglimits.h.
 */
#ifndef LMQ_TRANSFER_H
#define LMQ_TRANSFER_H

#include "lua.h"

/* core.poll_send(q, data, mtype, op) / core.poll_receive(q, mtype, maxsize, op):
 * one IPC_NOWAIT attempt; false when it would block, else as send/receive. */
int lmq_poll_send(lua_State *L);
int lmq_poll_receive(lua_State *L);

/* One IPC_NOWAIT receive on the handle q at stack index qidx with the default
 * maxsize, for select: pushes data, type (2), false (1), or a failure (3). */
struct lmq_queue;
int lmq_try_receive(lua_State *L, int qidx, struct lmq_queue *q, long msgtyp, int msgflg,
                    const char *op);

/* The receive selector at `arg` (nil, an integer type or {except = t}) as
 * msgrcv's msgtyp and msgflg: 1, 0 for a bad value, -1 without MSG_EXCEPT. */
int lmq_opt_selector(lua_State *L, int arg, long *msgtyp, int *msgflg);

/* The failure of `op` on q for a selector lmq_opt_selector judged `ok`: closed first,
 * then unsupported (-1) or invalid (0). */
int lmq_fail_selector(lua_State *L, const char *op, struct lmq_queue *q, int ok);

/* Add send/receive/peek to the methods table at `methods` and the polls to the
 * module table at `module`. */
void lmq_transfer_register(lua_State *L, int methods, int module);

#endif
