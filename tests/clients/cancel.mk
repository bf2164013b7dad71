# cancel_read with -fexceptions: pthread_cleanup_push then runs its handler by
# unwinding, which walks through the shim's frames (tests/test_build.py).
$(BUILD)/clients/cancel_read: CFLAGS += -fexceptions
