/* Eight GnuTLS functions of a certificate's bytes alone, answered again with
 * what GnuTLS itself answered in this process for the same bytes.
 *
 * Why: the shim's verdict verifies a chain that GnuTLS verified moments
 * before for the program. To decide whether one certificate issued another
 * (gnutls_x509_crt_check_issuer, several times per chain), GnuTLS 3.7 decodes
 * the authority key identifier extension of the first
 * (gnutls_x509_crt_get_authority_key_id, about 28,000 instructions) and the
 * subject key identifier of the second (_get_subject_key_id, about 4,000),
 * and renders both names as RFC 4514 strings when their DER differs
 * (gnutls_x509_rdn_get2, about 40,000 each); to find unknown critical
 * extensions it lists each one (gnutls_x509_crt_get_extension_info, about
 * 1,600 a call, 24 calls in the shim's verdict); to decide what a certificate
 * may do it decodes its basic constraints (about 7,500 a call, 5 calls in
 * the shim's verdict) and key usage (about 4,400, 3 calls); to check the
 * validity period it reads and converts both bounds (_get_activation_time,
 * _get_expiration_time, about 3,300 each, also at every parse). Both
 * verifications ask the same questions about the same certificates
 * (issue 15).
 *
 * Why the answers are the same: each is a pure function of its input bytes.
 * rdn_get2: the name's DER and the flags. The key identifiers, validity
 * bounds (read from the certificate and converted by GnuTLS's own calendar:
 * no clock, no time zone), basic constraints, key usage and an extension's
 * identity (with its index): the certificate's DER as
 * gnutls_x509_crt_export2 gives it, which from GnuTLS 3.6.3 on is what was
 * parsed (exports_as_parsed; a certificate modified since is encoded anew,
 * from the very structure the extension is read from). An entry is made only
 * from a call GnuTLS answered with success and answers only a call whose
 * input is equal to it byte for byte, in the same library; anything else goes
 * to GnuTLS. Entries hold public data only. The verdict itself is never kept:
 * the expiry is compared with the clock by GnuTLS at every verification.
 *
 * Only after the process has had an SMTP connection (smtp_seen.h): before,
 * each call is one branch and GnuTLS's own function. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gnutls_api.h"
#include "locks.h"
#include "real.h"
#include "smtp_seen.h"

#define CALLER __builtin_return_address(0)
/* a chain and its anchor: names, key ids, validity bounds, constraints,
 * usages and each extension's identity (~12 a certificate), in SETS sets of
 * WAYS entries */
#define SETS 16
#define WAYS 4
#define INPUT_MAX 4096 /* larger inputs go to GnuTLS every time */
#define TEXT_MAX 1024  /* a longer name's text too */

enum { RDN = 1, AKI, BC, KU, EXT, SKI, NOT_BEFORE, NOT_AFTER };

struct entry {
    const struct sg_gnutls *g;
    uint32_t tag; /* tag_of its key */
    int fn;
    unsigned aux; /* rdn_get2's flags, an extension's index (keys); a key
                   * identifier's criticality (an output) */
    size_t in_len, out_len;
    unsigned char bytes[]; /* input, then output */
};

/* Under sg_lock_memo. A key is looked for in one set only: a handful of
 * comparisons, where a scan of every entry cost ~350 instructions a call. */
static struct entry *slot[SETS][WAYS];
static unsigned char turn[SETS]; /* the way the set's next entry replaces */

/* aux as part of the key: none for the key identifiers (there an output). */
static unsigned key_aux(int fn, unsigned aux)
{
    return fn == AKI || fn == SKI ? 0 : aux;
}

/* A tag of the key (fn, aux, in): equal keys, equal tags. Cheap: the length
 * and 16 of the bytes (a certificate ends with its signature, a name with
 * its last value); only the full comparison of an entry decides. */
static uint32_t tag_of(int fn, unsigned aux, const unsigned char *in, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15u;
    uint64_t h = (((uint64_t)(unsigned)fn << 32 | key_aux(fn, aux)) ^ n) * k, w;
    if (n >= 8) {
        memcpy(&w, in + n - 8, 8);
        h = (h ^ w) * k;
        memcpy(&w, in + n / 2 - 4, 8);
        h = (h ^ w) * k;
    } else {
        for (size_t i = 0; i < n; i++)
            h = (h ^ in[i]) * k;
    }
    return (uint32_t)(h >> 32);
}

/* The output kept for (g, fn, aux, in): copied into out (cap bytes), its
 * length; -1 when none or it does not fit. aux_out: the kept aux. */
static long recall(const struct sg_gnutls *g, int fn, unsigned aux, const void *in, size_t n,
                   void *out, size_t cap, unsigned *aux_out)
{
    long got = -1;
    uint32_t tag = tag_of(fn, aux, in, n);
    struct entry *const *set = slot[tag % SETS];
    pthread_mutex_lock(&sg_lock_memo);
    for (unsigned i = 0; i < WAYS && got < 0; i++) {
        const struct entry *e = set[i];
        if (e && e->tag == tag && e->g == g && e->fn == fn &&
            key_aux(fn, e->aux) == key_aux(fn, aux) && e->in_len == n &&
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
    uint32_t tag = tag_of(fn, aux, in, n);
    *e = (struct entry){g, tag, fn, aux, n, out_len};
    memcpy(e->bytes, in, n);
    memcpy(e->bytes + n, out, out_len);
    unsigned s = tag % SETS;
    pthread_mutex_lock(&sg_lock_memo);
    unsigned way = turn[s];
    for (unsigned i = 0; i < WAYS; i++)
        if (!slot[s][i]) {
            way = i;
            break;
        }
    struct entry *old = slot[s][way];
    slot[s][way] = e;
    turn[s] = (unsigned char)((way + 1) % WAYS);
    pthread_mutex_unlock(&sg_lock_memo);
    free(old);
}

SG_EXPORT int gnutls_x509_rdn_get2(const gnutls_datum_t *idn, gnutls_datum_t *str,
                                   unsigned flags)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_x509_rdn_get2");
    if (SG_UNLIKELY(!g || !g->gnutls_x509_rdn_get2))
        SG_GNUTLS_PASS_ON(gnutls_x509_rdn_get2, GNUTLS_E_INTERNAL_ERROR, idn, str, flags);
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

/* A key identifier of crt (fn: AKI, the authority's; SKI, the subject's)
 * into id (*size bytes), from the memo: 1 when answered. */
static int key_id_recall(struct sg_gnutls *g, int fn, const gnutls_datum_t *der, void *id,
                         size_t *size, unsigned *critical)
{
    unsigned crit;
    long n = recall(g, fn, 0, der->data, der->size, id, *size, &crit);
    if (n < 0)
        return 0;
    *size = (size_t)n;
    if (critical)
        *critical = crit;
    return 1;
}

typedef int key_id_fn(gnutls_x509_crt_t, void *, size_t *, unsigned *);

/* The two key identifiers alike: GnuTLS decodes the extension, copies the
 * identifier when it fits (else says how much room) and sets the
 * criticality when found. */
static int key_id(struct sg_gnutls *g, int fn, key_id_fn *real, gnutls_x509_crt_t crt, void *id,
                  size_t *size, unsigned *critical)
{
    gnutls_datum_t der;
    if (!sg_smtp_ever() || !id || !size || !sg_gnutls_der(g, crt, &der))
        return real(crt, id, size, critical);
    if (key_id_recall(g, fn, &der, id, size, critical)) {
        (*g->free_fn)(der.data);
        return 0;
    }
    unsigned crit = critical ? *critical : 0; /* left as it was when GnuTLS does not set it */
    int r = real(crt, id, size, &crit);
    if (critical)
        *critical = crit;
    if (r == 0)
        keep(g, fn, crit, der.data, der.size, id, *size);
    (*g->free_fn)(der.data);
    return r;
}

/* The two exported alike: the library of the caller answers, through the
 * memo; one without the function passes the call on. */
#define KEY_ID_INTERPOSER(fn, kind)                                                        \
    SG_EXPORT int fn(gnutls_x509_crt_t crt, void *id, size_t *size, unsigned *critical)    \
    {                                                                                      \
        struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, #fn);                           \
        if (SG_UNLIKELY(!g || !g->fn))                                                     \
            SG_GNUTLS_PASS_ON(fn, GNUTLS_E_INTERNAL_ERROR, crt, id, size, critical);       \
        return key_id(g, kind, g->fn, crt, id, size, critical);                            \
    }
KEY_ID_INTERPOSER(gnutls_x509_crt_get_authority_key_id, AKI)
KEY_ID_INTERPOSER(gnutls_x509_crt_get_subject_key_id, SKI)

typedef time_t time_fn(gnutls_x509_crt_t);

/* A validity bound: GnuTLS reads it from the parsed certificate and
 * converts it with its own calendar (no time zone, no clock); (time_t)-1
 * is its error, never kept. */
static time_t validity(struct sg_gnutls *g, int fn, time_fn *real, gnutls_x509_crt_t crt)
{
    gnutls_datum_t der;
    if (!sg_smtp_ever() || !sg_gnutls_der(g, crt, &der))
        return real(crt);
    time_t t;
    unsigned unused;
    if (recall(g, fn, 0, der.data, der.size, &t, sizeof t, &unused) != (long)sizeof t) {
        t = real(crt);
        if (t != (time_t)-1)
            keep(g, fn, 0, der.data, der.size, &t, sizeof t);
    }
    (*g->free_fn)(der.data);
    return t;
}

/* The two bounds alike (as KEY_ID_INTERPOSER). */
#define VALIDITY_INTERPOSER(fn, kind)                                                      \
    SG_EXPORT time_t fn(gnutls_x509_crt_t crt)                                             \
    {                                                                                      \
        struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, #fn);                           \
        if (SG_UNLIKELY(!g || !g->fn))                                                     \
            SG_GNUTLS_PASS_ON(fn, (time_t)-1, crt);                                        \
        return validity(g, kind, g->fn, crt);                                              \
    }
VALIDITY_INTERPOSER(gnutls_x509_crt_get_activation_time, NOT_BEFORE)
VALIDITY_INTERPOSER(gnutls_x509_crt_get_expiration_time, NOT_AFTER)

/* What GnuTLS answered for basic constraints: its result (the CA flag, >= 0)
 * and the three outputs, each set whether the caller asked or not. */
struct bc_answer {
    int r;
    unsigned critical, ca;
    int pathlen;
};

static int bc_give(const struct bc_answer *a, unsigned *critical, unsigned *ca, int *pathlen)
{
    if (critical)
        *critical = a->critical;
    if (ca)
        *ca = a->ca;
    if (pathlen)
        *pathlen = a->pathlen;
    return a->r;
}

SG_EXPORT int gnutls_x509_crt_get_basic_constraints(gnutls_x509_crt_t crt, unsigned *critical,
                                                    unsigned *ca, int *pathlen)
{
    const char *sym = "gnutls_x509_crt_get_basic_constraints";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_x509_crt_get_basic_constraints))
        SG_GNUTLS_PASS_ON(gnutls_x509_crt_get_basic_constraints, GNUTLS_E_INTERNAL_ERROR,
                          crt, critical, ca, pathlen);
    gnutls_datum_t der;
    if (!sg_smtp_ever() || !sg_gnutls_der(g, crt, &der))
        return g->gnutls_x509_crt_get_basic_constraints(crt, critical, ca, pathlen);
    struct bc_answer a;
    unsigned unused;
    if (recall(g, BC, 0, der.data, der.size, &a, sizeof a, &unused) == (long)sizeof a) {
        (*g->free_fn)(der.data);
        return bc_give(&a, critical, ca, pathlen);
    }
    /* On success GnuTLS (3.x) sets each output it is given: all three. */
    a = (struct bc_answer){0, critical ? *critical : 0, ca ? *ca : 0, pathlen ? *pathlen : 0};
    a.r = g->gnutls_x509_crt_get_basic_constraints(crt, &a.critical, &a.ca, &a.pathlen);
    if (a.r >= 0)
        keep(g, BC, 0, der.data, der.size, &a, sizeof a);
    (*g->free_fn)(der.data);
    /* the outputs as GnuTLS left them, success or not (they started as the caller's) */
    return bc_give(&a, critical, ca, pathlen);
}

SG_EXPORT int gnutls_x509_crt_get_key_usage(gnutls_x509_crt_t crt, unsigned *usage,
                                            unsigned *critical)
{
    const char *sym = "gnutls_x509_crt_get_key_usage";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_x509_crt_get_key_usage))
        SG_GNUTLS_PASS_ON(gnutls_x509_crt_get_key_usage, GNUTLS_E_INTERNAL_ERROR,
                          crt, usage, critical);
    gnutls_datum_t der;
    /* usage NULL is an error GnuTLS reports itself */
    if (!sg_smtp_ever() || !usage || !sg_gnutls_der(g, crt, &der))
        return g->gnutls_x509_crt_get_key_usage(crt, usage, critical);
    unsigned a[2], unused; /* usage, critical */
    if (recall(g, KU, 0, der.data, der.size, a, sizeof a, &unused) == (long)sizeof a) {
        (*g->free_fn)(der.data);
        *usage = a[0];
        if (critical)
            *critical = a[1];
        return 0;
    }
    a[0] = *usage, a[1] = critical ? *critical : 0;
    int r = g->gnutls_x509_crt_get_key_usage(crt, &a[0], &a[1]);
    if (r == 0)
        keep(g, KU, 0, der.data, der.size, a, sizeof a);
    (*g->free_fn)(der.data);
    *usage = a[0];
    if (critical)
        *critical = a[1];
    return r;
}

/* What GnuTLS wrote for extension indx's identity: its criticality, then the
 * OID's text with the NUL it writes (oid_size is one less). */
struct ext_answer {
    unsigned critical;
    char oid[128];
};

SG_EXPORT int gnutls_x509_crt_get_extension_info(gnutls_x509_crt_t crt, unsigned indx, void *oid,
                                                 size_t *oid_size, unsigned *critical)
{
    const char *sym = "gnutls_x509_crt_get_extension_info";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_x509_crt_get_extension_info))
        SG_GNUTLS_PASS_ON(gnutls_x509_crt_get_extension_info, GNUTLS_E_INTERNAL_ERROR,
                          crt, indx, oid, oid_size, critical);
    gnutls_datum_t der;
    /* no buffer: GnuTLS says how much room (a failure, not kept) */
    if (!sg_smtp_ever() || !oid || !oid_size || !sg_gnutls_der(g, crt, &der))
        return g->gnutls_x509_crt_get_extension_info(crt, indx, oid, oid_size, critical);
    struct ext_answer a;
    unsigned unused;
    size_t room = *oid_size < sizeof a.oid ? *oid_size : sizeof a.oid;
    long n = recall(g, EXT, indx, der.data, der.size, &a, sizeof a.critical + room, &unused);
    if (n > (long)sizeof a.critical) { /* fits the caller's room, as it did GnuTLS's */
        (*g->free_fn)(der.data);
        size_t len = (size_t)n - sizeof a.critical;
        memcpy(oid, a.oid, len);
        *oid_size = len - 1;
        if (critical)
            *critical = a.critical;
        return 0;
    }
    unsigned crit = critical ? *critical : 0;
    size_t cap = *oid_size;
    int r = g->gnutls_x509_crt_get_extension_info(crt, indx, oid, oid_size, &crit);
    if (critical)
        *critical = crit;
    /* kept when GnuTLS wrote the OID and its NUL (oid_size + 1 bytes) */
    if (r == 0 && *oid_size < sizeof a.oid && *oid_size < cap &&
        ((char *)oid)[*oid_size] == '\0' && strlen(oid) == *oid_size) {
        a.critical = crit;
        memcpy(a.oid, oid, *oid_size + 1);
        keep(g, EXT, indx, der.data, der.size, &a, sizeof a.critical + *oid_size + 1);
    }
    (*g->free_fn)(der.data);
    return r;
}
