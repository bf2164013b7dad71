# Legacy binaries on OpenSSL 1.1 (issue 7): `make legacy` fetches bullseye's
# OpenSSL 1.1 and mailers (scripts/fetch-legacy, once) and builds the careless
# client against 1.1, plus a process holding both OpenSSL 1.1 and 3.
# Not under $(BUILD): one download serves the release and the SANITIZE=1 runs.
LEGACY      := build/legacy
LEGACY_ROOT := $(LEGACY)/root
LEGACY_LIBS := $(LEGACY_ROOT)/usr/lib/x86_64-linux-gnu
# -I before the system's OpenSSL 3 headers; $ORIGIN: the programs find the
# extracted libssl.so.1.1 wherever build/ is.
LEGACY_SSL  := -I$(LEGACY_ROOT)/usr/include -I$(LEGACY_ROOT)/usr/include/x86_64-linux-gnu \
               -L$(LEGACY_LIBS) -Wl,-rpath,'$$ORIGIN/root/usr/lib/x86_64-linux-gnu'
LEGACY_BINS := $(LEGACY)/careless11 $(LEGACY)/mixed11 $(LEGACY)/mod3.so $(LEGACY)/membio11 \
               $(LEGACY)/ossl_memo11 $(LEGACY)/cipher_rule11

.PHONY: legacy
legacy: $(LEGACY_BINS)

$(LEGACY)/.done:
	scripts/fetch-legacy

# The very source of the OpenSSL 3 client, compiled against 1.1.
$(LEGACY)/careless11: tests/clients/careless.c $(LEGACY)/.done
	$(CC) $(BASE) $(CFLAGS) $(LEGACY_SSL) -o $@ $< -lssl -lcrypto -lpthread

# The memory-BIO client (tests/test_binding.py) against 1.1.
$(LEGACY)/membio11: tests/clients/membio.c tests/clients/smtp_dialogue.h $(LEGACY)/.done
	$(CC) $(BASE) $(CFLAGS) $(LEGACY_SSL) -o $@ $< -lssl -lcrypto -lpthread

# The cipher rule client (tests/test_cipher_rule.py) against 1.1.
$(LEGACY)/cipher_rule11: tests/clients/cipher_rule.c $(LEGACY)/.done
	$(CC) $(BASE) $(CFLAGS) $(LEGACY_SSL) -o $@ $< -lssl -lcrypto

# The X509_verify memo's client (tests/test_ossl_memo.py) against 1.1.
$(LEGACY)/ossl_memo11: tests/clients/ossl_memo.c tests/clients/smtp_gate.h $(LEGACY)/.done
	$(CC) $(BASE) $(CFLAGS) $(LEGACY_SSL) -o $@ $< -lcrypto -lpthread

$(LEGACY)/mixed11: tests/legacy/mixed.c tests/legacy/session.c tests/clients/careless.c $(LEGACY)/.done
	$(CC) $(BASE) $(CFLAGS) $(LEGACY_SSL) -o $@ tests/legacy/mixed.c tests/legacy/session.c \
	    -lssl -lcrypto -lpthread -ldl

# Linked to the system's OpenSSL 3; exports careless_session only.
$(LEGACY)/mod3.so: tests/legacy/session.c tests/clients/careless.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -fPIC -shared -fvisibility=hidden -o $@ $< -lssl -lcrypto -lpthread
