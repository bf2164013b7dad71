#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "locks.h"
#include "real.h"
#include "trust_follow.h"

static struct sg_lib *record(const struct sg_backend *b, int i)
{
    return (struct sg_lib *)((char *)b->records + (size_t)i * b->size);
}

static struct sg_lib *find(const struct sg_backend *b, const void *base)
{
    for (int i = 0; i < *b->state.n; i++)
        if (record(b, i)->base == base)
            return record(b, i);
    return NULL;
}

/* The bound library whose mapped range holds addr, without a lock or a
 * loader call: records are published by n (release) and never move, and
 * each pins its library (sg_scope_owner's dlopen), so the range stays its. */
static struct sg_lib *bound_at(const struct sg_backend *b, const void *addr)
{
    int n = __atomic_load_n(b->state.n, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        struct sg_lib *rec = record(b, i);
        if (sg_lib_holds(rec, addr))
            return rec;
    }
    return NULL;
}

/* The record of the library that defines fn, bound on first sight. The
 * loader is asked (dlopen, dlsym) only while our lock is NOT held: a library
 * constructor running inside another thread's dlopen holds the loader's lock
 * and may call into us, so taking them in the other order could deadlock. */
static struct sg_lib *library_of(const struct sg_backend *b, const void *fn)
{
    struct sg_lib *rec = bound_at(b, fn);
    if (rec)
        return rec;
    struct sg_object obj;
    void *h = sg_scope_owner(fn, &obj);
    if (!h)
        return NULL;
    pthread_mutex_lock(&sg_lock_tls);
    rec = find(b, obj.base);
    pthread_mutex_unlock(&sg_lock_tls);
    if (rec)
        return rec;
    union {
        struct sg_lib lib;
        char bytes[SG_RECORD_MAX];
    } fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.lib.base = obj.base;
    fresh.lib.end = obj.end;
    if (b->size > sizeof fresh || !b->bind(&fresh.lib, h, obj.path))
        return NULL;
    pthread_mutex_lock(&sg_lock_tls);
    rec = find(b, obj.base); /* another thread may have bound it meanwhile */
    if (!rec && *b->state.n < b->max) {
        rec = record(b, *b->state.n);
        memcpy(rec, &fresh, b->size);
        if (b->init)
            b->init(rec);
        __atomic_store_n(b->state.n, *b->state.n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sg_lock_tls);
    return rec;
}

struct sg_lib *sg_backend_for_caller(const struct sg_backend *b, const void *ret, const char *sym)
{
    struct sg_lib *rec = __atomic_load_n(b->state.n, __ATOMIC_ACQUIRE)
                             ? sg_callsite_get(b->state.sites, ret) : NULL;
    if (SG_LIKELY(rec != NULL))
        return rec;
    /* A bound library calling an entry point it exports (libssl's
     * SSL_connect calls SSL_do_handshake through its PLT): the lookup in its
     * own scope, which starts with itself, finds its own function. Not
     * cached, so no lock: such a call may come while this thread holds
     * sg_lock_tls (GnuTLS freeing certificates as sg_backend_store loads a
     * bundle, gnutls_keep.c). */
    rec = bound_at(b, ret);
    if (rec)
        return rec;
    void *fn = sg_scope_next(ret, sym, b->prefix);
    rec = fn ? library_of(b, fn) : NULL;
    if (rec) {
        pthread_mutex_lock(&sg_lock_tls);
        sg_callsite_put(b->state.sites, ret, rec);
        pthread_mutex_unlock(&sg_lock_tls);
    }
    return rec;
}

void *sg_backend_store(const struct sg_backend *b, struct sg_lib *rec, const char *ca_file,
                       const char *ca_path)
{
    pthread_mutex_lock(&sg_lock_tls);
    unsigned gen = sg_trust_generation(ca_file, ca_path);
    int i = 0;
    while (i < SG_STORES && rec->stores[i].obj &&
           !(rec->stores[i].ca_file == ca_file && rec->stores[i].ca_path == ca_path))
        i++;
    void *obj = i < SG_STORES ? rec->stores[i].obj : NULL;
    /* Built from files that changed since (trust_follow.h): built again. The
     * old store is not freed: another thread may be verifying with it. */
    if (obj && rec->stores[i].gen != gen)
        obj = NULL;
    if (!obj) {
        obj = b->build_store(rec, ca_file, ca_path);
        if (obj && i < SG_STORES) {
            rec->stores[i].ca_file = ca_file;
            rec->stores[i].ca_path = ca_path;
            rec->stores[i].obj = obj;
            rec->stores[i].gen = gen;
        }
    }
    pthread_mutex_unlock(&sg_lock_tls);
    return obj;
}

static int bind_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
    const struct sg_backend *b = arg;
    (void)size;
    const char *name = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    if (!name || !sg_starts(name + 1, b->prefix))
        return 0;
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    void *fn = h ? dlsym(h, b->probe) : NULL;
    if (fn)
        library_of(b, fn);
    return 0;
}

struct prepare {
    const struct sg_backend *b;
    struct sg_lib *rec;
};

static void build_for(const char *ca_file, const char *ca_path, void *arg)
{
    struct prepare *p = arg;
    sg_backend_store(p->b, p->rec, ca_file, ca_path);
}

void sg_backend_prepare(const struct sg_backend *b)
{
    dl_iterate_phdr(bind_loaded, (void *)b);
    for (int i = 0; i < __atomic_load_n(b->state.n, __ATOMIC_ACQUIRE); i++) {
        struct prepare p = {b, record(b, i)};
        if (p.rec->complete)
            sg_config_each_store(build_for, &p);
    }
}
