/* During a guarded handshake GnuTLS parses the server's certificates (to
 * learn its key, and again for the program's own verification) and frees
 * them with gnutls_x509_crt_deinit before the handshake returns. Parsing
 * them once more for the shim's verdict cost about 235,000 instructions a
 * certificate. So while the shim's real handshake call runs, this thread
 * keeps what its GnuTLS frees, and the verdict takes a kept certificate only
 * if its DER is byte for byte one the server presented: the same bytes
 * parsed by the same library. Whatever is kept is freed when the shim's
 * handshake call ends, so nothing outlives it. */
#include "gnutls_keep.h"
#include "gnutls_lend.h"
#include "real.h"

#define CALLER __builtin_return_address(0)
#define KEEP 8 /* a chain and an anchor; more: freed */

static __thread struct {
    struct sg_gnutls *g; /* the library whose frees are kept; NULL: none */
    int open;            /* inside the real handshake call */
    int n;
    gnutls_x509_crt_t crt[KEEP];
    gnutls_x509_crt_t spare; /* a copy of one kept: the verdict's stand-in (gnutls_lend.c) */
} kept __attribute__((tls_model("initial-exec")));

void sg_gnutls_keep_open(struct sg_gnutls *g)
{
    if (g->gnutls_x509_crt_equals2 && g->gnutls_x509_crt_export2 && !kept.g) {
        kept.g = g;
        kept.open = 1;
    }
}

void sg_gnutls_keep_close(void)
{
    kept.open = 0;
}

void sg_gnutls_keep_release(void)
{
    for (int i = 0; i < kept.n; i++)
        kept.g->gnutls_x509_crt_deinit(kept.crt[i]);
    if (kept.spare)
        kept.g->gnutls_x509_crt_deinit(kept.spare);
    kept.spare = NULL;
    kept.n = 0;
    kept.g = NULL;
    kept.open = 0;
}

static int kept_take(struct sg_gnutls *g, const gnutls_datum_t *der, gnutls_x509_crt_t *out)
{
    if (kept.g != g)
        return 0;
    for (int i = 0; i < kept.n; i++)
        if (g->gnutls_x509_crt_equals2(kept.crt[i], der)) {
            *out = kept.crt[i];
            kept.crt[i] = kept.crt[--kept.n];
            return 1;
        }
    return 0;
}

int sg_gnutls_crt_of(struct sg_gnutls *g, const gnutls_datum_t *der, gnutls_x509_crt_t *out)
{
    if (kept_take(g, der, out))
        return 1;
    if (g->gnutls_x509_crt_init(out) < 0)
        return 0;
    if (g->gnutls_x509_crt_import(*out, der, GNUTLS_X509_FMT_DER) < 0) {
        g->gnutls_x509_crt_deinit(*out);
        return 0;
    }
    return 1;
}

gnutls_x509_crt_t sg_gnutls_spare_take(struct sg_gnutls *g)
{
    gnutls_x509_crt_t crt = kept.g == g ? kept.spare : NULL;
    if (crt)
        kept.spare = NULL;
    return crt;
}

/* Worth keeping: not a copy of one kept already (GnuTLS parses the server's
 * certificate twice when the program verifies; a parse holds ~16 KiB). The
 * first copy is kept as the spare instead: a certificate GnuTLS made, freed
 * later rather than now, that the verdict lends for the copy of its anchor
 * GnuTLS asks for only to free it (gnutls_lend.c), where making an empty one
 * costs ~80,000 instructions with its free. */
static int worth_keeping(struct sg_gnutls *g, gnutls_x509_crt_t crt)
{
    gnutls_datum_t der = {NULL, 0};
    if (kept.n == KEEP || !g->free_fn ||
        g->gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0)
        return 0;
    int fresh = 1;
    for (int i = 0; fresh && i < kept.n; i++)
        fresh = !g->gnutls_x509_crt_equals2(kept.crt[i], &der);
    (*g->free_fn)(der.data);
    if (!fresh && !kept.spare) {
        kept.spare = crt;
        return -1;
    }
    return fresh;
}

SG_EXPORT void gnutls_x509_crt_deinit(gnutls_x509_crt_t crt)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_x509_crt_deinit");
    if (SG_UNLIKELY(!g || !g->gnutls_x509_crt_deinit)) {
        void (*next)(gnutls_x509_crt_t) = sg_gnutls_next(CALLER, "gnutls_x509_crt_deinit");
        if (next)
            next(crt);
        return;
    }
    if (sg_gnutls_lend_returned(crt))
        return;
    /* Only GnuTLS's own frees: a certificate the program made may carry its
     * flags (GNUTLS_X509_CRT_FLAG_IGNORE_SANITY). */
    if (kept.open && kept.g == g && crt && sg_lib_holds(&g->lib, CALLER)) {
        int worth = worth_keeping(g, crt);
        if (worth > 0)
            kept.crt[kept.n++] = crt;
        if (worth)
            return;
    }
    g->gnutls_x509_crt_deinit(crt);
}
