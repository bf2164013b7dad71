# Benchmarks (issue 5): what the shim costs, against no shim and against
# stunnel. `make bench` runs them all (about 2 minutes on 2 cores), prints a
# table and writes build/bench.json and build/bench.md; `make bench-quick`
# runs them with small counts in two rounds (15 s). Not part of `make test`;
# tests/test_bench_smoke.py only checks that every program works.
BENCH_DIR   := $(BUILD)/bench
BENCH_PROGS := fastpath spawn idle smtpd smtpc
BENCH_BINS  := $(BENCH_PROGS:%=$(BENCH_DIR)/bin/%) $(BENCH_DIR)/bin/libempty.so
BENCH_SMTP  := tests/bench/smtpio.c

.PHONY: bench bench-quick bench-bins
bench-bins: $(BENCH_BINS) $(BUILD)/clients/careless $(BUILD)/clients/careless_gnutls

$(BENCH_DIR)/bin/%: tests/bench/%.c tests/bench/bench.h tests/bench/smtpio.h $(BENCH_SMTP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< $(if $(filter smtpd smtpc,$*),$(BENCH_SMTP) -lssl -lcrypto) -lpthread

$(BENCH_DIR)/bin/libempty.so: tests/bench/empty.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -shared -fPIC -o $@ $<

# The one-message-per-process rows run the test clients (OpenSSL 3, GnuTLS)
# and the OpenSSL 1.1 build of the same OpenSSL client (tests/legacy).
bench: deps all bench-bins clients legacy
	$(PY) tests/bench/run.py

bench-quick: deps all bench-bins clients legacy
	$(PY) tests/bench/run.py --quick
