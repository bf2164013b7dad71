/* The policy's trust store for one OpenSSL. A ca_file bundle is not parsed
 * at once (26 ms for Debian's 145 certificates in OpenSSL 3, at the first
 * handshake of every process): a lookup method, asked by OpenSSL for the
 * issuer it needs while it builds a chain, parses the bundle's certificates
 * with that subject (all of them: duplicate subjects and cross-signed roots
 * behave as with the whole bundle) and adds them to the store, as OpenSSL's
 * own hashed-directory lookup does for ca_path. Verification itself is
 * OpenSSL's, unchanged. Without an index (trust_index.h) or the functions
 * this needs, the bundle is loaded whole, as before. */
#include <stdlib.h>
#include <string.h>

#include "ossl.h"
#include "trust_index.h"

#define SLOTS 4 /* OpenSSL libraries in one process (ossl.c's MAX_LIBS) */

struct lazy {
    const struct sg_trust_index *x;
};

/* A lookup callback gets no pointer of ours but its X509_LOOKUP, whose data
 * only the right libcrypto can read: one callback per library. */
static struct sg_ossl *slot_lib[SLOTS];
static X509_LOOKUP_METHOD *slot_method[SLOTS];

/* Set around the verdict's own verification: what the program already
 * parsed (its verified chain, the peer's chain). */
static __thread OPENSSL_STACK *hint[2] __attribute__((tls_model("initial-exec")));

void sg_ossl_store_hint(STACK_OF(X509) *a, STACK_OF(X509) *b)
{
    hint[0] = (OPENSSL_STACK *)a;
    hint[1] = (OPENSSL_STACK *)b;
}

/* A parsed certificate whose DER is der[0..len), from the hints: parsing one
 * costs OpenSSL 3 about 1.5 million instructions. Same bytes, same
 * certificate: it is the bundle's own, only its parsing is reused. */
static X509 *known(struct sg_ossl *o, const unsigned char *der, size_t len)
{
    for (int s = 0; s < 2; s++)
        for (int i = 0; hint[s] && i < o->OPENSSL_sk_num(hint[s]); i++) {
            X509 *c = o->OPENSSL_sk_value(hint[s], i);
            if (o->i2d_X509(c, NULL) != (int)len)
                continue;
            unsigned char *mine = malloc(len), *p = mine;
            int same = mine && o->i2d_X509(c, &p) == (int)len && memcmp(mine, der, len) == 0;
            free(mine);
            if (same && o->X509_up_ref(c))
                return c;
        }
    return NULL;
}

static void add_matching(struct sg_ossl *o, X509_STORE *st, const struct sg_trust_index *x,
                         const unsigned char *der, size_t len)
{
    for (int i = sg_trust_index_find(x, der, len, -1); i >= 0;
         i = sg_trust_index_find(x, der, len, i)) {
        size_t n = 0;
        unsigned char *buf = sg_trust_index_der_alloc(x, i, &n);
        const unsigned char *p = buf;
        X509 *c = buf ? known(o, buf, n) : NULL;
        if (!c && buf)
            c = o->d2i_X509(NULL, &p, (long)n);
        free(buf);
        if (c) {
            o->X509_STORE_add_cert(st, c); /* a duplicate is kept once */
            o->X509_free(c);
        }
    }
}

/* Fill the store with the anchors named name, then answer with one of them
 * as OpenSSL's by_store lookup does: set1 takes a reference that the caller
 * takes again, so ours is dropped. OpenSSL then picks among all the store's
 * certificates of that name the one that issued the certificate at hand. */
static int by_subject(struct sg_ossl *o, X509_LOOKUP *lu, X509_LOOKUP_TYPE type,
                      const X509_NAME *name, X509_OBJECT *ret)
{
    const struct lazy *z = o->X509_LOOKUP_get_method_data(lu);
    X509_STORE *st = o->X509_LOOKUP_get_store(lu);
    const unsigned char *der;
    size_t len;
    if (type != X509_LU_X509 || !z || !st || !o->X509_NAME_get0_der((X509_NAME *)name, &der, &len))
        return 0;
    add_matching(o, st, z->x, der, len);
    int ok = 0;
    if (!o->X509_STORE_lock(st))
        return 0;
    X509_OBJECT *obj = o->X509_OBJECT_retrieve_by_subject(o->X509_STORE_get0_objects(st),
                                                          X509_LU_X509, (X509_NAME *)name);
    X509 *c = obj ? o->X509_OBJECT_get0_X509(obj) : NULL;
    ok = c && o->X509_OBJECT_set1_X509(ret, c);
    o->X509_STORE_unlock(st);
    if (ok)
        o->X509_free(c); /* the store keeps its own reference */
    return ok;
}

#define SLOT_FN(k)                                                                         \
    static int by_subject_##k(X509_LOOKUP *lu, X509_LOOKUP_TYPE type, const X509_NAME *name, \
                              X509_OBJECT *ret)                                            \
    {                                                                                      \
        return by_subject(slot_lib[k], lu, type, name, ret);                               \
    }
SLOT_FN(0)
SLOT_FN(1)
SLOT_FN(2)
SLOT_FN(3)
typedef int (*by_subject_fn)(X509_LOOKUP *, X509_LOOKUP_TYPE, const X509_NAME *, X509_OBJECT *);
static const by_subject_fn slot_fn[SLOTS] = {by_subject_0, by_subject_1, by_subject_2,
                                             by_subject_3};

/* The lookup method of this library, made once. Callers hold sg_lock_tls. */
static X509_LOOKUP_METHOD *method(struct sg_ossl *o)
{
    int k = 0;
    while (k < SLOTS && slot_lib[k] && slot_lib[k] != o)
        k++;
    if (k == SLOTS || !o->lazy)
        return NULL;
    if (!slot_lib[k]) {
        X509_LOOKUP_METHOD *m = o->X509_LOOKUP_meth_new("smtpguard policy bundle");
        if (!m || !o->X509_LOOKUP_meth_set_get_by_subject(m, (void *)slot_fn[k]))
            return NULL; /* a method is small: not worth freeing here */
        slot_method[k] = m;
        __atomic_store_n(&slot_lib[k], o, __ATOMIC_RELEASE);
    }
    return slot_method[k];
}

static int add_bundle(struct sg_ossl *o, X509_STORE *st, const char *ca_file)
{
    const struct sg_trust_index *x = sg_trust_index_get(ca_file);
    X509_LOOKUP_METHOD *m = x ? method(o) : NULL;
    struct lazy *z = m ? malloc(sizeof *z) : NULL; /* lives as long as the store: always */
    X509_LOOKUP *lu = z ? o->X509_STORE_add_lookup(st, m) : NULL;
    if (lu) {
        z->x = x;
        if (o->X509_LOOKUP_set_method_data(lu, z))
            return 1;
    }
    free(z); /* a lookup without data answers nothing: harmless */
    return o->X509_STORE_load_locations(st, ca_file, NULL) == 1;
}

X509_STORE *sg_ossl_policy_store(struct sg_ossl *o, const char *ca_file, const char *ca_path)
{
    X509_STORE *st = o->X509_STORE_new();
    if (!st)
        return NULL;
    int loaded = 0;
    if (ca_file && *ca_file)
        loaded |= add_bundle(o, st, ca_file);
    if (ca_path && *ca_path)
        loaded |= o->X509_STORE_load_locations(st, NULL, ca_path) == 1;
    if (!loaded) {
        o->X509_STORE_free(st);
        return NULL;
    }
    return st;
}
