# libFuzzer targets for every parser the shim owns (tests/fuzz/fuzz_*.c), built with
# clang under ASan+UBSan into build/fuzz/. `make fuzz FUZZ_SECONDS=N` runs each for
# N seconds over its seed corpus (tests/fuzz/corpus/NAME, read only) and a work
# corpus (build/fuzz/corpus/NAME); a crash is kept in build/fuzz/artifacts/.
# tests/test_fuzz_smoke.py runs a bounded smoke of each in `make test`.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_OUT     := build/fuzz
FUZZ_FLAGS   := -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Ipolicy -Ishim -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
FUZZ_NAMES   := policy smtp_out smtp_in smtp_order proxy guard trust_index hello dns wire
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_OUT)/fuzz_%)

# What each target links besides its own file.
fuzz_policy_SRC   := policy/policy.c
fuzz_smtp_out_SRC := shim/smtp.c
fuzz_smtp_in_SRC  := shim/smtp.c
fuzz_smtp_order_SRC := shim/smtp.c
fuzz_proxy_SRC    := shim/proxy.c
fuzz_trust_index_SRC := shim/trust_index.c shim/trust_cache.c shim/name_key.c
fuzz_hello_SRC    := shim/hello.c
fuzz_dns_SRC      := shim/dns.c
fuzz_wire_SRC     := shim/wire.c shim/wire_msg.c shim/wire_names.c
fuzz_guard_SRC    := shim/guard.c shim/fdstate.c shim/locks.c shim/smtp.c shim/proxy.c \
                     policy/policy.c shim/guard_hello.c shim/hello.c tests/fuzz/guard_stubs.c shim/inside.c

.PHONY: fuzz fuzz-targets
fuzz-targets: $(FUZZ_BINS)

.SECONDEXPANSION:
$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $$(fuzz_%_SRC) tests/fuzz/split.h \
                    $(wildcard shim/*.h policy/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(fuzz_$*_SRC)

fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_NAMES); do \
	    case $$t in policy) dict=policy;; trust_index) dict=pem;; dns) dict=dns;; wire) dict=wire;; *) dict=smtp;; esac; \
	    mkdir -p $(FUZZ_OUT)/corpus/$$t $(FUZZ_OUT)/artifacts/$$t || exit 1; \
	    echo "== fuzz_$$t: $(FUZZ_SECONDS) s (log: $(FUZZ_OUT)/fuzz_$$t.log)"; \
	    $(FUZZ_OUT)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -dict=tests/fuzz/$$dict.dict -artifact_prefix=$(FUZZ_OUT)/artifacts/$$t/ \
	        $(FUZZ_OUT)/corpus/$$t tests/fuzz/corpus/$$t >$(FUZZ_OUT)/fuzz_$$t.log 2>&1; \
	    status=$$?; \
	    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' $(FUZZ_OUT)/fuzz_$$t.log; \
	    [ $$status -eq 0 ] || { tail -40 $(FUZZ_OUT)/fuzz_$$t.log; echo "fuzz_$$t FAILED"; exit 1; }; \
	done

# ---- SANITIZE=1: the whole suite on the ASan+UBSan build (see the top of Makefile) ----
# tests/lib/runner.py preloads the ASan runtime and sends reports to files; loaded as
# a plugin, tests/lib/sanitize.py fails the session when any report was written.
ifeq ($(SANITIZE),1)
override TEST_ARGS += -p lib.sanitize
test: export PYTHONPATH := $(CURDIR)/tests$(if $(PYTHONPATH),:$(PYTHONPATH))
# The release builds are wanted too: tests/test_policy.py checks build/smtpguard-policy,
# and programs that cannot take the ASan runtime get build/libsmtpguard.so
# (tests/lib/sanitize.py says why).
all: build/libsmtpguard.so build/smtpguard-policy
.PHONY: build/libsmtpguard.so build/smtpguard-policy
build/libsmtpguard.so build/smtpguard-policy:
	@$(MAKE) --no-print-directory SANITIZE= $@
endif
