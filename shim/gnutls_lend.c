/* GnuTLS's chain verification (gnutls_x509_trust_list_verify_crt2, 3.3 to
 * 3.8) asks its trust list for the issuer of the chain's last certificate as
 * a copy, only to learn that it is there, and frees the copy at once. A copy
 * is a parse of the anchor: about 115,000 instructions, twice per verdict.
 *
 * During the shim's own verification, against a list the shim made for that
 * verdict alone, the copy asked for by the bound GnuTLS itself is the list's
 * own certificate, lent; its free (gnutls_keep.c sees every one) is the
 * loan's return and frees nothing. The answer is the same certificate, so
 * the verification is unchanged. A GnuTLS that kept the copy instead would
 * leave the loan out: the shim then leaks the list rather than free a
 * certificate still in use. */
#include "gnutls_lend.h"
#include "real.h"

#define CALLER __builtin_return_address(0)

typedef int get_issuer_fn(gnutls_x509_trust_list_t, gnutls_x509_crt_t, gnutls_x509_crt_t *,
                          unsigned);

static __thread struct {
    struct sg_gnutls *g; /* NULL: nothing to lend */
    gnutls_x509_trust_list_t list;
    gnutls_x509_crt_t out; /* on loan */
} lend __attribute__((tls_model("initial-exec")));

void sg_gnutls_lend_open(struct sg_gnutls *g, gnutls_x509_trust_list_t list)
{
    lend.g = g;
    lend.list = list;
    lend.out = NULL;
}

int sg_gnutls_lend_close(void)
{
    lend.g = NULL;
    lend.list = NULL;
    return lend.out == NULL;
}

int sg_gnutls_lend_returned(gnutls_x509_crt_t crt)
{
    if (!lend.out || crt != lend.out)
        return 0;
    lend.out = NULL;
    return 1;
}

SG_EXPORT int gnutls_x509_trust_list_get_issuer(gnutls_x509_trust_list_t list,
                                                gnutls_x509_crt_t cert,
                                                gnutls_x509_crt_t *issuer, unsigned flags)
{
    const char *sym = "gnutls_x509_trust_list_get_issuer";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_x509_trust_list_get_issuer)) {
        get_issuer_fn *next = (get_issuer_fn *)sg_gnutls_next(CALLER, sym);
        return next ? next(list, cert, issuer, flags) : GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
    }
    if (!(lend.g == g && list && list == lend.list && !lend.out &&
          (flags & GNUTLS_TL_GET_COPY) && sg_lib_holds(&g->lib, CALLER)))
        return g->gnutls_x509_trust_list_get_issuer(list, cert, issuer, flags);
    int r = g->gnutls_x509_trust_list_get_issuer(list, cert, issuer, flags & ~GNUTLS_TL_GET_COPY);
    if (r == 0)
        lend.out = *issuer;
    return r;
}
