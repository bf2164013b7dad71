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

# Makefile: its flags decide where the code lies (below), so a change rebuilds.
$(BUILD)/obj/%.o: %.c $(wildcard shim/*.h policy/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -ffunction-sections -fdata-sections \
	    -include shim/libc_compat.h -c $< -o $@

# Where the code lies (issue 15, memory): the kernel maps a library's cached
# file pages 64 KiB at a time around each fault (fault-around; with every
# large page-cache folio the block touches), so a process pays for every such
# block of text it touches. The code every process runs is a mapping of its
# own, at most 64 KiB, that starts with the PLT (lazy binding runs it anyway):
# constructors, the objects of start-up, policy load, the descriptor table and
# connect/read/write, and every interposer (its fast path), named from the
# version script. The rest (the SMTP and TLS work) follows a page apart, which
# makes the linker start a new segment there: a process that never speaks
# SMTP faults in none of it. The unwind tables (read only when a thread is
# cancelled or an exception unwinds) are a mapping of their own the same way,
# apart from the read-only data every process reads. tests/test_build.py
# checks the layout.
# They are also linked first, in this order, for their data (bss): the small
# variables every process writes share a page (SG_TABLE in policy.h puts
# the large tables after them).
HOT_OBJ := shim/ident shim/startfiles shim/auxv shim/locks shim/real shim/inherit \
           shim/libc_versions shim/std_streams policy/policy shim/config shim/fdstate \
           shim/net shim/guard_io shim/resolve
LINK_OBJ := $(HOT_OBJ:%=$(BUILD)/obj/%.o) $(filter-out $(HOT_OBJ:%=$(BUILD)/obj/%.o),$(SHIM_OBJ))
PAGE_GAP := . = ALIGN(CONSTANT(MAXPAGESIZE)) + CONSTANT(MAXPAGESIZE);
# The loader compares the library's needed file name and version
# ("libc.so.6\0GLIBC_2.2.5\0", the last 22 bytes of .dynstr, where ld puts the
# version names) with strcmp some 80 times at every exec. glibc's x86-64
# strcmp takes a slower road for a string whose 16-byte load would cross a
# 64-byte line (address % 64 > 48): about 550 instructions of /bin/true's
# start (callgrind) hung on where those strings happened to fall. They start
# a line (at most 63 bytes of padding); tests/test_build.py checks it.
DYNSTR_AT := . = ALIGN(. + SIZEOF(.dynstr) - 22, 64) + 22 - SIZEOF(.dynstr);
$(BUILD)/hot.ld: shim/smtpguard.map Makefile
	@mkdir -p $(dir $@)
	@{ echo 'SECTIONS { .text.sg_hot : {'; echo '  *(.text.startup .text.startup.*)'; \
	  $(foreach o,$(HOT_OBJ),echo '  */$(o).o(.text .text.*)';) \
	  sed -e 's,/\*.*\*/,,' -e '/global:/,/local:/!d' -e 's/global:\|local:.*//' $< | \
	      tr ' ;\t' '\n\n\n' | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)$$/  *(.text.\1)/p'; \
	  echo '} $(PAGE_GAP) } INSERT BEFORE .text;'; \
	  echo 'SECTIONS { $(PAGE_GAP) } INSERT BEFORE .eh_frame_hdr;'; \
	  echo 'SECTIONS { $(DYNSTR_AT) } INSERT BEFORE .dynstr;'; } > $@

# Without the C start files (shim/startfiles.c says why), but with crtendS.o's
# end-of-unwind-table marker; -z nodelete: never unmapped (fork handlers stay valid);
# --gc-sections: code nothing calls is left out (with hot.ld above, issue 15).
# -z lazy after LDFLAGS: the package's hardening flags ask for -z now, which makes
# every process on the machine bind all ~70 imports at exec (+49,000 instructions
# for /bin/true, issue 15); relro stays. The programs (checker, indexer) keep -z now.
CRTEND   := $(shell $(CC) -print-file-name=crtendS.o)
$(LIB): $(SHIM_OBJ) shim/smtpguard.map $(BUILD)/hot.ld
	$(CC) $(LDFLAGS) -shared -nostartfiles -o $@ $(LINK_OBJ) $(filter /%,$(CRTEND)) \
	    -Wl,--version-script=shim/smtpguard.map -Wl,-T,$(BUILD)/hot.ld \
	    -Wl,-z,defs -Wl,-z,relro -Wl,-z,lazy -Wl,-z,nodelete -Wl,--gc-sections -ldl -lpthread

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
