/* The policy's trust store for GnuTLS. Loading a bundle whole costs about
 * 10 ms per process for Debian's; instead, per verification, the anchors
 * the presented chain may lead to (trust_index.h: by subject, then their
 * issuers, ...) are parsed and handed to a trust list of their own, and
 * GnuTLS verifies as it would against the whole bundle: an anchor the chain
 * cannot reach plays no part in GnuTLS's verdict. A ca_path, or a bundle the
 * index cannot vouch for, is loaded whole, as before. */
#include <stdlib.h>

#include "gnutls_api.h"
#include "gnutls_keep.h"
#include "trust_index.h"

#define MAX_ANCHORS 32 /* anchors one chain may lead to; more: load them all */

static gnutls_x509_trust_list_t load_whole(struct sg_gnutls *g, const char *ca_file,
                                           const char *ca_path)
{
    gnutls_x509_trust_list_t list;
    if (g->gnutls_x509_trust_list_init(&list, 0) < 0)
        return NULL;
    int loaded = 0;
    if (ca_file && *ca_file)
        loaded += g->gnutls_x509_trust_list_add_trust_file(list, ca_file, NULL,
                                                           GNUTLS_X509_FMT_PEM, 0, 0) > 0;
    if (ca_path && *ca_path)
        loaded += g->gnutls_x509_trust_list_add_trust_dir(list, ca_path, NULL,
                                                          GNUTLS_X509_FMT_PEM, 0, 0) > 0;
    if (!loaded) {
        g->gnutls_x509_trust_list_deinit(list, 1);
        return NULL;
    }
    return list;
}

struct sg_gnutls_store *sg_gnutls_policy_store(struct sg_gnutls *g, const char *ca_file,
                                               const char *ca_path)
{
    struct sg_gnutls_store *st = calloc(1, sizeof *st); /* lives as long as the process */
    if (!st)
        return NULL;
    if (!(ca_path && *ca_path))
        st->lazy = sg_trust_index_get(ca_file);
    if (!st->lazy && !(st->eager = load_whole(g, ca_file, ca_path))) {
        free(st);
        return NULL;
    }
    return st;
}

/* Anchor i of x, from its DER in der when the selection read it already. */
static int import(struct sg_gnutls *g, const struct sg_trust_index *x, int i,
                  const struct sg_der *der, gnutls_x509_crt_t *crt)
{
    size_t n = der ? der->len : 0;
    unsigned char *mine = der ? NULL : sg_trust_index_der_alloc(x, i, &n);
    gnutls_datum_t d = {der ? der->data : mine, (unsigned)n};
    int ok = d.data && sg_gnutls_crt_of(g, &d, crt); /* maybe GnuTLS's parse of the program's own */
    free(mine);
    return ok;
}

/* A fresh list of the anchors idx[0..m) of x, whose DER is in der (idx and
 * der NULL: every anchor of x). */
static gnutls_x509_trust_list_t list_of(struct sg_gnutls *g, const struct sg_trust_index *x,
                                        const int *idx, const struct sg_der *der, int m)
{
    gnutls_x509_trust_list_t list;
    gnutls_x509_crt_t *crts = malloc((size_t)(m ? m : 1) * sizeof *crts);
    int k = 0;
    /* A few anchors share one bucket: GnuTLS's default table (127 buckets, 7 KiB
     * of calloc) is for bundles; with many, the default. */
    if (!crts || g->gnutls_x509_trust_list_init(&list, m <= 4 ? 1 : 0) < 0) {
        free(crts);
        return NULL;
    }
    for (int i = 0; i < m; i++)
        k += import(g, x, idx ? idx[i] : i, der ? &der[i] : NULL, &crts[k]);
    /* The list owns what it took: deinit(list, 1) frees them. */
    if (k && g->gnutls_x509_trust_list_add_cas(list, crts, (unsigned)k, 0) != k) {
        g->gnutls_x509_trust_list_deinit(list, 1);
        list = NULL;
    }
    free(crts);
    return list;
}

gnutls_x509_trust_list_t sg_gnutls_trust_for(struct sg_gnutls *g, struct sg_gnutls_store *store,
                                             const gnutls_datum_t *der, int n, int *fresh)
{
    *fresh = 0;
    if (!store->lazy)
        return store->eager;
    const unsigned char *certs[16];
    size_t lens[16];
    int idx[MAX_ANCHORS];
    struct sg_der got[MAX_ANCHORS];
    for (int i = 0; i < n && i < 16; i++)
        certs[i] = der[i].data, lens[i] = der[i].size;
    int m = sg_trust_index_select(store->lazy, certs, lens, n < 16 ? n : 16, idx, got,
                                  MAX_ANCHORS);
    /* More than MAX_ANCHORS may answer (many anchors of one name): then every
     * anchor of the bundle, so that the verdict is the eager one. */
    gnutls_x509_trust_list_t list = m == MAX_ANCHORS
                                        ? list_of(g, store->lazy, NULL, NULL,
                                                  sg_trust_index_count(store->lazy))
                                        : list_of(g, store->lazy, idx, got, m);
    for (int k = 0; k < m; k++)
        free(got[k].data);
    *fresh = list != NULL;
    return list;
}
