/*
 * A monotonic clock and a sleep for the timed calls. Deadlines use
 * CLOCK_MONOTONIC so that changing the wall clock never shortens or
 * stretches a timeout.
 */
#include <errno.h>
#include <time.h>

#include "lauxlib.h"

#include "clock.h"

double lmq_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One nanosleep; the timed calls re-check their deadline anyway, so EINTR is
 * reported rather than retried. */
int lmq_sleep(double s) {
  struct timespec ts;
  if (!(s > 0)) return 0;                     /* also NaN */
  if (s > 1e9) s = 1e9;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  return nanosleep(&ts, NULL) == 0 || errno != EINTR ? 0 : -1;
}

/** core.monotonic() -> seconds on CLOCK_MONOTONIC. */
static int clock_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)lmq_now());
  return 1;
}

/** core.sleep(seconds): the default waiter's sleep outside a coroutine. */
static int clock_sleep(lua_State *L) {
  lmq_sleep((double)luaL_checknumber(L, 1));
  return 0;
}

void lmq_clock_register(lua_State *L) {
  lua_pushcfunction(L, clock_monotonic);
  lua_setfield(L, -2, "monotonic");
  lua_pushcfunction(L, clock_sleep);
  lua_setfield(L, -2, "sleep");
}
