/* Binding GnuTLS like OpenSSL (ossl.c): through the caller's scope, cached
 * per call site, one record per loaded copy of the library. */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "config.h"
#include "gnutls_api.h"
#include "locks.h"
#include "real.h"
#include "scope.h"

#define MAX_LIBS 2

static struct sg_gnutls libs[MAX_LIBS];
static int nlibs;
static struct sg_callsites sites;

static void bind_library(struct sg_gnutls *g, void *h)
{
    int ok = 1;
#define SG_BIND(f) ok &= (g->f = (__typeof__(g->f))dlsym(h, #f)) != NULL;
    SG_GNUTLS_FUNCS(SG_BIND)
#undef SG_BIND
    g->free_fn = dlsym(h, "gnutls_free");
    g->complete = ok && g->free_fn;
}

/* Under sg_lock_tls. */
static struct sg_gnutls *library_of(const void *fn)
{
    const void *base;
    const char *path;
    void *h = sg_scope_owner(fn, &base, &path);
    for (int i = 0; i < nlibs; i++)
        if (libs[i].base == base)
            return &libs[i];
    if (!h || nlibs == MAX_LIBS || !dlsym(h, "gnutls_check_version"))
        return NULL;
    struct sg_gnutls *g = &libs[nlibs];
    g->base = base;
    bind_library(g, h);
    __atomic_store_n(&nlibs, nlibs + 1, __ATOMIC_RELEASE);
    return g;
}

struct sg_gnutls *sg_gnutls_for_caller(const void *ret, const char *sym)
{
    struct sg_gnutls *g = sg_callsite_get(&sites, ret);
    if (SG_LIKELY(g != NULL))
        return g;
    void *fn = sg_scope_next(ret, sym, "libgnutls.so");
    if (!fn)
        return NULL;
    pthread_mutex_lock(&sg_lock_tls);
    g = library_of(fn);
    if (g)
        sg_callsite_put(&sites, ret, g);
    pthread_mutex_unlock(&sg_lock_tls);
    return g;
}

static gnutls_x509_trust_list_t build(struct sg_gnutls *g, const char *ca_file,
                                      const char *ca_path)
{
    gnutls_x509_trust_list_t list;
    if (g->gnutls_x509_trust_list_init(&list, 0) < 0)
        return NULL;
    int loaded = 0;
    if (ca_file && *ca_file)
        loaded += g->gnutls_x509_trust_list_add_trust_file(list, ca_file, NULL,
                                                           GNUTLS_X509_FMT_PEM, 0, 0) > 0;
    if (ca_path && *ca_path)
        loaded += g->gnutls_x509_trust_list_add_trust_dir(list, ca_path, NULL,
                                                          GNUTLS_X509_FMT_PEM, 0, 0) > 0;
    if (!loaded) {
        g->gnutls_x509_trust_list_deinit(list, 1);
        return NULL;
    }
    return list;
}

gnutls_x509_trust_list_t sg_gnutls_trust(struct sg_gnutls *g, const char *ca_file,
                                         const char *ca_path)
{
    gnutls_x509_trust_list_t list = NULL;
    pthread_mutex_lock(&sg_lock_tls);
    int i = 0;
    for (; i < SG_TRUST_LISTS && g->lists[i].list; i++)
        if (g->lists[i].ca_file == ca_file && g->lists[i].ca_path == ca_path)
            break;
    if (i < SG_TRUST_LISTS && g->lists[i].list) {
        list = g->lists[i].list;
    } else {
        list = build(g, ca_file, ca_path);
        if (list && i < SG_TRUST_LISTS) {
            g->lists[i].ca_file = ca_file;
            g->lists[i].ca_path = ca_path;
            g->lists[i].list = list;
        }
    }
    pthread_mutex_unlock(&sg_lock_tls);
    return list;
}

static int bind_each(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)size, (void)unused;
    const char *base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    if (!base || strncmp(base + 1, "libgnutls.so", 12) != 0)
        return 0;
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    void *fn = h ? dlsym(h, "gnutls_handshake") : NULL;
    if (fn) {
        pthread_mutex_lock(&sg_lock_tls);
        library_of(fn);
        pthread_mutex_unlock(&sg_lock_tls);
    }
    return 0;
}

static void build_for(const char *ca_file, const char *ca_path, void *g)
{
    sg_gnutls_trust(g, ca_file, ca_path);
}

void sg_gnutls_prepare_trust(void)
{
    dl_iterate_phdr(bind_each, NULL);
    for (int i = 0; i < __atomic_load_n(&nlibs, __ATOMIC_ACQUIRE); i++)
        if (libs[i].complete)
            sg_config_each_store(build_for, &libs[i]);
}
