/*
 * A queue name and its key file. See names.h for the protocol; the windows it
 * leaves open are listed in the README's security section.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"
#include "sysvtable.h"

/* Rounds of look-and-act before giving up on a name that keeps changing: each
 * round needs another process to have changed the name meanwhile. */
#define MAX_ROUNDS 1000

/* Fresh key files tried while each one's key is already some other queue's.
 * Filesystems hand out inode numbers in order, so stale queues whose keys came
 * from neighbouring inodes can take a run of them: try well past such runs. */
#define PUBLISH_TRIES 64

/* The temporary name a key file is made under: hidden, short, in $TMPDIR. */
#define TEMP_PATTERN "/.mqXXXXXX"
#define TEMP_SUFFIX_LEN 6

/* go-ipc's key for a key file: ftok(path, 0) without a second stat. */
key_t lmq_name_key(const struct stat *st) {
  return (key_t)(((unsigned long)st->st_ino & 0xffffUL) | (((unsigned long)st->st_dev & 0xffUL) << 16));
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_uid == b->st_uid;
}

/* Record a failure: `reason`, with `detail` after it when not NULL. */
static int fail2(lmq_name *n, enum lmq_code code, const char *reason, const char *detail) {
  snprintf(n->reason, sizeof n->reason, "%s%s%s", reason, detail != NULL ? ": " : "",
           detail != NULL ? detail : "");
  n->code = code;
  return -1;
}

static int fail(lmq_name *n, enum lmq_code code, const char *reason) {
  return fail2(n, code, reason, NULL);
}

static int fail_errno(lmq_name *n, int err) {
  return fail(n, lmq_code_of_errno(err), strerror(err));
}

const char *lmq_name_problem(const char *name, size_t len) {
  if (len == 0) return "a queue name must not be empty";
  if (len > LMQ_NAME_MAX) return "a queue name is at most 255 bytes";
  if (memchr(name, '\0', len) != NULL) return "a queue name must not contain NUL";
  if (memchr(name, '/', len) != NULL) return "a queue name must not contain '/'";
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return "a queue name must not be '.' or '..'";
  return NULL;
}

const char *lmq_name_dir(void) {
  const char *dir = getenv("TMPDIR");
  return dir != NULL && *dir != '\0' ? dir : "/tmp";
}

int lmq_name_init(lmq_name *n, const char *name, size_t len) {
  const char *dir = lmq_name_dir();
  const char *problem = lmq_name_problem(name, len);
  int w;
  n->key = 0;
  n->collided = 0;
  n->unclaimed = 0;
  n->code = LMQ_ESYSTEM;
  n->reason[0] = '\0';
  n->path[0] = '\0';
  n->dirlen = 0;
  if (problem != NULL) return fail(n, LMQ_EINVALID, problem);
  n->dirlen = strlen(dir);
  w = snprintf(n->path, sizeof n->path, "%s/%s", dir, name);
  if (w < 0 || (size_t)w >= sizeof n->path || n->dirlen + sizeof TEMP_PATTERN > sizeof n->path)
    return fail(n, LMQ_EINVALID, "the key file path ($TMPDIR/name) is too long");
  return 0;
}

/*
 * The key file as it is now: 0 with *st, 1 when there is none, -1 for a path
 * that is not a usable key file (never followed or opened).
 */
static int look(lmq_name *n, struct stat *st) {
  if (lstat(n->path, st) != 0) {
    int err = errno;
    if (err == ENOENT) return 1;
    if (err == ENOTDIR)
      return fail(n, LMQ_ENOTFOUND, "the key file's directory ($TMPDIR) is not a directory");
    return fail_errno(n, err);
  }
  if (S_ISLNK(st->st_mode))
    return fail(n, LMQ_EINVALID, "the key file is a symbolic link; it is not followed");
  if (!S_ISREG(st->st_mode)) return fail(n, LMQ_EINVALID, "the key file is not a regular file");
  if (lmq_name_key(st) == IPC_PRIVATE)
    return fail(n, LMQ_EINVALID, "the key file's inode maps to key 0 (IPC_PRIVATE)");
  return 0;
}

/*
 * Lock the key file `st` describes, if the name still points to it. Returns
 * the fd holding LOCK_EX (closing it unlocks), LOCK_CHANGED when the name no
 * longer points to that file, or LOCK_DENIED when this process cannot open it
 * (another user's 0600 file): then nothing may take it off the name.
 */
#define LOCK_CHANGED (-2)
#define LOCK_DENIED (-1)

static int lock_key_file(const char *path, const struct stat *st) {
  struct stat now;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return errno == EACCES || errno == EPERM ? LOCK_DENIED : LOCK_CHANGED;
  if (fstat(fd, &now) != 0 || !same_file(&now, st)) {
    close(fd);
    return LOCK_CHANGED;
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(fd);
      return LOCK_DENIED;
    }
  }
  if (lstat(path, &now) != 0 || !same_file(&now, st)) {   /* renamed or removed meanwhile */
    close(fd);
    return LOCK_CHANGED;
  }
  return fd;
}

/* Who made queue `id`: 0 with *cuid, 1 when the queue is gone, -1 with errno. */
static int creator_of(int id, uid_t *cuid) {
  lmq_queue_row row;
  if (lmq_queue_row_of(id, &row) != 0) return errno == EINVAL || errno == EIDRM ? 1 : -1;
  *cuid = row.cuid;
  return 0;
}

static int fail_not_named(lmq_name *n, uid_t owner, uid_t cuid) {
  snprintf(n->reason, sizeof n->reason,
           "the key file belongs to uid %u but the queue on its key was made by uid %u, "
           "so the name does not name it", (unsigned)owner, (unsigned)cuid);
  n->code = LMQ_EDENIED;
  return -1;
}

/* Denied because the key file belongs to another user, who is named. */
static int fail_owner(lmq_name *n, uid_t owner, const char *tail) {
  snprintf(n->reason, sizeof n->reason, "the %skey file belongs to another user (uid %u)%s",
           *tail != '\0' ? "stale " : "", (unsigned)owner, tail);
  n->code = LMQ_EDENIED;
  return -1;
}

/* The temporary key files of one publish: made one after another while each
 * one's key is taken, all kept until the end so that no inode is reused. */
typedef struct temps {
  int count;
  char suffix[PUBLISH_TRIES][TEMP_SUFFIX_LEN + 1];
} temps;

static void temp_path(const lmq_name *n, const temps *t, int i, char *out) {
  memcpy(out, n->path, n->dirlen);
  memcpy(out + n->dirlen, TEMP_PATTERN, sizeof TEMP_PATTERN);
  memcpy(out + n->dirlen + sizeof TEMP_PATTERN - 1 - TEMP_SUFFIX_LEN, t->suffix[i], TEMP_SUFFIX_LEN);
}

static void drop_temps(const lmq_name *n, temps *t) {
  char path[PATH_MAX];
  int i;
  for (i = 0; i < t->count; i++) {
    temp_path(n, t, i, path);
    unlink(path);
  }
  t->count = 0;
}

/*
 * Publish a new key file under the name, with its queue: 0 done (*id), 1 when
 * someone else published the name first, -1 failed.
 */
static int publish(lmq_name *n, int perm, int *id) {
  char path[PATH_MAX];
  temps t;
  int qid = -1, err = EEXIST;
  key_t key = IPC_PRIVATE;
  t.count = 0;
  while (t.count < PUBLISH_TRIES) {
    struct stat st;
    int fd;
    memcpy(path, n->path, n->dirlen);
    memcpy(path + n->dirlen, TEMP_PATTERN, sizeof TEMP_PATTERN);
    fd = mkostemp(path, O_CLOEXEC);          /* 0600, O_EXCL: never follows a link */
    if (fd < 0) {
      err = errno;
      drop_temps(n, &t);
      if (err == ENOENT)
        return fail(n, LMQ_ENOTFOUND, "the key file's directory ($TMPDIR) does not exist");
      if (err == ENOTDIR)
        return fail(n, LMQ_ENOTFOUND, "the key file's directory ($TMPDIR) is not a directory");
      return fail2(n, lmq_code_of_errno(err), "cannot create a key file in $TMPDIR", strerror(err));
    }
    memcpy(t.suffix[t.count], path + strlen(path) - TEMP_SUFFIX_LEN, TEMP_SUFFIX_LEN + 1);
    t.count++;
    if (fstat(fd, &st) != 0) {
      err = errno;
      close(fd);
      drop_temps(n, &t);
      return fail_errno(n, err);
    }
    close(fd);                               /* the directory entry holds the inode */
    key = lmq_name_key(&st);
    if (key == IPC_PRIVATE) continue;        /* this inode cannot name a queue: next file */
    qid = msgget(key, IPC_CREAT | IPC_EXCL | perm);
    if (qid >= 0) break;
    err = errno;
    if (err != EEXIST) {
      drop_temps(n, &t);
      return fail_errno(n, err);
    }
    /* ftok keeps 16 bits of the inode: another queue holds this key; next file. */
  }
  if (qid < 0) {
    drop_temps(n, &t);
    n->collided = 1;
    return fail(n, LMQ_EEXISTS,
                "every new key file's key was already taken by another queue (ftok collisions)");
  }
  if (link(path, n->path) != 0) {
    err = errno;
    msgctl(qid, IPC_RMID, NULL);
    drop_temps(n, &t);
    if (err == EEXIST) return 1;
    return fail2(n, lmq_code_of_errno(err), "cannot publish the key file", strerror(err));
  }
  drop_temps(n, &t);
  n->key = key;
  *id = qid;
  return 0;
}

/*
 * The name has a key file of ours, `st`: exists if its queue is there (made by
 * us); otherwise give it a queue under the lock, or, when its key is held by a
 * queue someone else made, take the file off the name so the next round
 * publishes a new one. 0 done (*id), 1 look again, -1 failed.
 */
static int claim(lmq_name *n, const struct stat *st, int perm, int *id) {
  key_t key = lmq_name_key(st);
  uid_t cuid;
  int qid = msgget(key, 0), fd, r;
  if (qid >= 0) {
    r = creator_of(qid, &cuid);
    if (r < 0) return fail_errno(n, errno);
    if (r == 0 && cuid == st->st_uid) return fail(n, LMQ_EEXISTS, "the queue already exists");
  } else if (errno != ENOENT) {
    return fail_errno(n, errno);
  }
  fd = lock_key_file(n->path, st);
  if (fd == LOCK_CHANGED) return 1;
  if (fd < 0) return fail2(n, LMQ_EDENIED, "cannot lock the key file", strerror(errno));
  qid = msgget(key, IPC_CREAT | IPC_EXCL | perm);
  if (qid >= 0) {
    close(fd);
    n->key = key;
    *id = qid;
    return 0;
  }
  if (errno != EEXIST) {
    int err = errno;
    close(fd);
    return fail_errno(n, err);
  }
  qid = msgget(key, 0);
  r = qid >= 0 ? creator_of(qid, &cuid) : 1;
  if (r < 0) {
    int err = errno;
    close(fd);
    return fail_errno(n, err);
  }
  if (r == 0 && cuid == st->st_uid) {    /* another creator claimed it first */
    close(fd);
    return fail(n, LMQ_EEXISTS, "the queue already exists");
  }
  if (r == 0) unlink(n->path);           /* someone else's queue on its key: retire the file */
  close(fd);
  return 1;
}

int lmq_name_create(lmq_name *n, int perm, int *id) {
  int round;
  for (round = 0; round < MAX_ROUNDS; round++) {
    struct stat st;
    int r = look(n, &st);
    if (r < 0) return -1;
    if (r == 1) {
      r = publish(n, perm, id);
    } else if (st.st_uid != geteuid()) {
      return fail_owner(n, st.st_uid, "");
    } else {
      r = claim(n, &st, perm, id);
    }
    if (r <= 0) return r;
  }
  return fail(n, LMQ_ESYSTEM, "the name kept changing under concurrent use; try again");
}

int lmq_name_open(lmq_name *n, int access, int *id) {
  int round;
  for (round = 0; round < MAX_ROUNDS; round++) {
    struct stat st, again;
    uid_t cuid;
    int qid, err, r = look(n, &st);
    if (r < 0) return -1;
    if (r == 1) return fail(n, LMQ_ENOTFOUND, "no such queue (its key file does not exist)");
    qid = msgget(lmq_name_key(&st), access);
    err = errno;
    /* The name may have moved to another file between the look and msgget. */
    if (look(n, &again) != 0 || !same_file(&st, &again)) continue;
    if (qid < 0) {
      if (err == ENOENT) return fail(n, LMQ_ENOTFOUND, "no such queue");
      return fail_errno(n, err);
    }
    r = creator_of(qid, &cuid);
    if (r == 1) continue;                /* removed since msgget: the name may have a new one */
    if (r < 0) return fail_errno(n, errno);
    if (cuid != st.st_uid) {
      n->unclaimed = st.st_uid == geteuid();
      return fail_not_named(n, st.st_uid, cuid);
    }
    n->key = lmq_name_key(&st);
    *id = qid;
    return 0;
  }
  return fail(n, LMQ_ESYSTEM, "the name kept changing under concurrent use; try again");
}

int lmq_name_open_or_create(lmq_name *n, int perm, int access, int *id, int *created) {
  int round;
  for (round = 0; round < MAX_ROUNDS; round++) {
    n->unclaimed = 0;
    if (lmq_name_open(n, access, id) == 0) {
      *created = 0;
      return 0;
    }
    /* No queue, or only someone else's on our key file's key (new retires that
     * file and publishes another): either way the name's queue is missing. */
    if (n->code != LMQ_ENOTFOUND && !n->unclaimed) return -1;
    if (lmq_name_create(n, perm, id) == 0) {
      *created = 1;
      return 0;
    }
    if (n->code != LMQ_EEXISTS || n->collided) return -1;
    /* Another process created it between the two: open theirs. */
  }
  return fail(n, LMQ_ESYSTEM, "the name kept changing under concurrent use; try again");
}

int lmq_name_destroy(lmq_name *n) {
  int round;
  for (round = 0; round < MAX_ROUNDS; round++) {
    struct stat st;
    key_t key;
    uid_t cuid;
    int fd, qid, removed = 0, r = look(n, &st);
    if (r < 0) return -1;
    if (r == 1) return 0;                /* no key file: no queue by that name */
    key = lmq_name_key(&st);
    fd = lock_key_file(n->path, &st);
    if (fd == LOCK_CHANGED) continue;
    qid = msgget(key, 0);
    if (qid >= 0) {
      r = creator_of(qid, &cuid);
      if (r < 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        return fail_errno(n, err);
      }
      if (r == 0 && cuid != st.st_uid) {
        if (fd >= 0) close(fd);
        return fail_not_named(n, st.st_uid, cuid);
      }
      if (r == 0 && msgctl(qid, IPC_RMID, NULL) != 0 && errno != EINVAL && errno != EIDRM) {
        int err = errno;
        if (fd >= 0) close(fd);
        return fail_errno(n, err);
      }
      removed = r == 0;
    } else if (errno != ENOENT) {
      int err = errno;
      if (fd >= 0) close(fd);
      return fail_errno(n, err);
    }
    /* The queue is gone; only the lock holder takes the file off the name. */
    if (fd < 0) {
      if (removed) return 0;
      return fail_owner(n, st.st_uid, " and cannot be locked to be removed");
    }
    if (unlink(n->path) != 0 && errno != ENOENT && !removed) {
      int err = errno;
      close(fd);
      return fail2(n, lmq_code_of_errno(err), "cannot remove the stale key file", strerror(err));
    }
    close(fd);
    return 0;
  }
  return fail(n, LMQ_ESYSTEM, "the name kept changing under concurrent use; try again");
}

void lmq_name_retire(const char *path, key_t key) {
  struct stat st;
  int fd;
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || lmq_name_key(&st) != key) return;
  fd = lock_key_file(path, &st);
  if (fd < 0) return;
  if (msgget(key, 0) < 0 && errno == ENOENT) unlink(path);   /* nobody claimed it since */
  close(fd);
}
