/* A per-process memo of the ECDSA signature checks nettle accepted.
 *
 * Why: the shim's own verdict (gnutls_verdict.c) verifies a GnuTLS peer's
 * chain against the policy's store right after a program that verifies the
 * server itself did the same: the leaf's signature by its CA is checked twice
 * in one process on the same bytes, about 2.1 M instructions each for P-256
 * (issue 15). The second check still happens, against the policy's store; only
 * the arithmetic is not redone: it is answered with what nettle itself
 * answered, in this process, for exactly these bytes.
 *
 * Why that cannot let a forged signature pass: ecdsa_verify is a pure function
 * of (curve, public key, digest, r, s). An entry is made only from inputs for
 * which the real function returned 1, and an entry answers only a call whose
 * inputs are all equal to it, byte for byte: the curve, the key's coordinates
 * (all limbs), the digest with its length, r and s with their GMP sizes (GMP
 * keeps numbers normalised, so equal numbers have equal representations).
 * Everything else goes to nettle, and a refusal is never kept. Inputs larger
 * than an entry go to nettle and are not kept.
 *
 * nettle_ecdsa_verify is exported unversioned (smtpguard.map): libgnutls's
 * reference nettle_ecdsa_verify@HOGWEED_6 binds here as gnutls_handshake@GNUTLS_3_4
 * does. The real one, and nettle_ecc_size, are looked up under HOGWEED_6 on the
 * first call, never at load: the library neither links nettle nor looks anything
 * up at exec. */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include <nettle/ecdsa.h>

#include "locks.h"
#include "real.h"

#define SLOTS 8
#define LIMBS_MAX ((521 + GMP_NUMB_BITS - 1) / GMP_NUMB_BITS) /* P-521, the largest */
#define DIGEST_MAX 64                                          /* SHA-512 */
#define HOGWEED "HOGWEED_6"

/* The whole input of one check, compared with memcmp: laid out without
 * padding, zeroed before it is filled, so that equal bytes mean equal inputs. */
struct check {
    const struct ecc_curve *ecc;
    uint64_t limbs; /* per coordinate: ecc_size() */
    uint64_t digest_len;
    int32_t r_size, s_size; /* GMP's _mp_size: the sign and the limb count */
    mp_limb_t pub[2 * LIMBS_MAX];
    mp_limb_t r[LIMBS_MAX], s[LIMBS_MAX];
    uint8_t digest[DIGEST_MAX];
};
_Static_assert(sizeof(struct check) == sizeof(void *) + 16 + 8 + 4 * LIMBS_MAX * sizeof(mp_limb_t) +
                                           DIGEST_MAX,
               "struct check must have no padding");

static struct check memo[SLOTS]; /* under sg_lock_memo */
static unsigned memo_count, memo_next;

typedef __typeof__(nettle_ecdsa_verify) verify_fn;
typedef __typeof__(nettle_ecc_size) size_fn;
static verify_fn *real_verify;
static size_fn *real_size;

/* In the libhogweed the process loaded: after us in the global scope, or
 * loaded where RTLD_NEXT cannot see it (a library dlopened with RTLD_LOCAL). */
static void *find(const char *name)
{
    void *fn = dlvsym(RTLD_NEXT, name, HOGWEED);
    if (!fn) {
        void *h = dlopen("libhogweed.so.6", RTLD_LAZY | RTLD_NOLOAD);
        if (h) {
            fn = dlvsym(h, name, HOGWEED);
            dlclose(h);
        }
    }
    return fn && !sg_is_own_address(fn) ? fn : NULL;
}

/* Both functions or neither; racing threads store the same pointers. */
static int bind_real(void)
{
    if (SG_LIKELY(__atomic_load_n(&real_verify, __ATOMIC_ACQUIRE) != NULL))
        return 1;
    size_fn *size = (size_fn *)find("nettle_ecc_size");
    verify_fn *verify = (verify_fn *)find("nettle_ecdsa_verify");
    if (!size || !verify)
        return 0;
    __atomic_store_n(&real_size, size, __ATOMIC_RELAXED);
    __atomic_store_n(&real_verify, verify, __ATOMIC_RELEASE);
    return 1;
}

static int put_number(mp_limb_t *to, int32_t *size, const __mpz_struct *z)
{
    int n = z->_mp_size < 0 ? -z->_mp_size : z->_mp_size;
    if (n > LIMBS_MAX)
        return 0;
    *size = z->_mp_size;
    memmove(to, z->_mp_d, (size_t)n * sizeof *to);
    return 1;
}

/* Fills c with the check's input; 0 when it does not fit an entry. */
static int describe(struct check *c, const struct ecc_point *pub, size_t length,
                    const uint8_t *digest, const struct dsa_signature *sig)
{
    memset(c, 0, sizeof *c);
    mp_size_t limbs = __atomic_load_n(&real_size, __ATOMIC_RELAXED)(pub->ecc);
    if (limbs <= 0 || limbs > LIMBS_MAX || length > DIGEST_MAX)
        return 0;
    c->ecc = pub->ecc;
    c->limbs = (uint64_t)limbs;
    c->digest_len = length;
    memmove(c->pub, pub->p, 2 * (size_t)limbs * sizeof c->pub[0]);
    memmove(c->digest, digest, length);
    return put_number(c->r, &c->r_size, sig->r) && put_number(c->s, &c->s_size, sig->s);
}

static int remembered(const struct check *c)
{
    int found = 0;
    pthread_mutex_lock(&sg_lock_memo);
    for (unsigned i = 0; i < memo_count && !found; i++)
        found = memcmp(&memo[i], c, sizeof *c) == 0;
    pthread_mutex_unlock(&sg_lock_memo);
    return found;
}

static void remember(const struct check *c)
{
    pthread_mutex_lock(&sg_lock_memo);
    memo[memo_next] = *c;
    memo_next = (memo_next + 1) % SLOTS;
    if (memo_count < SLOTS)
        memo_count++;
    pthread_mutex_unlock(&sg_lock_memo);
}

SG_EXPORT int nettle_ecdsa_verify(const struct ecc_point *pub, size_t length,
                                  const uint8_t *digest, const struct dsa_signature *signature)
{
    if (!bind_real())
        return 0; /* no nettle to ask: nothing is verified */
    struct check c;
    int fits = describe(&c, pub, length, digest, signature);
    if (fits && remembered(&c))
        return 1;
    int ok = real_verify(pub, length, digest, signature);
    if (ok == 1 && fits)
        remember(&c);
    return ok;
}
