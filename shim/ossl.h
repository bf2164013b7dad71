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

/* Functions that OpenSSL 1.1.1 and 3 both have under the same name. */
#define SG_OSSL_FUNCS(X)                                                             \
    X(SSL_connect) X(SSL_do_handshake) X(SSL_read) X(SSL_read_ex) X(SSL_peek)         \
    X(SSL_peek_ex) X(SSL_write) X(SSL_write_ex) X(SSL_ctrl) X(SSL_get_fd)             \
    X(SSL_get_rbio) X(SSL_is_init_finished) X(SSL_is_server) X(SSL_get_servername)    \
    X(SSL_get_verify_mode) X(SSL_set_verify) X(SSL_clear_options)                     \
    X(SSL_set_cipher_list) X(SSL_set_ciphersuites) X(SSL_get_security_level)          \
    X(SSL_set_security_level) X(SSL_get0_param) X(SSL_set1_host) X(SSL_version)       \
    X(SSL_get_version) X(SSL_get_current_cipher) X(SSL_CIPHER_get_name)               \
    X(SSL_CIPHER_get_kx_nid) X(SSL_CIPHER_is_aead) X(SSL_get_peer_cert_chain)         \
    X(SSL_get_ex_data) X(SSL_set_ex_data) X(SSL_get_verify_result)                    \
    X(OpenSSL_version_num) X(CRYPTO_get_ex_new_index) X(BIO_method_type)              \
    X(BIO_ptr_ctrl) X(X509_STORE_new) X(X509_STORE_free) X(X509_STORE_load_locations) \
    X(X509_STORE_CTX_new) X(X509_STORE_CTX_free) X(X509_STORE_CTX_init)               \
    X(X509_STORE_CTX_set_default) X(X509_STORE_CTX_get0_param)                        \
    X(X509_STORE_CTX_get0_chain) X(X509_VERIFY_PARAM_set1_host)                       \
    X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_verify_cert) X(X509_STORE_CTX_get_error)  \
    X(X509_verify_cert_error_string) X(X509_free) X(X509_get_X509_PUBKEY)             \
    X(i2d_X509_PUBKEY) X(SHA256) X(OPENSSL_sk_num) X(OPENSSL_sk_value)                \
    X(ERR_get_next_error_library) X(ERR_load_strings) X(ERR_peek_last_error)          \
    X(ERR_reason_error_string) X(ERR_clear_error) X(SSL_get_error)                     \
    X(X509_digest) X(EVP_sha256) X(X509_get0_notAfter) X(X509_cmp_time)

/* The interposed entry points: all an impostor needs to offer. */
#define SG_OSSL_ENTRIES(X)                                                           \
    X(SSL_connect) X(SSL_do_handshake) X(SSL_read) X(SSL_read_ex) X(SSL_peek)         \
    X(SSL_peek_ex) X(SSL_write) X(SSL_write_ex)

struct sg_ossl {
    struct sg_lib lib;     /* first: the record backend.c keeps */
    int kind;
    int ex_index;          /* our per-SSL slot */
    int err_lib;           /* our error library number, 0 if none */
    ERR_STRING_DATA strings[SG_R_COUNT + 2]; /* library name, reasons, end */
#define SG_MEMBER(f) __typeof__(f) *f;
    SG_OSSL_FUNCS(SG_MEMBER)
#undef SG_MEMBER
    /* Named differently in 1.1 and 3. */
    X509 *(*get1_peer_cert)(const SSL *);
    void (*err_new)(void);
    void (*err_set_debug)(const char *, int, const char *);
    void (*err_set_error)(int, int, const char *, ...);
    void (*err_put_error)(int, int, int, const char *, int);
    void (*err_add_error_data)(int, ...);
};

/* The library that the caller at return address ret would have reached for
 * the OpenSSL function sym. NULL only when no such function is loaded. */
struct sg_ossl *sg_ossl_for_caller(const void *ret, const char *sym);
/* Bind o to what the OpenSSL behind handle h has (the wire verdict's own
 * libcrypto, which the program does not use): no error strings, no ex_data
 * slot; functions h lacks stay NULL. sg_ossl_store works on it. */
void sg_ossl_bind_private(struct sg_ossl *o, void *h);
/* Bind every OpenSSL in the process and build the trust stores the policy
 * names, before a chroot hides them. */
void sg_ossl_prepare_stores(void);
/* The trust store for these policy paths, built once; NULL if unreadable. */
X509_STORE *sg_ossl_store(struct sg_ossl *o, const char *ca_file, const char *ca_path);

#endif
