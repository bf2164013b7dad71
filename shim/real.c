/* Binding of the real libc functions. dlsym may allocate, which is fine: we do
 * not interpose the allocator. A lookup that lands on our own wrapper (a loader
 * quirk, or a second copy of the shim) would recurse forever, so it is refused. */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <stdint.h>

#include "real.h"

struct sg_libc sg_libc;

static int own_marker;
static uintptr_t own_lo, own_hi; /* our object's mapped range, found once */

static int find_own(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)size, (void)unused;
    uintptr_t lo = UINTPTR_MAX, hi = 0, me = (uintptr_t)&own_marker;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            lo = a < lo ? a : lo;
            hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
        }
    }
    if (me < lo || me >= hi)
        return 0;
    __atomic_store_n(&own_hi, hi, __ATOMIC_RELAXED);
    __atomic_store_n(&own_lo, lo, __ATOMIC_RELEASE);
    return 1;
}

/* A range check: dladdr() would scan a library's whole symbol table, ~95,000
 * instructions per call in libc, for every function bound. */
int sg_is_own_address(const void *addr)
{
    if (!__atomic_load_n(&own_lo, __ATOMIC_ACQUIRE))
        dl_iterate_phdr(find_own, NULL);
    uintptr_t a = (uintptr_t)addr;
    return a >= __atomic_load_n(&own_lo, __ATOMIC_ACQUIRE) &&
           a < __atomic_load_n(&own_hi, __ATOMIC_RELAXED);
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
