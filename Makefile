# mq: System V message queues for Lua 5.4.
# `make` builds mq.so; `make test` runs the busted suite against this tree.

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
MQ_CFLAGS    := -std=c99 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARNFLAGS) $(OPTFLAGS) $(LUA_CFLAGS) $(CFLAGS)
LIBFLAG      ?= -shared

SRCS := $(wildcard csrc/*.c)
HDRS := $(wildcard csrc/*.h)
OBJS := $(SRCS:csrc/%.c=build/%.o)

# The test environment: this tree's module first, a private TMPDIR per run.
TEST_ENV = LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/?.so;;'

.PHONY: all test demo install install-lib uninstall clean bench examples lint asan valgrind

all: mq.so

build/%.o: csrc/%.c $(HDRS)
	@mkdir -p build
	$(CC) $(MQ_CFLAGS) -c -o $@ $<

mq.so: $(OBJS)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS)

# A static archive for C hosts that link mq in (see examples/embed).
libmq.a: $(OBJS)
	$(AR) rcs $@ $(OBJS)

test: mq.so
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-test.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" $(BUSTED) --lua=$(LUA) $(BUSTED_FLAGS) spec; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

demo: mq.so
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mq-demo.XXXXXX") && \
	  $(TEST_ENV) TMPDIR="$$tmp" LUA=$(LUA) sh examples/producer_consumer/run; \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

install: install-lib
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 bin/mq $(DESTDIR)$(BINDIR)/mq

# The module alone (luarocks installs and wraps bin/mq itself).
install-lib: mq.so
	install -d $(DESTDIR)$(LUA_LIBDIR) $(DESTDIR)$(LUA_DIR)
	install -m 0755 mq.so $(DESTDIR)$(LUA_LIBDIR)/mq.so
	install -m 0644 lua/mq.lua $(DESTDIR)$(LUA_DIR)/mq.lua

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/mq.so $(DESTDIR)$(LUA_DIR)/mq.lua $(DESTDIR)$(BINDIR)/mq

clean:
	rm -rf build mq.so libmq.a

bench: mq.so
	$(TEST_ENV) LUA=$(LUA) $(if $(QUICK),BENCH_QUICK=$(QUICK)) sh bench/run

examples: mq.so libmq.a build/embed-host
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
	  examples/embed/host.c build/mq_lua.c libmq.a $(LDFLAGS) $(LUA_LIBS)
