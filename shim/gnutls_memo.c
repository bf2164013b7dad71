/* Two GnuTLS functions of a certificate's bytes alone, answered again with
 * what GnuTLS itself answered in this process for the same bytes.
 *
 * Why: the shim's verdict verifies a chain that GnuTLS verified moments
 * before for the program. To decide whether one certificate issued another
 * (gnutls_x509_crt_check_issuer, several times per chain), GnuTLS 3.7 decodes
 * the authority key identifier extension of the first
 * (gnutls_x509_crt_get_authority_key_id, about 28,000 instructions), and
 * renders both names as RFC 4514 strings when their DER differs
 * (gnutls_x509_rdn_get2, about 40,000 each). Both verifications ask the
 * same questions about the same certificates (issue 15).
 *
 * Why the answers are the same: each is a pure function of its input bytes.
 * rdn_get2: the name's DER and the flags. The key identifier: the
 * certificate's DER as gnutls_x509_crt_export2 gives it, which from GnuTLS
 * 3.6.3 on is what was parsed (exports_as_parsed; a certificate modified
 * since is encoded anew, from the very structure the extension is read
 * from). An entry is made only from a call GnuTLS answered with success and
 * answers only a call whose input is equal to it byte for byte, in the same
 * library; anything else goes to GnuTLS. Entries hold public data only.
 *
 * Only after the process has had an SMTP connection (smtp_seen.h): before,
 * each call is one branch and GnuTLS's own function. */
#include <stdlib.h>
#include <string.h>

#include "gnutls_api.h"
#include "locks.h"
#include "real.h"
#include "smtp_seen.h"

#define CALLER __builtin_return_address(0)
#define SLOTS 8
#define INPUT_MAX 4096 /* larger inputs go to GnuTLS every time */
#define TEXT_MAX 1024  /* a longer name's text too */

enum { RDN = 1, AKI };

struct entry {
    const struct sg_gnutls *g;
    int fn;
    unsigned aux; /* rdn_get2's flags; the key identifier's criticality */
    size_t in_len, out_len;
    unsigned char bytes[]; /* input, then output */
};

static struct entry *slot[SLOTS]; /* under sg_lock_memo */
static unsigned next_slot;

/* The output kept for (g, fn, aux, in): copied into out (cap bytes), its
 * length; -1 when none or it does not fit. aux_out: the kept aux. */
static long recall(const struct sg_gnutls *g, int fn, unsigned aux, const void *in, size_t n,
                   void *out, size_t cap, unsigned *aux_out)
{
    long got = -1;
    pthread_mutex_lock(&sg_lock_memo);
    for (unsigned i = 0; i < SLOTS && got < 0; i++) {
        const struct entry *e = slot[i];
        if (e && e->g == g && e->fn == fn && (fn != RDN || e->aux == aux) && e->in_len == n &&
            memcmp(e->bytes, in, n) == 0 && e->out_len <= cap) {
            memcpy(out, e->bytes + n, e->out_len);
            *aux_out = e->aux;
            got = (long)e->out_len;
        }
    }
    pthread_mutex_unlock(&sg_lock_memo);
    return got;
}

static void keep(const struct sg_gnutls *g, int fn, unsigned aux, const void *in, size_t n,
                 const void *out, size_t out_len)
{
    struct entry *e = n <= INPUT_MAX && out_len <= INPUT_MAX
                          ? malloc(sizeof *e + n + out_len) : NULL;
    if (!e)
        return;
    *e = (struct entry){g, fn, aux, n, out_len};
    memcpy(e->bytes, in, n);
    memcpy(e->bytes + n, out, out_len);
    pthread_mutex_lock(&sg_lock_memo);
    struct entry *old = slot[next_slot];
    slot[next_slot] = e;
    next_slot = (next_slot + 1) % SLOTS;
    pthread_mutex_unlock(&sg_lock_memo);
    free(old);
}

typedef int rdn_get2_fn(const gnutls_datum_t *, gnutls_datum_t *, unsigned);

SG_EXPORT int gnutls_x509_rdn_get2(const gnutls_datum_t *idn, gnutls_datum_t *str,
                                   unsigned flags)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_x509_rdn_get2");
    if (SG_UNLIKELY(!g || !g->gnutls_x509_rdn_get2)) {
        rdn_get2_fn *next = (rdn_get2_fn *)sg_gnutls_next(CALLER, "gnutls_x509_rdn_get2");
        return next ? next(idn, str, flags) : GNUTLS_E_INTERNAL_ERROR;
    }
    if (!sg_smtp_ever() || !idn || !idn->data || !str || !g->malloc_fn)
        return g->gnutls_x509_rdn_get2(idn, str, flags);
    char text[TEXT_MAX];
    unsigned aux;
    long n = recall(g, RDN, flags, idn->data, idn->size, text, sizeof text, &aux);
    char *copy = n >= 0 ? (*g->malloc_fn)((size_t)n + 1) : NULL;
    if (copy) { /* as GnuTLS returns it: NUL-terminated, size without the NUL */
        memcpy(copy, text, (size_t)n);
        copy[n] = '\0';
        *str = (gnutls_datum_t){(unsigned char *)copy, (unsigned)n};
        return 0;
    }
    int r = g->gnutls_x509_rdn_get2(idn, str, flags);
    if (r == 0 && str->data && str->size <= TEXT_MAX)
        keep(g, RDN, flags, idn->data, idn->size, str->data, str->size);
    return r;
}

typedef int aki_fn(gnutls_x509_crt_t, void *, size_t *, unsigned *);

/* The key identifier of crt into id (*size bytes), from the memo: 1 when
 * answered. Else the DER it is keyed by is left in der (the caller frees). */
static int aki_recall(struct sg_gnutls *g, gnutls_x509_crt_t crt, void *id, size_t *size,
                      unsigned *critical, gnutls_datum_t *der)
{
    unsigned crit;
    if (!g->exports_as_parsed || !crt || !id || !size ||
        g->gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der) < 0)
        return 0;
    long n = recall(g, AKI, 0, der->data, der->size, id, *size, &crit);
    if (n < 0)
        return 0;
    *size = (size_t)n;
    if (critical)
        *critical = crit;
    return 1;
}

SG_EXPORT int gnutls_x509_crt_get_authority_key_id(gnutls_x509_crt_t crt, void *id, size_t *size,
                                                   unsigned *critical)
{
    const char *sym = "gnutls_x509_crt_get_authority_key_id";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_x509_crt_get_authority_key_id)) {
        aki_fn *next = (aki_fn *)sg_gnutls_next(CALLER, sym);
        return next ? next(crt, id, size, critical) : GNUTLS_E_INTERNAL_ERROR;
    }
    if (!sg_smtp_ever())
        return g->gnutls_x509_crt_get_authority_key_id(crt, id, size, critical);
    gnutls_datum_t der = {NULL, 0};
    int answered = aki_recall(g, crt, id, size, critical, &der);
    if (!der.data) /* nothing to key it by */
        return g->gnutls_x509_crt_get_authority_key_id(crt, id, size, critical);
    if (answered) {
        (*g->free_fn)(der.data);
        return 0;
    }
    unsigned crit = critical ? *critical : 0; /* left as it was when GnuTLS does not set it */
    int r = g->gnutls_x509_crt_get_authority_key_id(crt, id, size, &crit);
    if (critical)
        *critical = crit;
    if (r == 0)
        keep(g, AKI, crit, der.data, der.size, id, *size);
    (*g->free_fn)(der.data);
    return r;
}
