/*
 * Waiting in C for the timed calls. The Lua layer runs these loops when the
 * waiter is the default one and the caller is not in a coroutine, where the
 * default waiter would only sleep in C anyway.
 *
 * A receive (and select) that finds nothing arms the handle's readiness
 * helper (ready.c) and sleeps in ppoll on its fd until a message may be there,
 * the queue is gone, or the deadline: no CPU while idle, a wake-up within
 * tens of microseconds. Without helpers (switched off, or none could start)
 * and for sends (a full queue gives no signal) the loop polls with a back-off
 * instead. Either way a wait that ends disarms the helpers it armed.
 */

/***
@module mq
*/
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
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
  h->main = NULL;
  h->main_hook = NULL;
  h->main_mask = h->main_count = 0;
  if (lua_pushthread(L) == 0) {          /* not the main thread: watch that one too */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    h->main = lua_tothread(L, -1);
    lua_pop(L, 1);
    h->main_hook = lua_gethook(h->main);
    h->main_mask = lua_gethookmask(h->main);
    h->main_count = lua_gethookcount(h->main);
  }
  lua_pop(L, 1);
}

enum lmq_hook_change lmq_hook_changed(lua_State *L, const lmq_hook *h) {
  if (lua_gethook(L) != h->hook || lua_gethookmask(L) != h->mask ||
      lua_gethookcount(L) != h->count)
    return LMQ_HOOK_OWN;
  if (h->main != NULL && (lua_gethook(h->main) != h->main_hook ||
                          lua_gethookmask(h->main) != h->main_mask ||
                          lua_gethookcount(h->main) != h->main_count))
    return LMQ_HOOK_MAIN;
  return LMQ_HOOK_SAME;
}

enum lmq_hook_change lmq_block(lua_State *L, const lmq_hook *h, struct pollfd *fds, int nfds,
                               double seconds) {
  sigset_t all, old;
  struct timespec ts, *tsp = NULL;
  enum lmq_hook_change changed;
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
  if (changed == LMQ_HOOK_SAME) ppoll(fds, (nfds_t)nfds, tsp, &old);  /* sleeps with the caller's mask */
  pthread_sigmask(SIG_SETMASK, &old, NULL);             /* a signal still pending runs here */
  return changed != LMQ_HOOK_SAME ? changed : lmq_hook_changed(L, h);
}

/*
 * A hook mark (core.hook_mark): an lmq_hook kept by a timed call that goes back to Lua and
 * comes back, or by mq.loop for a whole run. Its `main` is never read: the main thread is
 * looked up afresh, so a forged mark holds no pointer that is ever followed and only
 * compares wrong.
 */
#define HOOK_MARK "mq.hook_mark"

static void push_mark(lua_State *L, const lmq_hook *h) {
  lmq_hook *m = (lmq_hook *)lua_newuserdatauv(L, sizeof *m, 0);
  *m = *h;
  m->main = NULL;
  luaL_setmetatable(L, HOOK_MARK);
}

/* The hooks as they are now into *h, or, when a mark is at `arg`, as the mark has them;
 * 1 when a mark was given. */
static int load_mark(lua_State *L, int arg, lmq_hook *h) {
  const lmq_hook *m;
  lua_State *main_thread;
  lmq_hook_save(L, h);
  if (lua_isnoneornil(L, arg)) return 0;
  m = (const lmq_hook *)luaL_checkudata(L, arg, HOOK_MARK);
  luaL_argcheck(L, lua_rawlen(L, arg) == sizeof *m, arg, "not a hook mark");
  main_thread = h->main;
  *h = *m;
  h->main = main_thread;
  return 1;
}

/** core.hook_mark() -> a mark of this thread's hooks (and the main thread's). */
static int core_hook_mark(lua_State *L) {
  lmq_hook h;
  lmq_hook_save(L, &h);
  push_mark(L, &h);
  return 1;
}

/** core.hook_changed(mark) -> nil, "signal" (this thread's hook changed since the mark)
 * or "interrupted" (the main thread's, seen from a coroutine). */
static int core_hook_changed(lua_State *L) {
  lmq_hook h;
  enum lmq_hook_change c;
  luaL_checkudata(L, 1, HOOK_MARK);       /* not optional here */
  load_mark(L, 1, &h);
  c = lmq_hook_changed(L, &h);
  if (c == LMQ_HOOK_SAME)
    lua_pushnil(L);
  else if (c == LMQ_HOOK_OWN)
    lua_pushliteral(L, "signal");
  else
    lua_pushliteral(L, "interrupted");
  return 1;
}

/* A number argument that must not be NaN. */
static double check_time(lua_State *L, int arg) {
  double v = (double)luaL_checknumber(L, arg);
  luaL_argcheck(L, !isnan(v), arg, "NaN");
  return v;
}

/* The back-off settings at args first .. first+3: deadline, spins, min, max. */
typedef struct backoff {
  double deadline, step, cap;
  lua_Integer spins, tries;
} backoff;

static void check_backoff(lua_State *L, int first, backoff *b) {
  b->deadline = check_time(L, first);
  b->spins = luaL_checkinteger(L, first + 1);
  b->step = check_time(L, first + 2);
  b->cap = check_time(L, first + 3);
  b->tries = 0;
  luaL_argcheck(L, b->spins >= 0, first + 1, "spins must be >= 0");
  luaL_argcheck(L, b->step > 0 && isfinite(b->step), first + 2, "min must be > 0 and finite");
  luaL_argcheck(L, b->cap >= b->step && isfinite(b->cap), first + 3,
                "max must be >= min and finite");
}

/* What a round of polls that found nothing leads to: poll again, the deadline, a hook of
 * this thread to run (back to Lua), or the main thread's (end the wait: interrupted). */
enum next { AGAIN, DEADLINE, SIGNAL, INTERRUPTED };

static enum next on_hook(enum lmq_hook_change c) {
  return c == LMQ_HOOK_SAME ? AGAIN : c == LMQ_HOOK_OWN ? SIGNAL : INTERRUPTED;
}

/* After an empty round: the deadline, a changed hook, a spin, or a sleep,
 * on `fds` when given (readiness), else a back-off step. */
static enum next pause_round(lua_State *L, const lmq_hook *h, backoff *b, struct pollfd *fds, int nfds) {
  double now = lmq_now(), left = b->deadline - now;
  enum next n;
  if (now >= b->deadline) return DEADLINE;
  if ((n = on_hook(lmq_hook_changed(L, h))) != AGAIN) return n;
  if (++b->tries <= b->spins) return AGAIN;
  if (fds != NULL) return on_hook(lmq_block(L, h, fds, nfds, left));
  if ((n = on_hook(lmq_block(L, h, NULL, 0, b->step < left ? b->step : left))) != AGAIN) return n;
  b->step *= 2;
  if (b->step > b->cap) b->step = b->cap;
  return AGAIN;
}

static int ended(lua_State *L, enum next why) {
  lua_pushboolean(L, 0);
  if (why == DEADLINE)
    lua_pushliteral(L, "deadline");
  else if (why == SIGNAL)
    lua_pushliteral(L, "signal");
  else
    lua_pushliteral(L, "interrupted");
  return 2;
}

/*
 * wait(q, a, b, op, deadline, spins, min, max [, helpers [, mark]]): poll(q, a, b, op)
 * until it gives something other than false; between polls, `spins`
 * immediate retries, then sleeps: on q's readiness when `helpers` (receives
 * only), else from `min` seconds doubling to `max`; never past `deadline`
 * (monotonic seconds, may be inf). Returns what the poll gave, or false,
 * "deadline" once it has passed, or false, "signal" when the Lua hook changed
 * (a signal handler wants Lua to run: lua.c's Ctrl-C) and then a mark to call
 * again with, or false, "interrupted" when, in a coroutine, the main thread's
 * hook changed. Called again with that mark, the wait compares hooks with the
 * ones it began with, and ends with "interrupted" at once if they still differ:
 * the hook could not run (in a finalizer, Lua runs no hook).
 */
static int wait_with(lua_State *L, lua_CFunction poll, int receive) {
  lmq_queue *q = lmq_check_queue(L, 1);
  backoff b;
  lmq_hook hook;
  long msgtyp = 0;
  int msgflg = 0, watch, n, fd = -1;
  enum next why = AGAIN;
  struct pollfd pfd;
  check_backoff(L, 5, &b);
  watch = receive && lua_toboolean(L, 9) && lmq_opt_selector(L, 2, &msgtyp, &msgflg) == 1;
  if (load_mark(L, 10, &hook) && lmq_hook_changed(L, &hook) != LMQ_HOOK_SAME)
    return ended(L, INTERRUPTED);
  lua_settop(L, 8);
  for (;;) {
    n = poll(L);
    if (n != 1 || !lua_isboolean(L, -1) || lua_toboolean(L, -1)) break;
    lua_pop(L, 1);
    pfd.fd = -1;
    if (watch && b.tries >= b.spins) {
      /* Armed again each round: a helper that fired for a message someone else
       * took waits anew; one still waiting costs nothing. */
      pfd.fd = fd = lmq_handle_arm(q, fd, msgtyp, msgflg);
      pfd.events = POLLIN;
      if (pfd.fd < 0) watch = 0;         /* no helper: poll from here on */
    }
    why = pause_round(L, &hook, &b, pfd.fd >= 0 ? &pfd : NULL, 1);
    if (why != AGAIN) {
      n = ended(L, why);
      break;
    }
  }
  lmq_handle_disarm(q, fd);              /* nothing if a finalizer closed q meanwhile */
  if (why == SIGNAL) {
    push_mark(L, &hook);
    n = 3;
  }
  return n;
}

/** core.wait_send(q, data, mtype, op, deadline, spins, min, max, _, mark). */
static int wait_send(lua_State *L) { return wait_with(L, lmq_poll_send, 0); }

/** core.wait_receive(q, selector, maxsize, op, deadline, spins, min, max, helpers, mark). */
static int wait_receive(lua_State *L) { return wait_with(L, lmq_poll_receive, 1); }

/* Entry i of select's list: its handle pushed on the stack, and its selector
 * (the entry's own, or the default at index 2) parsed into *msgtyp and *msgflg;
 * *ok as lmq_opt_selector says. */
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

#define SELECT_TOP 8   /* the stack: select's 7 arguments, then its pollfd array */

/* One round of select: 0 when no queue had a message (stack back at SELECT_TOP),
 * else the count of results pushed. With fds, also arm each queue into fds[i-1]:
 * false if one could not be armed. */
static int select_round(lua_State *L, lua_Integer n, const char *op, struct pollfd *fds,
                        int *armed) {
  lua_Integer i;
  for (i = 1; i <= n; i++) {
    long msgtyp = 0;
    int msgflg = 0, ok, r;
    lmq_queue *q = select_entry(L, i, &msgtyp, &msgflg, &ok);
    if (ok != 1) return lmq_fail_selector(L, op, q, ok);
    r = lmq_try_receive(L, lua_gettop(L), q, msgtyp, msgflg, op);
    if (r != 1) return 3;                  /* handle, data, type; or nil, message, code */
    if (fds != NULL && *armed) {
      fds[i - 1].fd = lmq_handle_arm(q, fds[i - 1].fd, msgtyp, msgflg);
      fds[i - 1].events = POLLIN;
      if (fds[i - 1].fd < 0) *armed = 0;
    }
    lua_settop(L, SELECT_TOP);             /* false: the next queue */
  }
  return 0;
}

/* Disarm the helpers select armed (fds[i-1] for entry i), leaving the stack as
 * it was. Entries are not checked again: one a finalizer replaced meanwhile is
 * skipped, and its helper goes when its handle closes. */
static void select_disarm(lua_State *L, lua_Integer n, const struct pollfd *fds) {
  lua_Integer i;
  if (fds == NULL) return;
  for (i = 1; i <= n; i++) {
    lmq_queue *q;
    if (lua_rawgeti(L, 1, i) == LUA_TTABLE && lmq_to_queue(L, -1) == NULL) {
      lua_rawgeti(L, -1, 1);
      lua_remove(L, -2);
    }
    q = lmq_to_queue(L, -1);
    if (q != NULL) lmq_handle_disarm(q, fds[i - 1].fd);
    lua_pop(L, 1);
  }
}

/*
 * wait_select(list, selector, op, deadline, spins, min, max [, helpers]): the
 * first queue of the list to yield a message, tried in list order at each
 * round; between rounds, sleeps on every queue's readiness at once (helpers),
 * or backs off as wait() does. Returns handle, data, type; or the failure of
 * the first entry that cannot be polled; or false, "deadline" / "signal" /
 * "interrupted".
 */
static int wait_select(lua_State *L) {
  const char *op = luaL_checkstring(L, 3);
  int helpers = lua_toboolean(L, 8), armed = 0, n = 0;
  struct pollfd *fds = NULL;
  lua_Integer count;
  backoff b;
  lmq_hook hook;
  enum next why = AGAIN;
  luaL_checktype(L, 1, LUA_TTABLE);
  check_backoff(L, 4, &b);
  count = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, count > 0 && count <= 1000000, 1, "1 to 1000000 queues expected");
  if (load_mark(L, 9, &hook) && lmq_hook_changed(L, &hook) != LMQ_HOOK_SAME)
    return ended(L, INTERRUPTED);         /* as in wait_with */
  lua_settop(L, SELECT_TOP - 1);
  lua_pushnil(L);                          /* SELECT_TOP: the pollfd array, once needed */
  for (;;) {
    if (helpers && b.tries >= b.spins) {     /* armed is 0 at the top of each round */
      if (fds == NULL) {
        lua_Integer i;
        fds = (struct pollfd *)lua_newuserdatauv(L, (size_t)count * sizeof *fds, 0);
        lua_replace(L, SELECT_TOP);
        for (i = 0; i < count; i++) fds[i].fd = -1;
      }
      armed = 1;                           /* armed in the round below */
    }
    n = select_round(L, count, op, armed ? fds : NULL, &armed);
    if (n != 0) break;
    if (helpers && fds != NULL && !armed) helpers = 0;  /* one could not be armed: poll */
    why = pause_round(L, &hook, &b, armed ? fds : NULL, (int)count);
    armed = 0;                             /* re-armed each round, as in wait() */
    if (why != AGAIN) {
      n = ended(L, why);
      break;
    }
  }
  select_disarm(L, count, fds);
  if (why == SIGNAL) {
    push_mark(L, &hook);
    n = 3;
  }
  return n;
}

/***
Arm the handle's readiness helper for event loops: the fd returned becomes
readable when a message matching `selector` may be in the queue, or the queue
is gone. After a receive that finds nothing (`again`), call `arm` again; a
blocking `receive` on the handle stops the helper.
@function queue:arm
@within queue
@tparam[opt=0] integer|table selector as for `receive`
@treturn integer the fd, to poll for reading
@return[2] nil, message, code: `closed`, `invalid`, `denied`, `system`
*/
static int q_arm(lua_State *L) {
  static const char op[] = "arm";
  lmq_queue *q = lmq_check_queue(L, 1);
  long msgtyp = 0;
  int msgflg = 0, ok = lmq_opt_selector(L, 2, &msgtyp, &msgflg), fd;
  if (q->id < 0 || ok != 1) return lmq_fail_selector(L, op, q, ok);
  if (!(q->flags & LMQ_O_RDONLY)) return lmq_fail_queue(L, op, q, LMQ_EDENIED, "the handle is write-only");
  fd = lmq_handle_arm_user(q, msgtyp, msgflg);
  if (fd < 0) {
    int err = errno;
    return lmq_fail_queue(L, op, q, lmq_code_of_errno(err), strerror(err));
  }
  lua_pushinteger(L, fd);
  return 1;
}

/***
Stop the handle's readiness helper and close its fd.
@function queue:disarm
@within queue
@treturn boolean true
@return[2] nil, message, `closed`
*/
static int q_disarm(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  if (q->id < 0) return lmq_fail_closed(L, "disarm", q);
  lmq_handle_disarm_user(q);
  lua_pushboolean(L, 1);
  return 1;
}

/** core.wait_arm(q, selector [, fd]) -> fd | nil: arm a helper for a timed call's
 * own wait (the Lua loop with an fd-aware waiter): a new one, or the wait's
 * helper `fd` again. nil when no helper can watch. */
static int wait_arm(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  long msgtyp = 0;
  int msgflg = 0, fd = -1;
  lua_Integer old = luaL_optinteger(L, 3, -1);
  luaL_argcheck(L, old >= -1 && old <= 2147483647, 3, "not an fd");
  if (lmq_opt_selector(L, 2, &msgtyp, &msgflg) == 1) fd = lmq_handle_arm(q, (int)old, msgtyp, msgflg);
  if (fd < 0) return 0;
  lua_pushinteger(L, fd);
  return 1;
}

/** core.wait_disarm(q, fd): the end of the wait whose helper is `fd`. */
static int wait_disarm(lua_State *L) {
  lmq_queue *q = lmq_check_queue(L, 1);
  lua_Integer fd = luaL_checkinteger(L, 2);
  luaL_argcheck(L, fd >= -1 && fd <= 2147483647, 2, "not an fd");
  lmq_handle_disarm(q, (int)fd);
  return 0;
}

/** core.sleep(seconds): the default waiter's sleep outside a coroutine (nothing for <= 0 or
 * NaN). It is lmq_block on no fds, so a signal whose handler changes a hook ends it early,
 * also one that lands between the hook check and the sleep. */
static int core_sleep(lua_State *L) {
  double seconds = (double)luaL_checknumber(L, 1);
  lmq_hook hook;
  lmq_hook_save(L, &hook);
  lmq_block(L, &hook, NULL, 0, seconds > 0 ? seconds : 0);
  return 0;
}

/** core.block(fds, seconds [, mark]) -> ready | false, "signal" | false,
 * "interrupted": sleep until one of the fds (an array of integers, possibly
 * empty) is readable or `seconds` (inf: for ever) have passed; `ready` lists
 * the readable fds. A Lua hook changed since the call (or since `mark`) ends it
 * early: "signal" for this thread's (a signal handler's), "interrupted" for the
 * main thread's, seen from a coroutine. */
static int core_block(lua_State *L) {
  lua_Integer n, i;
  struct pollfd *fds;
  double seconds;
  lmq_hook hook;
  enum lmq_hook_change changed;
  int count = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  seconds = check_time(L, 2);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n <= 1000000, 1, "at most 1000000 fds");
  load_mark(L, 3, &hook);
  fds = (struct pollfd *)lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *fds, 0);
  for (i = 1; i <= n; i++) {
    int isint;
    lua_Integer fd = (lua_rawgeti(L, 1, i), lua_tointegerx(L, -1, &isint));
    lua_pop(L, 1);
    luaL_argcheck(L, isint && fd >= 0 && fd <= 2147483647, 1, "fds must be integers >= 0");
    fds[i - 1].fd = (int)fd;
    fds[i - 1].events = POLLIN;
    fds[i - 1].revents = 0;
  }
  changed = lmq_block(L, &hook, fds, (int)n, seconds);
  if (changed != LMQ_HOOK_SAME) {
    lua_pushboolean(L, 0);
    if (changed == LMQ_HOOK_OWN)
      lua_pushliteral(L, "signal");
    else
      lua_pushliteral(L, "interrupted");
    return 2;
  }
  lua_createtable(L, 1, 0);
  for (i = 0; i < n; i++)
    if (fds[i].revents != 0) {
      lua_pushinteger(L, fds[i].fd);
      lua_rawseti(L, -2, ++count);
    }
  return 1;
}

void lmq_wait_register(lua_State *L, int module, int methods) {
  static const luaL_Reg core_waits[] = {
    {"wait_send", wait_send},
    {"wait_receive", wait_receive},
    {"wait_select", wait_select},
    {"wait_arm", wait_arm},
    {"wait_disarm", wait_disarm},
    {"block", core_block},
    {"sleep", core_sleep},
    {"hook_mark", core_hook_mark},
    {"hook_changed", core_hook_changed},
    {NULL, NULL}
  };
  static const luaL_Reg handle_waits[] = {
    {"arm", q_arm},
    {"disarm", q_disarm},
    {NULL, NULL}
  };
  luaL_newmetatable(L, HOOK_MARK);         /* its __name is all it needs */
  lua_pop(L, 1);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, core_waits, 0);
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, handle_waits, 0);
  lua_pop(L, 2);
}
