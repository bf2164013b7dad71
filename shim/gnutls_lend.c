/* GnuTLS's chain verification (gnutls_x509_trust_list_verify_crt2, 3.7.3 to
 * 3.8) asks its trust list for the issuer of the chain's last certificate as
 * a copy, only to learn that it is there, and frees the copy at once. A copy
 * is a parse of the anchor: about 130,000 instructions with its free, twice
 * per verdict.
 *
 * During the shim's own verification, against a list the shim made for that
 * verdict alone, GnuTLS's own request for a copy is answered by the list
 * (found or not, as before) and, when found, with a stand-in for the copy,
 * whose free by GnuTLS (gnutls_keep.c sees every one) is its return and frees
 * nothing. The stand-in is the spare (gnutls_keep.h): a copy of the server's
 * certificate GnuTLS made and freed during the handshake, freed after the
 * verdict instead; without one, an empty certificate of the shim's, made once
 * per verdict (~80,000 instructions with its free). Either is GnuTLS's own
 * certificate, which GnuTLS may free, and nothing else holds.
 *
 * Never the list's own certificate: a GnuTLS whose free skipped the shim (a
 * build whose internal calls bypass its PLT) would free the anchor under the
 * verification. A stand-in freed or kept that way harms nothing: the shim
 * leaves it alone and that library lends no more. Only for the versions whose
 * use of the copy is that one look (bind_library: lends). */
#include "gnutls_keep.h"
#include "gnutls_lend.h"
#include "real.h"

#define CALLER __builtin_return_address(0)

static __thread struct {
    struct sg_gnutls *g; /* NULL: nothing to lend */
    gnutls_x509_trust_list_t list;
    gnutls_x509_crt_t stand_in; /* made at the first loan */
    int out;                    /* the stand-in is out */
} lend __attribute__((tls_model("initial-exec")));

void sg_gnutls_lend_open(struct sg_gnutls *g, gnutls_x509_trust_list_t list)
{
    if (__atomic_load_n(&g->lends, __ATOMIC_RELAXED))
        lend.g = g, lend.list = list;
}

void sg_gnutls_lend_close(void)
{
    if (lend.out) /* not returned through the shim: GnuTLS freed or kept it */
        __atomic_store_n(&lend.g->lends, 0, __ATOMIC_RELAXED);
    else if (lend.stand_in)
        lend.g->gnutls_x509_crt_deinit(lend.stand_in);
    lend.g = NULL;
    lend.list = NULL;
    lend.stand_in = NULL;
    lend.out = 0;
}

int sg_gnutls_lend_returned(gnutls_x509_crt_t crt)
{
    if (!lend.out || crt != lend.stand_in)
        return 0;
    lend.out = 0;
    return 1;
}

/* The answer to GnuTLS's own request for a copy of list's issuer of cert:
 * the list's answer, with the stand-in for the copy. */
static int lent(struct sg_gnutls *g, gnutls_x509_trust_list_t list, gnutls_x509_crt_t cert,
                gnutls_x509_crt_t *issuer, unsigned flags)
{
    gnutls_x509_crt_t own;
    int r = g->gnutls_x509_trust_list_get_issuer(list, cert, &own, flags & ~GNUTLS_TL_GET_COPY);
    if (r != 0)
        return r;
    if (!lend.stand_in)
        lend.stand_in = sg_gnutls_spare_take(g);
    if (!lend.stand_in && g->gnutls_x509_crt_init(&lend.stand_in) < 0) {
        lend.stand_in = NULL;
        return g->gnutls_x509_trust_list_get_issuer(list, cert, issuer, flags);
    }
    lend.out = 1;
    *issuer = lend.stand_in;
    return 0;
}

SG_EXPORT int gnutls_x509_trust_list_get_issuer(gnutls_x509_trust_list_t list,
                                                gnutls_x509_crt_t cert,
                                                gnutls_x509_crt_t *issuer, unsigned flags)
{
    const char *sym = "gnutls_x509_trust_list_get_issuer";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_x509_trust_list_get_issuer))
        SG_GNUTLS_PASS_ON(gnutls_x509_trust_list_get_issuer, GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE,
                          list, cert, issuer, flags);
    if (lend.g == g && list && list == lend.list && !lend.out && issuer &&
        (flags & GNUTLS_TL_GET_COPY) && sg_lib_holds(&g->lib, CALLER))
        return lent(g, list, cert, issuer, flags);
    return g->gnutls_x509_trust_list_get_issuer(list, cert, issuer, flags);
}
