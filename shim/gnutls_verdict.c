/* The peer chain is verified here against the policy's trust list, whatever
 * verify function, flags or credentials the program gave GnuTLS. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "gnutls_keep.h"
#include "gnutls_lend.h"
#include "gnutls_prio.h"
#include "gnutls_verdict.h"

#define SESSION struct sg_gnutls_session *x = session

static int version(void *session)
{
    SESSION;
    int v = x->g->gnutls_protocol_get_version(x->s);
    /* GNUTLS_TLS1_0 is 2 ... GNUTLS_TLS1_3 is 5; SSL 3 and unknown count as lowest. */
    return v >= GNUTLS_TLS1_0 && v <= GNUTLS_TLS1_3 ? 0x0301 + (v - GNUTLS_TLS1_0) : 0x0300;
}

static const char *version_name(void *session)
{
    SESSION;
    const char *n = x->g->gnutls_protocol_get_name(x->g->gnutls_protocol_get_version(x->s));
    return n ? n : "unknown";
}

static const char *cipher_name(void *session)
{
    SESSION;
    const char *n = x->g->gnutls_cipher_get_name(x->g->gnutls_cipher_get(x->s));
    return n ? n : "unknown";
}

static int aead(gnutls_cipher_algorithm_t c)
{
    return c == GNUTLS_CIPHER_AES_128_GCM || c == GNUTLS_CIPHER_AES_256_GCM ||
           c == GNUTLS_CIPHER_CHACHA20_POLY1305 || c == GNUTLS_CIPHER_AES_128_CCM ||
           c == GNUTLS_CIPHER_AES_256_CCM;
}

/* Forward-secret AEAD, in a suite the policy's priority allows. Enforce mode
 * offers nothing else (the narrowed priority), so this answers audit mode,
 * where nothing is narrowed: it reports what enforce refuses. The policy's
 * rule implies forward secrecy (TLS 1.3, or an ECDHE key exchange). */
static int fs_aead(void *session)
{
    SESSION;
    gnutls_cipher_algorithm_t cipher = x->g->gnutls_cipher_get(x->s);
    return aead(cipher) &&
           sg_gnutls_suite_allowed((unsigned)x->g->gnutls_protocol_get_version(x->s),
                                   x->g->gnutls_kx_get(x->s), cipher,
                                   sg_config()->min_protocol == SG_TLS13);
}

static int import_peers(struct sg_gnutls *g, gnutls_session_t s, gnutls_x509_crt_t *crts)
{
    unsigned n = 0;
    const gnutls_datum_t *der = g->gnutls_certificate_get_peers(s, &n);
    int count = 0;
    while (der && (unsigned)count < n && count < SG_MAX_CHAIN &&
           sg_gnutls_crt_of(g, &der[count], &crts[count]))
        count++;
    return count;
}

static void describe(struct sg_gnutls *g, unsigned status, char *detail, size_t len)
{
    gnutls_datum_t out = {NULL, 0};
    if (g->gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0 &&
        out.data) {
        snprintf(detail, len, "%s", out.data);
        (*g->free_fn)(out.data);
    } else {
        snprintf(detail, len, "verification status 0x%x", status);
    }
}

static int verify(struct sg_gnutls *g, gnutls_x509_trust_list_t list, gnutls_x509_crt_t *crts,
                  int n, const struct sg_target *t, char *detail, size_t len)
{
    gnutls_typed_vdata_st data[] = {
        {GNUTLS_DT_DNS_HOSTNAME, (unsigned char *)t->host, 0},
        {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER, 0},
    };
    unsigned status = 0;
    if (g->gnutls_x509_trust_list_verify_crt2(list, crts, (unsigned)n, data, 2, 0, &status,
                                               NULL) < 0) {
        snprintf(detail, len, "GnuTLS could not verify the chain");
        return SG_R_CHAIN;
    }
    if (!status)
        return 0;
    describe(g, status, detail, len);
    size_t k = strlen(detail);
    while (k && detail[k - 1] == ' ')
        detail[--k] = 0;
    snprintf(detail + k, len - k, " (expected %s)", t->host); /* as the OpenSSL side says */
    return status == (GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER) ? SG_R_HOSTNAME
                                                                         : SG_R_CHAIN;
}

static int chain(void *session, const struct sg_target *t, const char *ca_file,
                 const char *ca_path, unsigned char spki[][32], int *nspki, char *detail,
                 size_t len)
{
    SESSION;
    struct sg_gnutls_store *store = sg_gnutls_trust(x->g, ca_file, ca_path);
    if (!store) {
        snprintf(detail, len, "cannot load ca_file '%s' / ca_path '%s'", ca_file, ca_path);
        return SG_R_STORE;
    }
    unsigned npeers = 0;
    const gnutls_datum_t *peers = x->g->gnutls_certificate_get_peers(x->s, &npeers);
    gnutls_x509_crt_t crts[SG_MAX_CHAIN];
    int n = import_peers(x->g, x->s, crts), fresh = 0;
    int reason = SG_R_NO_CERT;
    snprintf(detail, len, "no certificate");
    if (n > 0) {
        gnutls_x509_trust_list_t list = sg_gnutls_trust_for(x->g, store, peers, n, &fresh);
        reason = SG_R_STORE;
        snprintf(detail, len, "cannot hand the anchors of ca_file '%s' to GnuTLS", ca_file);
        if (fresh) /* a list of its own: only that one lends (gnutls_lend.c) */
            sg_gnutls_lend_open(x->g, list);
        if (list)
            reason = verify(x->g, list, crts, n, t, detail, len);
        if (fresh) {
            sg_gnutls_lend_close();
            x->g->gnutls_x509_trust_list_deinit(list, 1);
        }
    }
    int pins = t->dest && t->dest->npins; /* key ids cost 100,000 instructions each */
    for (int i = 0; i < n; i++) {
        size_t size = 32;
        if (!reason && pins &&
            x->g->gnutls_x509_crt_get_key_id(crts[i], GNUTLS_KEYID_USE_SHA256, spki[*nspki],
                                             &size) == 0)
            (*nspki)++;
        x->g->gnutls_x509_crt_deinit(crts[i]);
    }
    return reason;
}

/* No fingerprint, so no verdict cache: every GnuTLS handshake is verified
 * in full. (A fingerprint would cost a one-message process nothing now:
 * sg_decide asks for one only from a process's second verdict on.) */
const struct sg_checks sg_gnutls_checks = {version, version_name, cipher_name, fs_aead, chain,
                                           NULL};
