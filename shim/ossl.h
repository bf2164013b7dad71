/* One OpenSSL (or an impostor exporting OpenSSL names) as loaded in this
 * process, with its functions found at run time in that very library:
 * nothing is linked, no struct is read. A process may hold several. */
#ifndef SG_OSSL_H
#define SG_OSSL_H

#define OPENSSL_API_COMPAT 0x10100000L
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend.h"
#include "reasons.h"

enum sg_ossl_kind { SG_OSSL_FOREIGN = 0, SG_OSSL_11, SG_OSSL_3 };

/* Functions that OpenSSL 1.1.1 and 3 both have under the same name. What
 * every session needs, SMTP or not (the entry points, the per-SSL state, what
 * tells its socket), bound when the library is first seen: */
#define SG_OSSL_CORE_FUNCS(X)                                                        \
    X(SSL_connect) X(SSL_do_handshake) X(SSL_read) X(SSL_read_ex) X(SSL_peek)         \
    X(SSL_peek_ex) X(SSL_write) X(SSL_write_ex) X(SSL_get_fd) X(SSL_get_rbio)         \
    X(SSL_is_init_finished) X(SSL_is_server) X(SSL_get_servername) X(SSL_get_ex_data) \
    X(SSL_set_ex_data) X(SSL_get_error) X(SSL_get_client_random)                      \
    X(OpenSSL_version_num) X(CRYPTO_get_ex_new_index) X(BIO_method_type)              \
    X(BIO_ptr_ctrl)

/* ... and what applying the policy and the verdict need, bound at the first
 * session that is or may become SMTP (sg_ossl_full): */
#define SG_OSSL_FUNCS(X)                                                             \
    X(SSL_ctrl) X(SSL_get_verify_mode) X(SSL_set_verify) X(SSL_clear_options)          \
    X(SSL_set_cipher_list) X(SSL_set_ciphersuites) X(SSL_get_security_level)          \
    X(SSL_set_security_level) X(SSL_get0_param) X(SSL_set1_host) X(SSL_version)       \
    X(SSL_get_version) X(SSL_get_current_cipher) X(SSL_CIPHER_get_name)               \
    X(SSL_CIPHER_get_kx_nid) X(SSL_CIPHER_is_aead) X(SSL_get_peer_cert_chain)         \
    X(SSL_CIPHER_get_cipher_nid) X(SSL_CIPHER_get_auth_nid) X(SSL_get_ciphers)         \
    X(SSL_get_security_callback) X(SSL_set_security_callback)                         \
    X(SSL_get_verify_result) X(X509_STORE_new) X(X509_STORE_free)                     \
    X(X509_STORE_load_locations) X(X509_STORE_CTX_new) X(X509_STORE_CTX_free)         \
    X(X509_STORE_CTX_init) X(X509_STORE_CTX_set_default) X(X509_STORE_CTX_get0_param) \
    X(X509_STORE_CTX_get0_chain) X(X509_VERIFY_PARAM_set1_host)                       \
    X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_verify_cert) X(X509_STORE_CTX_get_error)  \
    X(X509_verify_cert_error_string) X(X509_free) X(X509_get_X509_PUBKEY)             \
    X(i2d_X509_PUBKEY) X(SHA256) X(OPENSSL_sk_num) X(OPENSSL_sk_value)                \
    X(ERR_get_next_error_library) X(ERR_load_strings) X(ERR_peek_last_error)          \
    X(ERR_reason_error_string) X(ERR_clear_error) X(X509_digest) X(EVP_sha256)         \
    X(X509_get0_notAfter) X(X509_cmp_time)

/* What finding anchors on demand needs (ossl_store.c); OpenSSL 1.1.1 and 3
 * have them all. Optional: without them the bundle is loaded whole. */
#define SG_OSSL_LAZY_FUNCS(X)                                                        \
    X(X509_LOOKUP_meth_new) X(X509_LOOKUP_meth_set_get_by_subject)                    \
    X(X509_STORE_add_lookup) X(X509_LOOKUP_set_method_data)                           \
    X(X509_LOOKUP_get_method_data) X(X509_LOOKUP_get_store) X(X509_STORE_add_cert)    \
    X(d2i_X509) X(X509_NAME_get0_der) X(X509_OBJECT_set1_X509) X(X509_STORE_lock)     \
    X(X509_STORE_unlock) X(X509_STORE_get0_objects) X(X509_OBJECT_retrieve_by_subject) \
    X(X509_OBJECT_get0_X509) X(i2d_X509) X(X509_up_ref) X(SSL_get0_verified_chain)

/* The interposed entry points: all an impostor needs to offer. */
#define SG_OSSL_ENTRIES(X)                                                           \
    X(SSL_connect) X(SSL_do_handshake) X(SSL_read) X(SSL_read_ex) X(SSL_peek)         \
    X(SSL_peek_ex) X(SSL_write) X(SSL_write_ex)

struct sg_ossl {
    struct sg_lib lib;     /* first: the record backend.c keeps */
    int kind;
    int ex_index;          /* our per-SSL slot */
    int err_lib;           /* our error library number, 0 if none */
    int err_ready;         /* err_lib and strings settled (ossl_err.c, at the first error) */
    ERR_STRING_DATA strings[SG_R_COUNT + 2]; /* library name, reasons, end */
#define SG_MEMBER(f) __typeof__(f) *f;
    SG_OSSL_CORE_FUNCS(SG_MEMBER)
    SG_OSSL_FUNCS(SG_MEMBER)
    SG_OSSL_LAZY_FUNCS(SG_MEMBER)
#undef SG_MEMBER
    int lazy;              /* every SG_OSSL_LAZY_FUNCS found, 1.1.1 or later */
    /* Named differently in 1.1 and 3. */
    X509 *(*get1_peer_cert)(const SSL *);
    void (*err_new)(void);
    void (*err_set_debug)(const char *, int, const char *);
    void (*err_set_error)(int, int, const char *, ...);
    void (*err_put_error)(int, int, int, const char *, int);
    void (*err_add_error_data)(int, ...);
    /* Optional (deprecated in 3, absent from a no-deprecated build): the
     * verdict cache's fingerprint without X509_digest (ossl_verdict.c). */
    int (*sha256_init)(SHA256_CTX *);
    int (*sha256_update)(SHA256_CTX *, const void *, size_t);
    int (*sha256_final)(unsigned char *, SHA256_CTX *);
    int full;              /* the rest bound: 0 not yet, 1 yes, -1 lacking some (sg_ossl_full) */
    struct sg_search search; /* where its names are found (scope_sym.c) */
};

/* The library that the caller at return address ret would have reached for
 * the OpenSSL function sym. NULL only when no such function is loaded. */
struct sg_ossl *sg_ossl_for_caller(const void *ret, const char *sym);
/* The functions beyond SG_OSSL_CORE_FUNCS, bound on first use: 1 when o has
 * them all. 0: this library cannot be driven (its sessions pass through, as
 * a library lacking any function always did), and o->lib.complete is now 0.
 * Calls the loader: never with our lock held. */
int sg_ossl_full(struct sg_ossl *o);
/* Bind o to what the OpenSSL behind handle h has (the wire verdict's own
 * libcrypto, which the program does not use): no error strings, no ex_data
 * slot; functions h lacks stay NULL. sg_ossl_store works on it. */
void sg_ossl_bind_private(struct sg_ossl *o, void *h);
/* Bind every OpenSSL in the process and build the trust stores the policy
 * names, before a chroot hides them. */
void sg_ossl_prepare_stores(void);
/* A new trust store for these policy paths (ossl_store.c), NULL when they
 * cannot be read: a ca_file bundle is indexed and its anchors are parsed when
 * a chain asks for them; a ca_path directory is OpenSSL's hashed lookup. */
X509_STORE *sg_ossl_policy_store(struct sg_ossl *o, const char *ca_file, const char *ca_path);
/* Certificates this thread's next verification may take an anchor from
 * instead of parsing the bundle's copy, when the bytes are the same (the
 * program's own verified chain, the peer's chain); NULL, NULL to forget. */
void sg_ossl_store_hint(STACK_OF(X509) *a, STACK_OF(X509) *b);
/* The trust store for these policy paths, built again when the files
 * changed (backend.c); NULL if unreadable. */
X509_STORE *sg_ossl_store(struct sg_ossl *o, const char *ca_file, const char *ca_path);

#endif
