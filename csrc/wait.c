/*
 * The back-off loop of the timed calls, in C. The Lua layer uses it when the
 * waiter is the default one and the caller is not in a coroutine, where the
 * default waiter would only sleep in C anyway: the same polls and sleeps as
 * the Lua loop, without running the interpreter on every wake-up.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "lauxlib.h"

#include "clock.h"
#include "handle.h"
#include "transfer.h"
#include "wait.h"

void lmq_hook_save(lua_State *L, lmq_hook *h) {
  h->hook = lua_gethook(L);
  h->mask = lua_gethookmask(L);
  h->count = lua_gethookcount(L);
}

int lmq_hook_changed(lua_State *L, const lmq_hook *h) {
  return lua_gethook(L) != h->hook || lua_gethookmask(L) != h->mask ||
         lua_gethookcount(L) != h->count;
}

int lmq_block(lua_State *L, const lmq_hook *h, struct pollfd *fds, int nfds, double seconds) {
  sigset_t all, old;
  struct timespec ts, *tsp = NULL;
  int changed;
  if (seconds < 1e9) {                   /* also finite; longer is for ever */
    if (!(seconds > 0)) seconds = 0;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
    tsp = &ts;
  }
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  changed = lmq_hook_changed(L, h);
  if (!changed) ppoll(fds, (nfds_t)nfds, tsp, &old);   /* sleeps with the caller's mask */
  pthread_sigmask(SIG_SETMASK, &old, NULL);             /* a signal still pending runs here */
  return changed || lmq_hook_changed(L, h);
}

/* A number argument that must not be NaN. */
static double check_time(lua_State *L, int arg) {
  double v = (double)luaL_checknumber(L, arg);
  luaL_argcheck(L, !isnan(v), arg, "NaN");
  return v;
}

/*
 * wait(q, a, b, op, deadline, spins, min, max): poll(q, a, b, op) until it
 * gives something other than false; between polls, `spins` immediate
 * retries, then sleeps from `min` seconds doubling to `max`, never past
 * `deadline` (monotonic seconds, may be inf). Returns what the poll gave, or
 * false, "deadline" once it has passed, or false, "signal" when the Lua hook
 * changed (a signal handler wants Lua to run: lua.c's Ctrl-C).
 */
static int wait_with(lua_State *L, lua_CFunction poll) {
  double deadline = check_time(L, 5);
  lua_Integer spins = luaL_checkinteger(L, 6);
  double step = check_time(L, 7);
  double cap = check_time(L, 8);
  lua_Integer tries = 0;
  lmq_hook hook;
  luaL_argcheck(L, spins >= 0, 6, "spins must be >= 0");
  luaL_argcheck(L, step > 0 && isfinite(step), 7, "min must be > 0 and finite");
  luaL_argcheck(L, cap >= step && isfinite(cap), 8, "max must be >= min and finite");
  lmq_hook_save(L, &hook);
  for (;;) {
    int n = poll(L);
    double now;
    if (n != 1 || !lua_isboolean(L, -1) || lua_toboolean(L, -1)) return n;
    lua_pop(L, 1);
    now = lmq_now();
    if (now >= deadline) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "deadline");
      return 2;
    }
    if (lmq_hook_changed(L, &hook)) break;
    if (++tries <= spins) continue;
    if (lmq_block(L, &hook, NULL, 0, step < deadline - now ? step : deadline - now)) break;
    step *= 2;
    if (step > cap) step = cap;
  }
  lua_pushboolean(L, 0);
  lua_pushliteral(L, "signal");
  return 2;
}

/* Entry i of select's list: the handle, and its selector (the entry's own, or
 * the default at index 2), checked and pushed: handle at the returned index. */
static lmq_queue *select_entry(lua_State *L, lua_Integer i, long *msgtyp, int *msgflg, int *ok) {
  lmq_queue *q;
  int sel = 2;
  if (lua_rawgeti(L, 1, i) == LUA_TTABLE && lmq_to_queue(L, -1) == NULL) {
    if (lua_rawgeti(L, -1, 2) == LUA_TNIL) {   /* {handle}: the default selector */
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 1);
      lua_remove(L, -2);
    } else {                                   /* {handle, selector} */
      lua_rawgeti(L, -2, 1);
      lua_remove(L, -3);
      sel = lua_gettop(L) - 1;
    }
  }
  q = lmq_to_queue(L, -1);
  if (q == NULL) {
    lua_pushfstring(L, "handle or {handle, selector} expected at index %d", (int)i);
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  *ok = lmq_opt_selector(L, sel, msgtyp, msgflg);
  if (sel != 2) lua_remove(L, sel);        /* the entry's selector, below the handle */
  return q;
}

/*
 * wait_select(list, selector, op, deadline, spins, min, max): the first queue
 * of the list to yield a message, tried in list order at each round; the
 * rounds back off as wait() does. Returns handle, data, type; or the failure
 * of the first entry that cannot be polled; or false, "deadline" / "signal".
 */
static int wait_select(lua_State *L) {
  const char *op = luaL_checkstring(L, 3);
  double deadline = check_time(L, 4);
  lua_Integer spins = luaL_checkinteger(L, 5);
  double step = check_time(L, 6);
  double cap = check_time(L, 7);
  lua_Integer tries = 0, n, i;
  lmq_hook hook;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argcheck(L, spins >= 0, 5, "spins must be >= 0");
  luaL_argcheck(L, step > 0 && isfinite(step), 6, "min must be > 0 and finite");
  luaL_argcheck(L, cap >= step && isfinite(cap), 7, "max must be >= min and finite");
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n > 0, 1, "no queues given");
  lua_settop(L, 7);
  lmq_hook_save(L, &hook);
  for (;;) {
    double now;
    for (i = 1; i <= n; i++) {
      long msgtyp = 0;
      int msgflg = 0, ok, r;
      lmq_queue *q = select_entry(L, i, &msgtyp, &msgflg, &ok);
      if (ok != 1) {
        if (q->id < 0) return lmq_fail_closed(L, op, q);
        if (ok == -1)
          return lmq_fail_queue(L, op, q, LMQ_EUNSUPPORTED, "this system lacks MSG_EXCEPT");
        return lmq_fail_queue(L, op, q, LMQ_EINVALID,
                              "the selector must be an integer type or {except = type >= 1}");
      }
      r = lmq_try_receive(L, lua_gettop(L), q, msgtyp, msgflg, op);
      if (r == 2) return 3;                /* handle, data, type */
      if (r == 3) return 3;                /* nil, message, code */
      lua_settop(L, 7);                    /* false: the next queue */
    }
    now = lmq_now();
    if (now >= deadline) break;
    if (lmq_hook_changed(L, &hook)) goto signal;
    if (++tries <= spins) continue;
    if (lmq_block(L, &hook, NULL, 0, step < deadline - now ? step : deadline - now)) goto signal;
    step *= 2;
    if (step > cap) step = cap;
  }
  lua_pushboolean(L, 0);
  lua_pushliteral(L, "deadline");
  return 2;
signal:
  lua_pushboolean(L, 0);
  lua_pushliteral(L, "signal");
  return 2;
}

/** core.wait_send(q, data, mtype, op, deadline, spins, min, max). */
static int wait_send(lua_State *L) { return wait_with(L, lmq_poll_send); }

/** core.wait_receive(q, mtype, maxsize, op, deadline, spins, min, max). */
static int wait_receive(lua_State *L) { return wait_with(L, lmq_poll_receive); }

void lmq_wait_register(lua_State *L) {
  lua_pushcfunction(L, wait_send);
  lua_setfield(L, -2, "wait_send");
  lua_pushcfunction(L, wait_receive);
  lua_setfield(L, -2, "wait_receive");
  lua_pushcfunction(L, wait_select);
  lua_setfield(L, -2, "wait_select");
}
