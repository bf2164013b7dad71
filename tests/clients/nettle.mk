# nettle_memo calls nettle itself (the shim's memo of nettle_ecdsa_verify,
# tests/test_nettle_memo.py): linked with hogweed, nettle and gmp, and GnuTLS.
$(BUILD)/clients/nettle_memo: tests/clients/nettle_memo.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -lhogweed -lnettle -lgmp -lgnutls -lpthread
