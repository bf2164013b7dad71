/* One GnuTLS as loaded in this process, its functions found at run time in
 * that very library: nothing is linked. */
#ifndef SG_GNUTLS_API_H
#define SG_GNUTLS_API_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "backend.h"

#define SG_GNUTLS_FUNCS(X)                                                            \
    X(gnutls_handshake) X(gnutls_strerror) X(gnutls_error_is_fatal) X(gnutls_alert_get)  \
    X(gnutls_transport_get_int) X(gnutls_server_name_get) X(gnutls_server_name_set)     \
    X(gnutls_priority_set_direct) X(gnutls_protocol_get_version)                      \
    X(gnutls_protocol_get_name) X(gnutls_cipher_get) X(gnutls_cipher_get_name)         \
    X(gnutls_kx_get) X(gnutls_certificate_get_peers) X(gnutls_x509_crt_init)           \
    X(gnutls_x509_crt_import) X(gnutls_x509_crt_deinit) X(gnutls_x509_crt_get_key_id)  \
    X(gnutls_x509_trust_list_init) X(gnutls_x509_trust_list_deinit)                   \
    X(gnutls_x509_trust_list_add_trust_file) X(gnutls_x509_trust_list_add_trust_dir)  \
    X(gnutls_x509_trust_list_verify_crt2) X(gnutls_x509_trust_list_add_cas)           \
    X(gnutls_certificate_verification_status_print) X(gnutls_session_get_random)      \
    X(gnutls_deinit) X(gnutls_x509_trust_list_get_issuer)                             \
    X(gnutls_x509_crt_get_authority_key_id) X(gnutls_priority_init)                    \
    X(gnutls_priority_set) X(gnutls_priority_deinit) X(gnutls_set_default_priority)   \
    X(gnutls_priority_get_cipher_suite_index) X(gnutls_priority_protocol_list)        \
    X(gnutls_priority_kx_list) X(gnutls_priority_cipher_list) X(gnutls_priority_mac_list) \
    X(gnutls_kx_get_name) X(gnutls_mac_get_name) X(gnutls_x509_crt_get_basic_constraints)   \
    X(gnutls_x509_crt_get_key_usage) X(gnutls_x509_crt_get_extension_info)          \
    X(gnutls_x509_crt_get_subject_key_id) X(gnutls_x509_crt_get_activation_time)        \
    X(gnutls_x509_crt_get_expiration_time)

struct sg_gnutls {
    struct sg_lib lib;     /* first: the record backend.c keeps */
    void (**free_fn)(void *); /* gnutls_free is a variable holding a function */
    void *(**malloc_fn)(size_t);
    /* Optional (GnuTLS 3.5.0): without them nothing is kept (gnutls_keep.c)
     * and certificates are compared by GnuTLS (gnutls_equals.c). */
    __typeof__(gnutls_x509_crt_equals2) *gnutls_x509_crt_equals2;
    __typeof__(gnutls_x509_crt_equals) *gnutls_x509_crt_equals;
    __typeof__(gnutls_x509_crt_export2) *gnutls_x509_crt_export2;
    __typeof__(gnutls_x509_rdn_get2) *gnutls_x509_rdn_get2; /* 3.5.7 */
    /* 3.6.3: a priority appended to the library's default (gnutls_prio.c) */
    __typeof__(gnutls_priority_init2) *gnutls_priority_init2;
    __typeof__(gnutls_set_default_priority_append) *gnutls_set_default_priority_append;
    /* 3.6.9: where the system priority file would be (gnutls_narrow.c) */
    __typeof__(gnutls_get_system_config_file) *gnutls_get_system_config_file;
    int exports_as_parsed; /* 3.6.3 on: export2 of a parsed certificate is its DER */
    int lends; /* 3.7.3 to 3.8: verify_crt2 only looks at its copy of the issuer (gnutls_lend.c) */
#define SG_MEMBER(f) __typeof__(f) *f;
    SG_GNUTLS_FUNCS(SG_MEMBER)
#undef SG_MEMBER
};

/* The bytes of crt as GnuTLS parsed them (export2, exports_as_parsed: a
 * certificate modified since is encoded anew), in der, which the caller
 * frees with *g->free_fn: 0 when there are none to trust as its DER. */
static inline int sg_gnutls_der(struct sg_gnutls *g, gnutls_x509_crt_t crt, gnutls_datum_t *der)
{
    *der = (gnutls_datum_t){NULL, 0};
    return g->exports_as_parsed && crt && g->free_fn &&
           g->gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der) >= 0 && der->data;
}

/* The GnuTLS that the caller at ret would have reached for sym; NULL when
 * none is loaded. */
struct sg_gnutls *sg_gnutls_for_caller(const void *ret, const char *sym);
/* sym as the caller at ret would have reached it without the shim, for a
 * library that could not be bound (a third GnuTLS): NULL if none. */
void *sg_gnutls_next(const void *ret, const char *sym);
/* An interposer's answer when no GnuTLS it can drive serves its caller: the
 * function fn of that caller's own library, called untouched, or fail when
 * there is none. The return address is the interposer's caller. */
#define SG_GNUTLS_PASS_ON(fn, fail, ...)                                                   \
    do {                                                                                  \
        __typeof__(fn) *next_ =                                                           \
            (__typeof__(fn) *)sg_gnutls_next(__builtin_return_address(0), #fn);           \
        return next_ ? next_(__VA_ARGS__) : (fail);                                       \
    } while (0)
/* The policy's trust store for GnuTLS (gnutls_store.c): a ca_file bundle
 * alone is indexed and lazy is set, the anchors a chain names are handed to
 * GnuTLS per verification (sg_gnutls_trust_for); otherwise the files are
 * loaded whole into eager. */
struct sg_gnutls_store {
    gnutls_x509_trust_list_t eager;
    const struct sg_trust_index *lazy;
};
struct sg_gnutls_store *sg_gnutls_policy_store(struct sg_gnutls *g, const char *ca_file,
                                               const char *ca_path);
/* A trust list for verifying the chain der[0..n) against store: the eager
 * list, or a new one holding the bundle's anchors the chain may lead to
 * (*fresh set: the caller deinits it with all=1). NULL on failure. */
gnutls_x509_trust_list_t sg_gnutls_trust_for(struct sg_gnutls *g, struct sg_gnutls_store *store,
                                             const gnutls_datum_t *der, int n, int *fresh);
/* The trust store for these policy paths, built again when the files
 * changed (backend.c); NULL if unreadable. */
struct sg_gnutls_store *sg_gnutls_trust(struct sg_gnutls *g, const char *ca_file,
                                         const char *ca_path);

/* Bind every GnuTLS in the process and build the trust lists the policy
 * names, before a chroot hides them. */
void sg_gnutls_prepare_trust(void);

#endif
