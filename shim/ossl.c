/* Binding the OpenSSL a caller uses (backend.c finds it), and judging the
 * library that owns the function found: ssmtp's "OpenSSL" is GnuTLS's
 * compatibility library, whose objects must never reach an OpenSSL function:
 * it is bound as "foreign", only to be passed through. */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "locks.h"
#include "ossl.h"
#include "ossl_bind.h"
#include "real.h"
#include "scope.h"

#define MAX_LIBS 4

static struct sg_ossl libs[MAX_LIBS] SG_TABLE;
_Static_assert(sizeof libs[0] <= SG_RECORD_MAX, "backend.c binds a record on the stack");

static int is_libssl(const char *path)
{
    return sg_basename_starts(path, "libssl.so");
}

/* What only SMTP sessions need, into o from lib (a copy: its checks are
 * written). 1 when every name was found. */
static int bind_rest(struct sg_ossl *o, struct sg_search *lib)
{
    int ok = 1;
#define SG_BIND(f) ok &= (o->f = (__typeof__(o->f))SG_SCOPE_SYM(lib, #f)) != NULL;
    SG_OSSL_FUNCS(SG_BIND)
#undef SG_BIND
    int lazy = 1;
#define SG_BIND(f) lazy &= (o->f = (__typeof__(o->f))SG_SCOPE_SYM(lib, #f)) != NULL;
    SG_OSSL_LAZY_FUNCS(SG_BIND)
#undef SG_BIND
    o->lazy = lazy && o->OpenSSL_version_num && o->OpenSSL_version_num() >= 0x10101000L;
    o->get1_peer_cert = o->kind == SG_OSSL_3 ? SG_SCOPE_SYM(lib, "SSL_get1_peer_certificate")
                                             : SG_SCOPE_SYM(lib, "SSL_get_peer_certificate");
    o->err_new = SG_SCOPE_SYM(lib, "ERR_new");
    o->err_set_debug = SG_SCOPE_SYM(lib, "ERR_set_debug");
    o->err_set_error = SG_SCOPE_SYM(lib, "ERR_set_error");
    o->err_put_error = SG_SCOPE_SYM(lib, "ERR_put_error");
    o->err_add_error_data = SG_SCOPE_SYM(lib, "ERR_add_error_data");
    o->sha256_init = SG_SCOPE_SYM(lib, "SHA256_Init");
    o->sha256_update = SG_SCOPE_SYM(lib, "SHA256_Update");
    o->sha256_final = SG_SCOPE_SYM(lib, "SHA256_Final");
    return ok && o->get1_peer_cert &&
           (o->kind == SG_OSSL_3 ? o->err_set_error != NULL : o->err_put_error != NULL);
}

/* What every session needs; the rest waits for sg_ossl_full (most processes
 * that use TLS never make an SMTP connection: ~65 names not looked up). */
static void bind_openssl(struct sg_ossl *o, void *h)
{
    sg_scope_search_init(&o->search, h);
    int ok = 1;
#define SG_BIND(f) ok &= (o->f = (__typeof__(o->f))SG_SCOPE_SYM(&o->search, #f)) != NULL;
    SG_OSSL_CORE_FUNCS(SG_BIND)
#undef SG_BIND
    o->kind = o->OpenSSL_version_num && (o->OpenSSL_version_num() >> 28) >= 3 ? SG_OSSL_3
                                                                               : SG_OSSL_11;
    o->lib.complete = ok;
}

int sg_ossl_full(struct sg_ossl *o)
{
    int full = __atomic_load_n(&o->full, __ATOMIC_ACQUIRE);
    if (SG_LIKELY(full != 0))
        return full > 0;
    /* Bound into a copy without our lock (the loader may be asked), then
     * published under it; another thread may have done the same meanwhile. */
    struct sg_ossl t;
    memset(&t, 0, sizeof t);
    t.kind = o->kind;
    t.OpenSSL_version_num = o->OpenSSL_version_num;
    struct sg_search lib = o->search;
    int ok = bind_rest(&t, &lib);
    pthread_mutex_lock(&sg_lock_tls);
    if (!o->full) {
#define SG_COPY(f) o->f = t.f;
        SG_OSSL_FUNCS(SG_COPY)
        SG_OSSL_LAZY_FUNCS(SG_COPY)
        SG_COPY(lazy) SG_COPY(get1_peer_cert) SG_COPY(err_new) SG_COPY(err_set_debug)
        SG_COPY(err_set_error) SG_COPY(err_put_error) SG_COPY(err_add_error_data)
        SG_COPY(sha256_init) SG_COPY(sha256_update) SG_COPY(sha256_final)
#undef SG_COPY
        if (!ok)
            __atomic_store_n(&o->lib.complete, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&o->full, ok ? 1 : -1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sg_lock_tls);
    return __atomic_load_n(&o->full, __ATOMIC_ACQUIRE) > 0;
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

/* Under our lock: a record whose rest is not bound yet has no store now
 * (sg_ossl_store and sg_ossl_prepare_stores bind it first). */
static void *build_store(struct sg_lib *rec, const char *ca_file, const char *ca_path)
{
    struct sg_ossl *o = (struct sg_ossl *)rec;
    if (__atomic_load_n(&o->full, __ATOMIC_ACQUIRE) <= 0)
        return NULL;
    return sg_ossl_policy_store(o, ca_file, ca_path);
}

static struct sg_callsites sites SG_TABLE;
static int bound;
static const struct sg_backend openssl = {
    .prefix = "libssl.so", .probe = "SSL_connect", .records = libs, .size = sizeof libs[0],
    .max = MAX_LIBS, .state = {&bound, &sites}, .bind = bind_library, .init = init_library,
    .build_store = build_store,
};

void sg_ossl_bind_private(struct sg_ossl *o, void *h)
{
    memset(o, 0, sizeof *o);
    bind_openssl(o, h);
    o->lib.complete &= bind_rest(o, &o->search);
    o->full = 1; /* all it has is bound: its caller checks what it needs */
}

struct sg_ossl *sg_ossl_for_caller(const void *ret, const char *sym)
{
    return (struct sg_ossl *)sg_backend_for_caller(&openssl, ret, sym);
}

X509_STORE *sg_ossl_store(struct sg_ossl *o, const char *ca_file, const char *ca_path)
{
    if (!sg_ossl_full(o))
        return NULL;
    return sg_backend_store(&openssl, &o->lib, ca_file, ca_path);
}

/* Every loaded OpenSSL bound (the first pass), with its rest, before the
 * stores are built (the second). */
void sg_ossl_prepare_stores(void)
{
    sg_backend_prepare(&openssl);
    for (int i = 0; i < __atomic_load_n(&bound, __ATOMIC_ACQUIRE); i++)
        if (libs[i].kind != SG_OSSL_FOREIGN && libs[i].lib.complete)
            sg_ossl_full(&libs[i]);
    sg_backend_prepare(&openssl);
}
