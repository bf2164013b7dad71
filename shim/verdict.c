/* The verdict. Checking SSL_get_verify_result would trust whatever verify
 * callback, store or flags the program set, so the chain is verified again
 * here, from scratch, against the store the policy names. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ossl_err.h"
#include "verdict.h"

static int check_protocol(struct sg_ossl *o, SSL *s, char *detail, size_t len)
{
    int v = o->SSL_version(s);
    if (v >= sg_config()->min_protocol)
        return 0;
    snprintf(detail, len, "negotiated %s, policy min_protocol is %s", o->SSL_get_version(s),
             sg_config()->min_protocol == SG_TLS13 ? "TLSv1.3" : "TLSv1.2");
    return SG_R_PROTOCOL;
}

static int check_cipher(struct sg_ossl *o, SSL *s, char *detail, size_t len)
{
    const SSL_CIPHER *c = o->SSL_get_current_cipher(s);
    int kx = c ? o->SSL_CIPHER_get_kx_nid(c) : 0;
    int fs = kx == NID_kx_ecdhe || kx == NID_kx_dhe || kx == NID_kx_any;
    if (c && fs && o->SSL_CIPHER_is_aead(c))
        return 0;
    snprintf(detail, len, "negotiated %s, which is not forward-secret AEAD",
             c ? o->SSL_CIPHER_get_name(c) : "no cipher");
    return SG_R_CIPHER;
}

static int pinned(struct sg_ossl *o, X509 *cert, const struct sg_dest *d)
{
    unsigned char der[8192], *p = der, digest[32];
    int n = o->i2d_X509_PUBKEY(o->X509_get_X509_PUBKEY(cert), NULL);
    if (n <= 0 || n > (int)sizeof der || o->i2d_X509_PUBKEY(o->X509_get_X509_PUBKEY(cert), &p) != n)
        return 0;
    o->SHA256(der, (size_t)n, digest);
    for (int i = 0; i < d->npins; i++)
        if (memcmp(digest, d->pins[i], 32) == 0)
            return 1;
    return 0;
}

/* Any certificate of the verified chain may carry the pinned key. */
static int check_pins(struct sg_ossl *o, X509_STORE_CTX *ctx, const struct sg_target *t,
                      char *detail, size_t len)
{
    if (!t->dest || t->dest->npins == 0)
        return 0;
    STACK_OF(X509) *chain = o->X509_STORE_CTX_get0_chain(ctx);
    for (int i = 0; chain && i < o->OPENSSL_sk_num((OPENSSL_STACK *)chain); i++)
        if (pinned(o, o->OPENSSL_sk_value((OPENSSL_STACK *)chain, i), t->dest))
            return 0;
    snprintf(detail, len, "no certificate in the chain has a pin_sha256 of the policy");
    return SG_R_PIN;
}

static int set_name(struct sg_ossl *o, X509_STORE_CTX *ctx, const struct sg_target *t)
{
    X509_VERIFY_PARAM *param = o->X509_STORE_CTX_get0_param(ctx);
    return t->ip_literal ? o->X509_VERIFY_PARAM_set1_ip_asc(param, t->host)
                         : o->X509_VERIFY_PARAM_set1_host(param, t->host, 0);
}

static int verify_chain(struct sg_ossl *o, X509_STORE *store, X509 *leaf, SSL *s,
                        const struct sg_target *t, char *detail, size_t len)
{
    X509_STORE_CTX *ctx = o->X509_STORE_CTX_new();
    int reason = SG_R_APPLY;
    snprintf(detail, len, "cannot set up certificate verification");
    if (ctx && o->X509_STORE_CTX_init(ctx, store, leaf, o->SSL_get_peer_cert_chain(s)) &&
        o->X509_STORE_CTX_set_default(ctx, "ssl_server") && set_name(o, ctx, t)) {
        if (o->X509_verify_cert(ctx) == 1) {
            reason = check_pins(o, ctx, t, detail, len);
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

static int check_certificate(struct sg_ossl *o, SSL *s, const struct sg_target *t,
                             char *detail, size_t len)
{
    const struct sg_policy *p = sg_config();
    const char *ca_file = sg_policy_ca_file(p, t->dest), *ca_path = sg_policy_ca_path(p, t->dest);
    X509_STORE *store = sg_ossl_store(o, ca_file, ca_path);
    if (!store) {
        snprintf(detail, len, "cannot load ca_file '%s' / ca_path '%s'", ca_file, ca_path);
        return SG_R_STORE;
    }
    X509 *leaf = o->get1_peer_cert(s);
    if (!leaf) {
        snprintf(detail, len, "no certificate");
        return SG_R_NO_CERT;
    }
    int reason = verify_chain(o, store, leaf, s, t, detail, len);
    o->X509_free(leaf);
    return reason;
}

int sg_verdict(struct sg_ossl *o, SSL *s, const struct sg_target *t, char *detail, size_t len)
{
    int r = check_protocol(o, s, detail, len);
    if (!r)
        r = check_cipher(o, s, detail, len);
    if (!r)
        r = check_certificate(o, s, t, detail, len);
    return r;
}
