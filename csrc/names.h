/*
 * A queue name and its key file: the one home of the name-to-key-file
 * lifecycle (publish, look up, claim, retire, owner check). Plain POSIX, no
 * Lua. Depends on errors.h (for the codes) and sysvtable.h.
 *
 * A name is $TMPDIR/<name>, and its key is go-ipc's ftok of that file. The
 * guarantees among processes using mq (README, "Guarantees"):
 * - new publishes a key file atomically: it is made under a temporary name,
 *   its queue is created, and only then is it link()ed to the name, so two
 *   creators cannot both succeed and a queue is never built on a file that
 *   another creator is about to replace;
 * - a key file is taken off its name, or an existing one given a queue, only
 *   under flock(LOCK_EX) on it, after checking that the name still points to
 *   the locked file;
 * - open and destroy act only on a queue that, at some instant during the
 *   call, was the name's queue: open looks at the file before and after
 *   msgget and checks the queue is still alive;
 * - a name is honoured only while its key file's owner made the queue (cuid).
 */
#ifndef LMQ_NAMES_H
#define LMQ_NAMES_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "errors.h"

#define LMQ_NAME_MAX 255

typedef struct lmq_name {
  char path[PATH_MAX];      /* $TMPDIR/<name> */
  size_t dirlen;            /* bytes of $TMPDIR in path */
  key_t key;                /* on success: the key of the key file acted on */
  enum lmq_code code;       /* on failure: the code and the reason */
  int collided;             /* the failure is exists because of ftok collisions only */
  int unclaimed;            /* open's failure: the key file is ours, but another user's
                               queue holds its key, so the name has no queue */
  char reason[256];
} lmq_name;

/* The directory of key files: $TMPDIR, or /tmp when it is unset or empty. */
const char *lmq_name_dir(void);

/* Why `name` (len bytes) is not a valid name, or NULL when it is. */
const char *lmq_name_problem(const char *name, size_t len);

/* Validate the name (len bytes) and build its key file path from $TMPDIR.
 * 0, or -1 with code and reason. */
int lmq_name_init(lmq_name *n, const char *name, size_t len);

/* Create the name's queue (IPC_CREAT|IPC_EXCL|perm): 0 with *id, or -1. */
int lmq_name_create(lmq_name *n, int perm, int *id);

/* Open the name's queue asking msgget for `access` (0444, 0222 bits): 0 with *id, or -1. */
int lmq_name_open(lmq_name *n, int access, int *id);

/* Open the name's queue, creating it (perm) when there is none: 0 with *id and
 * *created (1 only for the caller that made it), or -1. */
int lmq_name_open_or_create(lmq_name *n, int perm, int access, int *id, int *created);

/* go-ipc's key for a key file, ftok(path, 0) of its stat. */
struct stat;
key_t lmq_name_key(const struct stat *st);

/* Remove the name's queue and its key file: 0 (also when there was none), or -1. */
int lmq_name_destroy(lmq_name *n);

/* After a handle removed its queue (key `key`): take the key file at `path`
 * off its name if it still maps to that key and no queue has claimed it
 * since. Best effort: the queue is gone either way. */
void lmq_name_retire(const char *path, key_t key);

#endif
