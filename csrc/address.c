/*
 * Addressing a queue (README, "Names and keys"): a name, whose key comes from
 * a key file in $TMPDIR exactly as go-ipc derives it, or an integer key.
 * mq.new, mq.open and mq.destroy by address, q:destroy, and mq.ftok.
 *
 * new and open push their handle before any system call acts, so that
 * running out of memory for it leaves no queue or key file behind.
 */

/***
@module mq
*/
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lauxlib.h"

#include "address.h"
#include "control.h"
#include "handle.h"
#include "names.h"
#include "sysvtable.h"

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

/* How failures name the queue: mq.queue(name=jobs), (key=0x00001234) or (private). */
typedef char description[320];

static const char *describe_where(const where *w, description desc) {
  if (w->kind == LMQ_BY_NAME)
    snprintf(desc, sizeof(description), "mq.queue(name=%s)", w->name);
  else if (w->kind == LMQ_PRIVATE)
    snprintf(desc, sizeof(description), "mq.queue(private)");
  else
    snprintf(desc, sizeof(description), "mq.queue(key=0x%08x)", (unsigned)w->key);
  return desc;
}

static int fail_where(lua_State *L, const char *op, const where *w, enum lmq_code code,
                      const char *reason) {
  description desc;
  return lmq_fail(L, op, describe_where(w, desc), code, reason);
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

/* perm, as lmq_check_perm takes it (nil: 0600); a bad value fails naming the queue. */
static int check_perm(lua_State *L, int arg, const char *op, const where *w, int *perm) {
  const char *problem = lmq_check_perm(L, arg, 1, perm);
  return problem == NULL ? 0 : fail_where(L, op, w, LMQ_EINVALID, problem);
}

/* open flags: the module's own bits (`allowed` of them); no access bit means read-write.
 * `desc` names the queue in a failure. */
static int check_flags(lua_State *L, int arg, const char *op, const char *desc, int allowed,
                       int *flags) {
  lua_Integer f = LMQ_O_RDWR;
  if (!lua_isnoneornil(L, arg)) {
    int isint;
    if (lua_type(L, arg) != LUA_TNUMBER) return luaL_typeerror(L, arg, "integer (mq.O_* flags)");
    f = lua_tointegerx(L, arg, &isint);
    if (!isint || f < 0 || (f & ~(lua_Integer)allowed) != 0)
      return lmq_fail(L, op, desc, LMQ_EINVALID, allowed & LMQ_O_CREAT
        ? "unknown open flags (use mq.O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK, O_CREAT)"
        : "unknown open flags (use mq.O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK)");
  }
  if ((f & LMQ_O_RDWR) == 0) f |= LMQ_O_RDWR;
  *flags = (int)f;
  return 0;
}

/* The msgget permission bits that ask for the access in `flags`. */
static int access_of(int flags) {
  return ((flags & LMQ_O_RDONLY) ? 0444 : 0) | ((flags & LMQ_O_WRONLY) ? 0222 : 0);
}

/* Whether the kernel lets this process past a queue's permission bits: it
 * holds CAP_IPC_OWNER (root usually does, but need not; another uid may). */
static int bypasses_permissions(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &header, data) != 0) return geteuid() == 0;
  return (data[CAP_IPC_OWNER / 32].effective & (1u << (CAP_IPC_OWNER % 32))) != 0;
}

/* A handle for w, pushed before any system call (see the top of this file). */
static lmq_queue *push_handle(lua_State *L, const where *w) {
  if (w->kind != LMQ_BY_NAME) return lmq_handle_push(L, NULL, 0, 0);
  return lmq_handle_push(L, w->n.path, strlen(w->n.path), w->namelen);
}

/***
Create a queue, exclusively (`IPC_CREAT|IPC_EXCL`).
A name's key file is published atomically: of any number of concurrent calls
exactly one succeeds and the others fail with `exists`.
@function new
@tparam string|integer where a name (key file `$TMPDIR/name`) or an integer key
(`mq.PRIVATE` for a fresh private queue)
@tparam[opt="0600"] string|integer perm permission bits, `"0640"`-style octal digits
(or an integer); read and write bits only
@treturn queue the handle
@return[2] nil, message, code: `exists`, `invalid`, `denied`, `notfound` (no `$TMPDIR`),
`nospace`, `system`
*/
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

/* mq.open with O_CREAT on a key: create it, or open the one there; the id, or -1 with
 * errno. *created says which. */
static int open_or_create_key(const where *w, int perm, int access, int *created) {
  int round;
  for (round = 0; round < 1000; round++) {
    int id = msgget(w->key, IPC_CREAT | IPC_EXCL | perm);
    if (id >= 0 || errno != EEXIST) {
      *created = id >= 0;
      return id;
    }
    id = msgget(w->key, access);
    if (id >= 0 || errno != ENOENT) {
      *created = 0;
      return id;
    }
    /* Removed between the two calls: try to create it again. */
  }
  errno = EAGAIN;
  return -1;
}

/***
Open an existing queue, asking the kernel for exactly the access in `flags`.
With `mq.O_CREAT` the queue is created (`perm`) when it is missing.
A name is honoured only while its key file's owner made the queue.
@function open
@tparam string|integer where a name or an integer key
@tparam[opt=mq.O_RDWR] integer flags `mq.O_RDONLY`, `mq.O_WRONLY` or `mq.O_RDWR`, or-ed
with `mq.O_NONBLOCK` and `mq.O_CREAT`
@tparam[opt="0600"] string|integer perm with `mq.O_CREAT` only
@treturn queue the handle
@treturn[opt] boolean with `mq.O_CREAT`: whether this call created the queue
@return[2] nil, message, code: `notfound`, `denied`, `invalid`, `nospace`, `system`
*/
static int address_open(lua_State *L) {
  static const char op[] = "mq.open";
  where w;
  description desc;
  lmq_queue *q;
  int flags = 0, perm = 0, access, create, created = 0, id, r;
  if ((r = check_where(L, 1, &w, op)) != 0) return r;
  r = check_flags(L, 2, op, describe_where(&w, desc), LMQ_O_RDWR | LMQ_O_NONBLOCK | LMQ_O_CREAT,
                  &flags);
  if (r != 0) return r;
  if ((r = check_perm(L, 3, op, &w, &perm)) != 0) return r;
  create = (flags & LMQ_O_CREAT) != 0;
  flags &= ~LMQ_O_CREAT;
  access = access_of(flags);
  if (!create && !lua_isnoneornil(L, 3))
    return fail_where(L, op, &w, LMQ_EINVALID, "perm is only used with mq.O_CREAT");
  /* The creator's own access comes from the owner bits (CAP_IPC_OWNER bypasses them). */
  if (create && ((perm >> 6) & (access >> 6)) != (access >> 6) && !bypasses_permissions())
    return fail_where(L, op, &w, LMQ_EINVALID,
                      "perm must give its owner the access the flags ask for");
  if (w.kind == LMQ_PRIVATE && !create)
    return fail_where(L, op, &w, LMQ_EINVALID, "a private queue (mq.PRIVATE) cannot be opened by key");
  q = push_handle(L, &w);
  if (w.kind == LMQ_BY_NAME) {
    r = create ? lmq_name_open_or_create(&w.n, perm, access, &id, &created)
               : lmq_name_open(&w.n, access, &id);
    if (r != 0) return fail_name(L, op, &w);
    w.key = w.n.key;
  } else {
    id = create ? open_or_create_key(&w, perm, access, &created) : msgget(w.key, access);
    if (id < 0) {
      int err = errno;
      if (err == ENOENT) return fail_where(L, op, &w, LMQ_ENOTFOUND, "no such queue");
      return fail_where(L, op, &w, lmq_code_of_errno(err), strerror(err));
    }
  }
  lmq_handle_bind(q, id, flags, w.key, w.kind);
  if (!create) return 1;
  lua_pushboolean(L, created);
  return 2;
}

/* Whether this process is in group a or b: its effective group or any supplementary one,
 * however many it has (no allocation for up to 64). */
static int in_either_group(gid_t a, gid_t b) {
  gid_t some[64], *groups = some;
  int i, n, member = getegid() == a || getegid() == b;
  if (member) return 1;
  n = getgroups(64, some);
  if (n < 0 && errno == EINVAL) {        /* more than 64: ask how many, then read them all */
    int count = getgroups(0, NULL);
    groups = count > 0 ? (gid_t *)malloc((size_t)count * sizeof *groups) : NULL;
    n = groups != NULL ? getgroups(count, groups) : -1;
  }
  for (i = 0; i < n && !member; i++) member = groups[i] == a || groups[i] == b;
  if (groups != some) free(groups);
  return member;
}

/* Whether this process may use a queue with `access` by the kernel's rules
 * (ipcperms): owner or creator bits, then group, then other; CAP_IPC_OWNER
 * may do anything. Only for private queues, which msgget cannot ask about. */
static int allowed(const lmq_queue_row *row, int access) {
  unsigned want = (unsigned)(((access & 0444) ? 4 : 0) | ((access & 0222) ? 2 : 0));
  unsigned bits = row->mode;
  uid_t me = geteuid();
  if (bypasses_permissions()) return 1;
  if (me == row->uid || me == row->cuid) {
    bits >>= 6;
  } else if (in_either_group(row->gid, row->cgid)) {
    bits >>= 3;
  }
  return (bits & want) == want;
}

/***
Open a queue by its id (msqid), private queues included, checking the access
asked for as `open` does.
@function open_id
@tparam integer id the queue id (`ipcs -q`, `q:id()`, `mq.list()`)
@tparam[opt=mq.O_RDWR] integer flags as for `open`, without `mq.O_CREAT`
@treturn queue the handle (no name; its key read from the kernel)
@return[2] nil, message, code: `notfound`, `denied`, `invalid`, `system`
*/
static int address_open_id(lua_State *L) {
  static const char op[] = "mq.open_id";
  lmq_queue_row row;
  lmq_queue *q;
  lua_Integer id;
  int flags = 0, isint, access, r;
  char desc[64];
  luaL_checktype(L, 1, LUA_TNUMBER);
  id = lua_tointegerx(L, 1, &isint);
  if (!isint || id < 0 || id > 2147483647)
    return lmq_fail(L, op, "", LMQ_EINVALID, "a queue id must be an integer within 0 .. 2^31-1");
  snprintf(desc, sizeof desc, "mq.queue(id=%d)", (int)id);
  if ((r = check_flags(L, 2, op, desc, LMQ_O_RDWR | LMQ_O_NONBLOCK, &flags)) != 0) return r;
  access = access_of(flags);
  q = lmq_handle_push(L, NULL, 0, 0);
  if (lmq_queue_row_of((int)id, &row) != 0) {
    int err = errno;
    if (err == EINVAL || err == EIDRM) return lmq_fail(L, op, desc, LMQ_ENOTFOUND, "no such queue");
    return lmq_fail(L, op, desc, lmq_code_of_errno(err), strerror(err));
  }
  if (row.key != IPC_PRIVATE) {
    /* msgget asks the kernel itself; the key must still lead to this very queue. */
    int got = msgget(row.key, access);
    if (got < 0 && errno != ENOENT) {
      int err = errno;
      return lmq_fail(L, op, desc, lmq_code_of_errno(err), strerror(err));
    }
    if (got != (int)id) return lmq_fail(L, op, desc, LMQ_ENOTFOUND, "no such queue");
  } else if (!allowed(&row, access)) {
    return lmq_fail(L, op, desc, LMQ_EDENIED, strerror(EACCES));
  }
  lmq_handle_bind(q, (int)id, flags, row.key, LMQ_BY_ID);
  return 1;
}

/***
Remove a queue and, for a name, its key file. A missing queue is success, and a
stale key file goes too.
@function destroy
@tparam string|integer where a name or an integer key
@treturn boolean true
@return[2] nil, message, code: `denied`, `invalid`, `notfound`, `system`
*/
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

/***
Remove the queue and close the handle; a name's key file goes too while it
still names this queue. A queue someone else removed already is success.
@function queue:destroy
@within queue
@treturn boolean true
@return[2] nil, message, code: `closed`, `denied` (the handle stays open), `system`
*/
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

/***
The System V key of a file, as ftok(3) computes it.
@function ftok
@tparam string path an existing file
@tparam integer proj_id 0 .. 255
@treturn integer the key
@return[2] nil, message, code: `notfound`, `invalid`, `denied`, `system`
*/
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
  {"open_id", address_open_id},
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
