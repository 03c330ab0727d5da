/*
 * lean: the leanest Lua 5.4 binding of msgsnd/msgrcv, built only for the
 * benchmark. Static buffers, no argument checks, no error handling beyond a
 * nil: it measures what the interpreter itself costs, so that the table shows
 * what mq adds on top. Never use it for anything else.
 *
 *   id = lean.get(key, flags)       msgget
 *   lean.rm(id)                     msgctl(IPC_RMID)
 *   ok = lean.snd(id, s [, mtype])  blocking msgsnd of s (mtype 1 by default)
 *   s = lean.rcv(id [, mtype])      blocking msgrcv of up to 8192 bytes
 *   ns = lean.now()                 CLOCK_MONOTONIC in integer ns
 */
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <time.h>

#include "lauxlib.h"
#include "lua.h"

#define MAXTEXT 8192

static struct {
  long mtype;
  char mtext[MAXTEXT];
} sbuf, rbuf;

static int l_get(lua_State *L) {
  lua_pushinteger(L, msgget((key_t)lua_tointeger(L, 1), (int)lua_tointeger(L, 2)));
  return 1;
}

static int l_rm(lua_State *L) {
  lua_pushboolean(L, msgctl((int)lua_tointeger(L, 1), IPC_RMID, NULL) == 0);
  return 1;
}

static int l_snd(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 2, &len);
  lua_Integer t = lua_tointeger(L, 3);
  sbuf.mtype = t ? (long)t : 1;
  memcpy(sbuf.mtext, s, len);
  lua_pushboolean(L, msgsnd((int)lua_tointeger(L, 1), &sbuf, len, 0) == 0);
  return 1;
}

static int l_rcv(lua_State *L) {
  ssize_t n = msgrcv((int)lua_tointeger(L, 1), &rbuf, MAXTEXT, (long)lua_tointeger(L, 2), 0);
  if (n < 0) return 0;
  lua_pushlstring(L, rbuf.mtext, (size_t)n);
  return 1;
}

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"get", l_get}, {"rm", l_rm}, {"snd", l_snd}, {"rcv", l_rcv}, {"now", l_now}, {NULL, NULL}};

int luaopen_lean(lua_State *L);

int luaopen_lean(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
