/* Binding of the real libc functions. dlsym may allocate, which is fine: we do
 * not interpose the allocator. A lookup that lands on our own wrapper (a loader
 * quirk, or a second copy of the shim) would recurse forever, so it is refused. */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>

#include "real.h"

struct sg_libc sg_libc;

static int own_marker;

int sg_is_own_address(const void *addr)
{
    static void *own_base;
    void *base = __atomic_load_n(&own_base, __ATOMIC_RELAXED);
    if (!base) {
        Dl_info info;
        if (!dladdr(&own_marker, &info))
            return 0;
        base = info.dli_fbase;
        __atomic_store_n(&own_base, base, __ATOMIC_RELAXED);
    }
    Dl_info other;
    return dladdr(addr, &other) && other.dli_fbase == base;
}

static long missing(void)
{
    errno = ENOSYS;
    return -1;
}

void *sg_real_bind(void **slot, const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (!fn || sg_is_own_address(fn))
        fn = (void *)(uintptr_t)missing;
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    return fn;
}
