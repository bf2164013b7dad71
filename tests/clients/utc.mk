# utc_check: shim/utc.c (the log's UTC date) against glibc's gmtime_r
# (tests/test_utc.py).
clients: $(BUILD)/clients/utc_check
$(BUILD)/clients/utc_check: tests/clients/utc_check.c shim/utc.c shim/utc.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -Ishim -o $@ tests/clients/utc_check.c shim/utc.c
