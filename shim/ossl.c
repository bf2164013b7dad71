/* Finding the OpenSSL a caller uses. A program linked to libssl reaches it
 * through the global scope (RTLD_NEXT from here); Python's _ssl and Perl's
 * Net::SSLeay load it in a local scope, reachable only through the caller's
 * own handle; ssmtp's "OpenSSL" is GnuTLS's compatibility library, which we
 * must pass through untouched. So: ask the caller's scope first, then the
 * global one, and judge the library that owns the function found. The answer
 * is cached per call site, lock-free for readers. */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "locks.h"
#include "config.h"
#include "ossl.h"
#include "real.h"

#define MAX_LIBS 4
#define CACHE 512

static struct sg_ossl libs[MAX_LIBS];
static int nlibs;
static struct {
    const void *ret;
    struct sg_ossl *o;
} cache[CACHE];

static struct sg_ossl *cache_get(const void *ret)
{
    unsigned h = (unsigned)((uintptr_t)ret >> 3) % CACHE;
    for (unsigned i = 0; i < 16; i++) {
        unsigned s = (h + i) % CACHE;
        const void *r = __atomic_load_n(&cache[s].ret, __ATOMIC_ACQUIRE);
        if (r == ret)
            return cache[s].o;
        if (!r)
            return NULL;
    }
    return NULL;
}

/* Under sg_lock_ossl. A full neighbourhood just means no caching. */
static void cache_put(const void *ret, struct sg_ossl *o)
{
    unsigned h = (unsigned)((uintptr_t)ret >> 3) % CACHE;
    for (unsigned i = 0; i < 16; i++) {
        unsigned s = (h + i) % CACHE;
        if (!cache[s].ret) {
            cache[s].o = o;
            __atomic_store_n(&cache[s].ret, ret, __ATOMIC_RELEASE);
            return;
        }
    }
}

static int is_libssl(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "libssl.so", 9) == 0;
}

static void *sym_in_scope_of(const void *addr, const char *sym)
{
    struct link_map *map = NULL;
    Dl_info info;
    if (!dladdr1(addr, &info, (void **)&map, RTLD_DL_LINKMAP) || !map || !map->l_name[0])
        return NULL; /* the main program: its scope is the global one */
    /* Pinned on purpose: the cache keeps addresses inside it. */
    void *h = dlopen(map->l_name, RTLD_LAZY | RTLD_NOLOAD);
    return h ? dlsym(h, sym) : NULL;
}

static int find_libssl(struct dl_phdr_info *info, size_t size, void *out)
{
    (void)size;
    if (info->dlpi_name && is_libssl(info->dlpi_name)) {
        void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
        if (h) {
            *(void **)out = h;
            return 1;
        }
    }
    return 0;
}

static void *find_next(const void *ret, const char *sym)
{
    void *fn = sym_in_scope_of(ret, sym);
    if (!fn || sg_is_own_address(fn))
        fn = dlsym(RTLD_NEXT, sym);
    if (!fn || sg_is_own_address(fn)) {
        void *h = NULL;
        dl_iterate_phdr(find_libssl, &h);
        fn = h ? dlsym(h, sym) : NULL;
    }
    return fn && !sg_is_own_address(fn) ? fn : NULL;
}

void sg_ossl_errors_init(struct sg_ossl *o);

static void bind_openssl(struct sg_ossl *o, void *h)
{
    int ok = 1;
#define SG_BIND(f) ok &= (o->f = (__typeof__(o->f))dlsym(h, #f)) != NULL;
    SG_OSSL_FUNCS(SG_BIND)
#undef SG_BIND
    o->kind = o->OpenSSL_version_num && (o->OpenSSL_version_num() >> 28) >= 3 ? SG_OSSL_3
                                                                               : SG_OSSL_11;
    o->get1_peer_cert = dlsym(h, o->kind == SG_OSSL_3 ? "SSL_get1_peer_certificate"
                                                      : "SSL_get_peer_certificate");
    o->err_new = dlsym(h, "ERR_new");
    o->err_set_debug = dlsym(h, "ERR_set_debug");
    o->err_set_error = dlsym(h, "ERR_set_error");
    o->err_put_error = dlsym(h, "ERR_put_error");
    o->err_add_error_data = dlsym(h, "ERR_add_error_data");
    o->complete = ok && o->get1_peer_cert &&
                  (o->kind == SG_OSSL_3 ? o->err_set_error != NULL : o->err_put_error != NULL);
    if (o->complete) {
        o->ex_index = o->CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
        o->complete = o->ex_index >= 0;
        sg_ossl_errors_init(o);
    }
}

static void bind_foreign(struct sg_ossl *o, void *h)
{
#define SG_BIND(f) o->f = (__typeof__(o->f))dlsym(h, #f);
    SG_OSSL_ENTRIES(SG_BIND)
#undef SG_BIND
    o->kind = SG_OSSL_FOREIGN;
}

/* Under sg_lock_ossl. */
static struct sg_ossl *library_of(const void *fn)
{
    Dl_info info;
    if (!dladdr(fn, &info) || !info.dli_fname)
        return NULL;
    for (int i = 0; i < nlibs; i++)
        if (libs[i].base == info.dli_fbase)
            return &libs[i];
    void *h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!h || nlibs == MAX_LIBS)
        return NULL;
    struct sg_ossl *o = &libs[nlibs];
    o->base = info.dli_fbase;
    if (is_libssl(info.dli_fname) && dlsym(h, "OpenSSL_version_num"))
        bind_openssl(o, h);
    else
        bind_foreign(o, h);
    __atomic_store_n(&nlibs, nlibs + 1, __ATOMIC_RELEASE);
    return o;
}

struct sg_ossl *sg_ossl_for_caller(const void *ret, const char *sym)
{
    struct sg_ossl *o = cache_get(ret);
    if (SG_LIKELY(o != NULL))
        return o;
    void *fn = find_next(ret, sym);
    if (!fn)
        return NULL;
    pthread_mutex_lock(&sg_lock_ossl);
    o = library_of(fn);
    if (o)
        cache_put(ret, o);
    pthread_mutex_unlock(&sg_lock_ossl);
    return o;
}

static int bind_each_libssl(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)size, (void)unused;
    if (!info->dlpi_name || !is_libssl(info->dlpi_name))
        return 0;
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    void *fn = h ? dlsym(h, "SSL_connect") : NULL;
    if (fn) {
        pthread_mutex_lock(&sg_lock_ossl);
        library_of(fn);
        pthread_mutex_unlock(&sg_lock_ossl);
    }
    return 0;
}


/* Under sg_lock_ossl. */
static X509_STORE *build_store(struct sg_ossl *o, const char *ca_file, const char *ca_path)
{
    X509_STORE *st = o->X509_STORE_new();
    if (!st)
        return NULL;
    int loaded = 0;
    if (ca_file && *ca_file)
        loaded |= o->X509_STORE_load_locations(st, ca_file, NULL) == 1;
    if (ca_path && *ca_path)
        loaded |= o->X509_STORE_load_locations(st, NULL, ca_path) == 1;
    if (!loaded) {
        o->X509_STORE_free(st);
        return NULL;
    }
    return st;
}

X509_STORE *sg_ossl_store(struct sg_ossl *o, const char *ca_file, const char *ca_path)
{
    X509_STORE *st = NULL;
    pthread_mutex_lock(&sg_lock_ossl);
    int i = 0;
    for (; i < SG_STORES && o->stores[i].store; i++)
        if (o->stores[i].ca_file == ca_file && o->stores[i].ca_path == ca_path)
            break;
    if (i < SG_STORES && o->stores[i].store) {
        st = o->stores[i].store;
    } else {
        st = build_store(o, ca_file, ca_path);
        if (st && i < SG_STORES)
            o->stores[i] = (struct sg_store){ca_file, ca_path, st};
    }
    pthread_mutex_unlock(&sg_lock_ossl);
    return st;
}

static void build_for(const char *ca_file, const char *ca_path, void *o)
{
    sg_ossl_store(o, ca_file, ca_path);
}

void sg_ossl_prepare_stores(void)
{
    dl_iterate_phdr(bind_each_libssl, NULL);
    for (int i = 0; i < __atomic_load_n(&nlibs, __ATOMIC_ACQUIRE); i++)
        if (libs[i].complete)
            sg_config_each_store(build_for, &libs[i]);
}
