# ecdsa_memo calls nettle itself (the shim's memo of nettle_ecdsa_verify,
# tests/test_nettle_memo.py): linked with hogweed, nettle and gmp, and GnuTLS.
$(BUILD)/clients/ecdsa_memo: tests/clients/ecdsa_memo.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -lhogweed -lnettle -lgmp -lgnutls
