/*
 * The kernel's message queue limits, from /proc/sys/kernel.
 * msgmax is cached for the hot path (default receive size, send size check)
 * and re-read whenever a size failure suggests an administrator changed it.
 */

/***
@module mq
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"

#include "msglimits.h"

#define DEFAULT_MSGMAX 8192L

long lmq_msgmax_cache = 0;

static long read_limit(const char *file, long fallback) {
  char path[64], text[32];
  char *end;
  long v;
  FILE *f;
  snprintf(path, sizeof path, "/proc/sys/kernel/%s", file);
  f = fopen(path, "re");
  if (f == NULL) return fallback;
  if (fgets(text, sizeof text, f) == NULL) text[0] = '\0';
  fclose(f);
  errno = 0;
  v = strtol(text, &end, 10);
  if (errno != 0 || end == text || v <= 0) return fallback;
  return v;
}

long lmq_msgmax(int refresh) {
  if (refresh || lmq_msgmax_cache == 0) lmq_msgmax_cache = read_limit("msgmax", DEFAULT_MSGMAX);
  return lmq_msgmax_cache;
}

/***
The kernel's message queue limits, read now from `/proc/sys/kernel`.
@function limits
@treturn table `msgmax` (largest message), `msgmnb` (default capacity), `msgmni`
(queues per system)
*/
int lmq_limits(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, lmq_msgmax(1));
  lua_setfield(L, -2, "msgmax");
  lua_pushinteger(L, read_limit("msgmnb", 16384L));
  lua_setfield(L, -2, "msgmnb");
  lua_pushinteger(L, read_limit("msgmni", 32000L));
  lua_setfield(L, -2, "msgmni");
  return 1;
}
