/*
 * The queue handle: a full userdata holding the queue id, the open mode, the
 * message buffer, the readiness helper and (for a name) the key file path. It
 * owns its buffer and its helper; closing releases both and never removes the
 * queue. Depends on errors.h and ready.h.
 */
#ifndef LMQ_HANDLE_H
#define LMQ_HANDLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lua.h"

#include "errors.h"

#define LMQ_QUEUE_MT "mq.queue"

/* The module's own open flags: distinct access bits, RDWR is both. */
#define LMQ_O_RDONLY 0x1
#define LMQ_O_WRONLY 0x2
#define LMQ_O_RDWR (LMQ_O_RDONLY | LMQ_O_WRONLY)
#define LMQ_O_NONBLOCK 0x4
#define LMQ_O_CREAT 0x8           /* mq.open only; never kept in a handle */

/* How a queue was reached: decides tostring() and what destroy removes. */
enum lmq_kind { LMQ_BY_NAME, LMQ_BY_KEY, LMQ_PRIVATE, LMQ_BY_ID };

/* The buffer handed to msgsnd/msgrcv: a long type, then the bytes. */
typedef struct lmq_msg {
  long mtype;
  char mtext[1];
} lmq_msg;

/* Bytes of lmq_msg needed to carry `len` payload bytes. */
#define LMQ_MSG_SIZE(len) (offsetof(lmq_msg, mtext) + (len))

struct lmq_watch;

typedef struct lmq_queue {
  uintptr_t seal;           /* this block's address mixed with a secret: see lmq_to_queue */
  int id;                   /* msqid, -1 until opened and once closed */
  int flags;                /* LMQ_O_* access bits and LMQ_O_NONBLOCK */
  key_t key;
  enum lmq_kind kind;
  lmq_msg *buf;             /* the buffer userdata in user value 1, NULL until needed */
  size_t bufcap;            /* payload bytes buf can hold */
  struct lmq_watch *watches;  /* readiness helpers of the waits on q, and of q:arm */
  size_t name_off;          /* offset of the name within path[] (names only) */
  char path[1];             /* NUL-terminated key file path; empty without a name */
} lmq_queue;

/*
 * The handle at `arg`, or NULL. Identity is proven, not guessed: the first
 * word must be the block's own address mixed with a secret drawn when the
 * library loads, so neither a byte copy of a handle (another address) nor a
 * userdata given the metatable by debug.setmetatable passes, and the secret
 * never leaves the library. The check costs a few instructions, where
 * luaL_checkudata's lookup of the metatable by name cost a sixth of a
 * message's user-space time.
 */
extern uintptr_t lmq_seal_key;
static inline lmq_queue *lmq_to_queue(lua_State *L, int arg) {
  lmq_queue *q = (lmq_queue *)lua_touserdata(L, arg);
  if (q != NULL && lua_rawlen(L, arg) >= offsetof(lmq_queue, path) + 1 &&
      q->seal == ((uintptr_t)q ^ lmq_seal_key))
    return q;
  return NULL;
}

/* core.is_queue(v) -> whether v is a real handle (open or closed), for the Lua layer. */
int lmq_is_queue(lua_State *L);

/* Raise the usual "mq.queue expected" argument error. */
int lmq_not_a_queue(lua_State *L, int arg);

static inline lmq_queue *lmq_check_queue(lua_State *L, int arg) {
  lmq_queue *q = lmq_to_queue(L, arg);
  if (q == NULL) lmq_not_a_queue(L, arg);
  return q;
}

/* Draw the seal secret; once per process, any thread. */
void lmq_seal_init(void);

/*
 * Push a new, closed handle (id -1) for `path` (pathlen bytes, the name its
 * last namelen; 0 and 0 without a name). Callers make it BEFORE any system
 * call acts, so that running out of memory here leaves nothing behind.
 */
lmq_queue *lmq_handle_push(lua_State *L, const char *path, size_t pathlen, size_t namelen);

/* Make a pushed handle live: no allocation, cannot fail. */
void lmq_handle_bind(lmq_queue *q, int id, int flags, key_t key, enum lmq_kind kind);

/*
 * Grow q's buffer (q is the handle at stack index idx) to hold `need` payload
 * bytes. Returns 0, LMQ_ESYSTEM when out of memory, or LMQ_ECLOSED when the
 * allocation ran a finalizer that closed q: callers must re-read nothing
 * from q they read before.
 */
int lmq_handle_reserve(lua_State *L, int idx, lmq_queue *q, size_t need);

/* Close q (the handle at idx, or 0 from __gc): the buffer and the helpers go, the
 * queue stays. A wait's helper stops, but its fd stays open and readable until that
 * wait disarms it (or, from __gc, goes with the rest). */
void lmq_handle_close(lua_State *L, int idx, lmq_queue *q);

/*
 * Readiness (ready.c). Every wait on q has a helper of its own (two coroutines
 * may wait on one handle with different selectors), and q:arm one more; the
 * handle keeps them all, so that a receive finds a 0-byte message any of them
 * took and closing stops them.
 *
 * lmq_handle_arm arms the wait's helper whose fd is `fd`, or, when fd is -1,
 * the handle's idle helper or a new one, for a selector, and returns its fd:
 * readable when a matching message may be there or the queue is gone. -1 with
 * errno when no helper can watch (the caller polls instead). lmq_handle_disarm
 * ends the wait of helper `fd` (nothing if close already did): the handle keeps
 * one helper idle, parked and taking nothing, for its next wait.
 */
int lmq_handle_arm(lmq_queue *q, int fd, long msgtyp, int msgflg);
void lmq_handle_disarm(lmq_queue *q, int fd);

/* q:arm's helper: armed (made first if needed), its fd returned; q:disarm's: freed. */
int lmq_handle_arm_user(lmq_queue *q, long msgtyp, int msgflg);
void lmq_handle_disarm_user(lmq_queue *q);

/* Before a receive with this selector: 1 with *mtype when a helper of q took a
 * matching 0-byte message (it is the receive's). A `blocking` receive also
 * stops q:arm's helper, which would otherwise compete with it for the next
 * 0-byte message (q:arm again afterwards). */
int lmq_handle_take_stashed(lmq_queue *q, long msgtyp, int msgflg, int blocking, long *mtype);

/* mq.queue(name=jobs, id=3), (key=0x00001234, id=3), (private, id=3), (id=3), (closed). */
void lmq_describe(const lmq_queue *q, char *out, size_t outsz);

/* lmq_fail with q's description as the queue. */
int lmq_fail_queue(lua_State *L, const char *op, const lmq_queue *q, enum lmq_code code,
                   const char *reason);
int lmq_fail_closed(lua_State *L, const char *op, const lmq_queue *q);

/* A failed msgctl on a live handle: EINVAL and EIDRM mean the queue was removed. */
int lmq_fail_ctl(lua_State *L, const char *op, const lmq_queue *q, int err);

/*
 * Create the "mq.queue" metatable and its methods table (the __index) with
 * the handle's own methods, leaving both on the stack: metatable below,
 * methods on top. Other layers add their methods to the methods table.
 */
void lmq_handle_register(lua_State *L);

#endif
