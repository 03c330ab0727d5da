/*
 * The Lua layer compiled into libmq.a (tools/lua2c.lua generates the table),
 * for luamq_preload. Not part of mq/core.so.
 */
#ifndef LMQ_PRELOAD_H
#define LMQ_PRELOAD_H

#include <stddef.h>

struct luamq_chunk {
  const char *module;       /* "mq", "mq.loop", ... */
  const char *source;       /* the file's bytes */
  size_t size;
};

extern const struct luamq_chunk luamq_chunks[];

#endif
