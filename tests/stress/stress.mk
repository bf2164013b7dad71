# The stress run (tests/stress/): build/stress/load, a multithreaded load generator run
# under the shim, and build/stress/stressd, its SMTP and echo servers. `make stress`
# runs STRESS_SESSIONS SMTP sessions (default 20000) through tests/stress/stress.py;
# tests/test_stress.py runs a smaller one in `make test`. With SANITIZE=1 all of it
# is built with ASan+UBSan (build/asan/stress).
STRESS_SESSIONS ?= 20000
STRESS_BINS     := $(BUILD)/stress/load $(BUILD)/stress/stressd

.PHONY: stress stress-bins
stress-bins: $(STRESS_BINS)

$(BUILD)/stress/%: tests/stress/%.c tests/stress/lineio.h tests/stress/message.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -lssl -lcrypto -lpthread

stress: deps all $(STRESS_BINS)
	$(PY) tests/stress/stress.py --sessions $(STRESS_SESSIONS)
