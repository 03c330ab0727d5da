/*
 * Failure reporting, the bottom layer of the C core: it depends on nothing
 * else in csrc/. Every failure that is not a wrong Lua type returns
 * nil, message, code; the message names the operation, the queue and the
 * reason, and the code is one short stable word (README, "Errors").
 */
#ifndef LMQ_ERRORS_H
#define LMQ_ERRORS_H

#include "lua.h"

enum lmq_code {
  LMQ_EAGAIN, LMQ_ETIMEOUT, LMQ_EEXISTS, LMQ_ENOTFOUND, LMQ_EREMOVED, LMQ_ETOOBIG, LMQ_EDENIED,
  LMQ_ENOSPACE, LMQ_EINTERRUPTED, LMQ_ECLOSED, LMQ_EUNSUPPORTED, LMQ_EINVALID, LMQ_ESYSTEM
};

/* Push nil, "<op> <what>: <reason>" (or "<op>: <reason>" without `what`), the
 * code's name; returns 3 for the caller to return. */
int lmq_fail(lua_State *L, const char *op, const char *what, enum lmq_code code,
             const char *reason);

/* The code for an errno value in general; callers that know better map first. */
enum lmq_code lmq_code_of_errno(int err);

/* The code's name, as Lua sees it. */
const char *lmq_code_name(enum lmq_code code);

/* Push the table of every code name (mq.codes). */
void lmq_push_codes(lua_State *L);

#endif
