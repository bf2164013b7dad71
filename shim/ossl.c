/* Binding the OpenSSL a caller uses (backend.c finds it), and judging the
 * library that owns the function found: ssmtp's "OpenSSL" is GnuTLS's
 * compatibility library, whose objects must never reach an OpenSSL function:
 * it is bound as "foreign", only to be passed through. */
#include <dlfcn.h>
#include <string.h>

#include "ossl.h"
#include "ossl_bind.h"

#define MAX_LIBS 4

static struct sg_ossl libs[MAX_LIBS];
_Static_assert(sizeof libs[0] <= SG_RECORD_MAX, "backend.c binds a record on the stack");

static int is_libssl(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "libssl.so", 9) == 0;
}

static void bind_openssl(struct sg_ossl *o, void *h)
{
    struct sg_search lib;
    sg_scope_search_init(&lib, h);
    int ok = 1;
#define SG_BIND(f) ok &= (o->f = (__typeof__(o->f))sg_scope_sym(&lib, #f)) != NULL;
    SG_OSSL_FUNCS(SG_BIND)
#undef SG_BIND
    int lazy = 1;
#define SG_BIND(f) lazy &= (o->f = (__typeof__(o->f))sg_scope_sym(&lib, #f)) != NULL;
    SG_OSSL_LAZY_FUNCS(SG_BIND)
#undef SG_BIND
    o->kind = o->OpenSSL_version_num && (o->OpenSSL_version_num() >> 28) >= 3 ? SG_OSSL_3
                                                                               : SG_OSSL_11;
    o->lazy = lazy && o->OpenSSL_version_num && o->OpenSSL_version_num() >= 0x10101000L;
    o->get1_peer_cert = sg_scope_sym(&lib, o->kind == SG_OSSL_3 ? "SSL_get1_peer_certificate"
                                                                : "SSL_get_peer_certificate");
    o->err_new = sg_scope_sym(&lib, "ERR_new");
    o->err_set_debug = sg_scope_sym(&lib, "ERR_set_debug");
    o->err_set_error = sg_scope_sym(&lib, "ERR_set_error");
    o->err_put_error = sg_scope_sym(&lib, "ERR_put_error");
    o->err_add_error_data = sg_scope_sym(&lib, "ERR_add_error_data");
    o->lib.complete = ok && o->get1_peer_cert &&
                      (o->kind == SG_OSSL_3 ? o->err_set_error != NULL
                                            : o->err_put_error != NULL);
}

/* At the record's final address: OpenSSL will keep pointers to our error
 * strings, loaded at the first error we raise (ossl_err.c). */
static void init_library(struct sg_lib *rec)
{
    struct sg_ossl *o = (struct sg_ossl *)rec;
    if (!o->lib.complete || o->kind == SG_OSSL_FOREIGN)
        return;
    o->ex_index = o->CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL,
                                             sg_tls_freed);
    o->lib.complete = o->ex_index >= 0;
}

static void bind_foreign(struct sg_ossl *o, void *h)
{
#define SG_BIND(f) o->f = (__typeof__(o->f))dlsym(h, #f);
    SG_OSSL_ENTRIES(SG_BIND)
#undef SG_BIND
    o->kind = SG_OSSL_FOREIGN;
}

static int bind_library(struct sg_lib *rec, void *h, const char *path)
{
    struct sg_ossl *o = (struct sg_ossl *)rec;
    if (is_libssl(path) && dlsym(h, "OpenSSL_version_num"))
        bind_openssl(o, h);
    else
        bind_foreign(o, h);
    return 1;
}

static void *build_store(struct sg_lib *rec, const char *ca_file, const char *ca_path)
{
    return sg_ossl_policy_store((struct sg_ossl *)rec, ca_file, ca_path);
}

static struct sg_backend openssl = {
    .prefix = "libssl.so", .probe = "SSL_connect", .records = libs, .size = sizeof libs[0],
    .max = MAX_LIBS, .bind = bind_library, .init = init_library, .build_store = build_store,
};

void sg_ossl_bind_private(struct sg_ossl *o, void *h)
{
    memset(o, 0, sizeof *o);
    bind_openssl(o, h);
}

struct sg_ossl *sg_ossl_for_caller(const void *ret, const char *sym)
{
    return (struct sg_ossl *)sg_backend_for_caller(&openssl, ret, sym);
}

X509_STORE *sg_ossl_store(struct sg_ossl *o, const char *ca_file, const char *ca_path)
{
    return sg_backend_store(&openssl, &o->lib, ca_file, ca_path);
}

void sg_ossl_prepare_stores(void)
{
    sg_backend_prepare(&openssl);
}
