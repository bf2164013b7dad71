# crt_equals: -rdynamic, so that libgnutls's calls to gnutls_x509_rdn_get2
# reach the program's counting copy (tests/test_gnutls_equals.py).
clients: $(BUILD)/clients/crt_equals
$(BUILD)/clients/crt_equals: tests/clients/crt_equals.c tests/clients/smtp_gate.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -rdynamic -o $@ $< -lgnutls -ldl
