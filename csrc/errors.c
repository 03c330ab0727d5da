/*
 * Failure reporting: the codes, their names, and the nil, message, code
 * triple. See errors.h.
 */
#include <errno.h>

#include "errors.h"

static const char *const code_names[] = {
  "again", "timeout", "exists", "notfound", "removed", "toobig", "denied",
  "nospace", "interrupted", "closed", "unsupported", "invalid", "system"
};

#define CODE_COUNT (sizeof code_names / sizeof code_names[0])

/** The code of an errno value, where the call site has nothing more precise. */
enum lmq_code lmq_code_of_errno(int err) {
  switch (err) {
    case EAGAIN: case ENOMSG: return LMQ_EAGAIN;
    case EEXIST: return LMQ_EEXISTS;
    case ENOENT: case ENOTDIR: return LMQ_ENOTFOUND;
    case EIDRM: return LMQ_EREMOVED;
    case E2BIG: return LMQ_ETOOBIG;
    case EACCES: case EPERM: return LMQ_EDENIED;
    case ENOSPC: return LMQ_ENOSPACE;
    case EINTR: return LMQ_EINTERRUPTED;
    case ENOSYS: return LMQ_EUNSUPPORTED;
    case EINVAL: case ELOOP: case ENAMETOOLONG: case EISDIR:
      return LMQ_EINVALID;
    default: return LMQ_ESYSTEM;
  }
}

const char *lmq_code_name(enum lmq_code code) {
  return (size_t)code < CODE_COUNT ? code_names[code] : "system";
}

int lmq_fail(lua_State *L, const char *op, const char *what, enum lmq_code code,
             const char *reason) {
  lua_pushnil(L);
  if (what != NULL && *what != '\0')
    lua_pushfstring(L, "%s %s: %s", op, what, reason);
  else
    lua_pushfstring(L, "%s: %s", op, reason);
  lua_pushstring(L, lmq_code_name(code));
  return 3;
}

/** mq.codes: every code, so Lua code and docs can refer to one source. */
void lmq_push_codes(lua_State *L) {
  size_t i;
  lua_createtable(L, 0, (int)CODE_COUNT);
  for (i = 0; i < CODE_COUNT; i++) {
    lua_pushstring(L, code_names[i]);
    lua_setfield(L, -2, code_names[i]);
  }
}
