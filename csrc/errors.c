/*
 * Failure reporting: every failure that is not a wrong Lua type returns
 * nil, message, code (API.md "Errors"). The message names the operation,
 * the queue and the reason; the code is one short stable word.
 */
#include <errno.h>
#include <string.h>

#include "mq.h"

static const char *const code_names[] = {
  "again", "timeout", "exists", "notfound", "removed", "toobig", "denied",
  "nospace", "interrupted", "closed", "unsupported", "invalid", "system"
};

enum mq_code mq_code_of_errno(int err) {
  switch (err) {
    case EAGAIN: case ENOMSG: return MQ_EAGAIN;
    case EEXIST: return MQ_EEXISTS;
    case ENOENT: return MQ_ENOTFOUND;
    case EIDRM: return MQ_EREMOVED;
    case E2BIG: return MQ_ETOOBIG;
    case EACCES: case EPERM: return MQ_EDENIED;
    case ENOSPC: return MQ_ENOSPACE;
    case EINTR: return MQ_EINTERRUPTED;
    case ENOSYS: return MQ_EUNSUPPORTED;
    case EINVAL: case ELOOP: case ENAMETOOLONG: case EISDIR: case ENOTDIR:
      return MQ_EINVALID;
    default: return MQ_ESYSTEM;
  }
}

/* Push nil, "<op> <what>: <reason>", code; return 3 for the caller to return. */
int mq_fail(lua_State *L, const char *op, const char *what, enum mq_code code, const char *reason) {
  lua_pushnil(L);
  if (what != NULL && *what != '\0')
    lua_pushfstring(L, "%s %s: %s", op, what, reason);
  else
    lua_pushfstring(L, "%s: %s", op, reason);
  lua_pushstring(L, code_names[code]);
  return 3;
}

int mq_fail_errno(lua_State *L, const char *op, const char *what, int err, enum mq_code code) {
  return mq_fail(L, op, what, code, strerror(err));
}

int mq_fail_queue(lua_State *L, const char *op, const mq_queue *q, enum mq_code code,
                  const char *reason) {
  char desc[320];
  mq_describe(q, desc, sizeof desc);
  return mq_fail(L, op, desc, code, reason);
}

/* mq.codes: the list of every code, so Lua code and docs can refer to one source. */
void mq_push_codes(lua_State *L) {
  size_t i;
  lua_createtable(L, 0, (int)(sizeof code_names / sizeof code_names[0]));
  for (i = 0; i < sizeof code_names / sizeof code_names[0]; i++) {
    lua_pushstring(L, code_names[i]);
    lua_setfield(L, -2, code_names[i]);
  }
}
