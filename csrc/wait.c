/*
 * The back-off loop of the timed calls, in C. The Lua layer uses it when the
 * waiter is the default one and the caller is not in a coroutine, where the
 * default waiter would only sleep in C anyway: the same polls and sleeps as
 * the Lua loop, without running the interpreter on every wake-up (which cost
 * a third more idle CPU than a C poller with the same back-off).
 */
#include "mq.h"

/*
 * wait(q, a, b, op, deadline, spins, min, max): poll(q, a, b, op) until it
 * gives something other than false; between polls, `spins` immediate
 * retries, then sleeps from `min` seconds doubling to `max`, never past
 * `deadline` (monotonic seconds, may be inf). Returns what the poll gave, or
 * false, "deadline" once it has passed, or false, "signal" when a signal cut
 * a sleep short, so that the Lua caller can let a hook (Ctrl-C) run.
 */
static int wait_with(lua_State *L, lua_CFunction poll) {
  double deadline = (double)luaL_checknumber(L, 5);
  lua_Integer spins = luaL_checkinteger(L, 6);
  double step = (double)luaL_checknumber(L, 7);
  double cap = (double)luaL_checknumber(L, 8);
  lua_Integer tries = 0;
  for (;;) {
    int n = poll(L);
    double now, left;
    if (n != 1 || !lua_isboolean(L, -1) || lua_toboolean(L, -1)) return n;
    lua_pop(L, 1);
    now = mq_now();
    if (now >= deadline) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "deadline");
      return 2;
    }
    if (++tries <= spins) continue;
    left = deadline - now;
    if (mq_sleep(step < left ? step : left) != 0) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "signal");
      return 2;
    }
    step *= 2;
    if (step > cap) step = cap;
  }
}

static int wait_send(lua_State *L) { return wait_with(L, mq_poll_send); }
static int wait_receive(lua_State *L) { return wait_with(L, mq_poll_receive); }

void mq_wait_register(lua_State *L) {
  lua_pushcfunction(L, wait_send);
  lua_setfield(L, -2, "wait_send");
  lua_pushcfunction(L, wait_receive);
  lua_setfield(L, -2, "wait_receive");
}
