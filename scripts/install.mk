# make install / make uninstall (PREFIX, DESTDIR). `make` alone never installs.
#   $(PREFIX)/lib/smtpguard/libsmtpguard.so      the library (0644), and its sha256
#   $(PREFIX)/lib/smtpguard/libsmtpguard.so.sha256  recorded here (smtpguard status)
#   $(PREFIX)/lib/smtpguard/smtpguard-report, smtpguard-probe   `smtpguard report|probe`
#   $(PREFIX)/lib/smtpguard/smtpguard-trust-index   prepares the trust-store index, run by
#   /etc/ca-certificates/update.d/smtpguard          the hook after every trust-store update
#                                                   (and once by make install without DESTDIR)
#   $(PREFIX)/bin/smtpguard-policy               the policy checker (on PATH)
#   $(PREFIX)/sbin/smtpguard                     the administrator's command
#   $(PREFIX)/share/man/man8/smtpguard.8, man5/smtpguard.conf.5
#   /etc/smtpguard/policy.conf                   policy/default.conf, only if absent
# The policy path is the one the library reads, hence not under PREFIX. Uninstall keeps it
# (an administrator's policy), removes the index (/var/cache/smtpguard: processes then scan
# the bundle themselves), and refuses while /etc/ld.so.preload names the library:
# removing it then would leave every program warning that it cannot preload it.
PREFIX  ?= /usr/local
DESTDIR ?=

SG_LIBDIR  = $(PREFIX)/lib/smtpguard
SG_SBINDIR = $(PREFIX)/sbin
SG_BINDIR  = $(PREFIX)/bin
SG_VERSION = $(shell cat VERSION)
SG_MANDIR  = $(PREFIX)/share/man
SG_ETCDIR  = /etc/smtpguard
SG_HOOK    = /etc/ca-certificates/update.d/smtpguard
SG_CACHE   = /var/cache/smtpguard
SG_FILES   = $(SG_LIBDIR)/libsmtpguard.so $(SG_LIBDIR)/libsmtpguard.so.sha256 \
             $(SG_LIBDIR)/smtpguard-report $(SG_LIBDIR)/smtpguard-probe \
             $(SG_LIBDIR)/smtpguard-trust-index \
             $(SG_BINDIR)/smtpguard-policy $(SG_MANDIR)/man1/smtpguard-policy.1 \
             $(SG_SBINDIR)/smtpguard $(SG_MANDIR)/man8/smtpguard.8 \
             $(SG_MANDIR)/man5/smtpguard.conf.5

# The man pages carry the version of VERSION (@VERSION@ in the sources): make man.
SG_MAN_SRC = scripts/smtpguard.8 policy/smtpguard.conf.5 policy/smtpguard-policy.1
SG_MAN_OUT = $(addprefix $(BUILD)/man/,$(notdir $(SG_MAN_SRC)))

.PHONY: install uninstall man
man: $(SG_MAN_OUT)
$(SG_MAN_OUT): $(BUILD)/man/%: $(SG_MAN_SRC) VERSION
	@mkdir -p $(dir $@)
	sed 's|@VERSION@|$(SG_VERSION)|g' $(filter %/$*,$(SG_MAN_SRC)) > $@

install: $(LIB) $(CHECKER) $(INDEXER) $(SG_MAN_OUT)
	install -d -m 0755 $(DESTDIR)$(SG_LIBDIR) $(DESTDIR)$(SG_SBINDIR) $(DESTDIR)$(SG_BINDIR) \
	    $(DESTDIR)$(SG_MANDIR)/man1 $(DESTDIR)$(SG_MANDIR)/man8 $(DESTDIR)$(SG_MANDIR)/man5 $(DESTDIR)$(SG_ETCDIR)
	@# Running programs map the library: replace it by rename(2), never in place.
	install -m 0644 $(LIB) $(DESTDIR)$(SG_LIBDIR)/.libsmtpguard.so.new
	mv -f $(DESTDIR)$(SG_LIBDIR)/.libsmtpguard.so.new $(DESTDIR)$(SG_LIBDIR)/libsmtpguard.so
	cd $(DESTDIR)$(SG_LIBDIR) && sha256sum libsmtpguard.so > libsmtpguard.so.sha256
	install -m 0755 $(CHECKER) $(DESTDIR)$(SG_BINDIR)/smtpguard-policy
	install -m 0755 scripts/smtpguard-report scripts/smtpguard-probe $(INDEXER) $(DESTDIR)$(SG_LIBDIR)/
	sed -e 's|@LIBDIR@|$(SG_LIBDIR)|g' -e 's|@CHECKER@|$(SG_BINDIR)/smtpguard-policy|g' \
	    -e 's|@VERSION@|$(SG_VERSION)|g' scripts/smtpguard > $(DESTDIR)$(SG_SBINDIR)/.smtpguard.new
	chmod 0755 $(DESTDIR)$(SG_SBINDIR)/.smtpguard.new
	mv -f $(DESTDIR)$(SG_SBINDIR)/.smtpguard.new $(DESTDIR)$(SG_SBINDIR)/smtpguard
	install -m 0644 $(BUILD)/man/smtpguard.8 $(DESTDIR)$(SG_MANDIR)/man8/smtpguard.8
	install -m 0644 $(BUILD)/man/smtpguard-policy.1 $(DESTDIR)$(SG_MANDIR)/man1/smtpguard-policy.1
	install -m 0644 $(BUILD)/man/smtpguard.conf.5 $(DESTDIR)$(SG_MANDIR)/man5/smtpguard.conf.5
	@if [ -e $(DESTDIR)$(SG_ETCDIR)/policy.conf ]; then \
	    echo "keeping $(DESTDIR)$(SG_ETCDIR)/policy.conf"; \
	else \
	    echo "install -m 0644 policy/default.conf $(DESTDIR)$(SG_ETCDIR)/policy.conf"; \
	    install -m 0644 policy/default.conf $(DESTDIR)$(SG_ETCDIR)/policy.conf; \
	fi
	@# The hook of another installation (the package's) is kept: any indexer makes the same index.
	@hook=$(DESTDIR)$(SG_HOOK); \
	if [ -e $$hook ] && ! grep -qF '$(SG_LIBDIR)/' $$hook; then \
	    echo "keeping $$hook (it runs another installation's smtpguard-trust-index)"; \
	else \
	    echo "install scripts/ca-certificates/smtpguard $$hook"; \
	    install -d -m 0755 $${hook%/*} && \
	    sed 's|@LIBDIR@|$(SG_LIBDIR)|g' scripts/ca-certificates/smtpguard > $$hook.new && \
	    chmod 0755 $$hook.new && mv -f $$hook.new $$hook; \
	fi
	@# The index for this system, now (never a reason to fail: processes fall back).
	$(if $(DESTDIR),,$(SG_HOOK) || true)

uninstall:
	@if grep -qsF '$(SG_LIBDIR)/libsmtpguard.so' $(DESTDIR)/etc/ld.so.preload; then \
	    echo "$(DESTDIR)/etc/ld.so.preload names $(SG_LIBDIR)/libsmtpguard.so:" \
	         "run '$(SG_SBINDIR)/smtpguard disable' first" >&2; \
	    exit 1; \
	fi
	rm -f $(addprefix $(DESTDIR),$(SG_FILES))
	if grep -qsF '$(SG_LIBDIR)/' $(DESTDIR)$(SG_HOOK); then rm -f $(DESTDIR)$(SG_HOOK); fi
	rm -rf $(DESTDIR)$(SG_CACHE)
	rmdir $(DESTDIR)$(SG_LIBDIR) 2>/dev/null || true
	@echo "kept $(DESTDIR)$(SG_ETCDIR)/policy.conf (yours to remove)"
