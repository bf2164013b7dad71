/* Binding GnuTLS like OpenSSL (ossl.c): backend.c finds the library the
 * caller uses; this file knows what to take from it. */

#include "gnutls_api.h"
#include "policy.h"
#include "scope.h"

#define MAX_LIBS 2

static struct sg_gnutls libs[MAX_LIBS];
_Static_assert(sizeof libs[0] <= SG_RECORD_MAX, "backend.c binds a record on the stack");

/* Names read from the library's own hash tables (scope_sym.c), as for
 * OpenSSL: ~75 dlsym calls cost ~47,000 instructions at the first GnuTLS
 * call of every process (issue 15). */
static int bind_library(struct sg_lib *rec, void *h, const char *path)
{
    struct sg_gnutls *g = (struct sg_gnutls *)rec;
    struct sg_search lib;
    int ok = 1;
    (void)path;
    sg_scope_search_init(&lib, h);
    const char *(*check_version)(const char *) = SG_SCOPE_SYM(&lib, "gnutls_check_version");
    if (!check_version)
        return 0;
#define SG_BIND(f) ok &= (g->f = (__typeof__(g->f))SG_SCOPE_SYM(&lib, #f)) != NULL;
    SG_GNUTLS_FUNCS(SG_BIND)
#undef SG_BIND
    g->free_fn = SG_SCOPE_SYM(&lib, "gnutls_free");
    g->malloc_fn = SG_SCOPE_SYM(&lib, "gnutls_malloc");
#define SG_OPTIONAL(f) g->f = (__typeof__(g->f))SG_SCOPE_SYM(&lib, #f);
    SG_OPTIONAL(gnutls_x509_crt_equals2)
    SG_OPTIONAL(gnutls_x509_crt_equals)
    SG_OPTIONAL(gnutls_x509_crt_export2)
    SG_OPTIONAL(gnutls_x509_rdn_get2)
    SG_OPTIONAL(gnutls_priority_init2)
    SG_OPTIONAL(gnutls_set_default_priority_append)
    SG_OPTIONAL(gnutls_get_system_config_file)
#undef SG_OPTIONAL
    g->exports_as_parsed = g->gnutls_x509_crt_equals && g->gnutls_x509_crt_equals2 &&
                           g->gnutls_x509_crt_export2 && g->free_fn &&
                           check_version("3.6.3");
    g->lends = check_version("3.7.3") && !check_version("3.9.0");
    g->lib.complete = ok && g->free_fn;
    return 1;
}

static void *build_store(struct sg_lib *rec, const char *ca_file, const char *ca_path)
{
    return sg_gnutls_policy_store((struct sg_gnutls *)rec, ca_file, ca_path);
}

static struct sg_callsites sites SG_TABLE;
static int bound;
static const struct sg_backend gnutls = {
    .prefix = "libgnutls.so", .probe = "gnutls_handshake", .records = libs,
    .size = sizeof libs[0], .max = MAX_LIBS, .state = {&bound, &sites}, .bind = bind_library,
    .build_store = build_store,
};

struct sg_gnutls *sg_gnutls_for_caller(const void *ret, const char *sym)
{
    return (struct sg_gnutls *)sg_backend_for_caller(&gnutls, ret, sym);
}

void *sg_gnutls_next(const void *ret, const char *sym)
{
    return sg_scope_next(ret, sym, gnutls.prefix);
}

struct sg_gnutls_store *sg_gnutls_trust(struct sg_gnutls *g, const char *ca_file,
                                         const char *ca_path)
{
    return sg_backend_store(&gnutls, &g->lib, ca_file, ca_path);
}

void sg_gnutls_prepare_trust(void)
{
    sg_backend_prepare(&gnutls);
}
