/*
 * testproc: a test-only Lua 5.4 module for the mq specs (never installed or shipped).
 * Lua 5.4 on this system has no POSIX binding, so the fault specs get the few process
 * calls they need here: a no-op signal handler installed WITHOUT SA_RESTART (so a blocked
 * msgrcv/msgsnd fails with EINTR instead of being restarted), fork, _exit, waitpid,
 * kill, getpid, a count of open file descriptors taken without starting a process
 * (a child listing /proc/PID/fd can see a pipe fd the parent is about to close), and a
 * count of a process's threads by name (mq's readiness helpers are "mq-ready").
 * spec/support/proc.lua compiles it into $TMPDIR at test time.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

static const luaL_Reg tp_funcs[] = {
  {"catch", tp_catch},   {"caught", tp_caught_count}, {"fork", tp_fork},
  {"_exit", tp_exit},    {"waitpid", tp_waitpid},     {"kill", tp_kill},
  {"getpid", tp_getpid}, {"fd_count", tp_fd_count}, {"threads_named", tp_threads_named},
  {NULL, NULL}
};

int luaopen_testproc(lua_State *L);

int luaopen_testproc(lua_State *L) {
  luaL_newlib(L, tp_funcs);
  lua_pushinteger(L, SIGUSR1);
  lua_setfield(L, -2, "SIGUSR1");
  lua_pushinteger(L, SIGUSR2);
  lua_setfield(L, -2, "SIGUSR2");
  lua_pushinteger(L, SIGKILL);
  lua_setfield(L, -2, "SIGKILL");
  return 1;
}
