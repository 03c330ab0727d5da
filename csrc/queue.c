/*
 * The queue handle: a full userdata holding the queue id, the open mode and
 * the key file path, with the methods that are not message transfer (those
 * live in transfer.c). Closing never removes the queue.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include "mq.h"

const char mq_queue_tag = 'q';

mq_queue *mq_push_queue(lua_State *L, int id, int flags, const mq_where *w) {
  size_t pathlen = w->kind == MQ_BY_NAME ? strlen(w->path) : 0;
  mq_queue *q = (mq_queue *)lua_newuserdatauv(L, offsetof(mq_queue, path) + pathlen + 1, 0);
  q->tag = &mq_queue_tag;
  q->id = id;
  q->flags = flags;
  q->key = w->kind == MQ_PRIVATE_QUEUE ? IPC_PRIVATE : w->key;
  q->kind = w->kind;
  q->buf = NULL;
  q->bufcap = 0;
  q->name_off = 0;
  memcpy(q->path, w->path, pathlen);
  q->path[pathlen] = '\0';
  if (w->kind == MQ_BY_NAME) q->name_off = pathlen - strlen(w->name);
  luaL_setmetatable(L, MQ_QUEUE_MT);
  return q;
}

void mq_describe(const mq_queue *q, char *out, size_t outsz) {
  if (q->id < 0)
    snprintf(out, outsz, "mq.queue(closed)");
  else if (q->kind == MQ_BY_NAME)
    snprintf(out, outsz, "mq.queue(name=%s, id=%d)", q->path + q->name_off, q->id);
  else if (q->kind == MQ_PRIVATE_QUEUE)
    snprintf(out, outsz, "mq.queue(private, id=%d)", q->id);
  else
    snprintf(out, outsz, "mq.queue(key=0x%08x, id=%d)", (unsigned)q->key, q->id);
}

static int closed(lua_State *L, const char *op, const mq_queue *q) {
  return mq_fail_queue(L, op, q, MQ_ECLOSED, "the handle is closed");
}

/* A failed msgctl on a handle: EINVAL and EIDRM mean someone removed the queue. */
static int ctl_failure(lua_State *L, const char *op, const mq_queue *q, int err) {
  if (err == EINVAL || err == EIDRM)
    return mq_fail_queue(L, op, q, MQ_EREMOVED, "the queue was removed");
  return mq_fail_queue(L, op, q, mq_code_of_errno(err), strerror(err));
}

static void close_queue(lua_State *L, mq_queue *q) {
  q->id = -1;
  mq_free_buffer(L, q);
}

/* q:close() -> true. Idempotent; the queue itself stays. */
static int q_close(lua_State *L) {
  close_queue(L, mq_check_queue(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

/* q:destroy(): remove the queue, then its key file if the file still names it. */
static int q_destroy(lua_State *L) {
  static const char op[] = "destroy";
  mq_queue *q = mq_check_queue(L, 1);
  if (q->id < 0) return closed(L, op, q);
  if (msgctl(q->id, IPC_RMID, NULL) != 0) {
    int err = errno;
    if (err != EINVAL && err != EIDRM) return ctl_failure(L, op, q, err);
    /* Already removed by someone else: the name may serve a new queue now. */
  } else if (q->kind == MQ_BY_NAME && mq_key_file_matches(q->path, q->key)) {
    unlink(q->path);
  }
  close_queue(L, q);
  lua_pushboolean(L, 1);
  return 1;
}

/* q:name() -> the queue's name, or nil for a key or private queue. */
static int q_name(lua_State *L) {
  mq_queue *q = mq_check_queue(L, 1);
  if (q->id < 0) return closed(L, "name", q);
  if (q->kind == MQ_BY_NAME)
    lua_pushstring(L, q->path + q->name_off);
  else
    lua_pushnil(L);
  return 1;
}

/* q:key() -> the signed key_t (0 for a private queue). */
static int q_key(lua_State *L) {
  mq_queue *q = mq_check_queue(L, 1);
  if (q->id < 0) return closed(L, "key", q);
  lua_pushinteger(L, (lua_Integer)q->key);
  return 1;
}

/* q:id() -> the System V queue id (msqid). */
static int q_id(lua_State *L) {
  mq_queue *q = mq_check_queue(L, 1);
  if (q->id < 0) return closed(L, "id", q);
  lua_pushinteger(L, q->id);
  return 1;
}

/* q:set_blocking(flag) -> true: whether send and receive block (the seed's SetBlocking). */
static int q_set_blocking(lua_State *L) {
  mq_queue *q = mq_check_queue(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  if (q->id < 0) return closed(L, "set_blocking", q);
  if (lua_toboolean(L, 2))
    q->flags &= ~MQ_O_NONBLOCK;
  else
    q->flags |= MQ_O_NONBLOCK;
  lua_pushboolean(L, 1);
  return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* q:stat() -> table of msgctl(IPC_STAT): counts, capacity, pids, times, owner, mode, key, id. */
static int q_stat(lua_State *L) {
  mq_queue *q = mq_check_queue(L, 1);
  struct msqid_ds ds;
  if (q->id < 0) return closed(L, "stat", q);
  if (msgctl(q->id, IPC_STAT, &ds) != 0) return ctl_failure(L, "stat", q, errno);
  lua_createtable(L, 0, 15);
  set_int(L, "messages", (lua_Integer)ds.msg_qnum);
  set_int(L, "bytes", (lua_Integer)ds.__msg_cbytes);
  set_int(L, "capacity", (lua_Integer)ds.msg_qbytes);
  set_int(L, "last_send_pid", (lua_Integer)ds.msg_lspid);
  set_int(L, "last_receive_pid", (lua_Integer)ds.msg_lrpid);
  set_int(L, "last_send_time", (lua_Integer)ds.msg_stime);
  set_int(L, "last_receive_time", (lua_Integer)ds.msg_rtime);
  set_int(L, "last_change_time", (lua_Integer)ds.msg_ctime);
  set_int(L, "uid", (lua_Integer)ds.msg_perm.uid);
  set_int(L, "gid", (lua_Integer)ds.msg_perm.gid);
  set_int(L, "cuid", (lua_Integer)ds.msg_perm.cuid);
  set_int(L, "cgid", (lua_Integer)ds.msg_perm.cgid);
  set_int(L, "mode", (lua_Integer)(ds.msg_perm.mode & 0777));
  set_int(L, "key", (lua_Integer)ds.msg_perm.__key);
  set_int(L, "id", q->id);
  return 1;
}

/* q:set_capacity(bytes): msg_qbytes; beyond msgmnb needs privilege. */
static int q_set_capacity(lua_State *L) {
  static const char op[] = "set_capacity";
  mq_queue *q = mq_check_queue(L, 1);
  lua_Integer bytes;
  int isint;
  struct msqid_ds ds;
  luaL_checktype(L, 2, LUA_TNUMBER);
  bytes = lua_tointegerx(L, 2, &isint);
  if (q->id < 0) return closed(L, op, q);
  if (!isint || bytes < 1 || bytes > 2147483647)
    return mq_fail_queue(L, op, q, MQ_EINVALID, "capacity must be an integer within 1 .. 2^31-1");
  if (msgctl(q->id, IPC_STAT, &ds) != 0) return ctl_failure(L, op, q, errno);
  ds.msg_qbytes = (msglen_t)bytes;
  if (msgctl(q->id, IPC_SET, &ds) != 0) return ctl_failure(L, op, q, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* tostring(q): mq.queue(name=jobs, id=3), (key=0x..., id=3), (private, id=3) or (closed). */
static int q_tostring(lua_State *L) {
  char desc[320];
  mq_describe(mq_check_queue(L, 1), desc, sizeof desc);
  lua_pushstring(L, desc);
  return 1;
}

/* __gc and __close: close the handle (never the queue). */
static int q_gc(lua_State *L) {
  close_queue(L, mq_check_queue(L, 1));
  return 0;
}

static const luaL_Reg queue_methods[] = {
  {"close", q_close},
  {"destroy", q_destroy},
  {"name", q_name},
  {"key", q_key},
  {"id", q_id},
  {"set_blocking", q_set_blocking},
  {"stat", q_stat},
  {"set_capacity", q_set_capacity},
  {NULL, NULL}
};

static const luaL_Reg queue_meta[] = {
  {"__tostring", q_tostring},
  {"__gc", q_gc},
  {"__close", q_gc},
  {NULL, NULL}
};

/*
 * Creates the "mq.queue" metatable and its methods table (the __index),
 * leaving both on the stack: metatable below, methods on top.
 */
void mq_queue_register(lua_State *L) {
  luaL_newmetatable(L, MQ_QUEUE_MT);     /* also sets __name */
  luaL_setfuncs(L, queue_meta, 0);
  luaL_newlib(L, queue_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
}
