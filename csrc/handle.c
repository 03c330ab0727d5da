/*
 * The queue handle: its identity check, its buffer, closing, and the
 * methods that only read the handle (close, name, key, id, set_blocking,
 * tostring). See handle.h.
 */

/***
@module mq
*/

/***
A handle on one queue: a full userdata whose `__gc` and `__close` close it
(never the queue). Methods are called as `q:send(data)`; the timed ones,
`send_timeout`, `receive_timeout` and `messages`, come from the Lua layer.
@type queue
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lauxlib.h"

#include "handle.h"
#include "ready.h"

uintptr_t lmq_seal_key;

/* One readiness helper of a handle: q:arm's (`user`), one a wait is using (`busy`), or
 * an idle one kept, parked, for the handle's next wait (at most one). */
struct lmq_watch {
  lmq_ready *ready;
  int fd;
  int user;
  int busy;
  struct lmq_watch *next;
};

static pthread_once_t seal_once = PTHREAD_ONCE_INIT;

/* The secret of the seal: random bytes; failing those, what differs between
 * processes and runs, so that it is at least never a constant. */
static void draw_seal_key(void) {
  uintptr_t k = 0;
  if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    k = (uintptr_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uintptr_t)ts.tv_sec ^
        ((uintptr_t)getpid() << 32) ^ (uintptr_t)&k;
  }
  lmq_seal_key = k != 0 ? k : 0x5a5a5a5a;
}

void lmq_seal_init(void) {
  pthread_once(&seal_once, draw_seal_key);
}

int lmq_not_a_queue(lua_State *L, int arg) {
  int forged = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING &&
               strcmp(lua_tostring(L, -1), LMQ_QUEUE_MT) == 0;
  if (forged)
    return luaL_argerror(L, arg, "mq.queue expected, got an object that only carries its metatable");
  return luaL_typeerror(L, arg, LMQ_QUEUE_MT);
}

int lmq_is_queue(lua_State *L) {
  lua_pushboolean(L, lmq_to_queue(L, 1) != NULL);
  return 1;
}

lmq_queue *lmq_handle_push(lua_State *L, const char *path, size_t pathlen, size_t namelen) {
  lmq_queue *q = (lmq_queue *)lua_newuserdatauv(L, offsetof(lmq_queue, path) + pathlen + 1, 1);
  q->seal = (uintptr_t)q ^ lmq_seal_key;
  q->id = -1;
  q->flags = 0;
  q->key = 0;
  q->kind = LMQ_BY_KEY;
  q->buf = NULL;
  q->bufcap = 0;
  q->watches = NULL;
  q->name_off = pathlen - namelen;
  if (pathlen > 0) memcpy(q->path, path, pathlen);
  q->path[pathlen] = '\0';
  luaL_setmetatable(L, LMQ_QUEUE_MT);
  return q;
}

void lmq_handle_bind(lmq_queue *q, int id, int flags, key_t key, enum lmq_kind kind) {
  q->id = id;
  q->flags = flags;
  q->key = key;
  q->kind = kind;
}

/* The buffer is a userdata of its own, held as the handle's user value, so
 * that the garbage collector counts it (a handle alone is ~70 bytes; its
 * buffer is 8 KiB or more). Allocated under lua_pcall so that running out
 * of memory is a failure to report, not an error thrown through mq. */
static int new_buffer(lua_State *L) {
  lua_newuserdatauv(L, (size_t)lua_tointeger(L, 1), 0);
  return 1;
}

int lmq_handle_reserve(lua_State *L, int idx, lmq_queue *q, size_t need) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, new_buffer);
  lua_pushinteger(L, (lua_Integer)LMQ_MSG_SIZE(need));
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return LMQ_ESYSTEM;
  }
  if (q->id < 0) {                 /* a finalizer that ran in the allocation closed q */
    lua_pop(L, 1);
    return LMQ_ECLOSED;
  }
  q->buf = (lmq_msg *)lua_touserdata(L, -1);
  q->bufcap = need;
  lua_setiuservalue(L, idx, 1);
  return 0;
}

static void free_watch(struct lmq_watch *w) {
  (void)lmq_ready_free(w->ready);   /* joins the helper, puts a taken message back */
  free(w);
}

/* Closing stops every helper of q. q:arm's goes with its fd. A wait's fd stays open
 * and is left readable until the wait ends (lmq_handle_disarm) or q is collected: a loop
 * asleep on it (mq.loop, cqueues, luv) wakes, and the wait's next receive says `closed`.
 * Closing the fd instead would leave that loop asleep on a dead fd number, or on whatever
 * file reuses it, and cqueues fails on a polled fd that was closed. */
void lmq_handle_close(lua_State *L, int idx, lmq_queue *q) {
  struct lmq_watch **p = &q->watches;
  q->id = -1;
  q->buf = NULL;
  q->bufcap = 0;
  while (*p != NULL) {
    struct lmq_watch *w = *p;
    if (idx == 0 || w->user || !w->busy) {   /* from __gc no wait is left to end */
      *p = w->next;
      free_watch(w);
    } else {
      lmq_ready_release(w->ready);
      p = &w->next;
    }
  }
  if (idx != 0) {                  /* from __gc the buffer is garbage with the handle */
    lua_pushnil(L);
    lua_setiuservalue(L, idx, 1);
  }
}

/* The busy helper of a wait with `fd`, or q:arm's when fd is -1 and `user`; NULL if none. */
static struct lmq_watch *find_watch(const lmq_queue *q, int fd, int user) {
  struct lmq_watch *w;
  for (w = q->watches; w != NULL; w = w->next)
    if (user ? w->user : (!w->user && w->busy && w->fd == fd)) return w;
  return NULL;
}

/* The idle helper kept for the next wait, or NULL. */
static struct lmq_watch *find_idle(const lmq_queue *q) {
  struct lmq_watch *w;
  for (w = q->watches; w != NULL; w = w->next)
    if (!w->user && !w->busy) return w;
  return NULL;
}

static struct lmq_watch *new_watch(lmq_queue *q, int user) {
  struct lmq_watch *w = (struct lmq_watch *)malloc(sizeof *w);
  if (w == NULL) return NULL;
  w->ready = lmq_ready_new(q->id);
  w->fd = w->ready != NULL ? lmq_ready_fd(w->ready) : -1;
  if (w->fd < 0) {
    int err = errno;
    (void)lmq_ready_free(w->ready);
    free(w);
    errno = err;
    return NULL;
  }
  w->user = user;
  w->busy = !user;
  w->next = q->watches;
  q->watches = w;
  return w;
}

static void unlink_watch(lmq_queue *q, const struct lmq_watch *gone) {
  struct lmq_watch **p;
  for (p = &q->watches; *p != NULL; p = &(*p)->next)
    if (*p == gone) {
      *p = gone->next;
      return;
    }
}

/* Arm w and return its fd. In a forked child an inherited helper starts afresh with an
 * eventfd of the child's own: w->fd follows it, so the child never polls the parent's. */
static int arm(struct lmq_watch *w, long msgtyp, int msgflg) {
  if (w == NULL) return -1;
  if (lmq_ready_arm(w->ready, msgtyp, msgflg) != 0) return -1;
  w->fd = lmq_ready_fd(w->ready);
  return w->fd;
}

int lmq_handle_arm(lmq_queue *q, int fd, long msgtyp, int msgflg) {
  struct lmq_watch *w;
  if (q->id < 0) {
    errno = EBADF;
    return -1;
  }
  w = fd >= 0 ? find_watch(q, fd, 0) : NULL;
  if (w == NULL && (w = find_idle(q)) != NULL) w->busy = 1;   /* its helper, parked, wakes */
  if (w == NULL) w = new_watch(q, 0);
  fd = arm(w, msgtyp, msgflg);
  if (fd < 0 && w != NULL) {             /* the caller polls instead: drop the helper */
    int err = errno;
    unlink_watch(q, w);
    free_watch(w);
    errno = err;
  }
  return fd;
}

void lmq_handle_disarm(lmq_queue *q, int fd) {
  struct lmq_watch *w = fd >= 0 ? find_watch(q, fd, 0) : NULL;
  if (w == NULL) return;
  if (q->id >= 0 && find_idle(q) == NULL) {
    /* Kept for the next wait: a helper that fired stays parked (taking nothing), so that
     * the next wait starts no thread, and this one returns without joining one. */
    lmq_ready_park(w->ready);
    w->busy = 0;
    return;
  }
  unlink_watch(q, w);
  free_watch(w);
}

int lmq_handle_arm_user(lmq_queue *q, long msgtyp, int msgflg) {
  struct lmq_watch *w;
  if (q->id < 0) {
    errno = EBADF;
    return -1;
  }
  w = find_watch(q, -1, 1);
  if (w == NULL) w = new_watch(q, 1);
  return arm(w, msgtyp, msgflg);
}

void lmq_handle_disarm_user(lmq_queue *q) {
  struct lmq_watch *w = find_watch(q, -1, 1);
  if (w == NULL) return;
  unlink_watch(q, w);
  free_watch(w);
}

int lmq_handle_take_stashed(lmq_queue *q, long msgtyp, int msgflg, int blocking, long *mtype) {
  struct lmq_watch *w;
  for (w = q->watches; w != NULL; w = w->next)
    if (lmq_ready_pending(w->ready) && lmq_ready_take(w->ready, msgtyp, msgflg, mtype)) return 1;
  if (blocking && (w = find_watch(q, -1, 1)) != NULL) lmq_ready_stop(w->ready);
  return 0;
}

void lmq_describe(const lmq_queue *q, char *out, size_t outsz) {
  if (q->id < 0)
    snprintf(out, outsz, "mq.queue(closed)");
  else if (q->kind == LMQ_BY_NAME)
    snprintf(out, outsz, "mq.queue(name=%s, id=%d)", q->path + q->name_off, q->id);
  else if (q->kind == LMQ_PRIVATE)
    snprintf(out, outsz, "mq.queue(private, id=%d)", q->id);
  else if (q->kind == LMQ_BY_ID)
    snprintf(out, outsz, "mq.queue(id=%d)", q->id);
  else
    snprintf(out, outsz, "mq.queue(key=0x%08x, id=%d)", (unsigned)q->key, q->id);
}

int lmq_fail_queue(lua_State *L, const char *op, const lmq_queue *q, enum lmq_code code,
                   const char *reason) {
  char desc[320];
  lmq_describe(q, desc, sizeof desc);
  return lmq_fail(L, op, desc, code, reason);
}

int lmq_fail_closed(lua_State *L, const char *op, const lmq_queue *q) {
  return lmq_fail_queue(L, op, q, LMQ_ECLOSED, "the handle is closed");
}

int lmq_fail_ctl(lua_State *L, const char *op, const lmq_queue *q, int err) {
  if (err == EINVAL || err == EIDRM)
    return lmq_fail_queue(L, op, q, LMQ_EREMOVED, "the queue was removed");
  return lmq_fail_queue(L, op, q, lmq_code_of_errno(err), strerror(err));
}

/***
Close the handle. Idempotent; the queue stays. `__gc` and `__close` call it.
@function queue:close
@within queue
@treturn boolean true
*/
static int q_close(lua_State *L) {
  lmq_handle_close(L, 1, lmq_check_queue(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

/***
The queue's name.
@function queue:name
@within queue
@treturn string|nil the name, or nil for a key, id or private queue
@return[2] nil, message, `closed`
*/
static int q_name(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  if (q->id < 0) return lmq_fail_closed(L, "name", q);
  if (q->kind == LMQ_BY_NAME)
    lua_pushstring(L, q->path + q->name_off);
  else
    lua_pushnil(L);
  return 1;
}

/***
The queue's key, as a signed `key_t` (0 for a private queue).
@function queue:key
@within queue
@treturn integer the key
@return[2] nil, message, `closed`
*/
static int q_key(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  if (q->id < 0) return lmq_fail_closed(L, "key", q);
  lua_pushinteger(L, (lua_Integer)q->key);
  return 1;
}

/***
The System V queue id (msqid).
@function queue:id
@within queue
@treturn integer the id
@return[2] nil, message, `closed`
*/
static int q_id(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  if (q->id < 0) return lmq_fail_closed(L, "id", q);
  lua_pushinteger(L, q->id);
  return 1;
}

/***
Whether `send` and `receive` block (go-ipc's `SetBlocking`).
@function queue:set_blocking
@within queue
@tparam boolean flag false: they fail with `again` instead of blocking
@treturn boolean true
@return[2] nil, message, `closed`
*/
static int q_set_blocking(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  if (q->id < 0) return lmq_fail_closed(L, "set_blocking", q);
  if (lua_toboolean(L, 2))
    q->flags &= ~LMQ_O_NONBLOCK;
  else
    q->flags |= LMQ_O_NONBLOCK;
  lua_pushboolean(L, 1);
  return 1;
}

/***
`tostring(q)`: `mq.queue(name=jobs, id=3)`, `mq.queue(key=0x00001234, id=3)`,
`mq.queue(private, id=3)`, `mq.queue(id=3)` or `mq.queue(closed)`.
@function queue:__tostring
@within queue
@treturn string
*/
static int q_tostring(lua_State *L) {
  char desc[320];
  lmq_describe(lmq_check_queue(L, 1), desc, sizeof desc);
  lua_pushstring(L, desc);
  return 1;
}

/* __gc and __close: close the handle (never the queue). Silent on anything
 * that is not a handle, since a forged object can carry this metatable. */
static int q_gc(lua_State *L) {
  lmq_queue *q = lmq_to_queue(L, 1);
  if (q != NULL) lmq_handle_close(L, 0, q);
  return 0;
}

static int q_close_meta(lua_State *L) {
  lmq_queue *q = lmq_to_queue(L, 1);
  if (q != NULL) lmq_handle_close(L, 1, q);
  return 0;
}

static const luaL_Reg handle_methods[] = {
  {"close", q_close},
  {"name", q_name},
  {"key", q_key},
  {"id", q_id},
  {"set_blocking", q_set_blocking},
  {NULL, NULL}
};

static const luaL_Reg handle_meta[] = {
  {"__tostring", q_tostring},
  {"__gc", q_gc},
  {"__close", q_close_meta},
  {NULL, NULL}
};

void lmq_handle_register(lua_State *L) {
  luaL_newmetatable(L, LMQ_QUEUE_MT);     /* also sets __name */
  luaL_setfuncs(L, handle_meta, 0);
  luaL_newlib(L, handle_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
}
