/*
 * A queue's kernel state: msgctl(IPC_STAT) as a table, and msgctl(IPC_SET).
 */

/***
@module mq
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

const char *lmq_check_perm(lua_State *L, int arg, int optional, int *perm) {
  lua_Integer p = 0600;
  int t = lua_type(L, arg);
  if (t == LUA_TNUMBER) {
    int isint;
    p = lua_tointegerx(L, arg, &isint);
    if (!isint) return "perm must be an integer";
  } else if (t == LUA_TSTRING) {
    size_t len, i;
    const char *s = lua_tolstring(L, arg, &len);
    if (len < 1 || len > 4) return "perm must be 1 to 4 octal digits";
    for (p = 0, i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '7') return "perm must be 1 to 4 octal digits";
      p = p * 8 + (s[i] - '0');
    }
  } else if (!optional || (t != LUA_TNIL && t != LUA_TNONE)) {
    luaL_typeerror(L, arg, "integer or octal string");
  }
  if (p < 0 || (p & ~(lua_Integer)0666) != 0) return "perm may only hold read and write bits (0666)";
  *perm = (int)p;
  return NULL;
}

void lmq_push_queue_row(lua_State *L, const lmq_queue_row *row, int with_capacity) {
  lua_createtable(L, 0, 15);
  set_int(L, "key", (lua_Integer)row->key);
  set_int(L, "id", row->id);
  set_int(L, "uid", (lua_Integer)row->uid);
  set_int(L, "gid", (lua_Integer)row->gid);
  set_int(L, "cuid", (lua_Integer)row->cuid);
  set_int(L, "cgid", (lua_Integer)row->cgid);
  set_int(L, "mode", (lua_Integer)row->mode);
  set_int(L, "bytes", (lua_Integer)row->bytes);
  set_int(L, "messages", (lua_Integer)row->messages);
  if (with_capacity) set_int(L, "capacity", (lua_Integer)row->capacity);
  set_int(L, "last_send_pid", (lua_Integer)row->last_send_pid);
  set_int(L, "last_receive_pid", (lua_Integer)row->last_receive_pid);
  set_int(L, "last_send_time", (lua_Integer)row->last_send_time);
  set_int(L, "last_receive_time", (lua_Integer)row->last_receive_time);
  set_int(L, "last_change_time", (lua_Integer)row->last_change_time);
}

/***
The queue's state (`msgctl(IPC_STAT)`); needs read permission on the queue.
@function queue:stat
@within queue
@treturn table `messages`, `bytes`, `capacity`, `last_send_pid`, `last_receive_pid`,
`last_send_time`, `last_receive_time`, `last_change_time`, `uid`, `gid`, `cuid`, `cgid`,
`mode`, `key`, `id`
@return[2] nil, message, code: `closed`, `denied`, `removed`, `system`
*/
static int q_stat(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  struct msqid_ds ds;
  lmq_queue_row row;
  int id = q->id;
  if (id < 0) return lmq_fail_closed(L, "stat", q);
  if (msgctl(id, IPC_STAT, &ds) != 0) return lmq_fail_ctl(L, "stat", q, errno);
  lmq_queue_row_from_ds(id, &ds, &row);
  /* From here on the table's allocations may run finalizers: only locals are read. */
  lmq_push_queue_row(L, &row, 1);
  return 1;
}

/* One change to a queue's msqid_ds; the fields not asked for keep their value. */
typedef struct change {
  int set_capacity, set_mode, set_uid, set_gid;
  msglen_t capacity;
  unsigned mode;
  uid_t uid;
  gid_t gid;
} change;

/*
 * The msqid_ds of queue `id` for a caller that may not read it (IPC_STAT said
 * EACCES) but may still change it: an owner or creator whose mode lacks the
 * read bit. MSG_STAT_ANY (Linux 4.17) skips the read check but takes an index
 * into the kernel's table, so every index up to the highest in use is tried.
 * 0 with *ds, or -1 when the queue is not found that way.
 */
static int stat_without_read(int id, struct msqid_ds *ds) {
#ifdef MSG_STAT_ANY
  struct msginfo info;
  int i, top = msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&info);
  for (i = 0; i <= top; i++)
    if (msgctl(i, MSG_STAT_ANY, ds) == id) return 0;
#else
  (void)id;
  (void)ds;
#endif
  return -1;
}

/*
 * msgctl(IPC_SET) writes owner, group, mode and capacity at once, so each
 * change reads them all right before and rewrites only its own field. The
 * kernel offers no compare-and-set: a change another process makes between
 * the two calls is overwritten (README, "Changing a queue"). Reading needs no
 * read permission: the kernel lets an owner without it change the queue, so
 * that it can give itself the permission back.
 */
static int ipc_set(lua_State *L, const char *op, const lmq_queue *q, const change *c) {
  struct msqid_ds ds;
  if (msgctl(q->id, IPC_STAT, &ds) != 0) {
    int err = errno;
    if (err != EACCES || stat_without_read(q->id, &ds) != 0) return lmq_fail_ctl(L, op, q, err);
  }
  if (c->set_capacity) ds.msg_qbytes = c->capacity;
  if (c->set_mode) ds.msg_perm.mode = (ds.msg_perm.mode & ~0777u) | c->mode;
  if (c->set_uid) ds.msg_perm.uid = c->uid;
  if (c->set_gid) ds.msg_perm.gid = c->gid;
  if (msgctl(q->id, IPC_SET, &ds) != 0) {
    int err = errno;
    struct msqid_ds now;
    /* EINVAL from a queue that is still there: an owner or group with no
     * mapping in this user namespace (the one asked for, or the queue's own,
     * which IPC_STAT showed as the overflow id and IPC_SET cannot take back). */
    if (err == EINVAL && (msgctl(q->id, IPC_STAT, &now) == 0 || errno == EACCES)) {
      if (c->set_uid || c->set_gid)
        return lmq_fail_queue(L, op, q, LMQ_EINVALID,
                              "the uid or gid has no mapping in this user namespace");
      return lmq_fail_queue(L, op, q, LMQ_ESYSTEM,
                            "the queue's owner or group has no mapping in this user namespace");
    }
    return lmq_fail_ctl(L, op, q, err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* An integer argument within lo .. hi: 1 with *v, 0 for a number outside it
 * or without an integer value (the caller says invalid); wrong types raise. */
static int integer_in(lua_State *L, int arg, lua_Integer lo, lua_Integer hi, lua_Integer *v) {
  int isint;
  luaL_checktype(L, arg, LUA_TNUMBER);
  *v = lua_tointegerx(L, arg, &isint);
  return isint && *v >= lo && *v <= hi;
}

/***
Set the queue's capacity in bytes (`msg_qbytes`); beyond msgmnb needs privilege.
@function queue:set_capacity
@within queue
@tparam integer bytes 1 .. 2^31-1
@treturn boolean true
@return[2] nil, message, code: `closed`, `invalid`, `denied`, `removed`, `system`
*/
static int q_set_capacity(lua_State *L) {
  static const char op[] = "set_capacity";
  lmq_queue *q = lmq_check_queue(L, 1);
  change c = {0};
  lua_Integer bytes;
  int ok = integer_in(L, 2, 1, 2147483647, &bytes);
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (!ok)
    return lmq_fail_queue(L, op, q, LMQ_EINVALID, "capacity must be an integer within 1 .. 2^31-1");
  c.set_capacity = 1;
  c.capacity = (msglen_t)bytes;
  return ipc_set(L, op, q, &c);
}

/***
Set the queue's permission bits.
@function queue:set_mode
@within queue
@tparam string|integer perm as for `new`: `"0640"`-style octal digits or an integer,
read and write bits only
@treturn boolean true
@return[2] nil, message, code: `closed`, `invalid`, `denied`, `removed`, `system`
*/
static int q_set_mode(lua_State *L) {
  static const char op[] = "set_mode";
  lmq_queue *q = lmq_check_queue(L, 1);
  change c = {0};
  int perm = 0;
  const char *problem = lmq_check_perm(L, 2, 0, &perm);
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (problem != NULL) return lmq_fail_queue(L, op, q, LMQ_EINVALID, problem);
  c.set_mode = 1;
  c.mode = (unsigned)perm;
  return ipc_set(L, op, q, &c);
}

/***
Set the queue's owner (and group); its creator stays.
@function queue:set_owner
@within queue
@tparam integer uid 0 .. 2^32-2
@tparam[opt] integer gid 0 .. 2^32-2; the group stays when absent
@treturn boolean true
@return[2] nil, message, code: `closed`, `invalid`, `denied`, `removed`, `system`
*/
static int q_set_owner(lua_State *L) {
  static const char op[] = "set_owner";
  lmq_queue *q = lmq_check_queue(L, 1);
  change c = {0};
  lua_Integer uid, gid = 0;
  int ok = integer_in(L, 2, 0, 4294967294LL, &uid);
  int has_gid = !lua_isnoneornil(L, 3);
  if (has_gid) ok = integer_in(L, 3, 0, 4294967294LL, &gid) && ok;
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (!ok)
    return lmq_fail_queue(L, op, q, LMQ_EINVALID, "uid and gid must be integers within 0 .. 2^32-2");
  c.set_uid = 1;
  c.uid = (uid_t)uid;
  c.set_gid = has_gid;
  c.gid = (gid_t)gid;
  return ipc_set(L, op, q, &c);
}

static const luaL_Reg control_methods[] = {
  {"stat", q_stat},
  {"set_capacity", q_set_capacity},
  {"set_mode", q_set_mode},
  {"set_owner", q_set_owner},
  {NULL, NULL}
};

void lmq_control_register(lua_State *L, int methods) {
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, control_methods, 0);
  lua_pop(L, 1);
}
