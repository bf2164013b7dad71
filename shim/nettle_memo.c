/* A per-process memo of the signature checks nettle accepted.
 *
 * Why: the shim's own verdict (gnutls_verdict.c) verifies a GnuTLS peer's
 * chain against the policy's store right after a program that verifies the
 * server itself did the same: every signature in the chain is checked twice
 * in one process on the same bytes (issue 15; per check about 2.1 M
 * instructions for ECDSA P-256, 0.8 M for RSA-4096, 0.2 M for RSA-2048). The
 * second check still happens, against the policy's store; only the arithmetic
 * is not redone: it is answered with what nettle itself answered, in this
 * process, for exactly these bytes.
 *
 * Why that cannot let a forged signature pass: each interposed function is a
 * pure function of its inputs (ECDSA: curve, public key, digest, r, s; RSA
 * PKCS#1: modulus, exponent, key size, DigestInfo, signature). An entry is made
 * only from inputs for which the real function returned 1, and answers only a
 * call of the same function whose inputs are all equal to it, byte for byte:
 * every limb of every number with its GMP size (GMP keeps numbers normalised,
 * so equal numbers have equal representations), every byte of the digest with
 * its length. Everything else goes to nettle, and a refusal is never kept.
 * Inputs larger than an entry go to nettle and are not kept. Entries hold
 * only public data: keys, digests, signatures.
 *
 * Only after the process has had an SMTP connection (smtp_seen.h): before,
 * every check goes straight to nettle, with no encoding, lock or memo, and a
 * process that never speaks SMTP has its checks untouched.
 *
 * Not memoised: RSA-PSS (TLS 1.3's CertificateVerify, which only the program
 * checks) and EdDSA (no public CA issues it: its chains are rare enough to be
 * checked twice).
 *
 * The names are exported unversioned (smtpguard.map): libgnutls's references
 * (nettle_ecdsa_verify@HOGWEED_6) bind here as gnutls_handshake@GNUTLS_3_4 does,
 * and so do those of an older nettle (HOGWEED_4, _5) another library of the
 * process may use. So each call goes to the function its caller's scope
 * reaches (scope.c), found once per call site; only a call that reaches
 * libhogweed.so.6's own, under HOGWEED_6 (the structures this file reads), is
 * memoised. Everything is looked up on the first call, never at load: the
 * library neither links nettle nor looks anything up at exec. */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include <nettle/ecdsa.h>
#include <nettle/rsa.h>

#include "locks.h"
#include "policy.h"
#include "real.h"
#include "scope.h"
#include "sig_memo.h"
#include "smtp_seen.h"

#define SLOTS 8
/* An RSA-4096 check: 4 numbers' sizes, modulus and signature of 512 bytes,
 * exponent, key size, DigestInfo of SHA-512 (83 bytes) with its length. */
#define BLOB_MAX 1200
#define HOGWEED "HOGWEED_6"

struct blob {
    size_t len;
    uint8_t b[BLOB_MAX];
};

enum kind { ECDSA = 1, RSA_PKCS1 };

static struct blob memo[SLOTS] SG_TABLE; /* under sg_lock_memo */
static struct sg_memo table;

/* ---- the real functions, found once ------------------------------------ */

typedef __typeof__(nettle_ecdsa_verify) ecdsa_fn;
typedef __typeof__(nettle_ecc_size) ecc_size_fn;
typedef __typeof__(nettle_rsa_pkcs1_verify) rsa_fn;

static struct {
    ecdsa_fn *ecdsa;
    ecc_size_fn *ecc_size;
    rsa_fn *rsa;
    int bound;
} real;

static void *find(void *hogweed, const char *name)
{
    void *fn = dlvsym(hogweed, name, HOGWEED);
    return fn && !sg_is_own_address(fn) ? fn : NULL;
}

/* All of them or none; racing threads store the same pointers. The libhogweed
 * the process loaded is opened and never closed: it stays loaded under the
 * pointers kept here (backend.c holds the TLS libraries likewise). Not found
 * (not loaded under its name): nothing can be verified. */
static int bind_real(void)
{
    if (SG_LIKELY(__atomic_load_n(&real.bound, __ATOMIC_ACQUIRE)))
        return 1;
    void *h = dlopen("libhogweed.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        return 0;
    ecdsa_fn *ecdsa = (ecdsa_fn *)find(h, "nettle_ecdsa_verify");
    ecc_size_fn *ecc_size = (ecc_size_fn *)find(h, "nettle_ecc_size");
    rsa_fn *rsa = (rsa_fn *)find(h, "nettle_rsa_pkcs1_verify");
    if (!ecdsa || !ecc_size || !rsa)
        return 0;
    __atomic_store_n(&real.ecdsa, ecdsa, __ATOMIC_RELAXED);
    __atomic_store_n(&real.ecc_size, ecc_size, __ATOMIC_RELAXED);
    __atomic_store_n(&real.rsa, rsa, __ATOMIC_RELAXED);
    __atomic_store_n(&real.bound, 1, __ATOMIC_RELEASE);
    return 1;
}

/* The function the caller at ret reaches: libhogweed.so.6's (then
 * memoised) or another nettle's (called as it is). NULL: none at all. */
static void *reached(struct sg_callsites *sites, int *used, const void *ret, const char *name)
{
    void *fn = sg_callsite_recall(sites, used, ret);
    if (SG_LIKELY(fn != NULL))
        return fn;
    fn = sg_scope_next(ret, name, "libhogweed.so");
    if (fn) {
        pthread_mutex_lock(&sg_lock_memo);
        sg_callsite_remember(sites, used, ret, fn);
        pthread_mutex_unlock(&sg_lock_memo);
    }
    return fn;
}

static struct sg_callsites ecdsa_sites SG_TABLE, rsa_sites SG_TABLE;
static int ecdsa_used, rsa_used;

/* ---- a check's whole input, as bytes --------------------------------------
 * Every variable part is preceded by its length: equal blobs, equal inputs. */

static int put(struct blob *x, const void *p, size_t n)
{
    return sg_blob_put((struct sg_blob *)x, BLOB_MAX, p, n);
}

static int put_size(struct blob *x, uint64_t n)
{
    return put(x, &n, sizeof n);
}

static int put_number(struct blob *x, const __mpz_struct *z)
{
    int32_t size = z->_mp_size; /* the sign and the limb count */
    size_t limbs = (size_t)(size < 0 ? -(int64_t)size : size);
    return put(x, &size, sizeof size) && put(x, z->_mp_d, limbs * sizeof(mp_limb_t));
}

static int start(struct blob *x, enum kind kind)
{
    x->len = 0;
    uint8_t k = (uint8_t)kind;
    return put(x, &k, 1);
}

/* ---- the memo -------------------------------------------------------------- */

static int remembered(const struct blob *x)
{
    return sg_memo_has(&table, memo, sizeof memo[0], (const struct sg_blob *)x);
}

static void remember(const struct blob *x)
{
    sg_memo_add(&table, memo, sizeof memo[0], SLOTS, (const struct sg_blob *)x);
}

/* nettle's answer ok for the input x, kept when it is an acceptance. */
static int answered(const struct blob *x, int fits, int ok)
{
    if (ok == 1 && fits)
        remember(x);
    return ok;
}

/* ---- the interposed checks ------------------------------------------------- */

static int ecdsa_input(struct blob *x, const struct ecc_point *pub, size_t length,
                       const uint8_t *digest, const struct dsa_signature *sig)
{
    mp_size_t limbs = real.ecc_size(pub->ecc);
    return limbs > 0 && start(x, ECDSA) && put(x, &pub->ecc, sizeof pub->ecc) &&
           put_size(x, (uint64_t)limbs) &&
           put(x, pub->p, 2 * (size_t)limbs * sizeof(mp_limb_t)) && put_size(x, length) &&
           put(x, digest, length) && put_number(x, sig->r) && put_number(x, sig->s);
}

__attribute__((noinline)) static int ecdsa_memo(const struct ecc_point *pub, size_t length,
                                                const uint8_t *digest,
                                                const struct dsa_signature *signature)
{
    struct blob x;
    int fits = ecdsa_input(&x, pub, length, digest, signature);
    if (fits && remembered(&x))
        return 1;
    return answered(&x, fits, real.ecdsa(pub, length, digest, signature));
}

SG_EXPORT int nettle_ecdsa_verify(const struct ecc_point *pub, size_t length,
                                  const uint8_t *digest, const struct dsa_signature *signature)
{
    ecdsa_fn *fn = (ecdsa_fn *)reached(&ecdsa_sites, &ecdsa_used, __builtin_return_address(0),
                                       "nettle_ecdsa_verify");
    if (SG_UNLIKELY(!fn))
        return 0; /* no nettle to ask: nothing is verified */
    if (SG_LIKELY(!sg_smtp_ever()) || !bind_real() || fn != real.ecdsa)
        return fn(pub, length, digest, signature); /* untouched */
    return ecdsa_memo(pub, length, digest, signature);
}

static int rsa_input(struct blob *x, const struct rsa_public_key *key, size_t length,
                     const uint8_t *digest_info, const __mpz_struct *s)
{
    return start(x, RSA_PKCS1) && put_size(x, key->size) && put_number(x, key->n) &&
           put_number(x, key->e) && put_size(x, length) && put(x, digest_info, length) &&
           put_number(x, s);
}

__attribute__((noinline)) static int rsa_memo(const struct rsa_public_key *key, size_t length,
                                              const uint8_t *digest_info, const mpz_t signature)
{
    struct blob x;
    int fits = rsa_input(&x, key, length, digest_info, signature);
    if (fits && remembered(&x))
        return 1;
    return answered(&x, fits, real.rsa(key, length, digest_info, signature));
}

SG_EXPORT int nettle_rsa_pkcs1_verify(const struct rsa_public_key *key, size_t length,
                                      const uint8_t *digest_info, const mpz_t signature)
{
    rsa_fn *fn = (rsa_fn *)reached(&rsa_sites, &rsa_used, __builtin_return_address(0),
                                   "nettle_rsa_pkcs1_verify");
    if (SG_UNLIKELY(!fn))
        return 0;
    if (SG_LIKELY(!sg_smtp_ever()) || !bind_real() || fn != real.rsa)
        return fn(key, length, digest_info, signature);
    return rsa_memo(key, length, digest_info, signature);
}
