# Libraries a test preloads beside the shim (not programs: kept out of
# tests/clients/, whose every .c is one).
clients: $(BUILD)/clients/libdeinit_bypass.so
$(BUILD)/clients/libdeinit_bypass.so: tests/preloads/deinit_bypass.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -shared -fPIC -o $@ $< -ldl
