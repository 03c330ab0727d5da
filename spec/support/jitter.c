/*
 * jitter: a test-only LD_PRELOAD shim for the name race specs (never installed or shipped).
 *
 * The races between mq.new, mq.open and mq.destroy on one name sit between two system calls
 * a few microseconds apart, so an honest run hits them a few times in a million. This shim
 * wraps the calls that turn a name into a queue (msgget, msgctl, open, stat and friends,
 * link, unlink, rename, flock, mkstemp) and sleeps a random 0 .. MQ_JITTER_US microseconds
 * before each, which widens every such window to about a hundred microseconds.
 *
 * It only changes timing: a process can always be preempted at the same points for as long,
 * so every interleaving it produces is one a loaded machine can produce without it, and an
 * implementation that is correct under every interleaving still passes.
 *
 * Environment:
 *   MQ_JITTER_US     the largest delay in microseconds (default 200; 0 turns the shim off)
 *   MQ_JITTER_CALLS  comma-separated calls to delay (default: all of them), each a name with
 *                    an optional ":microseconds" of its own; "*" stands for every call. E.g.
 *                    "msgget" stretches only the gap before each msgget, "*,msgget:1000"
 *                    delays every call up to MQ_JITTER_US and msgget up to 1 ms.
 *
 * spec/support/races.lua compiles it into $TMPDIR at test time.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static unsigned long jt_max_us = 200;
static char jt_calls[512];          /* ",name[:us],...," or empty for every call */
static unsigned long long jt_state;

static void jt_init(void) __attribute__((constructor));

static void jt_init(void) {
  const char *us = getenv("MQ_JITTER_US");
  const char *calls = getenv("MQ_JITTER_CALLS");
  struct timespec ts;
  if (us != NULL && *us != '\0') jt_max_us = strtoul(us, NULL, 10);
  if (calls != NULL && *calls != '\0' && strlen(calls) + 3 <= sizeof jt_calls)
    snprintf(jt_calls, sizeof jt_calls, ",%s,", calls);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  jt_state = ((unsigned long long)getpid() << 32) ^ (unsigned long long)ts.tv_nsec ^
             ((unsigned long long)ts.tv_sec << 20) ^ 0x9e3779b97f4a7c15ULL;
  /* Sleeps of tens of microseconds need a timer slack below the default 50 us. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
}

/* xorshift64*: private to this process, no libc state touched. */
static unsigned long long jt_random(void) {
  jt_state ^= jt_state >> 12;
  jt_state ^= jt_state << 25;
  jt_state ^= jt_state >> 27;
  return jt_state * 0x2545f4914f6cdd1dULL;
}

/* The largest delay before `call` in microseconds: its own, "*"'s, or none if not listed. */
static unsigned long jt_limit(const char *call) {
  char token[64];
  const char *hit;
  if (jt_calls[0] == '\0') return jt_max_us;
  snprintf(token, sizeof token, ",%s:", call);
  if ((hit = strstr(jt_calls, token)) != NULL) return strtoul(hit + strlen(token), NULL, 10);
  snprintf(token, sizeof token, ",%s,", call);
  if (strstr(jt_calls, token) != NULL || strstr(jt_calls, ",*,") != NULL) return jt_max_us;
  if ((hit = strstr(jt_calls, ",*:")) != NULL) return strtoul(hit + 3, NULL, 10);
  return 0;
}

/* Sleep a random 0 .. limit microseconds before `call`, keeping errno. */
static void jt_delay(const char *call) {
  int saved = errno;
  unsigned long limit = jt_max_us > 0 ? jt_limit(call) : 0;
  if (limit > 0) {
    unsigned long long ns = jt_random() % ((unsigned long long)limit * 1000ULL + 1ULL);
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000ULL);
    ts.tv_nsec = (long)(ns % 1000000000ULL);
    nanosleep(&ts, NULL);
  }
  errno = saved;
}

/* The next definition of `name` after this shim (libc's), or abort: no silent fallback. */
static void *jt_next(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    fprintf(stderr, "jitter: no next definition of %s\n", name);
    abort();
  }
  return f;
}

/*
 * One wrapper per call: look the real function up once, delay, call it. `params` is a
 * parenthesised parameter list, which cannot take the extra parentheses clang-tidy asks for.
 */
#define JT_WRAP(ret, name, params, args)                       \
  ret name params {                                            \
    typedef ret (*name##_fn) params; /* NOLINT(bugprone-macro-parentheses) */ \
    static name##_fn real;                                     \
    if (real == NULL) real = (name##_fn)jt_next(#name);        \
    jt_delay(#name);                                           \
    return real args;                                          \
  }

/* open and openat take a mode only with O_CREAT or O_TMPFILE. */
#define JT_WRAP_OPEN(name)                                                 \
  int name(const char *path, int flags, ...) {                             \
    typedef int (*name##_fn)(const char *, int, ...);                      \
    static name##_fn real;                                                 \
    mode_t mode = 0;                                                       \
    va_list ap;                                                            \
    va_start(ap, flags);                                                   \
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)             \
      mode = (mode_t)va_arg(ap, int);                                      \
    va_end(ap);                                                            \
    if (real == NULL) real = (name##_fn)jt_next(#name);                    \
    jt_delay("open");                                                      \
    return real(path, flags, mode);                                        \
  }

#define JT_WRAP_OPENAT(name)                                               \
  int name(int dirfd, const char *path, int flags, ...) {                  \
    typedef int (*name##_fn)(int, const char *, int, ...);                 \
    static name##_fn real;                                                 \
    mode_t mode = 0;                                                       \
    va_list ap;                                                            \
    va_start(ap, flags);                                                   \
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)             \
      mode = (mode_t)va_arg(ap, int);                                      \
    va_end(ap);                                                            \
    if (real == NULL) real = (name##_fn)jt_next(#name);                    \
    jt_delay("open");                                                      \
    return real(dirfd, path, flags, mode);                                 \
  }

/* Exported for the dynamic linker only; declared here to keep -Wmissing-prototypes quiet. */
int open64(const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int stat64(const char *path, struct stat64 *st);
int lstat64(const char *path, struct stat64 *st);
int fstat64(int fd, struct stat64 *st);
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags);

/*
 * clang-tidy 14's valist checker reports va_arg after va_start as uninitialized when this
 * file is not the first of the run (state left over from the previous file); alone it is
 * clean. The NOLINTs silence that false report only.
 */
JT_WRAP_OPEN(open)              /* NOLINT(clang-analyzer-valist.Uninitialized) */
JT_WRAP_OPEN(open64)            /* NOLINT(clang-analyzer-valist.Uninitialized) */
JT_WRAP_OPENAT(openat)          /* NOLINT(clang-analyzer-valist.Uninitialized) */
JT_WRAP_OPENAT(openat64)        /* NOLINT(clang-analyzer-valist.Uninitialized) */

JT_WRAP(int, msgget, (key_t key, int flags), (key, flags))
JT_WRAP(int, msgctl, (int id, int cmd, struct msqid_ds *buf), (id, cmd, buf))
JT_WRAP(int, stat, (const char *path, struct stat *st), (path, st))
JT_WRAP(int, lstat, (const char *path, struct stat *st), (path, st))
JT_WRAP(int, fstat, (int fd, struct stat *st), (fd, st))
JT_WRAP(int, fstatat, (int dirfd, const char *path, struct stat *st, int flags), (dirfd, path, st, flags))
JT_WRAP(int, stat64, (const char *path, struct stat64 *st), (path, st))
JT_WRAP(int, lstat64, (const char *path, struct stat64 *st), (path, st))
JT_WRAP(int, fstat64, (int fd, struct stat64 *st), (fd, st))
JT_WRAP(int, fstatat64, (int dirfd, const char *path, struct stat64 *st, int flags), (dirfd, path, st, flags))
JT_WRAP(int, statx, (int dirfd, const char *path, int flags, unsigned int mask, struct statx *st),
        (dirfd, path, flags, mask, st))
JT_WRAP(int, link, (const char *from, const char *to), (from, to))
JT_WRAP(int, linkat, (int fromfd, const char *from, int tofd, const char *to, int flags),
        (fromfd, from, tofd, to, flags))
JT_WRAP(int, unlink, (const char *path), (path))
JT_WRAP(int, unlinkat, (int dirfd, const char *path, int flags), (dirfd, path, flags))
JT_WRAP(int, rename, (const char *from, const char *to), (from, to))
JT_WRAP(int, renameat, (int fromfd, const char *from, int tofd, const char *to), (fromfd, from, tofd, to))
JT_WRAP(int, renameat2, (int fromfd, const char *from, int tofd, const char *to, unsigned int flags),
        (fromfd, from, tofd, to, flags))
JT_WRAP(int, flock, (int fd, int op), (fd, op))
JT_WRAP(int, mkstemp, (char *tmpl), (tmpl))
JT_WRAP(int, mkostemp, (char *tmpl, int flags), (tmpl, flags))
JT_WRAP(int, mkstemps, (char *tmpl, int suffixlen), (tmpl, suffixlen))
JT_WRAP(int, mkostemps, (char *tmpl, int suffixlen, int flags), (tmpl, suffixlen, flags))
