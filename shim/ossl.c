/* Finding the OpenSSL a caller uses (scope.c), and judging the library that
 * owns the function found: ssmtp's "OpenSSL" is GnuTLS's compatibility
 * library, whose objects must never reach an OpenSSL function. */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "locks.h"
#include "config.h"
#include "ossl.h"
#include "real.h"
#include "scope.h"

#define MAX_LIBS 4

static struct sg_ossl libs[MAX_LIBS];
static int nlibs;
static struct sg_callsites sites;

static int is_libssl(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "libssl.so", 9) == 0;
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

/* Under sg_lock_tls. */
static struct sg_ossl *library_of(const void *fn)
{
    const void *base;
    const char *path;
    void *h = sg_scope_owner(fn, &base, &path);
    for (int i = 0; i < nlibs; i++)
        if (libs[i].base == base)
            return &libs[i];
    if (!h || nlibs == MAX_LIBS)
        return NULL;
    struct sg_ossl *o = &libs[nlibs];
    o->base = base;
    if (is_libssl(path) && dlsym(h, "OpenSSL_version_num"))
        bind_openssl(o, h);
    else
        bind_foreign(o, h);
    __atomic_store_n(&nlibs, nlibs + 1, __ATOMIC_RELEASE);
    return o;
}

struct sg_ossl *sg_ossl_for_caller(const void *ret, const char *sym)
{
    struct sg_ossl *o = sg_callsite_get(&sites, ret);
    if (SG_LIKELY(o != NULL))
        return o;
    void *fn = sg_scope_next(ret, sym, "libssl.so");
    if (!fn)
        return NULL;
    pthread_mutex_lock(&sg_lock_tls);
    o = library_of(fn);
    if (o)
        sg_callsite_put(&sites, ret, o);
    pthread_mutex_unlock(&sg_lock_tls);
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
        pthread_mutex_lock(&sg_lock_tls);
        library_of(fn);
        pthread_mutex_unlock(&sg_lock_tls);
    }
    return 0;
}


/* Under sg_lock_tls. */
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
    pthread_mutex_lock(&sg_lock_tls);
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
    pthread_mutex_unlock(&sg_lock_tls);
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
