/*
 * testproc: a test-only Lua 5.4 module for the mq specs (never installed or shipped).
 * Lua 5.4 on this system has no POSIX binding, so the fault specs get the few process
 * calls they need here: a no-op signal handler installed WITHOUT SA_RESTART (so a blocked
 * msgrcv/msgsnd fails with EINTR instead of being restarted), fork, _exit, waitpid,
 * kill, getpid, and a count of open file descriptors taken without starting a process
 * (a child listing /proc/PID/fd can see a pipe fd the parent is about to close).
 * For the edge specs and the fuzz driver: full userdata holding chosen bytes (forged
 * handles) and a userdata's bytes, a Lua allocator that refuses allocations after a
 * budget, interval timers, raise() and the removal of a queue by id.
 * For the System V feature specs: moving the calling thread into an IPC namespace of its
 * own and back, so that their queues never meet other programs' (ftok collisions of key
 * files). For the wake specs: a count of a process's threads by name (mq's readiness
 * helpers are "mq-ready"). spec/support/proc.lua compiles it into $TMPDIR at test time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"

static volatile sig_atomic_t tp_caught;

static void tp_noop(int signo) {
  (void)signo;
  tp_caught = tp_caught + 1;
}

static int tp_fail(lua_State *L) {
  int err = errno;
  luaL_pushfail(L);
  lua_pushstring(L, strerror(err));
  lua_pushinteger(L, err);
  return 3;
}

/* catch(signo): a handler that does nothing, without SA_RESTART. */
static int tp_catch(lua_State *L) {
  int signo = (int)luaL_checkinteger(L, 1);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = tp_noop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  if (sigaction(signo, &sa, NULL) != 0) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/*
 * The fuzz driver's deadline, enforced from a signal handler the way lua.c enforces Ctrl-C:
 * once the deadline has passed, the SIGALRM handler sets a hook on the main Lua state, and
 * the hook raises "FUZZ-DEADLINE". A wait looping in C must return to Lua when a hook was set
 * during it (issue 9, item 7); this is how the driver gets a call that never returns back.
 */
static lua_State *tp_main_state;
static volatile double tp_deadline_at;   /* monotonic seconds; 0: no deadline */

static double tp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Raises, and moves the deadline a little on: a raise that something swallows (a
 * finalizer, a callback's pcall) comes again while the call still runs. */
static void tp_deadline_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (tp_deadline_at > 0 && tp_now() > tp_deadline_at) {
    tp_deadline_at = tp_now() + 0.05;
    luaL_error(L, "FUZZ-DEADLINE: the call ran too long (signal hook)");
  }
}

static void tp_deadline_signal(int signo) {
  (void)signo;
  tp_caught = tp_caught + 1;
  /* As lua.c's laction: lua_sethook may be called from a signal handler (ldebug.c). */
  if (tp_deadline_at > 0 && tp_now() > tp_deadline_at && tp_main_state != NULL)
    lua_sethook(tp_main_state, tp_deadline_hook,  /* NOLINT(bugprone-signal-handler,cert-sig30-c) */
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Install `handler` (no SA_RESTART) for the signal at argument 1, after recording the main
 * Lua state that handlers hook; true, or nil, message. */
static int tp_hooking_handler(lua_State *L, void (*handler)(int)) {
  int signo = (int)luaL_checkinteger(L, 1);
  struct sigaction sa;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  tp_main_state = lua_tothread(L, -1);
  lua_pop(L, 1);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, &sa, NULL) != 0) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* catch_deadline(signo): like catch(signo), and the handler enforces deadline(t). */
static int tp_catch_deadline(lua_State *L) { return tp_hooking_handler(L, tp_deadline_signal); }

/* A host's hook that only looks and goes: the handler of catch_tick sets it on the main
 * state; it counts its runs and clears itself, raising nothing. */
static volatile sig_atomic_t tp_ticks;

static void tp_tick_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  tp_ticks = tp_ticks + 1;
}

static void tp_tick_signal(int signo) {
  (void)signo;
  if (tp_main_state != NULL)
    lua_sethook(tp_main_state, tp_tick_hook,  /* NOLINT(bugprone-signal-handler,cert-sig30-c) */
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* catch_tick(signo): the signal's handler sets tp_tick_hook. ticks(): its runs so far. */
static int tp_catch_tick(lua_State *L) { return tp_hooking_handler(L, tp_tick_signal); }

static int tp_tick_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tp_ticks);
  return 1;
}

/* deadline(t): the monotonic time (core.monotonic's clock) after which the handler of
 * catch_deadline raises through a hook; nil or 0 clears it. */
static int tp_set_deadline(lua_State *L) {
  tp_deadline_at = (double)luaL_optnumber(L, 1, 0);
  return 0;
}

/* caught(): how many signals the no-op handler has seen. */
static int tp_caught_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tp_caught);
  return 1;
}

static int tp_fork(lua_State *L) {
  pid_t pid = fork();
  if (pid < 0) return tp_fail(L);
  lua_pushinteger(L, (lua_Integer)pid);
  return 1;
}

/* _exit(code): leave a forked child without running the parent's Lua state down. */
static int tp_exit(lua_State *L) {
  _exit((int)luaL_optinteger(L, 1, 0));
  return 0;
}

/* waitpid(pid [, nohang]) -> pid, exit code (or -signal); 0 when nohang and still running. */
static int tp_waitpid(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int nohang = lua_toboolean(L, 2);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, nohang ? WNOHANG : 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return tp_fail(L);
  lua_pushinteger(L, (lua_Integer)r);
  if (r == 0) return 1;
  if (WIFEXITED(status)) lua_pushinteger(L, WEXITSTATUS(status));
  else lua_pushinteger(L, -WTERMSIG(status));
  return 2;
}

static int tp_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int signo = (int)luaL_checkinteger(L, 2);
  if (kill(pid, signo) != 0) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int tp_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* fd_count(): open file descriptors of this process, not counting the one reading them. */
static int tp_fd_count(lua_State *L) {
  DIR *d = opendir("/proc/self/fd");
  const struct dirent *e;
  lua_Integer n = 0;
  if (d == NULL) return tp_fail(L);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  lua_pushinteger(L, n - 1);
  return 1;
}

/* threads_named(pid, name): how many threads of process pid (0: this one) are named
 * `name` (/proc/PID/task/TID/comm). */
static int tp_threads_named(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  const char *name = luaL_checkstring(L, 2);
  char dir[64], path[128], comm[64];
  const struct dirent *e;
  lua_Integer n = 0;
  DIR *d;
  if (pid == 0) pid = (lua_Integer)getpid();
  (void)snprintf(dir, sizeof dir, "/proc/%lld/task", (long long)pid);
  d = opendir(dir);
  if (d == NULL) return tp_fail(L);
  while ((e = readdir(d)) != NULL) {
    FILE *f;
    if (e->d_name[0] == '.') continue;
    (void)snprintf(path, sizeof path, "%s/%.20s/comm", dir, e->d_name);
    f = fopen(path, "r");
    if (f == NULL) continue;      /* the thread has just gone */
    if (fgets(comm, sizeof comm, f) != NULL) {
      comm[strcspn(comm, "\n")] = '\0';
      if (strcmp(comm, name) == 0) n++;
    }
    fclose(f);
  }
  closedir(d);
  lua_pushinteger(L, n);
  return 1;
}

/* udata(bytes [, uservalues]) -> a full userdata without metatable holding exactly `bytes`. */
static int tp_udata(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int nuv = (int)luaL_optinteger(L, 2, 0);
  void *p = lua_newuserdatauv(L, len, nuv < 0 ? 0 : nuv);
  if (len > 0) memcpy(p, s, len);
  return 1;
}

/* bytes(u) -> the bytes of full userdata u (lua_rawlen of them), as a string. */
static int tp_bytes(lua_State *L) {
  luaL_checktype(L, 1, LUA_TUSERDATA);
  lua_pushlstring(L, (const char *)lua_touserdata(L, 1), (size_t)lua_rawlen(L, 1));
  return 1;
}

/* The allocator that with_alloc_limit installs: it refuses any allocation or growth once
 * `left` has run out (frees and shrinks always go through). */
typedef struct tp_limit {
  lua_Alloc orig;
  void *ud;
  long left;
  long refused;
} tp_limit;

static void *tp_limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  tp_limit *lim = (tp_limit *)ud;
  if (nsize > 0 && (ptr == NULL || nsize > osize)) {
    if (lim->left <= 0) {
      lim->refused++;
      return NULL;
    }
    lim->left--;
  }
  return lim->orig(lim->ud, ptr, osize, nsize);
}

/*
 * with_alloc_limit(n, f, ...) -> refused, ok, results...: calls f(...) in protected mode
 * while the state's allocator grants only `n` more allocations (or growths), then puts the
 * allocator back. `refused` counts the allocations refused; `ok` and the rest are pcall's.
 */
static int tp_with_alloc_limit(lua_State *L) {
  tp_limit lim;
  int base, status, nres;
  lim.left = (long)luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checkstack(L, 8, "with_alloc_limit");
  lim.refused = 0;
  lim.orig = lua_getallocf(L, &lim.ud);
  base = 2;                                   /* f and its arguments start here */
  lua_setallocf(L, tp_limited_alloc, &lim);
  status = lua_pcall(L, lua_gettop(L) - base, LUA_MULTRET, 0);
  lua_setallocf(L, lim.orig, lim.ud);
  nres = lua_gettop(L) - 1;                   /* results (or the error) sit above n */
  lua_pushinteger(L, (lua_Integer)lim.refused);
  lua_pushboolean(L, status == LUA_OK);
  lua_rotate(L, 2, 2);
  return nres + 2;
}

/* setitimer(seconds [, interval]) -> true: ITIMER_REAL (SIGALRM); 0 disarms it. */
static int tp_setitimer(lua_State *L) {
  double v = (double)luaL_checknumber(L, 1);
  double iv = (double)luaL_optnumber(L, 2, 0);
  struct itimerval it;
  if (!(v >= 0 && v < 1e6 && iv >= 0 && iv < 1e6)) return luaL_error(L, "setitimer: bad time");
  it.it_value.tv_sec = (time_t)v;
  it.it_value.tv_usec = (suseconds_t)((v - (double)it.it_value.tv_sec) * 1e6);
  it.it_interval.tv_sec = (time_t)iv;
  it.it_interval.tv_usec = (suseconds_t)((iv - (double)it.it_interval.tv_sec) * 1e6);
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* raise(signo) -> true */
static int tp_raise(lua_State *L) {
  if (raise((int)luaL_checkinteger(L, 1)) != 0) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* default_signal(signo) -> true: back to SIG_DFL. */
static int tp_default_signal(lua_State *L) {
  if (signal((int)luaL_checkinteger(L, 1), SIG_DFL) == SIG_ERR) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/*
 * rmid(id, key) -> true | false: remove System V queue `id` only if its key is `key` and
 * this user created it: the fuzz driver's clean-up of the queues it made, by the ids it
 * wrote down (private queues have no other address). Anything else is left alone.
 */
static int tp_rmid(lua_State *L) {
  int id = (int)luaL_checkinteger(L, 1);
  key_t key = (key_t)luaL_checkinteger(L, 2);
  struct msqid_ds ds;
  int mine = msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_perm.__key == key &&
             ds.msg_perm.cuid == geteuid();
  lua_pushboolean(L, mine && msgctl(id, IPC_RMID, NULL) == 0);
  return 1;
}

/* ipc_isolate() -> fd: this thread's IPC namespace is a new, empty one (needs
 * CAP_SYS_ADMIN); fd holds the one it left, for ipc_restore. Threads started
 * afterwards share the new one. */
static int tp_ipc_isolate(lua_State *L) {
  int fd = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tp_fail(L);
  if (unshare(CLONE_NEWIPC) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return tp_fail(L);
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* ipc_restore(fd) -> true: back to the IPC namespace fd holds; closes fd. The
 * namespace left goes away, with its queues, once nothing uses it. */
static int tp_ipc_restore(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int r = setns(fd, CLONE_NEWIPC);
  int err = errno;
  close(fd);
  errno = err;
  if (r != 0) return tp_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg tp_funcs[] = {
  {"catch", tp_catch},   {"caught", tp_caught_count}, {"fork", tp_fork},
  {"_exit", tp_exit},    {"waitpid", tp_waitpid},     {"kill", tp_kill},
  {"getpid", tp_getpid}, {"fd_count", tp_fd_count}, {"udata", tp_udata},
  {"bytes", tp_bytes},   {"with_alloc_limit", tp_with_alloc_limit},
  {"setitimer", tp_setitimer}, {"raise", tp_raise}, {"default_signal", tp_default_signal},
  {"rmid", tp_rmid}, {"catch_deadline", tp_catch_deadline}, {"deadline", tp_set_deadline},
  {"ipc_isolate", tp_ipc_isolate}, {"ipc_restore", tp_ipc_restore},
  {"threads_named", tp_threads_named}, {"catch_tick", tp_catch_tick}, {"ticks", tp_tick_count},
  {NULL, NULL}
};

static void tp_const(lua_State *L, const char *name, int v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, name);
}

int luaopen_testproc(lua_State *L);

int luaopen_testproc(lua_State *L) {
  luaL_newlib(L, tp_funcs);
  tp_const(L, "SIGUSR1", SIGUSR1);
  tp_const(L, "SIGUSR2", SIGUSR2);
  tp_const(L, "SIGKILL", SIGKILL);
  tp_const(L, "SIGALRM", SIGALRM);
  tp_const(L, "SIGINT", SIGINT);
  tp_const(L, "SIGPIPE", SIGPIPE);
  tp_const(L, "SIGTERM", SIGTERM);
  return 1;
}
