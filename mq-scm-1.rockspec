rockspec_format = "3.0"
package = "mq"
version = "scm-1"
source = {
  url = "git+file:///dev/null",   -- built from a checkout with `luarocks make`
}
description = {
  summary = "System V message queues for Lua 5.4, compatible with go-ipc queue names",
  detailed = [[
    A C binding of msgget/msgsnd/msgrcv/msgctl with one full userdata handle per queue,
    and a Lua layer with coroutine-friendly timed send and receive, select over several
    queues, a messages iterator and a pluggable waiter. Queue names derive keys exactly
    as go-ipc does, so Lua, Go, C, Perl and Python programs meet on one queue.
  ]],
  license = "MIT",
  labels = { "ipc", "sysv", "message-queue", "coroutines" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
  },
  install_target = "install-lib",
  install_variables = {
    PREFIX = "$(PREFIX)",
    LUA_LIBDIR = "$(LIBDIR)",
    LUA_DIR = "$(LUADIR)",
  },
  install = {
    bin = { mq = "bin/mq" },
  },
}
