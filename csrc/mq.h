/*
 * mq: System V message queues for Lua 5.4.
 * Declarations shared by the files of the C core (mq.core).
 */
#ifndef MQ_H
#define MQ_H

#include <stddef.h>
#include <sys/types.h>

#include "lua.h"
#include "lauxlib.h"

#define MQ_VERSION "0.1.0"
#define MQ_QUEUE_MT "mq.queue"

/* The module's own open flags (API.md: distinct access bits, RDWR is both). */
#define MQ_O_RDONLY 0x1
#define MQ_O_WRONLY 0x2
#define MQ_O_RDWR (MQ_O_RDONLY | MQ_O_WRONLY)
#define MQ_O_NONBLOCK 0x4
#define MQ_O_ALL (MQ_O_RDWR | MQ_O_NONBLOCK)

#define MQ_NAME_MAX 255

/* Exported symbol of the shared object; everything else stays hidden. */
#if defined(__GNUC__)
#define MQ_EXPORT __attribute__((visibility("default")))
#else
#define MQ_EXPORT
#endif

/* How a queue was addressed: decides tostring() and what destroy removes. */
enum mq_kind { MQ_BY_NAME, MQ_BY_KEY, MQ_PRIVATE_QUEUE };

/* errors.c: failure codes of API.md. */
enum mq_code {
  MQ_EAGAIN, MQ_ETIMEOUT, MQ_EEXISTS, MQ_ENOTFOUND, MQ_EREMOVED, MQ_ETOOBIG, MQ_EDENIED,
  MQ_ENOSPACE, MQ_EINTERRUPTED, MQ_ECLOSED, MQ_EUNSUPPORTED, MQ_EINVALID, MQ_ESYSTEM
};

/* The message buffer handed to msgsnd/msgrcv: a long type, then the bytes. */
typedef struct mq_msg {
  long mtype;
  char mtext[1];
} mq_msg;

/* Bytes of mq_msg needed to carry `len` payload bytes. */
#define MQ_MSG_SIZE(len) (offsetof(mq_msg, mtext) + (len))

/* A resolved queue address: what new/open/destroy act on. */
typedef struct mq_where {
  enum mq_kind kind;
  key_t key;
  const char *name;   /* points into the Lua argument; NULL unless MQ_BY_NAME */
  char path[4096];    /* key file path, for names */
} mq_where;

/* The full userdata behind a handle. The key file path follows it in the same block. */
typedef struct mq_queue {
  const char *tag;    /* &mq_queue_tag: see mq_check_queue */
  int id;             /* msqid, -1 once closed */
  int flags;          /* MQ_O_* access bits and MQ_O_NONBLOCK */
  key_t key;
  enum mq_kind kind;
  mq_msg *buf;        /* grown on demand, kept for the handle's life */
  size_t bufcap;      /* payload bytes buf can hold */
  size_t name_off;    /* offset of the name within path[]; 0 when no name */
  char path[1];       /* NUL-terminated key file path (empty without a name) */
} mq_queue;

/* errors.c */
int mq_fail(lua_State *L, const char *op, const char *what, enum mq_code code, const char *reason);
int mq_fail_errno(lua_State *L, const char *op, const char *what, int err, enum mq_code code);
int mq_fail_queue(lua_State *L, const char *op, const mq_queue *q, enum mq_code code,
                  const char *reason);
enum mq_code mq_code_of_errno(int err);
void mq_push_codes(lua_State *L);

/* where.c */
int mq_check_where(lua_State *L, int arg, mq_where *w, const char *op);
int mq_key_file_matches(const char *path, key_t key);
int mq_open_where(lua_State *L);
int mq_new_where(lua_State *L);
int mq_destroy_where(lua_State *L);
int mq_ftok(lua_State *L);

/* queue.c */
mq_queue *mq_push_queue(lua_State *L, int id, int flags, const mq_where *w);

/*
 * The handle at `arg`. luaL_checkudata's metatable lookup by name cost about
 * 120 instructions a call, a sixth of mq's user-space time per message; the
 * handle instead starts with the address of a tag private to this library.
 * A full userdata at least as large as a handle with that first word is one
 * (a smaller or light userdata is never read past its end); anything else
 * gets luaL_checkudata's usual error.
 */
extern const char mq_queue_tag;
static inline mq_queue *mq_check_queue(lua_State *L, int arg) {
  mq_queue *q = (mq_queue *)lua_touserdata(L, arg);
  if (q != NULL && lua_rawlen(L, arg) > offsetof(mq_queue, path) && q->tag == &mq_queue_tag) return q;
  return (mq_queue *)luaL_checkudata(L, arg, MQ_QUEUE_MT);
}
void mq_describe(const mq_queue *q, char *out, size_t outsz);
void mq_queue_register(lua_State *L);

/* transfer.c: send, receive, peek and the cheap polls of the timed calls. */
void mq_transfer_register(lua_State *L, int methods, int module);
void mq_free_buffer(lua_State *L, mq_queue *q);
int mq_poll_send(lua_State *L);
int mq_poll_receive(lua_State *L);

/* wait.c: the timed calls' back-off loop in C, for the default waiter outside a coroutine. */
void mq_wait_register(lua_State *L);

/* limits.c: msgmax is cached for the hot path; mq_msgmax(1) re-reads it. */
extern long mq_msgmax_cache;
long mq_msgmax(int refresh);
#define MQ_MSGMAX() (mq_msgmax_cache > 0 ? mq_msgmax_cache : mq_msgmax(0))
int mq_limits(lua_State *L);

/* process.c: process-wide settings for programs (the CLI), never used by the library. */
int mq_ignore_sigpipe(lua_State *L);

/* clock.c */
double mq_now(void);
int mq_sleep(double seconds);
void mq_clock_register(lua_State *L);

#endif
