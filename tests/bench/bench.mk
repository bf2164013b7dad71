# Benchmarks (issue 5): what the shim costs, against no shim and against
# stunnel. `make bench` runs them all (about 2 minutes on 2 cores), prints a
# table and writes build/bench.json and build/bench.md; `make bench-quick`
# runs them with small counts in two rounds (15 s). Not part of `make test`;
# tests/test_bench_smoke.py only checks that every program works.
BENCH_DIR   := $(BUILD)/bench
BENCH_PROGS := fastpath spawn idle smtpd smtpc
BENCH_BINS  := $(BENCH_PROGS:%=$(BENCH_DIR)/bin/%)
BENCH_SMTP  := tests/bench/smtpio.c

.PHONY: bench bench-quick bench-bins
bench-bins: $(BENCH_BINS)

$(BENCH_DIR)/bin/%: tests/bench/%.c tests/bench/bench.h tests/bench/smtpio.h $(BENCH_SMTP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< $(if $(filter smtpd smtpc,$*),$(BENCH_SMTP) -lssl -lcrypto) -lpthread

bench: deps all bench-bins
	$(PY) tests/bench/run.py

bench-quick: deps all bench-bins
	$(PY) tests/bench/run.py --quick
