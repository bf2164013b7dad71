/* What the C start files (crtbeginS.o) would give the library: it is linked
 * without them (-nostartfiles, see the Makefile) because their tables cost
 * every process four symbol lookups at load (transactional-memory hooks,
 * gprof, __cxa_finalize) and two calls at start and exit, about 3,000
 * instructions of each exec, for features the library does not use.
 *
 * pthread_atfork (libc_nonshared.a) names the registering library by the value
 * of __dso_handle; crtbeginS.o sets it to its own address, and so do we. The
 * handlers it registers are not removed at dlclose (that was crtbeginS.o's
 * __cxa_finalize call): the library is linked -z nodelete, never unmapped. */
void *__dso_handle __attribute__((visibility("hidden"))) = &__dso_handle;
