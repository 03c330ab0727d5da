/*
 * Message transfer: send, receive, peek, and the polls behind the timed
 * calls. This is the hot path: one system call per message when nothing
 * goes wrong, no allocation once the handle's buffer is big enough, and no
 * error string for a poll that merely found nothing.
 *
 * Anything that allocates can run a finalizer, and a finalizer can close
 * the handle: arguments are converted before the handle is looked at, a
 * buffer that grew is followed by a fresh look, and once a message is taken
 * its type is copied out before the string push, after which the handle is
 * not read again.
 */

/***
@module mq
*/
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "lauxlib.h"

#include "handle.h"
#include "msglimits.h"
#include "transfer.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

/* The smallest buffer a handle gets: the kernel's default msgmax; it grows on demand. */
#define FIRST_BUFFER 8192u

enum wait_mode { WAIT_PER_HANDLE, POLL };

/*
 * Make q's buffer hold `need` payload bytes: 0 when it does, else the pushed
 * failure's result count.
 */
static int reserve(lua_State *L, int qidx, lmq_queue *q, const char *op, size_t need) {
  int r = lmq_handle_reserve(L, qidx, q, need);
  if (r == 0) return 0;
  if (r == LMQ_ECLOSED) return lmq_fail_closed(L, op, q);
  return lmq_fail_queue(L, op, q, LMQ_ESYSTEM, "out of memory for the message buffer");
}

/*
 * Optional integer argument. Raises for a wrong type; returns 0 for a number
 * without an integer value, so the caller can report "invalid" in its turn.
 */
static int opt_integer(lua_State *L, int arg, lua_Integer def, lua_Integer *v) {
  int isint;
  if (lua_isinteger(L, arg)) {
    *v = lua_tointeger(L, arg);
    return 1;
  }
  if (lua_isnoneornil(L, arg)) {
    *v = def;
    return 1;
  }
  if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "integer");
  *v = lua_tointegerx(L, arg, &isint);
  return isint;
}

/*
 * The selector at `arg`: nil or an integer type (0 the first message, > 0 the
 * first of that type, < 0 the first of the lowest type <= -t), or
 * {except = t} (the first whose type is not t >= 1, MSG_EXCEPT). Raises for
 * a wrong type; returns 0 for a bad value (the caller says invalid), -1 when
 * the kernel headers lack MSG_EXCEPT (unsupported).
 */
int lmq_opt_selector(lua_State *L, int arg, long *msgtyp, int *msgflg) {
  lua_Integer t = 0;
  arg = lua_absindex(L, arg);
  *msgflg = 0;
  if (lua_type(L, arg) == LUA_TTABLE) {
    int ok, isint;
    lua_pushliteral(L, "except");
    lua_rawget(L, arg);                      /* raw: no metamethod runs Lua code here */
    t = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : (isint = 0);
    ok = isint && t >= 1 && t <= LONG_MAX;
    lua_pop(L, 1);
    if (!ok) return 0;
#ifdef MSG_EXCEPT
    *msgtyp = (long)t;
    *msgflg = MSG_EXCEPT;
    return 1;
#else
    return -1;
#endif
  }
  if (lua_type(L, arg) != LUA_TNUMBER && !lua_isnoneornil(L, arg))
    luaL_typeerror(L, arg, "integer or {except = type}");
  if (!opt_integer(L, arg, 0, &t) || t < LONG_MIN || t > LONG_MAX) return 0;
  *msgtyp = (long)t;
  return 1;
}

int lmq_fail_selector(lua_State *L, const char *op, lmq_queue *q, int ok) {
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (ok == -1) return lmq_fail_queue(L, op, q, LMQ_EUNSUPPORTED, "this system lacks MSG_EXCEPT");
  return lmq_fail_queue(L, op, q, LMQ_EINVALID,
                        "the selector must be an integer type or {except = type >= 1}");
}

/* Polls carry the Lua-level operation's name (e.g. "receive_timeout") in argument 4. */
static const char *op_name(lua_State *L, enum wait_mode mode, const char *dflt) {
  if (mode == POLL && lua_type(L, 4) == LUA_TSTRING) return lua_tostring(L, 4);
  return dflt;
}

/* A send that failed: tell `again` from a message that can never fit, and block if asked. */
static int send_failed(lua_State *L, lmq_queue *q, size_t len, enum wait_mode mode, int err) {
  const char *op = op_name(L, mode, "send");
  if (err == EAGAIN) {
    struct msqid_ds ds;
    /* The kernel blocks for ever on a message above the capacity: say toobig instead. */
    if (msgctl(q->id, IPC_STAT, &ds) == 0 && len > (size_t)ds.msg_qbytes) {
      return lmq_fail_queue(L, op, q, LMQ_ETOOBIG,
                            "the message is larger than the queue's capacity (msg_qbytes)");
    }
    if (mode == POLL) {
      lua_pushboolean(L, 0);
      return 1;
    }
    if (q->flags & LMQ_O_NONBLOCK) return lmq_fail_queue(L, op, q, LMQ_EAGAIN, "the queue is full");
    if (msgsnd(q->id, q->buf, len, 0) != 0) return send_failed(L, q, len, mode, errno);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (err == EINVAL && len > (size_t)lmq_msgmax(1))
    return lmq_fail_queue(L, op, q, LMQ_ETOOBIG, "the message is larger than msgmax");
  if (err == EINVAL || err == EIDRM)
    return lmq_fail_queue(L, op, q, LMQ_EREMOVED, "the queue was removed");
  if (err == EINTR)
    return lmq_fail_queue(L, op, q, LMQ_EINTERRUPTED, "interrupted by a signal");
  return lmq_fail_queue(L, op, q, lmq_code_of_errno(err), strerror(err));
}

/* send(q, data [, mtype]) in the given wait mode. */
static int send_message(lua_State *L, enum wait_mode mode) {
  lmq_queue *q = lmq_check_queue(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);   /* a number becomes a string: allocates */
  lua_Integer mtype = 1;
  int ok = lua_gettop(L) < 3 || opt_integer(L, 3, 1, &mtype);   /* q:send(data): no parsing */
  if (q->id < 0) return lmq_fail_closed(L, op_name(L, mode, "send"), q);
  if (!ok || mtype < 1)
    return lmq_fail_queue(L, op_name(L, mode, "send"), q, LMQ_EINVALID,
                          "the message type must be an integer >= 1");
  if (!(q->flags & LMQ_O_WRONLY))
    return lmq_fail_queue(L, op_name(L, mode, "send"), q, LMQ_EDENIED, "the handle is read-only");
  if (len > (size_t)LMQ_MSGMAX() && len > (size_t)lmq_msgmax(1))
    return lmq_fail_queue(L, op_name(L, mode, "send"), q, LMQ_ETOOBIG,
                          "the message is larger than msgmax");
  if (q->buf == NULL || len > q->bufcap) {
    int r = reserve(L, 1, q, op_name(L, mode, "send"), len > FIRST_BUFFER ? len : FIRST_BUFFER);
    if (r != 0) return r;
  }
  q->buf->mtype = (long)mtype;
  memcpy(q->buf->mtext, data, len);
  if (msgsnd(q->id, q->buf, len, IPC_NOWAIT) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return send_failed(L, q, len, mode, errno);
}

/* A receive that failed with err (not E2BIG). */
static int receive_failed(lua_State *L, const lmq_queue *q, const char *op, int err,
                          enum wait_mode mode) {
  if (err == EAGAIN || err == ENOMSG) {
    if (mode == POLL) {
      lua_pushboolean(L, 0);
      return 1;
    }
    return lmq_fail_queue(L, op, q, LMQ_EAGAIN, "no message");
  }
  if (err == EINVAL || err == EIDRM)
    return lmq_fail_queue(L, op, q, LMQ_EREMOVED, "the queue was removed");
  if (err == EINTR) return lmq_fail_queue(L, op, q, LMQ_EINTERRUPTED, "interrupted by a signal");
  if (err == ENOSYS)
    return lmq_fail_queue(L, op, q, LMQ_EUNSUPPORTED, "the kernel lacks MSG_COPY (peek)");
  return lmq_fail_queue(L, op, q, lmq_code_of_errno(err), strerror(err));
}

/*
 * msgrcv into q's buffer, growing it while a message is longer than the
 * buffer but within maxsize. E2BIG leaves the message queued, so nothing is
 * lost; a message longer than maxsize is reported as toobig.
 */
static int receive_into(lua_State *L, int qidx, lmq_queue *q, const char *op, long msgtyp,
                        size_t maxsize, int default_max, int flags, enum wait_mode mode) {
  size_t first = maxsize < FIRST_BUFFER ? maxsize : FIRST_BUFFER;
  if (q->watches != NULL && !(flags & MSG_COPY)) {
    /* A 0-byte message a readiness helper took (it fits the helper's 0-byte
     * buffer) is this handle's next message. */
    long mtype;
    if (lmq_handle_take_stashed(q, msgtyp, flags, !(flags & IPC_NOWAIT), &mtype)) {
      lua_pushliteral(L, "");
      lua_pushinteger(L, (lua_Integer)mtype);
      return 2;
    }
  }
  /* bufcap is 0 without a buffer. cppcheck takes maxsize for 0 from msgmax's initial
   * cache value, which lmq_msgmax() replaces before any call gets here. */
  /* cppcheck-suppress knownConditionTrueFalse */
  if (q->bufcap < first) {
    int r = reserve(L, qidx, q, op, first);
    if (r != 0) return r;
  }
  for (;;) {
    size_t want = maxsize < q->bufcap ? maxsize : q->bufcap;
    lmq_msg *buf = q->buf;
    ssize_t n = msgrcv(q->id, buf, want, msgtyp, flags);
    int err;
    if (n >= 0) {
      /* The push may collect garbage and run a finalizer that closes q: the
       * type is read first, and the string is copied before any collection. */
      lua_Integer mtype = (lua_Integer)buf->mtype;
      lua_pushlstring(L, buf->mtext, (size_t)n);
      lua_pushinteger(L, mtype);
      return 2;
    }
    err = errno;
    if (err != E2BIG) return receive_failed(L, q, op, err, mode);
    if (want < maxsize) {
      int r = reserve(L, qidx, q, op, want > maxsize / 4 ? maxsize : want * 4);
      if (r != 0) return r;
      continue;
    }
    if (default_max && (size_t)lmq_msgmax(1) > maxsize) {  /* msgmax was raised */
      maxsize = (size_t)lmq_msgmax(0);
      continue;
    }
    return lmq_fail_queue(L, op, q, LMQ_ETOOBIG,
                          "the message is longer than maxsize; it stays in the queue");
  }
}

/* receive(q [, selector [, maxsize]]) in the given wait mode. */
static int receive_message(lua_State *L, enum wait_mode mode) {
  lmq_queue *q = lmq_check_queue(L, 1);
  lua_Integer maxsize = 0;
  long msgtyp = 0;
  int ok = 1, max_ok = 1, default_max = 1, msgflg = 0, top = lua_gettop(L);
  const char *op;
  if (top >= 2) {                              /* q:receive(): no parsing at all */
    if (lua_isinteger(L, 2))
      msgtyp = (long)lua_tointeger(L, 2);      /* the common selector, parsed inline */
    else
      ok = lmq_opt_selector(L, 2, &msgtyp, &msgflg);
    if (top >= 3 && !lua_isnoneornil(L, 3)) {
      default_max = 0;
      max_ok = opt_integer(L, 3, 0, &maxsize) && maxsize >= 1 && maxsize <= INT_MAX;
    }
  }
  if (q->id >= 0 && ok == 1 && max_ok && (q->flags & LMQ_O_RDONLY)) {
    int flags = msgflg | ((mode == POLL || (q->flags & LMQ_O_NONBLOCK)) ? IPC_NOWAIT : 0);
    if (default_max) maxsize = LMQ_MSGMAX();
    return receive_into(L, 1, q, op_name(L, mode, "receive"), msgtyp, (size_t)maxsize,
                        default_max, flags, mode);
  }
  op = op_name(L, mode, "receive");
  if (q->id < 0 || ok != 1) return lmq_fail_selector(L, op, q, ok);
  if (!max_ok)
    return lmq_fail_queue(L, op, q, LMQ_EINVALID, "maxsize must be an integer within 1 .. 2^31-1");
  return lmq_fail_queue(L, op, q, LMQ_EDENIED, "the handle is write-only");
}

/***
Copy the message at a position without removing it (`MSG_COPY`).
@function queue:peek
@within queue
@tparam[opt=0] integer index 0-based position
@treturn string data
@treturn integer mtype
@return[2] nil, message, code: `again` (none there), `closed`, `invalid`, `denied`,
`removed`, `unsupported` (no `MSG_COPY`), `system`
*/
static int q_peek(lua_State *L) {
  static const char op[] = "peek";
  lmq_queue *q = lmq_check_queue(L, 1);
  lua_Integer index;
  int ok = opt_integer(L, 2, 0, &index);
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (!ok || index < 0)
    return lmq_fail_queue(L, op, q, LMQ_EINVALID, "the index must be an integer >= 0");
  if (!(q->flags & LMQ_O_RDONLY))
    return lmq_fail_queue(L, op, q, LMQ_EDENIED, "the handle is write-only");
  return receive_into(L, 1, q, op, (long)index, (size_t)lmq_msgmax(0), 1, MSG_COPY | IPC_NOWAIT,
                      WAIT_PER_HANDLE);
}

/***
Send a message; blocks while the queue is full unless the handle is nonblocking.
@function queue:send
@within queue
@tparam string data any bytes, 0 up to msgmax
@tparam[opt=1] integer mtype >= 1
@treturn boolean true
@return[2] nil, message, code: `again`, `toobig`, `closed`, `invalid`, `denied`,
`removed`, `interrupted`, `system`
*/
static int q_send(lua_State *L) { return send_message(L, WAIT_PER_HANDLE); }

/***
Receive a message; blocks while none matches unless the handle is nonblocking.
@function queue:receive
@within queue
@tparam[opt=0] integer|table selector 0 the first message, > 0 the first of that type,
< 0 the first of the lowest type <= -selector, `{except = t}` the first whose type is
not t
@tparam[opt=msgmax] integer maxsize 1 .. 2^31-1; a longer message stays queued
(`toobig`)
@treturn string data
@treturn integer mtype
@return[2] nil, message, code: `again`, `toobig`, `closed`, `invalid`, `denied`,
`removed`, `interrupted`, `system`
*/
static int q_receive(lua_State *L) { return receive_message(L, WAIT_PER_HANDLE); }

int lmq_poll_send(lua_State *L) { return send_message(L, POLL); }

int lmq_try_receive(lua_State *L, int qidx, lmq_queue *q, long msgtyp, int msgflg,
                    const char *op) {
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (!(q->flags & LMQ_O_RDONLY)) return lmq_fail_queue(L, op, q, LMQ_EDENIED, "the handle is write-only");
  return receive_into(L, qidx, q, op, msgtyp, (size_t)LMQ_MSGMAX(), 1, msgflg | IPC_NOWAIT, POLL);
}
int lmq_poll_receive(lua_State *L) { return receive_message(L, POLL); }

static const luaL_Reg transfer_methods[] = {
  {"send", q_send},
  {"receive", q_receive},
  {"peek", q_peek},
  {NULL, NULL}
};

static const luaL_Reg transfer_polls[] = {
  {"poll_send", lmq_poll_send},
  {"poll_receive", lmq_poll_receive},
  {NULL, NULL}
};

void lmq_transfer_register(lua_State *L, int methods, int module) {
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, transfer_methods, 0);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, transfer_polls, 0);
  lua_pop(L, 2);
}
