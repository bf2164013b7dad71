# careless_static: tests/clients/careless.c with Debian's libssl.a and libcrypto.a
# linked into the executable, so no OpenSSL function a preload can reach: its TLS
# is judged on the wire (tests/test_wire.py).
clients: $(BUILD)/clients/careless_static
$(BUILD)/clients/careless_static: tests/clients/careless.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -ldl -lpthread
clients: $(BUILD)/clients/resume_static
$(BUILD)/clients/resume_static: tests/clients/resume.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -ldl -lpthread
