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
MANDIR       ?= $(PREFIX)/share/man
INCDIR       ?= $(PREFIX)/include
LIBDIR       ?= $(PREFIX)/lib

LUA_CFLAGS   ?= $(shell $(PKG_CONFIG) --cflags lua$(LUA_VERSION) 2>/dev/null)
OPTFLAGS     ?= -O2 -g
WARNFLAGS    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
MQ_CFLAGS    := -std=c99 -D_GNU_SOURCE -pthread -fPIC -fvisibility=hidden $(WARNFLAGS) $(OPTFLAGS) $(LUA_CFLAGS) $(CFLAGS)
LIBFLAG      ?= -shared
MQ_LIBS      := -pthread

# csrc/preload.c goes into libmq.a only, with the Lua layer compiled in.
SRCS := $(filter-out csrc/preload.c,$(wildcard csrc/*.c))
HDRS := $(wildcard csrc/*.h)
OBJS := $(SRCS:csrc/%.c=build/%.o)

# The Lua layer: module name = file.
LUA_MODULES := mq=lua/mq.lua mq.loop=lua/mq/loop.lua mq.cqueues=lua/mq/cqueues.lua mq.luv=lua/mq/luv.lua
LUA_FILES   := $(foreach m,$(LUA_MODULES),$(lastword $(subst =, ,$(m))))

# The test environment: this tree's module first, a private TMPDIR per run, and a private
# System V IPC namespace when this user may make one (root, as in CI). ftok keeps 16 bits
# of a key file's inode, so key files in two runs' TMPDIRs often share a key: isolated, two
# overlapping runs (or other programs' queues) can never meet on one queue. Without it the
# suite still runs, on the host's namespace. ISOLATE= turns it off.
ISOLATE ?= $$(unshare --ipc true 2>/dev/null && echo "unshare --ipc --")
CORE := build/mq/core.so

# The parent of each run's private directory: $TMPDIR, unless the specs' second user
# (uid 65534, whom only root can become) could not pass through it, as with a 0700
# TMPDIR; then /tmp.
RUN_PARENT = $(shell p="$${TMPDIR:-/tmp}"; if [ "$$(id -u)" = 0 ] && \
  ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$$p" 2>/dev/null; \
  then echo /tmp; else echo "$$p"; fi)
TEST_ENV = LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/?.so;;'

.PHONY: all test demo install install-lib install-embed uninstall clean bench examples lint asan tsan valgrind docs fuzz

all: $(CORE)

build/%.o: csrc/%.c $(HDRS)
	@mkdir -p build
	$(CC) $(MQ_CFLAGS) -c -o $@ $<

$(CORE): $(OBJS)
	@mkdir -p build/mq
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) $(MQ_LIBS)

# A static archive for C hosts that link mq in (see examples/embed): the core, and
# luamq_preload with the Lua layer compiled in (tools/lua2c.lua).
build/luamq_chunks.c: $(LUA_FILES) tools/lua2c.lua
	@mkdir -p build
	$(LUA) tools/lua2c.lua $(LUA_MODULES) > $@.tmp && mv $@.tmp $@

build/luamq_chunks.o: build/luamq_chunks.c csrc/preload.h
	$(CC) $(MQ_CFLAGS) -Icsrc -c -o $@ $<

libmq.a: $(OBJS) build/preload.o build/luamq_chunks.o
	rm -f $@
	$(AR) rcs $@ $^

test: $(CORE)
	@tmp=$$(mktemp -d "$(RUN_PARENT)/mq-test.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" $(ISOLATE) $(BUSTED) --lua=$(LUA) $(BUSTED_FLAGS) spec; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

demo: $(CORE)
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-demo.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" LUA=$(LUA) sh examples/producer_consumer/run; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

# The module, the command (told where the module is, so it runs with no LUA_PATH set)
# and its man page.
install: install-lib
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	sed -e 's|^-- @MQ_PATHS@$$|package.path = "$(LUA_DIR)/?.lua;" .. package.path; package.cpath = "$(LUA_LIBDIR)/?.so;" .. package.cpath|' \
	  bin/mq > $(DESTDIR)$(BINDIR)/mq.tmp && chmod 0755 $(DESTDIR)$(BINDIR)/mq.tmp && \
	  mv $(DESTDIR)$(BINDIR)/mq.tmp $(DESTDIR)$(BINDIR)/mq
	install -m 0644 man/mq.1 $(DESTDIR)$(MANDIR)/man1/mq.1

# The modules alone.
install-lib: $(CORE)
	install -d $(DESTDIR)$(LUA_LIBDIR)/mq $(DESTDIR)$(LUA_DIR)/mq
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_LIBDIR)/mq/core.so
	install -m 0644 lua/mq.lua $(DESTDIR)$(LUA_DIR)/mq.lua
	install -m 0644 lua/mq/loop.lua lua/mq/cqueues.lua lua/mq/luv.lua $(DESTDIR)$(LUA_DIR)/mq/

# For C programs that link mq in: the header and libmq.a.
install-embed: libmq.a
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)
	install -m 0644 csrc/luamq.h $(DESTDIR)$(INCDIR)/luamq.h
	install -m 0644 libmq.a $(DESTDIR)$(LIBDIR)/libmq.a

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/mq/core.so $(DESTDIR)$(LUA_DIR)/mq.lua $(DESTDIR)$(BINDIR)/mq \
	  $(DESTDIR)$(LUA_DIR)/mq/loop.lua $(DESTDIR)$(LUA_DIR)/mq/cqueues.lua $(DESTDIR)$(LUA_DIR)/mq/luv.lua \
	  $(DESTDIR)$(MANDIR)/man1/mq.1 $(DESTDIR)$(INCDIR)/luamq.h $(DESTDIR)$(LIBDIR)/libmq.a
	-rmdir $(DESTDIR)$(LUA_LIBDIR)/mq $(DESTDIR)$(LUA_DIR)/mq 2>/dev/null

clean:
	rm -rf build libmq.a doc

bench: $(CORE)
	$(TEST_ENV) LUA=$(LUA) $(if $(QUICK),BENCH_QUICK=$(QUICK)) sh bench/run

examples: $(CORE) libmq.a build/embed-host
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-examples.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" LUA=$(LUA) sh examples/run; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

# examples/embed: a C host with mq linked in from libmq.a (luamq.h, luamq_preload).
LUA_LIBS ?= $(shell $(PKG_CONFIG) --libs lua$(LUA_VERSION) 2>/dev/null)

build/embed-host: examples/embed/host.c csrc/luamq.h libmq.a
	$(CC) -std=c99 $(WARNFLAGS) $(OPTFLAGS) $(LUA_CFLAGS) -Icsrc $(CFLAGS) -o $@ \
	  examples/embed/host.c libmq.a $(LDFLAGS) $(LUA_LIBS) $(MQ_LIBS)

# `make docs`: the HTML reference (build/doc/index.html) from the doc comments at every
# public definition (config.ld), and the man page of the mq command rendered by groff
# (build/doc/mq.1.txt). Any LDoc or groff warning fails it.
LDOC ?= ldoc
GROFF ?= groff
LDOC_NOISE = -e 'using built-in markdown' -e 'found master module' -e 'reading configuration' \
  -e 'closing section from master module' -e 'markdown not found, falling back to text'

docs:
	@rm -rf build/doc; out=$$($(LDOC) . 2>&1); rc=$$?; \
	  printf '%s\n' "$$out" | grep -v $(LDOC_NOISE); \
	  if [ $$rc -ne 0 ] || printf '%s\n' "$$out" | grep -qE '^[^ ]+:[0-9]+: '; then \
	    echo "docs: LDoc reported problems"; exit 1; fi
	@$(GROFF) -man -Tutf8 -P-cbou -ww man/mq.1 > build/doc/mq.1.txt 2> build/doc/mq.1.warnings; rc=$$?; \
	  cat build/doc/mq.1.warnings; \
	  if [ $$rc -ne 0 ] || [ -s build/doc/mq.1.warnings ]; then \
	    echo "docs: groff reported problems in man/mq.1"; exit 1; fi; rm -f build/doc/mq.1.warnings

# --- Quality gates: lint, sanitizers, valgrind -----------------------------------------

CPPCHECK   ?= cppcheck
CLANG_TIDY ?= clang-tidy
LUACHECK   ?= luacheck
VALGRIND   ?= valgrind
LINT_LUA    = lua spec bin/mq $(shell find bench examples -name '*.lua' 2>/dev/null | sort)

# cppcheck (without Lua's headers: luaconf.h trips it), clang-tidy with the build's flags
# (checks in .clang-tidy), luacheck (.luacheckrc). Any finding fails. The test-only C
# module under spec/support/ is held to the same standard as csrc/.
LINT_C = $(wildcard csrc/*.c) $(wildcard spec/support/*.c) examples/embed/host.c

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
	  tmp=$$(mktemp -d "$(RUN_PARENT)/mq-asan.XXXXXX") && reports=$$(mktemp -d "$(RUN_PARENT)/mq-asan-reports.XXXXXX") && \
	  chmod 1777 "$$reports" && \
	  { LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/asan/?.so;;' \
	    TMPDIR="$$tmp" MQ_MEMTOOL=asan LD_PRELOAD="$$rt" \
	    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$$reports/asan" \
	    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$$reports/ubsan" \
	    $(ISOLATE) $(BUSTED) --lua=$(LUA) $(BUSTED_FLAGS) spec 2>&1; echo $$? > "$$reports/rc"; } | tee "$$reports/log"; \
	  rc=$$(cat "$$reports/rc"); \
	  if [ -n "$$(find "$$reports" -name 'asan*' -o -name 'ubsan*')" ] || \
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
	@tmp=$$(mktemp -d "$(RUN_PARENT)/mq-tsan.XXXXXX") && reports=$$(mktemp -d "$(RUN_PARENT)/mq-tsan-reports.XXXXXX") && \
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
	@tmp=$$(mktemp -d "$(RUN_PARENT)/mq-valgrind.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" MQ_MEMTOOL=valgrind MQ_TEST_SCALE=$(VALGRIND_SCALE) \
	  $(ISOLATE) $(VALGRIND) $(VALGRIND_FLAGS) $(LUA) $$(command -v $(BUSTED)) $(BUSTED_FLAGS) spec; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

# `make fuzz`: spec/fuzz/driver.lua calls every function and method of mq, mq.core and the
# handle with random arguments (finalizers that re-enter mq, interval timers interrupting
# blocking calls), against the ASan/UBSan build with the runtime preloaded as for `make asan`.
# MQ_FUZZ_SEED=N replays a run (the seed is printed), MQ_FUZZ_SECONDS bounds it (default 60),
# MQ_FUZZ_SKIP leaves labels or features out (see the driver). A finding (a Lua error other
# than an argument error, a broken failure triple), a sanitizer report, a crash or a hang
# fails it. The queues of the run are removed even after a crash (the driver's ledger).
MQ_FUZZ_SECONDS ?= 60

fuzz: build/asan/mq/core.so
	@rt=$$($(CC) -print-file-name=libasan.so) && test -f "$$rt" || { echo "no libasan.so for $(CC)"; exit 1; }; \
	  tmp=$$(mktemp -d "$(RUN_PARENT)/mq-fuzz.XXXXXX") && reports=$$(mktemp -d "$(RUN_PARENT)/mq-fuzz-reports.XXXXXX") && \
	  { LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/asan/?.so;;' \
	    TMPDIR="$$tmp" MQ_MEMTOOL=asan MQ_FUZZ_SECONDS=$(MQ_FUZZ_SECONDS) LD_PRELOAD="$$rt" \
	    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$$reports/asan" \
	    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$$reports/ubsan" \
	    $(ISOLATE) timeout -k 10 $$(( $(MQ_FUZZ_SECONDS) + 120 )) $(LUA) spec/fuzz/driver.lua 2>&1; echo $$? > "$$reports/rc"; } | tee "$$reports/log"; \
	  rc=$$(cat "$$reports/rc"); \
	  LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/build/asan/?.so;;' \
	    TMPDIR="$$tmp" LD_PRELOAD="$$rt" ASAN_OPTIONS=detect_leaks=0 \
	    $(LUA) spec/fuzz/driver.lua cleanup "$$tmp/fuzz-ledger"; \
	  if ! grep -q '^fuzz: [0-9]* calls in' "$$reports/log"; then \
	    echo "fuzz: the driver died (exit $$rc): a crash, a sanitizer report, a hang or a timeout, in or after:"; \
	    cat "$$tmp"/fuzz-progress-* 2>/dev/null | sed 's/ *$$//'; [ $$rc -ne 0 ] || rc=1; fi; \
	  if [ -n "$$(find "$$reports" -name 'asan*' -o -name 'ubsan*')" ] || \
	     grep -qE 'runtime error:|ERROR: AddressSanitizer' "$$reports/log"; then \
	    echo "fuzz: SANITIZER REPORTS"; cat "$$reports"/asan* "$$reports"/ubsan* 2>/dev/null; rc=1; \
	  fi; \
	  rm -rf "$$tmp" "$$reports"; exit $$rc
