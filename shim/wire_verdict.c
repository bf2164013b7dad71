/* The wire's answers to decision.c's questions. Version and suite come from
 * the ServerHello; a TLS 1.2 chain is verified from the Certificate message
 * against the policy's store by the system's OpenSSL, dlopen'ed with
 * RTLD_LOCAL at the first need: nothing is linked, and nothing it exports
 * can be confused with an OpenSSL the program carries inside itself.
 * What it takes on trust from the program's TLS library is protocol, not
 * policy: that the ServerKeyExchange is checked against the certificate it
 * received (every library does, whatever its trust settings), so the chain
 * judged here is the one whose key the session runs with. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ident.h"
#include "decision.h"
#include "ossl.h"
#include "wire_resume.h"
#include "wire_verdict.h"

struct crypto {
    struct sg_ossl o;
    X509 *(*d2i_X509)(X509 **, const unsigned char **, long);
    OPENSSL_STACK *(*sk_new_null)(void);
    int (*sk_push)(OPENSSL_STACK *, const void *);
    void (*sk_free)(OPENSSL_STACK *);
};

static struct crypto k;
static int k_ok;
static pthread_once_t k_once = PTHREAD_ONCE_INIT;

/* Everything the verdict and the store (ossl.c's build_store) call. */
static int complete(const struct crypto *c)
{
    const struct sg_ossl *o = &c->o;
    return c->d2i_X509 && c->sk_new_null && c->sk_push && c->sk_free && o->X509_STORE_new &&
           o->X509_STORE_free && o->X509_STORE_load_locations && o->X509_STORE_CTX_new &&
           o->X509_STORE_CTX_free && o->X509_STORE_CTX_init && o->X509_STORE_CTX_set_default &&
           o->X509_STORE_CTX_get0_param && o->X509_STORE_CTX_get0_chain &&
           o->X509_VERIFY_PARAM_set1_host && o->X509_VERIFY_PARAM_set1_ip_asc &&
           o->X509_verify_cert && o->X509_STORE_CTX_get_error &&
           o->X509_verify_cert_error_string && o->X509_free && o->X509_get_X509_PUBKEY &&
           o->i2d_X509_PUBKEY && o->SHA256 && o->OPENSSL_sk_num && o->OPENSSL_sk_value;
}

/* libcrypto alone: certificates need no TLS code. */
static void load(void)
{
    static const char names[][20] = {"libcrypto.so.3", "libcrypto.so.1.1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !k_ok; i++) {
        void *h = dlopen(names[i], RTLD_LAZY | RTLD_LOCAL);
        if (!h)
            continue;
        sg_ossl_bind_private(&k.o, h);
        k.d2i_X509 = (__typeof__(k.d2i_X509))dlsym(h, "d2i_X509");
        k.sk_new_null = (__typeof__(k.sk_new_null))dlsym(h, "OPENSSL_sk_new_null");
        k.sk_push = (__typeof__(k.sk_push))dlsym(h, "OPENSSL_sk_push");
        k.sk_free = (__typeof__(k.sk_free))dlsym(h, "OPENSSL_sk_free");
        k_ok = complete(&k);
    }
}

static struct crypto *crypto(void)
{
    int saved = errno;
    pthread_once(&k_once, load);
    errno = saved;
    return k_ok ? &k : NULL;
}

struct session {
    const struct sg_wire *w;
    int unverified;
    char cipher[16];
};

#define SESSION struct session *x = session

static int version(void *session)
{
    SESSION;
    return x->w->version;
}

static const char *version_name(void *session)
{
    SESSION;
    return sg_wire_version_name(x->w->version);
}

static const char *cipher_name(void *session)
{
    SESSION;
    return sg_wire_cipher_name(x->w->cipher, x->cipher, sizeof x->cipher);
}

static int fs_aead(void *session)
{
    SESSION;
    return sg_wire_fs_aead(x->w->cipher);
}

static void spki_digests(struct crypto *c, X509_STORE_CTX *ctx, unsigned char spki[][32],
                         int *n)
{
    STACK_OF(X509) *chain = c->o.X509_STORE_CTX_get0_chain(ctx);
    int count = chain ? c->o.OPENSSL_sk_num((OPENSSL_STACK *)chain) : 0;
    for (int i = 0; i < count && *n < SG_MAX_CHAIN; i++) {
        unsigned char der[8192], *p = der;
        X509_PUBKEY *key = c->o.X509_get_X509_PUBKEY(c->o.OPENSSL_sk_value((OPENSSL_STACK *)chain, i));
        int len = c->o.i2d_X509_PUBKEY(key, NULL);
        if (len > 0 && len <= (int)sizeof der && c->o.i2d_X509_PUBKEY(key, &p) == len)
            c->o.SHA256(der, (size_t)len, spki[(*n)++]);
    }
}

static int set_name(struct crypto *c, X509_STORE_CTX *ctx, const struct sg_target *t)
{
    X509_VERIFY_PARAM *param = c->o.X509_STORE_CTX_get0_param(ctx);
    return t->ip_literal ? c->o.X509_VERIFY_PARAM_set1_ip_asc(param, t->host)
                         : c->o.X509_VERIFY_PARAM_set1_host(param, t->host, 0);
}

static int verify(struct crypto *c, X509_STORE *store, X509 **certs, int count,
                  OPENSSL_STACK *untrusted, const struct sg_target *t,
                  unsigned char spki[][32], int *n, char *detail, size_t len)
{
    X509_STORE_CTX *ctx = c->o.X509_STORE_CTX_new();
    int reason = SG_R_APPLY;
    snprintf(detail, len, "cannot set up certificate verification");
    for (int i = 0; i < count; i++)
        c->sk_push(untrusted, certs[i]);
    if (ctx && c->o.X509_STORE_CTX_init(ctx, store, certs[0], (STACK_OF(X509) *)untrusted) &&
        c->o.X509_STORE_CTX_set_default(ctx, "ssl_server") && set_name(c, ctx, t)) {
        if (c->o.X509_verify_cert(ctx) == 1) {
            reason = 0;
            if (t->dest && t->dest->npins)
                spki_digests(c, ctx, spki, n);
        } else {
            int err = c->o.X509_STORE_CTX_get_error(ctx);
            reason = (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH)
                         ? SG_R_HOSTNAME
                         : SG_R_CHAIN;
            snprintf(detail, len, "%s (expected %s)", c->o.X509_verify_cert_error_string(err),
                     t->host);
        }
    }
    if (ctx)
        c->o.X509_STORE_CTX_free(ctx);
    return reason;
}

static int parse_and_verify(struct crypto *c, const struct sg_wire *w, X509_STORE *store,
                            const struct sg_target *t, unsigned char spki[][32], int *n,
                            char *detail, size_t len)
{
    const unsigned char *der[SG_WIRE_MAX_CERTS];
    size_t dlen[SG_WIRE_MAX_CERTS];
    X509 *certs[SG_WIRE_MAX_CERTS];
    int count = sg_wire_certs(w, der, dlen, SG_WIRE_MAX_CERTS), parsed = 0;
    if (count == 0) {
        snprintf(detail, len, "no certificate in the server's TLS 1.2 flight");
        return SG_R_NO_CERT;
    }
    while (parsed < count) {
        const unsigned char *p = der[parsed];
        X509 *x = c->d2i_X509(NULL, &p, (long)dlen[parsed]);
        if (!x || p != der[parsed] + dlen[parsed]) {
            if (x)
                c->o.X509_free(x);
            break;
        }
        certs[parsed++] = x;
    }
    OPENSSL_STACK *untrusted = parsed == count ? c->sk_new_null() : NULL;
    int reason = SG_R_CHAIN;
    if (parsed < count)
        snprintf(detail, len, "certificate %d on the wire cannot be parsed", parsed);
    else if (!untrusted)
        snprintf(detail, len, "out of memory");
    else
        reason = verify(c, store, certs, count, untrusted, t, spki, n, detail, len);
    if (untrusted)
        c->sk_free(untrusted);
    while (parsed > 0)
        c->o.X509_free(certs[--parsed]);
    return reason;
}

/* TLS 1.3, or a resumed TLS 1.2 session: nothing to verify on the wire. */
static int unverified(struct session *x, const struct sg_target *t, int reason, char *detail,
                      size_t len)
{
    const struct sg_policy *p = sg_config();
    if (sg_policy_unverified(p, t->dest)) {
        x->unverified = 1;
        return 0;
    }
    const char *host = t->host[0] ? t->host : t->addr;
    const struct sg_ident *id = sg_ident(); /* never argv memory: it may hold a password */
    int v6 = strchr(host, ':') != NULL;
    snprintf(detail, len, "program %s, destination %s:%d; to allow it without a certificate "
             "check, set unverified_tls = allow in [destination %s%s%s:%d] (or in "
             "[program %s])", id->program, host, t->port, v6 ? "[" : "", host, v6 ? "]" : "",
             t->port, id->exe[0] ? id->exe : id->program);
    return reason;
}

static int chain(void *session, const struct sg_target *t, const char *ca_file,
                 const char *ca_path, unsigned char spki[][32], int *n, char *detail,
                 size_t len)
{
    SESSION;
    if (x->w->version >= 0x0304)
        return unverified(x, t, SG_R_UNVERIFIED, detail, len);
    if (x->w->resumed && !sg_wire_resume_known(x->w, t))
        return unverified(x, t, SG_R_RESUMED, detail, len);
    if (x->w->resumed) {
        x->unverified = 2; /* resumed from a session verified here */
        return 0;          /* (with pins: refused, no chain to check them on) */
    }
    struct crypto *c = crypto();
    if (!c) {
        snprintf(detail, len, "no system libcrypto.so.3 or libcrypto.so.1.1 to verify the "
                 "certificate seen on the wire");
        return SG_R_STORE;
    }
    X509_STORE *store = sg_ossl_store(&c->o, ca_file, ca_path);
    if (!store) {
        snprintf(detail, len, "cannot load ca_file '%s' / ca_path '%s'", ca_file, ca_path);
        return SG_R_STORE;
    }
    return parse_and_verify(c, x->w, store, t, spki, n, detail, len);
}

static const struct sg_checks wire_checks = {version, version_name, cipher_name, fs_aead,
                                             chain, NULL};

int sg_wire_judge(const struct sg_wire *w, const struct sg_target *t, int *unverified_out,
                  char *detail, size_t len)
{
    const struct sg_policy *p = sg_config();
    struct session x = {.w = w};
    if (p->broken) {
        snprintf(detail, len, "%s", p->error);
        return SG_R_POLICY;
    }
    int reason = sg_decide(&wire_checks, &x, t, detail, len);
    *unverified_out = x.unverified;
    return reason;
}
