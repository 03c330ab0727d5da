/*
 * Addressing a queue (API.md "Addressing a queue"): a name, whose key comes
 * from a key file in $TMPDIR exactly as go-ipc derives it, or an integer key.
 * Also new/open/destroy by address and ftok.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mq.h"

#define KEY_MIN (-2147483647LL - 1)
#define KEY_MAX 4294967295LL

/* go-ipc's key for a key file: ftok(path, 0) without a second stat. */
static key_t key_of_stat(const struct stat *st) {
  return (key_t)(((unsigned long)st->st_ino & 0xffffUL) | (((unsigned long)st->st_dev & 0xffUL) << 16));
}

static void describe_where(const mq_where *w, char *out, size_t outsz) {
  if (w->kind == MQ_BY_NAME)
    snprintf(out, outsz, "mq.queue(name=%s)", w->name);
  else if (w->kind == MQ_PRIVATE_QUEUE)
    snprintf(out, outsz, "mq.queue(private)");
  else
    snprintf(out, outsz, "mq.queue(key=0x%08x)", (unsigned)w->key);
}

static int fail_where(lua_State *L, const char *op, const mq_where *w, enum mq_code code,
                      const char *reason) {
  char desc[320];
  describe_where(w, desc, sizeof desc);
  return mq_fail(L, op, desc, code, reason);
}

static const char *name_problem(const char *name, size_t len) {
  if (len == 0) return "a queue name must not be empty";
  if (len > MQ_NAME_MAX) return "a queue name is at most 255 bytes";
  if (memchr(name, '\0', len) != NULL) return "a queue name must not contain NUL";
  if (memchr(name, '/', len) != NULL) return "a queue name must not contain '/'";
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return "a queue name must not be '.' or '..'";
  return NULL;
}

/*
 * Resolve argument `arg` into *w. Wrong Lua types raise; a bad value pushes
 * nil, message, "invalid" and returns 3; success returns 0.
 */
int mq_check_where(lua_State *L, int arg, mq_where *w, const char *op) {
  memset(w, 0, offsetof(mq_where, path));
  w->path[0] = '\0';
  if (lua_type(L, arg) == LUA_TSTRING) {
    size_t len;
    const char *name = lua_tolstring(L, arg, &len);
    const char *dir = getenv("TMPDIR");
    const char *problem = name_problem(name, len);
    int n;
    w->kind = MQ_BY_NAME;
    w->name = name;
    if (problem != NULL) {
      w->name = NULL;
      return mq_fail(L, op, "", MQ_EINVALID, problem);
    }
    if (dir == NULL || *dir == '\0') dir = "/tmp";
    n = snprintf(w->path, sizeof w->path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof w->path)
      return fail_where(L, op, w, MQ_EINVALID, "the key file path ($TMPDIR/name) is too long");
    return 0;
  }
  if (lua_type(L, arg) == LUA_TNUMBER) {
    int isint;
    lua_Integer k = lua_tointegerx(L, arg, &isint);
    if (!isint) return mq_fail(L, op, "", MQ_EINVALID, "a queue key must be an integer");
    if (k < KEY_MIN || k > KEY_MAX)
      return mq_fail(L, op, "", MQ_EINVALID, "a queue key must be within -2^31 .. 2^32-1");
    w->key = (key_t)(int)(unsigned int)(k & 0xffffffffLL);
    w->kind = w->key == IPC_PRIVATE ? MQ_PRIVATE_QUEUE : MQ_BY_KEY;
    return 0;
  }
  return luaL_typeerror(L, arg, "string (queue name) or integer (key)");
}

/*
 * Look at an existing key file without following a symlink or opening it.
 * Returns 0 with w->key set, or the failure's code with *reason set.
 */
static int lstat_key_file(mq_where *w, enum mq_code *code, const char **reason) {
  struct stat st;
  if (lstat(w->path, &st) != 0) {
    int err = errno;
    *code = mq_code_of_errno(err);
    *reason = err == ENOENT ? "no such queue (its key file does not exist)" : strerror(err);
    return -1;
  }
  *code = MQ_EINVALID;
  if (S_ISLNK(st.st_mode)) {
    *reason = "the key file is a symbolic link; it is not followed";
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    *reason = "the key file is not a regular file";
    return -1;
  }
  w->key = key_of_stat(&st);
  if (w->key == IPC_PRIVATE) {
    *reason = "the key file's inode maps to key 0 (IPC_PRIVATE)";
    return -1;
  }
  return 0;
}

static int stat_key_file(lua_State *L, const char *op, mq_where *w) {
  enum mq_code code;
  const char *reason;
  if (lstat_key_file(w, &code, &reason) != 0) return fail_where(L, op, w, code, reason);
  return 0;
}

/*
 * Create the key file if missing: 0600, never following a symlink, never
 * truncating, never opening anything but a regular file. *created tells the
 * caller to unlink it again if the queue cannot be made.
 */
static int make_key_file(lua_State *L, const char *op, mq_where *w, int *created) {
  int fd = open(w->path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  struct stat st;
  *created = 0;
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) return stat_key_file(L, op, w);
    if (err == ENOENT)
      return fail_where(L, op, w, MQ_ENOTFOUND, "the key file's directory ($TMPDIR) does not exist");
    return mq_fail_errno(L, op, w->path, err, mq_code_of_errno(err));
  }
  *created = 1;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    unlink(w->path);
    *created = 0;
    return mq_fail_errno(L, op, w->path, err, MQ_ESYSTEM);
  }
  close(fd);
  w->key = key_of_stat(&st);
  if (w->key == IPC_PRIVATE) {
    unlink(w->path);
    *created = 0;
    return fail_where(L, op, w, MQ_EINVALID, "the key file's inode maps to key 0 (IPC_PRIVATE); try again");
  }
  return 0;
}

/* perm: nil (0600), an integer, or a string of 1 to 4 octal digits; bits of 0666 only. */
static int check_perm(lua_State *L, int arg, const char *op, const mq_where *w, int *perm) {
  lua_Integer p = 0600;
  int t = lua_type(L, arg);
  if (t == LUA_TNUMBER) {
    int isint;
    p = lua_tointegerx(L, arg, &isint);
    if (!isint) return fail_where(L, op, w, MQ_EINVALID, "perm must be an integer");
  } else if (t == LUA_TSTRING) {
    size_t len, i;
    const char *s = lua_tolstring(L, arg, &len);
    if (len < 1 || len > 4)
      return fail_where(L, op, w, MQ_EINVALID, "perm must be 1 to 4 octal digits");
    p = 0;
    for (i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '7')
        return fail_where(L, op, w, MQ_EINVALID, "perm must be 1 to 4 octal digits");
      p = p * 8 + (s[i] - '0');
    }
  } else if (t != LUA_TNIL && t != LUA_TNONE) {
    return luaL_typeerror(L, arg, "integer or octal string");
  }
  if (p < 0 || (p & ~(lua_Integer)0666) != 0)
    return fail_where(L, op, w, MQ_EINVALID, "perm may only hold read and write bits (0666)");
  *perm = (int)p;
  return 0;
}

/*
 * A key file that new() has just made maps to a key some unrelated queue
 * holds (ftok keeps 16 bits of the inode). Give the name another inode: a
 * new file renamed over it while the old inode is still held, so that the
 * inode cannot simply be reused. Returns 0 with w->key updated.
 */
#define MQ_RENEW_TRIES 8

static int renew_key_file(mq_where *w) {
  char tmp[sizeof w->path];
  struct stat st;
  int fd, n = snprintf(tmp, sizeof tmp, "%s.XXXXXX", w->path);
  if (n < 0 || (size_t)n >= sizeof tmp) return -1;
  fd = mkostemp(tmp, O_CLOEXEC);          /* 0600, O_EXCL: never follows a link */
  if (fd < 0) return -1;
  if (fstat(fd, &st) != 0 || rename(tmp, w->path) != 0) {
    close(fd);
    unlink(tmp);
    return -1;
  }
  close(fd);
  w->key = key_of_stat(&st);
  return w->key == IPC_PRIVATE ? -1 : 0;
}

/* mq.new(where [, perm]) -> handle: create exclusively (IPC_CREAT|IPC_EXCL), 0600 by default. */
int mq_new_where(lua_State *L) {
  static const char op[] = "mq.new";
  mq_where w;
  int perm = 0, created = 0, tries = 0, err = 0, id, r;
  if ((r = mq_check_where(L, 1, &w, op)) != 0) return r;
  if ((r = check_perm(L, 2, op, &w, &perm)) != 0) return r;
  if (w.kind == MQ_BY_NAME && (r = make_key_file(L, op, &w, &created)) != 0) return r;
  while ((id = msgget(w.key, IPC_CREAT | IPC_EXCL | perm)) < 0) {
    err = errno;
    if (err != EEXIST || !created || tries++ >= MQ_RENEW_TRIES || renew_key_file(&w) != 0) break;
  }
  if (id < 0) {
    if (created) unlink(w.path);
    if (err == EEXIST && created)
      return fail_where(L, op, &w, MQ_EEXISTS,
                        "every new key file's key was already taken by another queue (ftok collisions)");
    if (err == EEXIST) return fail_where(L, op, &w, MQ_EEXISTS, "the queue already exists");
    return fail_where(L, op, &w, mq_code_of_errno(err), strerror(err));
  }
  mq_push_queue(L, id, MQ_O_RDWR, &w);
  return 1;
}

/* open flags: the module's own bits; no access bit means read-write. */
static int check_flags(lua_State *L, int arg, const char *op, const mq_where *w, int *flags) {
  lua_Integer f = MQ_O_RDWR;
  if (!lua_isnoneornil(L, arg)) {
    int isint;
    if (lua_type(L, arg) != LUA_TNUMBER) return luaL_typeerror(L, arg, "integer (mq.O_* flags)");
    f = lua_tointegerx(L, arg, &isint);
    if (!isint || f < 0 || (f & ~(lua_Integer)MQ_O_ALL) != 0)
      return fail_where(L, op, w, MQ_EINVALID, "unknown open flags (use mq.O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK)");
  }
  if ((f & MQ_O_RDWR) == 0) f |= MQ_O_RDWR;
  *flags = (int)f;
  return 0;
}

/* mq.open(where [, flags]) -> handle: an existing queue, asking the kernel for exactly that access. */
int mq_open_where(lua_State *L) {
  static const char op[] = "mq.open";
  mq_where w;
  int flags = 0, want = 0, id, r;
  if ((r = mq_check_where(L, 1, &w, op)) != 0) return r;
  if ((r = check_flags(L, 2, op, &w, &flags)) != 0) return r;
  if (w.kind == MQ_PRIVATE_QUEUE)
    return fail_where(L, op, &w, MQ_EINVALID, "a private queue (mq.PRIVATE) cannot be opened by key");
  if (w.kind == MQ_BY_NAME && (r = stat_key_file(L, op, &w)) != 0) return r;
  /* Ask the kernel for exactly the access wanted, so refusal comes now. */
  if (flags & MQ_O_RDONLY) want |= 0444;
  if (flags & MQ_O_WRONLY) want |= 0222;
  id = msgget(w.key, want);
  if (id < 0) {
    int err = errno;
    if (err == ENOENT) return fail_where(L, op, &w, MQ_ENOTFOUND, "no such queue");
    return fail_where(L, op, &w, mq_code_of_errno(err), strerror(err));
  }
  mq_push_queue(L, id, flags, &w);
  return 1;
}

/* mq.destroy(where) -> true: remove queue and key file; a missing queue is success, a stale key file goes too. */
int mq_destroy_where(lua_State *L) {
  static const char op[] = "mq.destroy";
  mq_where w;
  int id, r;
  if ((r = mq_check_where(L, 1, &w, op)) != 0) return r;
  if (w.kind == MQ_PRIVATE_QUEUE)
    return fail_where(L, op, &w, MQ_EINVALID, "a private queue (mq.PRIVATE) cannot be destroyed by key");
  if (w.kind == MQ_BY_NAME) {
    enum mq_code code;
    const char *reason;
    if (lstat_key_file(&w, &code, &reason) != 0) {
      if (code != MQ_ENOTFOUND) return fail_where(L, op, &w, code, reason);
      lua_pushboolean(L, 1);            /* no key file: no queue by that name */
      return 1;
    }
  }
  id = msgget(w.key, 0);
  if (id >= 0 && msgctl(id, IPC_RMID, NULL) != 0) {
    int err = errno;
    if (err != EINVAL && err != EIDRM)
      return fail_where(L, op, &w, mq_code_of_errno(err), strerror(err));
  } else if (id < 0 && errno != ENOENT) {
    int err = errno;
    return fail_where(L, op, &w, mq_code_of_errno(err), strerror(err));
  }
  if (w.kind == MQ_BY_NAME && unlink(w.path) != 0 && errno != ENOENT) {
    int err = errno;
    return fail_where(L, op, &w, mq_code_of_errno(err), strerror(err));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Whether the key file at path is still a regular file that maps to key. */
int mq_key_file_matches(const char *path, key_t key) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && key_of_stat(&st) == key;
}

/* mq.ftok(path, proj_id): ftok(3); proj_id 0..255 since ftok keeps only 8 bits. */
int mq_ftok(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  lua_Integer proj;
  int isint;
  key_t k;
  luaL_checktype(L, 2, LUA_TNUMBER);
  proj = lua_tointegerx(L, 2, &isint);
  if (strlen(path) != len)
    return mq_fail(L, "mq.ftok", "", MQ_EINVALID, "path must not contain NUL");
  if (!isint || proj < 0 || proj > 255)
    return mq_fail(L, "mq.ftok", path, MQ_EINVALID, "proj_id must be an integer within 0 .. 255");
  k = ftok(path, (int)proj);
  if (k == (key_t)-1) {
    int err = errno;
    return mq_fail_errno(L, "mq.ftok", path, err, mq_code_of_errno(err));
  }
  lua_pushinteger(L, (lua_Integer)k);
  return 1;
}
