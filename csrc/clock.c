/*
 * A monotonic clock for the timed calls. Deadlines use
 * CLOCK_MONOTONIC so that changing the wall clock never shortens or
 * stretches a timeout.
 */
#include <time.h>

#include "lauxlib.h"

#include "clock.h"

double lmq_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/** core.monotonic() -> seconds on CLOCK_MONOTONIC. */
static int clock_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)lmq_now());
  return 1;
}

void lmq_clock_register(lua_State *L) {
  lua_pushcfunction(L, clock_monotonic);
  lua_setfield(L, -2, "monotonic");
}
