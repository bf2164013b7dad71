# Helpers of tests/test_deploy.py (system-wide deployment), built into build/deploy/ by
# `make deploy-helpers` (the tests run it themselves).
DEPLOY_DIR  := $(BUILD)/deploy
DEPLOY_BINS := $(addprefix $(DEPLOY_DIR)/,early_main libunresolved.so libnoisy.so \
                 workload static_hello fake_go)

.PHONY: deploy-helpers
deploy-helpers: $(DEPLOY_BINS)

# The careless client, main renamed, run from a library constructor.
$(DEPLOY_DIR)/libearly.so: tests/deploy/early_ctor.c tests/clients/careless.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -fPIC -shared -Dmain=careless_main -o $@ $^ -lssl -lcrypto

$(DEPLOY_DIR)/early_main: tests/deploy/early_main.c $(DEPLOY_DIR)/libearly.so
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -L$(DEPLOY_DIR) -learly -Wl,-rpath,'$$ORIGIN'

# Libraries `smtpguard enable` must refuse.
$(DEPLOY_DIR)/libunresolved.so $(DEPLOY_DIR)/libnoisy.so: $(DEPLOY_DIR)/lib%.so: tests/deploy/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -fPIC -shared -Wl,-z,now -o $@ $<

$(DEPLOY_DIR)/workload: tests/deploy/workload.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -o $@ $< -lpthread

$(DEPLOY_DIR)/static_hello: tests/deploy/hello.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -static -o $@ $<

$(DEPLOY_DIR)/fake_go: tests/deploy/hello.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -DFAKE_GO -o $@ $<
