/*
 * Failure reporting: the codes, their names, and the nil, message, code
 * triple. See errors.h.
 */

/***
@module mq
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

/***
Every failure code, as `mq.codes.timeout == "timeout"`: the third value of a
failed call's `nil, message, code`. Wrong Lua types raise instead.
@table codes
@field again a nonblocking call would block (EAGAIN, ENOMSG)
@field timeout a timed call ran out of time
@field exists `new` found the queue already there
@field notfound no such queue, or no key file for that name
@field removed the queue was removed while this handle used it
@field toobig a message above msgmax, the queue's capacity, or maxsize
@field denied permission, or the handle's mode forbids the operation
@field nospace the system's queue table is full
@field interrupted a blocking call was interrupted by a signal with a handler
@field closed the handle was closed
@field unsupported the kernel lacks the feature
@field invalid a bad name, perm, flag, type, size or timeout value
@field system anything else
*/
void lmq_push_codes(lua_State *L) {
  size_t i;
  lua_createtable(L, 0, (int)CODE_COUNT);
  for (i = 0; i < CODE_COUNT; i++) {
    lua_pushstring(L, code_names[i]);
    lua_setfield(L, -2, code_names[i]);
  }
}
