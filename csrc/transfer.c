/*
 * Message transfer: send, receive, peek, and the polls behind the Lua
 * layer's timed calls. This is the hot path: one system call per message
 * when nothing goes wrong, no allocation once the handle's buffer is big
 * enough, and no error string for a poll that merely found nothing.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "mq.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

/* The smallest buffer a handle gets: the kernel's default msgmax; it grows on demand. */
#define MQ_FIRST_BUFFER 8192u

enum wait_mode { WAIT_PER_HANDLE, POLL };

/* Grow q's buffer to hold `need` payload bytes, with the host's allocator. */
static int grow_buffer(lua_State *L, mq_queue *q, size_t need) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  size_t old = q->buf != NULL ? MQ_MSG_SIZE(q->bufcap) : 0;
  void *p = alloc(ud, q->buf, old, MQ_MSG_SIZE(need));
  if (p == NULL) return -1;
  q->buf = (mq_msg *)p;
  q->bufcap = need;
  return 0;
}

void mq_free_buffer(lua_State *L, mq_queue *q) {
  if (q->buf != NULL) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    alloc(ud, q->buf, MQ_MSG_SIZE(q->bufcap), 0);
    q->buf = NULL;
    q->bufcap = 0;
  }
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

static const char *op_name(lua_State *L, enum wait_mode mode, const char *dflt) {
  /* Polls carry the Lua-level operation's name (e.g. "receive_timeout") in argument 4. */
  if (mode == POLL && lua_type(L, 4) == LUA_TSTRING) return lua_tostring(L, 4);
  return dflt;
}

static int out_of_memory(lua_State *L, const char *op, const mq_queue *q) {
  return mq_fail_queue(L, op, q, MQ_ESYSTEM, "out of memory for the message buffer");
}

/* A send that failed: tell `again` from a message that can never fit, and block if asked. */
static int send_failed(lua_State *L, mq_queue *q, size_t len, enum wait_mode mode, int err) {
  const char *op = op_name(L, mode, "send");
  if (err == EAGAIN) {
    struct msqid_ds ds;
    /* The kernel blocks for ever on a message above the capacity: say toobig instead. */
    if (msgctl(q->id, IPC_STAT, &ds) == 0 && len > (size_t)ds.msg_qbytes) {
      return mq_fail_queue(L, op, q, MQ_ETOOBIG,
                           "the message is larger than the queue's capacity (msg_qbytes)");
    }
    if (mode == POLL) {
      lua_pushboolean(L, 0);
      return 1;
    }
    if (q->flags & MQ_O_NONBLOCK) return mq_fail_queue(L, op, q, MQ_EAGAIN, "the queue is full");
    if (msgsnd(q->id, q->buf, len, 0) != 0) return send_failed(L, q, len, mode, errno);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (err == EINVAL && len > (size_t)mq_msgmax(1))
    return mq_fail_queue(L, op, q, MQ_ETOOBIG, "the message is larger than msgmax");
  if (err == EINVAL || err == EIDRM) return mq_fail_queue(L, op, q, MQ_EREMOVED, "the queue was removed");
  if (err == EINTR)
    return mq_fail_queue(L, op, q, MQ_EINTERRUPTED, "interrupted by a signal");
  return mq_fail_queue(L, op, q, mq_code_of_errno(err), strerror(err));
}

/* send(q, data [, mtype]) in the given wait mode. */
static int send_message(lua_State *L, enum wait_mode mode) {
  mq_queue *q = mq_check_queue(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_Integer mtype = 1;
  int ok = lua_gettop(L) < 3 || opt_integer(L, 3, 1, &mtype);   /* q:send(data): no parsing */
  if (q->id < 0)
    return mq_fail_queue(L, op_name(L, mode, "send"), q, MQ_ECLOSED, "the handle is closed");
  if (!ok || mtype < 1)
    return mq_fail_queue(L, op_name(L, mode, "send"), q, MQ_EINVALID,
                         "the message type must be an integer >= 1");
  if (!(q->flags & MQ_O_WRONLY))
    return mq_fail_queue(L, op_name(L, mode, "send"), q, MQ_EDENIED, "the handle is read-only");
  if (len > (size_t)MQ_MSGMAX() && len > (size_t)mq_msgmax(1))
    return mq_fail_queue(L, op_name(L, mode, "send"), q, MQ_ETOOBIG,
                         "the message is larger than msgmax");
  if ((q->buf == NULL || len > q->bufcap) &&
      grow_buffer(L, q, len > MQ_FIRST_BUFFER ? len : MQ_FIRST_BUFFER) != 0)
    return out_of_memory(L, op_name(L, mode, "send"), q);
  q->buf->mtype = (long)mtype;
  memcpy(q->buf->mtext, data, len);
  if (msgsnd(q->id, q->buf, len, IPC_NOWAIT) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return send_failed(L, q, len, mode, errno);
}

/*
 * msgrcv into q's buffer, growing it while a message is longer than the
 * buffer but within maxsize. E2BIG leaves the message queued, so nothing is
 * lost; a message longer than maxsize is reported as toobig.
 */
static int receive_into(lua_State *L, mq_queue *q, const char *op, long msgtyp, size_t maxsize,
                        int default_max, int flags, enum wait_mode mode) {
  size_t first = maxsize < MQ_FIRST_BUFFER ? maxsize : MQ_FIRST_BUFFER;
  /* bufcap is 0 without a buffer. cppcheck takes maxsize for 0 from msgmax's initial
   * cache value, which mq_msgmax() replaces before any call gets here. */
  /* cppcheck-suppress knownConditionTrueFalse */
  if (q->bufcap < first && grow_buffer(L, q, first) != 0)
    return out_of_memory(L, op, q);
  for (;;) {
    size_t want = maxsize < q->bufcap ? maxsize : q->bufcap;
    ssize_t n = msgrcv(q->id, q->buf, want, msgtyp, flags);
    int err;
    if (n >= 0) {
      lua_pushlstring(L, q->buf->mtext, (size_t)n);
      lua_pushinteger(L, (lua_Integer)q->buf->mtype);
      return 2;
    }
    err = errno;
    if (err == E2BIG) {
      if (want < maxsize) {
        size_t next = want > maxsize / 4 ? maxsize : want * 4;
        if (grow_buffer(L, q, next) != 0) return out_of_memory(L, op, q);
        continue;
      }
      if (default_max && (size_t)mq_msgmax(1) > maxsize) {  /* msgmax was raised */
        maxsize = (size_t)mq_msgmax(0);
        continue;
      }
      return mq_fail_queue(L, op, q, MQ_ETOOBIG,
                           "the message is longer than maxsize; it stays in the queue");
    }
    if (err == EAGAIN || err == ENOMSG) {
      if (mode == POLL) {
        lua_pushboolean(L, 0);
        return 1;
      }
      return mq_fail_queue(L, op, q, MQ_EAGAIN, "no message");
    }
    if (err == EINVAL || err == EIDRM) return mq_fail_queue(L, op, q, MQ_EREMOVED, "the queue was removed");
    if (err == EINTR) return mq_fail_queue(L, op, q, MQ_EINTERRUPTED, "interrupted by a signal");
    if (err == ENOSYS)
      return mq_fail_queue(L, op, q, MQ_EUNSUPPORTED, "the kernel lacks MSG_COPY (peek)");
    return mq_fail_queue(L, op, q, mq_code_of_errno(err), strerror(err));
  }
}

/* receive(q [, mtype [, maxsize]]) in the given wait mode. */
static int receive_message(lua_State *L, enum wait_mode mode) {
  mq_queue *q = mq_check_queue(L, 1);
  lua_Integer mtype = 0, maxsize = 0;
  int ok = 1, default_max = 1, top = lua_gettop(L);
  const char *op;
  if (top >= 2) {                              /* q:receive(): no parsing at all */
    ok = opt_integer(L, 2, 0, &mtype);
    if (top >= 3 && !lua_isnoneornil(L, 3)) {
      default_max = 0;
      ok = opt_integer(L, 3, 0, &maxsize) && ok;
    }
  }
  if (q->id >= 0 && ok && (default_max || (maxsize >= 1 && maxsize <= INT_MAX)) &&
      (q->flags & MQ_O_RDONLY)) {
    if (default_max) maxsize = MQ_MSGMAX();
    int flags = (mode == POLL || (q->flags & MQ_O_NONBLOCK)) ? IPC_NOWAIT : 0;
    return receive_into(L, q, op_name(L, mode, "receive"), (long)mtype, (size_t)maxsize,
                        default_max, flags, mode);
  }
  op = op_name(L, mode, "receive");
  if (q->id < 0) return mq_fail_queue(L, op, q, MQ_ECLOSED, "the handle is closed");
  if (!ok)
    return mq_fail_queue(L, op, q, MQ_EINVALID, "the message type must be an integer");
  if (!default_max && (maxsize < 1 || maxsize > INT_MAX))
    return mq_fail_queue(L, op, q, MQ_EINVALID, "maxsize must be an integer within 1 .. 2^31-1");
  return mq_fail_queue(L, op, q, MQ_EDENIED, "the handle is write-only");
}

/* q:peek([index]): copy the message at index without removing it (MSG_COPY). */
static int q_peek(lua_State *L) {
  static const char op[] = "peek";
  mq_queue *q = mq_check_queue(L, 1);
  lua_Integer index;
  int ok = opt_integer(L, 2, 0, &index);
  if (q->id < 0) return mq_fail_queue(L, op, q, MQ_ECLOSED, "the handle is closed");
  if (!ok || index < 0)
    return mq_fail_queue(L, op, q, MQ_EINVALID, "the index must be an integer >= 0");
  if (!(q->flags & MQ_O_RDONLY)) return mq_fail_queue(L, op, q, MQ_EDENIED, "the handle is write-only");
  return receive_into(L, q, op, (long)index, (size_t)mq_msgmax(0), 1, MSG_COPY | IPC_NOWAIT,
                      WAIT_PER_HANDLE);
}

/* q:send(data [, mtype]) -> true; blocks while full unless nonblocking. */
static int q_send(lua_State *L) { return send_message(L, WAIT_PER_HANDLE); }

/* q:receive([mtype [, maxsize]]) -> data, mtype; blocks while empty unless nonblocking. */
static int q_receive(lua_State *L) { return receive_message(L, WAIT_PER_HANDLE); }

/* mq.core.poll_send(q, data, mtype, op) / poll_receive(q, mtype, maxsize, op):
 * one IPC_NOWAIT attempt; false when it would block, else as send/receive. */
int mq_poll_send(lua_State *L) { return send_message(L, POLL); }
int mq_poll_receive(lua_State *L) { return receive_message(L, POLL); }

static const luaL_Reg transfer_methods[] = {
  {"send", q_send},
  {"receive", q_receive},
  {"peek", q_peek},
  {NULL, NULL}
};

static const luaL_Reg transfer_polls[] = {
  {"poll_send", mq_poll_send},
  {"poll_receive", mq_poll_receive},
  {NULL, NULL}
};

/* Adds send/receive/peek to the methods table and the polls to the module table. */
void mq_transfer_register(lua_State *L, int methods, int module) {
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, transfer_methods, 0);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, transfer_polls, 0);
  lua_pop(L, 2);
}
