/*
 * Process-wide settings for programs built on mq, such as the mq command-line tool.
 * Nothing here is used by the library itself: a library must not change a host's signal
 * dispositions behind its back. Depends on errors.h.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "process.h"

/*
 * core.ignore_sigpipe() -> true | nil, message, "system": set SIGPIPE to SIG_IGN, so that
 * a write into a pipe whose reader is gone fails with EPIPE (an error the caller can act
 * on, e.g. by putting a received message back) instead of killing the process. The setting
 * is process-wide and survives exec.
 */
int lmq_ignore_sigpipe(lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGPIPE, &sa, NULL) != 0)
    return lmq_fail(L, "ignore_sigpipe", "", LMQ_ESYSTEM, strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

/* core.getpid() -> the process id: lets mq.loop notice that it now runs in a forked child,
 * whose waits must re-arm helpers of its own. */
int lmq_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}
