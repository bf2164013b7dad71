/* shim/scope_sym.c against dlsym: for each library given, every name the
 * OpenSSL and GnuTLS backends bind (and a few that test the edges: IFUNCs, data, TLS,
 * versioned and missing names) must come out exactly as dlsym gives it; so
 * must the backend's names looked up with the hash computed when compiling
 * (SG_SCOPE_SYM), whose hashes must equal the run-time ones.
 * Prints one line per library: "LIB names=N same=N searched=N hashed=N
 * hashed_same=N"; exits 1 on a mismatch. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "gnutls_api.h"
#include "ossl.h"
#include "scope.h"

#define NAME(f) #f,
static const char *names[] = {
    SG_OSSL_CORE_FUNCS(NAME) SG_OSSL_FUNCS(NAME) SG_OSSL_LAZY_FUNCS(NAME)
    SG_GNUTLS_FUNCS(NAME) "gnutls_malloc", "gnutls_x509_crt_equals2", "gnutls_priority_init2",
    "SSL_get1_peer_certificate", "SSL_get_peer_certificate", "ERR_new", "ERR_set_debug",
    "ERR_set_error", "ERR_put_error", "ERR_add_error_data",
    "gnutls_handshake", "gnutls_check_version", "gnutls_free", "gnutls_record_send",
    "memcpy", "strlen", "stdout", "errno", "environ", "malloc", "dlsym", "realpath",
    "no_such_name_at_all", "SSL_no_such_name", "",
};

#define HASHED(f) {#f, SG_GNU_HASH(#f)},
struct hashed {
    const char *name;
    uint32_t hash;
};

static uint32_t run_time_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* The names with their compiled hashes: the same as dlsym, the same hashes. */
static int check_hashed(void *h, const char *lib)
{
    const struct hashed hashed[] = {
        SG_OSSL_CORE_FUNCS(HASHED) SG_OSSL_FUNCS(HASHED) SG_OSSL_LAZY_FUNCS(HASHED)
        SG_GNUTLS_FUNCS(HASHED)
        {"EC_POINT_get_Jprojective_coordinates_GFp",
         SG_GNU_HASH("EC_POINT_get_Jprojective_coordinates_GFp")},
        {"", SG_GNU_HASH("")}};
    struct sg_search s;
    sg_scope_search_init(&s, h);
    int same = 0, n = (int)(sizeof hashed / sizeof hashed[0]);
    for (int k = 0; k < n; k++) {
        void *want = dlsym(h, hashed[k].name);
        if (sg_scope_sym_h(&s, hashed[k].name, hashed[k].hash) == want &&
            hashed[k].hash == run_time_hash(hashed[k].name))
            same++;
        else
            fprintf(stderr, "%s: %s: hash %08x, at run time %08x\n", lib, hashed[k].name,
                    hashed[k].hash, run_time_hash(hashed[k].name));
    }
    printf(" hashed=%d hashed_same=%d", n, same);
    return same == n;
}

int main(int argc, char **argv)
{
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "%s: %s\n", argv[i], dlerror());
            return 2;
        }
        struct sg_search s;
        sg_scope_search_init(&s, h);
        int n = 0, same = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++, n++) {
            void *want = dlsym(h, names[k]);
            void *got = sg_scope_sym(&s, names[k]);
            if (got == want)
                same++;
            else
                fprintf(stderr, "%s: %s: %p, dlsym %p\n", argv[i], names[k], got, want);
        }
        printf("%s names=%d same=%d searched=%d", argv[i], n, same, s.n);
        bad |= same != n;
        bad |= !check_hashed(h, argv[i]);
        printf("\n");
    }
    return bad;
}
