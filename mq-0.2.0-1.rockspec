-- The version here must be csrc/luamq.h's LUAMQ_VERSION (spec/release_spec.lua checks).
rockspec_format = "3.0"
package = "mq"
version = "0.2.0-1"
source = {
  url = "git+file:///dev/null",   -- built from a checkout with `luarocks make`
  tag = "v0.2.0",
}
description = {
  summary = "System V message queues for Lua 5.4, compatible with go-ipc queue names",
  detailed = [[
    A C binding of msgget/msgsnd/msgrcv/msgctl with one full userdata handle per queue,
    and a Lua layer with timed send and receive that wake within microseconds of a
    message, select over several queues, a messages iterator, a small event loop and
    waiters for cqueues and luv. Queue names derive keys exactly as go-ipc does, so Lua,
    Go, C, Perl and Python programs meet on one queue.
  ]],
  license = "MIT",
  labels = { "ipc", "sysv", "message-queue", "coroutines" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "builtin",
  modules = {
    mq = "lua/mq.lua",
    ["mq.loop"] = "lua/mq/loop.lua",
    ["mq.cqueues"] = "lua/mq/cqueues.lua",
    ["mq.luv"] = "lua/mq/luv.lua",
    ["mq.core"] = {
      sources = {
        "csrc/address.c", "csrc/clock.c", "csrc/control.c", "csrc/errors.c", "csrc/handle.c",
        "csrc/listing.c", "csrc/module.c", "csrc/msglimits.c", "csrc/names.c", "csrc/process.c",
        "csrc/ready.c",
        "csrc/sysvtable.c", "csrc/transfer.c", "csrc/wait.c",
      },
      defines = { "_GNU_SOURCE" },
      incdirs = { "csrc" },
      libraries = { "pthread" },
    },
  },
  install = {
    bin = { mq = "bin/mq" },
  },
}
