# smtpguard: build/libsmtpguard.so, its checker, test clients, tests, demo.
CC      ?= cc
PY      := /usr/bin/python3
BUILD   := build$(if $(filter 1,$(SANITIZE)),/asan)
CFLAGS  ?= -O2 -g      # CPPFLAGS, LDFLAGS too (the package passes dpkg-buildflags')
ifeq ($(SANITIZE),1)   # ASan+UBSan build in build/asan; the test run: tests/fuzz/fuzz.mk
override CC := $(CC) -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
WARN    := -Wall -Wextra -Werror
BASE    := -std=gnu11 -D_GNU_SOURCE $(WARN) -Ipolicy -Ishim

SHIM_SRC := $(sort $(wildcard shim/*.c)) policy/policy.c
SHIM_OBJ := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libsmtpguard.so
CHECKER  := $(BUILD)/smtpguard-policy
INDEXER  := $(BUILD)/smtpguard-trust-index
CLIENTS  := $(patsubst tests/clients/%.c,$(BUILD)/clients/%,$(wildcard tests/clients/*.c))

.PHONY: all clients test deps demo clean
TEST_ARGS ?=
all: $(LIB) $(CHECKER) $(INDEXER)

$(BUILD)/obj/%.o: %.c $(wildcard shim/*.h policy/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -include shim/libc_compat.h -c $< -o $@

# Without the C start files (shim/startfiles.c says why), but with crtendS.o's
# end-of-unwind-table marker; -z nodelete: never unmapped (fork handlers stay valid).
# -z lazy after LDFLAGS: the package's hardening flags ask for -z now, which makes
# every process on the machine bind all ~70 imports at exec (+49,000 instructions
# for /bin/true, issue 15); relro stays. The programs (checker, indexer) keep -z now.
CRTEND   := $(shell $(CC) -print-file-name=crtendS.o)
$(LIB): $(SHIM_OBJ) shim/smtpguard.map
	$(CC) $(LDFLAGS) -shared -nostartfiles -o $@ $(SHIM_OBJ) $(filter /%,$(CRTEND)) \
	    -Wl,--version-script=shim/smtpguard.map \
	    -Wl,-z,defs -Wl,-z,relro -Wl,-z,lazy -Wl,-z,nodelete -ldl -lpthread

$(CHECKER): policy/policy.c policy/policy_check.c policy/policy.h
	@mkdir -p $(BUILD)
	$(CC) $(BASE) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ policy/policy.c policy/policy_check.c

$(INDEXER): scripts/smtpguard-trust-index.c shim/trust_cache.c shim/trust_index.c shim/name_key.c \
	    $(wildcard shim/*.h)
	@mkdir -p $(BUILD)
	$(CC) $(BASE) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^)

clients: $(CLIENTS)
$(BUILD)/clients/%: tests/clients/%.c $(wildcard tests/clients/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -lssl -lcrypto -lgnutls -lpthread

deps:
	scripts/install-deps

test: deps all clients
	$(PY) -m pytest -n 2 $(TEST_ARGS) tests

demo: deps all
	scripts/demo

clean:
	rm -rf $(BUILD)

# Further targets (install, fuzz, bench, stress, ...) live beside what they build.
include $(sort $(wildcard scripts/*.mk tests/*/*.mk))
