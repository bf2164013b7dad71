# scope_sym_check: shim/scope_sym.c (the backends' symbol lookup) built into a
# program of its own, to compare it with dlsym (tests/test_scope_sym.py).
clients: $(BUILD)/clients/scope_sym_check
$(BUILD)/clients/scope_sym_check: tests/clients/scope_sym_check.c shim/scope_sym.c shim/scope.h shim/gnutls_api.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ tests/clients/scope_sym_check.c shim/scope_sym.c -ldl
