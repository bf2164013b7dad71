/* Checking SSL_get_verify_result would trust whatever verify callback,
 * store or flags the program set, so the chain is verified again here, from
 * scratch, against the store the policy names. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ossl_ciphers.h"
#include "ossl_verdict.h"

#define SESSION struct sg_ossl_session *x = session

static int version(void *session)
{
    SESSION;
    return x->o->SSL_version(x->s);
}

static const char *version_name(void *session)
{
    SESSION;
    return x->o->SSL_get_version(x->s);
}

static const char *cipher_name(void *session)
{
    SESSION;
    const SSL_CIPHER *c = x->o->SSL_get_current_cipher(x->s);
    return c ? x->o->SSL_CIPHER_get_name(c) : "no cipher";
}

static int fs_aead(void *session)
{
    SESSION;
    const SSL_CIPHER *c = x->o->SSL_get_current_cipher(x->s);
    int kx = c ? x->o->SSL_CIPHER_get_kx_nid(c) : 0;
    return c && (kx == NID_kx_ecdhe || kx == NID_kx_dhe || kx == NID_kx_any) &&
           x->o->SSL_CIPHER_is_aead(c) && sg_ossl_cipher_allowed(x->o, c, sg_config());
}

static int spki_digest(struct sg_ossl *o, X509 *cert, unsigned char digest[32])
{
    unsigned char der[8192], *p = der;
    X509_PUBKEY *key = o->X509_get_X509_PUBKEY(cert);
    int n = o->i2d_X509_PUBKEY(key, NULL);
    if (n <= 0 || n > (int)sizeof der || o->i2d_X509_PUBKEY(key, &p) != n)
        return 0;
    o->SHA256(der, (size_t)n, digest);
    return 1;
}

static void chain_digests(struct sg_ossl *o, X509_STORE_CTX *ctx, unsigned char spki[][32],
                          int *n)
{
    STACK_OF(X509) *chain = o->X509_STORE_CTX_get0_chain(ctx);
    int count = chain ? o->OPENSSL_sk_num((OPENSSL_STACK *)chain) : 0;
    for (int i = 0; i < count && *n < SG_MAX_CHAIN; i++)
        *n += spki_digest(o, o->OPENSSL_sk_value((OPENSSL_STACK *)chain, i), spki[*n]);
}

static int set_name(struct sg_ossl *o, X509_STORE_CTX *ctx, const struct sg_target *t)
{
    X509_VERIFY_PARAM *param = o->X509_STORE_CTX_get0_param(ctx);
    return t->ip_literal ? o->X509_VERIFY_PARAM_set1_ip_asc(param, t->host)
                         : o->X509_VERIFY_PARAM_set1_host(param, t->host, 0);
}

static int verify(struct sg_ossl *o, SSL *s, X509_STORE *store, X509 *leaf,
                  const struct sg_target *t, unsigned char spki[][32], int *n,
                  char *detail, size_t len)
{
    X509_STORE_CTX *ctx = o->X509_STORE_CTX_new();
    int reason = SG_R_APPLY;
    snprintf(detail, len, "cannot set up certificate verification");
    if (ctx && o->X509_STORE_CTX_init(ctx, store, leaf, o->SSL_get_peer_cert_chain(s)) &&
        o->X509_STORE_CTX_set_default(ctx, "ssl_server") && set_name(o, ctx, t)) {
        if (o->lazy)
            sg_ossl_store_hint(o->SSL_get0_verified_chain(s), o->SSL_get_peer_cert_chain(s));
        int ok = o->X509_verify_cert(ctx);
        sg_ossl_store_hint(NULL, NULL);
        if (ok == 1) {
            reason = 0;
            if (t->dest && t->dest->npins)
                chain_digests(o, ctx, spki, n);
        } else {
            int err = o->X509_STORE_CTX_get_error(ctx);
            reason = (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH)
                         ? SG_R_HOSTNAME
                         : SG_R_CHAIN;
            snprintf(detail, len, "%s (expected %s)", o->X509_verify_cert_error_string(err),
                     t->host);
        }
    }
    if (ctx)
        o->X509_STORE_CTX_free(ctx);
    return reason;
}

static int chain(void *session, const struct sg_target *t, const char *ca_file,
                 const char *ca_path, unsigned char spki[][32], int *n, char *detail,
                 size_t len)
{
    SESSION;
    X509_STORE *store = sg_ossl_store(x->o, ca_file, ca_path);
    if (!store) {
        snprintf(detail, len, "cannot load ca_file '%s' / ca_path '%s'", ca_file, ca_path);
        return SG_R_STORE;
    }
    X509 *leaf = x->o->get1_peer_cert(x->s);
    if (!leaf) {
        snprintf(detail, len, "no certificate");
        return SG_R_NO_CERT;
    }
    int reason = verify(x->o, x->s, store, leaf, t, spki, n, detail, len);
    x->o->X509_free(leaf);
    return reason;
}

/* SHA-256 over the digests of the presented certificates, if none of them
 * expires within valid_for seconds; what a library without the low-level
 * SHA-256 gets (see der_fingerprint). */
static int digest_fingerprint(struct sg_ossl *o, STACK_OF(X509) *sk, int count, time_t limit,
                              unsigned char key[32])
{
    unsigned char digests[SG_MAX_CHAIN][32];
    for (int i = 0; i < count; i++) {
        X509 *cert = o->OPENSSL_sk_value((OPENSSL_STACK *)sk, i);
        unsigned len = 32;
        if (o->X509_cmp_time(o->X509_get0_notAfter(cert), &limit) <= 0 ||
            o->X509_digest(cert, o->EVP_sha256(), digests[i], &len) != 1 || len != 32)
            return 0;
    }
    o->SHA256(&digests[0][0], (size_t)count * 32, key);
    return 1;
}

/* SHA-256 over the presented certificates (each its length, then its DER
 * bytes), if none of them expires within valid_for seconds: one digest with
 * the low-level SHA-256, where X509_digest would fetch the digest again and
 * allocate and encode each certificate twice, and a digest of digests hash
 * twice (issue 15: ~39,000 instructions for one leaf in OpenSSL 3). 0, so
 * not kept, when a certificate is larger than 8 KiB. */
static int der_fingerprint(struct sg_ossl *o, STACK_OF(X509) *sk, int count, time_t limit,
                           unsigned char key[32])
{
    unsigned char der[8192];
    SHA256_CTX sha;
    if (o->sha256_init(&sha) != 1)
        return 0;
    for (int i = 0; i < count; i++) {
        X509 *cert = o->OPENSSL_sk_value((OPENSSL_STACK *)sk, i);
        unsigned char *p = der;
        int n = o->i2d_X509(cert, NULL);
        uint32_t len = (uint32_t)n;
        if (o->X509_cmp_time(o->X509_get0_notAfter(cert), &limit) <= 0 || n <= 0 ||
            n > (int)sizeof der || o->i2d_X509(cert, &p) != n ||
            o->sha256_update(&sha, &len, sizeof len) != 1 ||
            o->sha256_update(&sha, der, len) != 1)
            return 0;
    }
    return o->sha256_final(key, &sha) == 1;
}

/* The verdict cache's key for the presented chain (decision.c). */
static int fingerprint(void *session, long valid_for, unsigned char key[32])
{
    SESSION;
    struct sg_ossl *o = x->o;
    STACK_OF(X509) *sk = o->SSL_get_peer_cert_chain(x->s);
    int count = sk ? o->OPENSSL_sk_num((OPENSSL_STACK *)sk) : 0;
    time_t limit = time(NULL) + valid_for;
    if (count <= 0 || count > SG_MAX_CHAIN)
        return 0;
    return o->i2d_X509 && o->sha256_init && o->sha256_update && o->sha256_final
               ? der_fingerprint(o, sk, count, limit, key)
               : digest_fingerprint(o, sk, count, limit, key);
}

const struct sg_checks sg_ossl_checks = {version, version_name, cipher_name, fs_aead, chain,
                                         fingerprint};
