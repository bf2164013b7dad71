#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "real.h"
#include "scope.h"

/* The object whose mapped segments hold addr: a walk over the loaded
 * objects' program headers. dladdr() would also scan the object's whole
 * symbol table for the nearest name (~16,000 instructions in libssl, ~45,000
 * in libgnutls) to tell us what we do not need. */
struct holder {
    uintptr_t addr, lo, hi;
    const char *name;
};

static int find_holder(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct holder *h = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int inside = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        inside |= h->addr >= a && h->addr < a + ph->p_memsz;
        lo = a < lo ? a : lo;
        hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
    }
    if (inside) {
        h->lo = lo, h->hi = hi;
        h->name = info->dlpi_name;
    }
    return inside;
}

static void *sym_in_scope_of(const void *addr, const char *sym)
{
    struct holder h = {(uintptr_t)addr, 0, 0, NULL};
    if (!dl_iterate_phdr(find_holder, &h) || !h.name || !h.name[0])
        return NULL; /* the main program: its scope is the global one */
    /* Pinned on purpose: call-site caches keep addresses inside it. */
    void *lib = dlopen(h.name, RTLD_LAZY | RTLD_NOLOAD);
    return lib ? dlsym(lib, sym) : NULL;
}

struct search {
    const char *prefix;
    void *handle;
};

static int find_by_prefix(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct search *s = arg;
    (void)size;
    if (info->dlpi_name && sg_basename_starts(info->dlpi_name, s->prefix))
        s->handle = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    return s->handle != NULL;
}

static void *usable(void *fn)
{
    return fn && !sg_is_own_address(fn) ? fn : NULL;
}

void *sg_scope_next(const void *ret, const char *sym, const char *prefix)
{
    /* A call that returns into the shim is a library's tail call from a
     * function the shim called (GnuTLS's set_default_priority ends in a jump
     * to priority_set_direct): the shim's own scope would only find the
     * shim's own function, after a dlopen of the shim (its first: ~14,000
     * instructions). Its initialiser then waits for the loader's order. */
    void *fn = sg_is_own_address(ret) ? NULL : usable(sym_in_scope_of(ret, sym));
    if (!fn)
        fn = usable(dlsym(RTLD_NEXT, sym));
    if (!fn) {
        struct search s = {prefix, NULL};
        dl_iterate_phdr(find_by_prefix, &s);
        fn = s.handle ? usable(dlsym(s.handle, sym)) : NULL;
    }
    return fn;
}

void *sg_scope_owner(const void *fn, struct sg_object *obj)
{
    struct holder h = {(uintptr_t)fn, 0, 0, NULL};
    if (dl_iterate_phdr(find_holder, &h) && h.name && h.name[0]) {
        obj->base = (const void *)h.lo; /* dladdr's dli_fbase: the first segment */
        obj->end = (const void *)h.hi;
        obj->path = h.name;
        return dlopen(h.name, RTLD_LAZY | RTLD_NOLOAD);
    }
    /* The main program (its l_name is empty): as dladdr names it, with no
     * range, so that only its base identifies it. */
    Dl_info info;
    if (!dladdr(fn, &info) || !info.dli_fname)
        return NULL;
    obj->base = obj->end = info.dli_fbase;
    obj->path = info.dli_fname;
    return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
}

static unsigned slot_of(const void *ret)
{
    return (unsigned)((uintptr_t)ret >> 3) % SG_CALLSITES;
}

void *sg_callsite_get(struct sg_callsites *c, const void *ret)
{
    for (unsigned i = 0, h = slot_of(ret); i < 16; i++) {
        unsigned s = (h + i) % SG_CALLSITES;
        const void *r = __atomic_load_n(&c->slot[s].ret, __ATOMIC_ACQUIRE);
        if (r == ret)
            return c->slot[s].val;
        if (!r)
            return NULL;
    }
    return NULL;
}

void sg_callsite_put(struct sg_callsites *c, const void *ret, void *val)
{
    /* A put reads a slot, then writes it: written to first (a write to a page
     * never touched maps it at once, a read maps the zero page), one fault, not
     * two. The value does not change; puts are rare. */
    __atomic_fetch_or((unsigned char *)c, 0, __ATOMIC_RELAXED);
    for (unsigned i = 0, h = slot_of(ret); i < 16; i++) {
        unsigned s = (h + i) % SG_CALLSITES;
        if (!c->slot[s].ret) {
            c->slot[s].val = val;
            __atomic_store_n(&c->slot[s].ret, ret, __ATOMIC_RELEASE);
            return;
        }
    }
}

void *sg_callsite_recall(struct sg_callsites *c, const int *used, const void *ret)
{
    return __atomic_load_n(used, __ATOMIC_ACQUIRE) ? sg_callsite_get(c, ret) : NULL;
}

void sg_callsite_remember(struct sg_callsites *c, int *used, const void *ret, void *val)
{
    sg_callsite_put(c, ret, val);
    __atomic_store_n(used, 1, __ATOMIC_RELEASE);
}
