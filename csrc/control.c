/*
 * A queue's kernel state: msgctl(IPC_STAT) as a table, and msgctl(IPC_SET).
 */
#include <errno.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "lauxlib.h"

#include "control.h"
#include "handle.h"

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/** q:stat() -> table of msgctl(IPC_STAT): counts, capacity, pids, times, owner, mode, key, id. */
static int q_stat(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  struct msqid_ds ds;
  int id = q->id;
  if (id < 0) return lmq_fail_closed(L, "stat", q);
  if (msgctl(id, IPC_STAT, &ds) != 0) return lmq_fail_ctl(L, "stat", q, errno);
  /* From here on the table's allocations may run finalizers: only locals are read. */
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
  set_int(L, "id", id);
  return 1;
}

/** q:set_capacity(bytes) -> true: msg_qbytes; beyond msgmnb needs privilege. */
static int q_set_capacity(lua_State *L) {
  static const char op[] = "set_capacity";
  lmq_queue *q = lmq_check_queue(L, 1);
  lua_Integer bytes;
  int isint;
  struct msqid_ds ds;
  luaL_checktype(L, 2, LUA_TNUMBER);
  bytes = lua_tointegerx(L, 2, &isint);
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (!isint || bytes < 1 || bytes > 2147483647)
    return lmq_fail_queue(L, op, q, LMQ_EINVALID, "capacity must be an integer within 1 .. 2^31-1");
  if (msgctl(q->id, IPC_STAT, &ds) != 0) return lmq_fail_ctl(L, op, q, errno);
  ds.msg_qbytes = (msglen_t)bytes;
  if (msgctl(q->id, IPC_SET, &ds) != 0) return lmq_fail_ctl(L, op, q, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg control_methods[] = {
  {"stat", q_stat},
  {"set_capacity", q_set_capacity},
  {NULL, NULL}
};

void lmq_control_register(lua_State *L, int methods) {
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, control_methods, 0);
  lua_pop(L, 1);
}
