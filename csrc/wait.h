/*
 * Waiting in C for the timed calls: sleeping on the readiness helpers' fds,
 * or polling with a back-off, and a sleep that a signal handler's Lua hook can
 * always cut short. Also q:arm and q:disarm. Depends on handle.h (which owns
 * the helpers), transfer.h and clock.h.
 */
#ifndef LMQ_WAIT_H
#define LMQ_WAIT_H

#include <poll.h>

#include "lua.h"

/* The Lua hooks in force when a wait began: its own thread's, and the main thread's when
 * the wait runs in a coroutine. lua.c's SIGINT handler (and any host's that wants to stop
 * a script) sets a new hook on the main thread; a wait that sees its own thread's hook
 * change returns to Lua so that the hook runs, and one in a coroutine that sees the main
 * thread's change ends (the main thread runs only once the coroutine gives way). A hook
 * already set when the wait began (a debugger's, a coverage tool's) does not stop it. */
typedef struct lmq_hook {
  lua_State *main;          /* NULL when the wait runs on the main thread */
  lua_Hook hook, main_hook;
  int mask, count, main_mask, main_count;
} lmq_hook;

enum lmq_hook_change { LMQ_HOOK_SAME, LMQ_HOOK_OWN, LMQ_HOOK_MAIN };

void lmq_hook_save(lua_State *L, lmq_hook *h);
enum lmq_hook_change lmq_hook_changed(lua_State *L, const lmq_hook *h);

/*
 * Block until one of fds (nfds may be 0) is readable, `seconds` have passed,
 * or a signal arrived. Signals are blocked from the hook check until the
 * sleep begins, so one arriving in between still cuts the sleep short.
 * Returns which hook has changed (LMQ_HOOK_SAME: none).
 */
enum lmq_hook_change lmq_block(lua_State *L, const lmq_hook *h, struct pollfd *fds, int nfds,
                               double seconds);

/* core.wait_send, wait_receive, wait_select, wait_arm, wait_disarm, block, sleep, hook_mark
 * and hook_changed
 * into the module table at `module`; q:arm and q:disarm into `methods`. */
void lmq_wait_register(lua_State *L, int module, int methods);

#endif
