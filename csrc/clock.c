/*
 * A monotonic clock and a sleep for the Lua layer's timed calls.
 * Deadlines use CLOCK_MONOTONIC so that changing the wall clock never
 * shortens or stretches a timeout.
 */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "mq.h"

static int clock_monotonic(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* sleep(seconds): one nanosleep; a signal may end it early, and the timed
 * calls re-check their deadline anyway, so EINTR is not retried. */
static int clock_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(s > 0)) return 0;                     /* also NaN */
  if (s > 1e9) s = 1e9;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  nanosleep(&ts, NULL);
  return 0;
}

void mq_clock_register(lua_State *L) {
  lua_pushcfunction(L, clock_monotonic);
  lua_setfield(L, -2, "monotonic");
  lua_pushcfunction(L, clock_sleep);
  lua_setfield(L, -2, "sleep");
}
