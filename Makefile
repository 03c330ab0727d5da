# mq: System V message queues for Lua 5.4.
# `make` builds build/mq/core.so (the C core, `require "mq.core"`); `make test` runs the
# busted suite against this tree.

LUA          ?= lua5.4
LUA_VERSION  ?= 5.4
PKG_CONFIG   ?= pkg-config
BUSTED       ?= busted
PREFIX       ?= /usr/local
LUA_LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_DIR      ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR       ?= $(PREFIX)/bin

LUA_CFLAGS   ?= $(shell $(PKG_CONFIG) --cflags lua$(LUA_VERSION) 2>/dev/null)
OPTFLAGS     ?= -O2 -g
WARNFLAGS    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
MQ_CFLAGS    := -std=c99 -D_GNU_SOURCE -pthread -fPIC -fvisibility=hidden $(WARNFLAGS) $(OPTFLAGS) $(LUA_CFLAGS) $(CFLAGS)
LIBFLAG      ?= -shared
MQ_LIBS      := -pthread

SRCS := $(wildcard csrc/*.c)
HDRS := $(wildcard csrc/*.h)
OBJS := $(SRCS:csrc/%.c=build/%.o)

# The test environment: this tree's module first, a private TMPDIR per run.
CORE := build/mq/core.so
TEST_ENV = LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/?.so;;'

.PHONY: all test demo install install-lib uninstall clean bench examples lint asan tsan valgrind

all: $(CORE)

build/%.o: csrc/%.c $(HDRS)
	@mkdir -p build
	$(CC) $(MQ_CFLAGS) -c -o $@ $<

$(CORE): $(OBJS)
	@mkdir -p build/mq
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) $(MQ_LIBS)

# A static archive for C hosts that link mq in (see examples/embed).
libmq.a: $(OBJS)
	$(AR) rcs $@ $(OBJS)

test: $(CORE)
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-test.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" $(BUSTED) --lua=$(LUA) $(BUSTED_FLAGS) spec; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

demo: $(CORE)
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-demo.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" LUA=$(LUA) sh examples/producer_consumer/run; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

install: install-lib
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 bin/mq $(DESTDIR)$(BINDIR)/mq

# The module alone (luarocks installs and wraps bin/mq itself): the core, mq.lua and
# the Lua modules under lua/mq/ (mq.loop, mq.cqueues, mq.luv).
LUA_MODULES := $(wildcard lua/mq/*.lua)

install-lib: $(CORE)
	install -d $(DESTDIR)$(LUA_LIBDIR)/mq $(DESTDIR)$(LUA_DIR)/mq
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_LIBDIR)/mq/core.so
	install -m 0644 lua/mq.lua $(DESTDIR)$(LUA_DIR)/mq.lua
	install -m 0644 $(LUA_MODULES) $(DESTDIR)$(LUA_DIR)/mq/

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/mq/core.so $(DESTDIR)$(LUA_DIR)/mq.lua $(DESTDIR)$(BINDIR)/mq
	rm -f $(LUA_MODULES:lua/mq/%=$(DESTDIR)$(LUA_DIR)/mq/%)
	-rmdir $(DESTDIR)$(LUA_LIBDIR)/mq $(DESTDIR)$(LUA_DIR)/mq 2>/dev/null

clean:
	rm -rf build libmq.a

bench: $(CORE)
	$(TEST_ENV) LUA=$(LUA) $(if $(QUICK),BENCH_QUICK=$(QUICK)) sh bench/run

examples: $(CORE) libmq.a build/embed-host
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-examples.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" LUA=$(LUA) sh examples/run; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

# examples/embed: a C host with the core linked in from libmq.a and lua/mq.lua compiled in.
LUA_LIBS ?= $(shell $(PKG_CONFIG) --libs lua$(LUA_VERSION) 2>/dev/null)

build/mq_lua.c: lua/mq.lua examples/embed/lua2c.lua
	@mkdir -p build
	$(LUA) examples/embed/lua2c.lua lua/mq.lua mq_lua_chunk > $@.tmp && mv $@.tmp $@

build/embed-host: examples/embed/host.c build/mq_lua.c libmq.a
	$(CC) -std=c99 $(WARNFLAGS) $(OPTFLAGS) $(LUA_CFLAGS) $(CFLAGS) -o $@ \
	  examples/embed/host.c build/mq_lua.c libmq.a $(LDFLAGS) $(LUA_LIBS) $(MQ_LIBS)

# --- Quality gates: lint, sanitizers, valgrind -----------------------------------------

CPPCHECK   ?= cppcheck
CLANG_TIDY ?= clang-tidy
LUACHECK   ?= luacheck
VALGRIND   ?= valgrind
LINT_LUA    = lua spec bin/mq $(shell find bench examples -name '*.lua' 2>/dev/null | sort)

# cppcheck (without Lua's headers: luaconf.h trips it), clang-tidy with the build's flags
# (checks in .clang-tidy), luacheck (.luacheckrc). Any finding fails. The test-only C
# module under spec/support/ is held to the same standard as csrc/.
LINT_C = $(SRCS) $(wildcard spec/support/*.c)

lint:
	$(CPPCHECK) --quiet --error-exitcode=1 --std=c99 --enable=warning,style,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -I csrc $(LINT_C)
	@out=$$($(CLANG_TIDY) --quiet $(LINT_C) -- -std=c99 -D_GNU_SOURCE -Icsrc $(LUA_CFLAGS) 2>&1); rc=$$?; \
	  printf '%s\n' "$$out" | grep -v 'warnings generated\.$$'; \
	  echo "clang-tidy: $(words $(LINT_C)) files, exit $$rc"; exit $$rc
	$(LUACHECK) -q $(LINT_LUA)

# `make asan`: the core with AddressSanitizer and UBSan in build/asan/mq/core.so, the
# whole suite against it. lua5.4 is not instrumented, so the ASan runtime is preloaded (and
# inherited by every child process). Leak detection is off: lua5.4, busted and the shell
# tools they run hold memory at exit by design; `make valgrind` checks mq for leaks.
# Reports go to files; any report fails the target even when the suite passed.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OBJS  := $(SRCS:csrc/%.c=build/asan/%.o)

build/asan/%.o: csrc/%.c $(HDRS)
	@mkdir -p build/asan
	$(CC) $(MQ_CFLAGS) -O1 $(ASAN_FLAGS) -c -o $@ $<

build/asan/mq/core.so: $(ASAN_OBJS)
	@mkdir -p build/asan/mq
	$(CC) $(LIBFLAG) $(ASAN_FLAGS) $(LDFLAGS) -o $@ $(ASAN_OBJS) $(MQ_LIBS)

asan: build/asan/mq/core.so
	@rt=$$($(CC) -print-file-name=libasan.so) && test -f "$$rt" || { echo "no libasan.so for $(CC)"; exit 1; }; \
	  tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-asan.XXXXXX") && reports=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-asan-reports.XXXXXX") && \
	  chmod 1777 "$$reports" && \
	  { LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/asan/?.so;;' \
	    TMPDIR="$$tmp" MQ_MEMTOOL=asan LD_PRELOAD="$$rt" \
	    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$$reports/asan" \
	    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$$reports/ubsan" \
	    $(BUSTED) --lua=$(LUA) $(BUSTED_FLAGS) spec 2>&1; echo $$? > "$$reports/rc"; } | tee "$$reports/log"; \
	  rc=$$(cat "$$reports/rc"); \
	  if ls "$$reports"/asan* "$$reports"/ubsan* >/dev/null 2>&1 || \
	     grep -qE 'runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$$reports/log"; then \
	    echo "asan: SANITIZER REPORTS"; cat "$$reports"/asan* "$$reports"/ubsan* 2>/dev/null; rc=1; \
	  else echo "asan: no sanitizer reports"; fi; \
	  rm -rf "$$tmp" "$$reports"; exit $$rc

# `make tsan`: ThreadSanitizer on the readiness helpers and the waits that use them: the
# engine's C tests (spec/support/ready/run tsan), then the wait/wake specs against
# build/tsan/mq/core.so. lua5.4 is not instrumented, so it runs with the TSan runtime
# preloaded by build/tsan/lua5.4, a wrapper that asks the dynamic loader for it
# (ld.so --preload) rather than setting LD_PRELOAD: the shells the specs run crash with
# the runtime preloaded (dash and bash call a null interceptor before TSan initialises),
# and a lua5.4 child started through $$LUA gets the runtime from the wrapper again.
# die_after_fork=0: the fork specs fork before any helper thread starts; the one that
# starts a helper in a child forked from a process with helpers is left out under TSan,
# which does not support it (see spec/wake_spec.lua). Reports go to files; any report
# fails the target even when the specs passed.
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
TSAN_OBJS  := $(SRCS:csrc/%.c=build/tsan/%.o)
TSAN_SPECS ?= spec/wake_spec.lua spec/loop_spec.lua spec/adapters_spec.lua spec/wait_spec.lua \
  spec/api_timed_spec.lua

build/tsan/%.o: csrc/%.c $(HDRS)
	@mkdir -p build/tsan
	$(CC) $(MQ_CFLAGS) -O1 $(TSAN_FLAGS) -c -o $@ $<

build/tsan/mq/core.so: $(TSAN_OBJS)
	@mkdir -p build/tsan/mq
	$(CC) $(LIBFLAG) $(TSAN_FLAGS) $(LDFLAGS) -o $@ $(TSAN_OBJS) $(MQ_LIBS)

build/tsan/lua5.4: Makefile
	@mkdir -p build/tsan
	@rt=$$($(CC) -print-file-name=libtsan.so) && test -f "$$rt" || { echo "no libtsan.so for $(CC)"; exit 1; }; \
	  lua=$$(command -v $(LUA)) && ldso=$$(readelf -l "$$lua" | sed -n 's/.*interpreter: \(.*\)\]/\1/p') && \
	  test -x "$$ldso" || { echo "cannot find the dynamic loader of $(LUA)"; exit 1; }; \
	  printf '#!/bin/sh\n# $(LUA) with the ThreadSanitizer runtime preloaded (make tsan)\nexec %s --preload %s %s "$$@"\n' \
	    "$$ldso" "$$rt" "$$lua" > $@.tmp && chmod +x $@.tmp && mv $@.tmp $@

tsan: build/tsan/mq/core.so build/tsan/lua5.4
	CC=$(CC) sh spec/support/ready/run tsan
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-tsan.XXXXXX") && reports=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-tsan-reports.XXXXXX") && \
	  chmod 1777 "$$reports" && \
	  { LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/tsan/?.so;;' \
	    TMPDIR="$$tmp" MQ_MEMTOOL=tsan LUA='$(CURDIR)/build/tsan/lua5.4' \
	    TSAN_OPTIONS="log_path=$$reports/tsan exitcode=66 die_after_fork=0 second_deadlock_stack=1" \
	    $(BUSTED) --lua='$(CURDIR)/build/tsan/lua5.4' $(BUSTED_FLAGS) $(TSAN_SPECS) 2>&1; echo $$? > "$$reports/rc"; } | tee "$$reports/log"; \
	  rc=$$(cat "$$reports/rc"); \
	  if ls "$$reports"/tsan* >/dev/null 2>&1 || grep -q 'ThreadSanitizer' "$$reports/log"; then \
	    echo "tsan: SANITIZER REPORTS"; cat "$$reports"/tsan* 2>/dev/null; rc=1; \
	  else echo "tsan: no sanitizer reports"; fi; \
	  rm -rf "$$tmp" "$$reports"; exit $$rc

# `make valgrind`: the suite's own lua5.4 under memcheck (child lua5.4 processes are not
# traced). Any memory error, or definitely lost bytes, fails. MQ_TEST_SCALE shrinks the
# stress loops (valgrind is ~30x slower); the plain suite runs them in full.
VALGRIND_FLAGS ?= --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --child-silent-after-fork=yes --track-origins=yes
VALGRIND_SCALE ?= 0.1

valgrind: $(CORE)
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-valgrind.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" MQ_MEMTOOL=valgrind MQ_TEST_SCALE=$(VALGRIND_SCALE) \
	  $(VALGRIND) $(VALGRIND_FLAGS) $(LUA) $$(command -v $(BUSTED)) $(BUSTED_FLAGS) spec; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc
