/*
 * Addressing a queue (README, "Names and keys"): a name, whose key comes from
 * a key file in $TMPDIR exactly as go-ipc derives it, or an integer key.
 * mq.new, mq.open and mq.destroy by address, q:destroy, and mq.ftok.
 *
 * new and open push their handle before any system call acts, so that
 * running out of memory for it leaves no queue or key file behind.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "lauxlib.h"

#include "address.h"
#include "handle.h"
#include "names.h"

#define KEY_MIN (-2147483647LL - 1)
#define KEY_MAX 4294967295LL

/* A resolved address. */
typedef struct where {
  enum lmq_kind kind;        /* LMQ_BY_NAME, LMQ_BY_KEY or LMQ_PRIVATE */
  key_t key;
  const char *name;          /* the Lua argument's bytes; names only */
  size_t namelen;
  lmq_name n;                /* the key file; names only */
} where;

static int fail_where(lua_State *L, const char *op, const where *w, enum lmq_code code,
                      const char *reason) {
  char desc[320];
  if (w->kind == LMQ_BY_NAME)
    snprintf(desc, sizeof desc, "mq.queue(name=%s)", w->name);
  else if (w->kind == LMQ_PRIVATE)
    snprintf(desc, sizeof desc, "mq.queue(private)");
  else
    snprintf(desc, sizeof desc, "mq.queue(key=0x%08x)", (unsigned)w->key);
  return lmq_fail(L, op, desc, code, reason);
}

static int fail_name(lua_State *L, const char *op, const where *w) {
  return fail_where(L, op, w, w->n.code, w->n.reason);
}

/*
 * Resolve argument `arg` into *w. Wrong Lua types raise; a bad value pushes
 * nil, message, "invalid" and returns 3; success returns 0.
 */
static int check_where(lua_State *L, int arg, where *w, const char *op) {
  w->kind = LMQ_BY_KEY;
  w->name = NULL;
  w->namelen = 0;
  w->key = 0;
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *problem;
    w->name = lua_tolstring(L, arg, &w->namelen);
    w->kind = LMQ_BY_NAME;
    problem = lmq_name_problem(w->name, w->namelen);
    if (problem != NULL) return lmq_fail(L, op, "", LMQ_EINVALID, problem);
    if (lmq_name_init(&w->n, w->name, w->namelen) != 0) return fail_name(L, op, w);
    return 0;
  }
  if (lua_type(L, arg) == LUA_TNUMBER) {
    int isint;
    lua_Integer k = lua_tointegerx(L, arg, &isint);
    if (!isint) return lmq_fail(L, op, "", LMQ_EINVALID, "a queue key must be an integer");
    if (k < KEY_MIN || k > KEY_MAX)
      return lmq_fail(L, op, "", LMQ_EINVALID, "a queue key must be within -2^31 .. 2^32-1");
    w->key = (key_t)(int)(unsigned int)(k & 0xffffffffLL);
    w->kind = w->key == IPC_PRIVATE ? LMQ_PRIVATE : LMQ_BY_KEY;
    return 0;
  }
  return luaL_typeerror(L, arg, "string (queue name) or integer (key)");
}

/* perm: nil (0600), an integer, or a string of 1 to 4 octal digits; bits of 0666 only. */
static int check_perm(lua_State *L, int arg, const char *op, const where *w, int *perm) {
  lua_Integer p = 0600;
  int t = lua_type(L, arg);
  if (t == LUA_TNUMBER) {
    int isint;
    p = lua_tointegerx(L, arg, &isint);
    if (!isint) return fail_where(L, op, w, LMQ_EINVALID, "perm must be an integer");
  } else if (t == LUA_TSTRING) {
    size_t len, i;
    const char *s = lua_tolstring(L, arg, &len);
    if (len < 1 || len > 4)
      return fail_where(L, op, w, LMQ_EINVALID, "perm must be 1 to 4 octal digits");
    p = 0;
    for (i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '7')
        return fail_where(L, op, w, LMQ_EINVALID, "perm must be 1 to 4 octal digits");
      p = p * 8 + (s[i] - '0');
    }
  } else if (t != LUA_TNIL && t != LUA_TNONE) {
    return luaL_typeerror(L, arg, "integer or octal string");
  }
  if (p < 0 || (p & ~(lua_Integer)0666) != 0)
    return fail_where(L, op, w, LMQ_EINVALID, "perm may only hold read and write bits (0666)");
  *perm = (int)p;
  return 0;
}

/* open flags: the module's own bits; no access bit means read-write. */
static int check_flags(lua_State *L, int arg, const char *op, const where *w, int *flags) {
  lua_Integer f = LMQ_O_RDWR;
  if (!lua_isnoneornil(L, arg)) {
    int isint;
    if (lua_type(L, arg) != LUA_TNUMBER) return luaL_typeerror(L, arg, "integer (mq.O_* flags)");
    f = lua_tointegerx(L, arg, &isint);
    if (!isint || f < 0 || (f & ~(lua_Integer)(LMQ_O_RDWR | LMQ_O_NONBLOCK)) != 0)
      return fail_where(L, op, w, LMQ_EINVALID,
                        "unknown open flags (use mq.O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK)");
  }
  if ((f & LMQ_O_RDWR) == 0) f |= LMQ_O_RDWR;
  *flags = (int)f;
  return 0;
}

/* A handle for w, pushed before any system call (see the top of this file). */
static lmq_queue *push_handle(lua_State *L, const where *w) {
  if (w->kind != LMQ_BY_NAME) return lmq_handle_push(L, NULL, 0, 0);
  return lmq_handle_push(L, w->n.path, strlen(w->n.path), w->namelen);
}

/** mq.new(where [, perm]) -> handle: create exclusively (IPC_CREAT|IPC_EXCL), 0600 by default. */
static int address_new(lua_State *L) {
  static const char op[] = "mq.new";
  where w;
  lmq_queue *q;
  int perm = 0, id, r;
  if ((r = check_where(L, 1, &w, op)) != 0) return r;
  if ((r = check_perm(L, 2, op, &w, &perm)) != 0) return r;
  q = push_handle(L, &w);
  if (w.kind == LMQ_BY_NAME) {
    if (lmq_name_create(&w.n, perm, &id) != 0) return fail_name(L, op, &w);
    w.key = w.n.key;
  } else {
    id = msgget(w.key, IPC_CREAT | IPC_EXCL | perm);
    if (id < 0) {
      int err = errno;
      if (err == EEXIST) return fail_where(L, op, &w, LMQ_EEXISTS, "the queue already exists");
      return fail_where(L, op, &w, lmq_code_of_errno(err), strerror(err));
    }
  }
  lmq_handle_bind(q, id, LMQ_O_RDWR, w.key, w.kind);
  return 1;
}

/** mq.open(where [, flags]) -> handle: an existing queue, asking the kernel for exactly that access. */
static int address_open(lua_State *L) {
  static const char op[] = "mq.open";
  where w;
  lmq_queue *q;
  int flags = 0, access = 0, id, r;
  if ((r = check_where(L, 1, &w, op)) != 0) return r;
  if ((r = check_flags(L, 2, op, &w, &flags)) != 0) return r;
  if (w.kind == LMQ_PRIVATE)
    return fail_where(L, op, &w, LMQ_EINVALID, "a private queue (mq.PRIVATE) cannot be opened by key");
  /* Ask the kernel for exactly the access wanted, so refusal comes now. */
  if (flags & LMQ_O_RDONLY) access |= 0444;
  if (flags & LMQ_O_WRONLY) access |= 0222;
  q = push_handle(L, &w);
  if (w.kind == LMQ_BY_NAME) {
    if (lmq_name_open(&w.n, access, &id) != 0) return fail_name(L, op, &w);
    w.key = w.n.key;
  } else {
    id = msgget(w.key, access);
    if (id < 0) {
      int err = errno;
      if (err == ENOENT) return fail_where(L, op, &w, LMQ_ENOTFOUND, "no such queue");
      return fail_where(L, op, &w, lmq_code_of_errno(err), strerror(err));
    }
  }
  lmq_handle_bind(q, id, flags, w.key, w.kind);
  return 1;
}

/** mq.destroy(where) -> true: remove queue and key file; a missing queue is success,
 * a stale key file goes too. */
static int address_destroy(lua_State *L) {
  static const char op[] = "mq.destroy";
  where w;
  int id, r;
  if ((r = check_where(L, 1, &w, op)) != 0) return r;
  if (w.kind == LMQ_PRIVATE)
    return fail_where(L, op, &w, LMQ_EINVALID, "a private queue (mq.PRIVATE) cannot be destroyed by key");
  if (w.kind == LMQ_BY_NAME) {
    if (lmq_name_destroy(&w.n) != 0) return fail_name(L, op, &w);
    lua_pushboolean(L, 1);
    return 1;
  }
  id = msgget(w.key, 0);
  if (id >= 0 && msgctl(id, IPC_RMID, NULL) != 0) {
    int err = errno;
    if (err != EINVAL && err != EIDRM)
      return fail_where(L, op, &w, lmq_code_of_errno(err), strerror(err));
  } else if (id < 0 && errno != ENOENT) {
    int err = errno;
    return fail_where(L, op, &w, lmq_code_of_errno(err), strerror(err));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/** q:destroy() -> true: remove the queue, then its key file if the file still names it. */
static int q_destroy(lua_State *L) {
  static const char op[] = "destroy";
  lmq_queue *q = lmq_check_queue(L, 1);
  if (q->id < 0) return lmq_fail_closed(L, op, q);
  if (msgctl(q->id, IPC_RMID, NULL) != 0) {
    int err = errno;
    if (err != EINVAL && err != EIDRM) return lmq_fail_ctl(L, op, q, err);
    /* Already removed by someone else: the name may serve a new queue now. */
  } else if (q->kind == LMQ_BY_NAME) {
    lmq_name_retire(q->path, q->key);
  }
  lmq_handle_close(L, 1, q);
  lua_pushboolean(L, 1);
  return 1;
}

/** mq.ftok(path, proj_id) -> key: ftok(3); proj_id 0..255 since ftok keeps only 8 bits. */
static int address_ftok(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  lua_Integer proj;
  int isint;
  key_t k;
  luaL_checktype(L, 2, LUA_TNUMBER);
  proj = lua_tointegerx(L, 2, &isint);
  if (strlen(path) != len)
    return lmq_fail(L, "mq.ftok", "", LMQ_EINVALID, "path must not contain NUL");
  if (!isint || proj < 0 || proj > 255)
    return lmq_fail(L, "mq.ftok", path, LMQ_EINVALID, "proj_id must be an integer within 0 .. 255");
  k = ftok(path, (int)proj);
  if (k == (key_t)-1) {
    int err = errno;
    return lmq_fail(L, "mq.ftok", path, lmq_code_of_errno(err), strerror(err));
  }
  lua_pushinteger(L, (lua_Integer)k);
  return 1;
}

static const luaL_Reg address_functions[] = {
  {"new", address_new},
  {"open", address_open},
  {"destroy", address_destroy},
  {"ftok", address_ftok},
  {NULL, NULL}
};

void lmq_address_register(lua_State *L, int methods, int module) {
  lua_pushcfunction(L, q_destroy);
  lua_setfield(L, methods, "destroy");
  lua_pushvalue(L, module);
  luaL_setfuncs(L, address_functions, 0);
  lua_pop(L, 1);
}
