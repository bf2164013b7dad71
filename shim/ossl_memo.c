/* A per-process memo of the certificate signatures OpenSSL's X509_verify
 * accepted.
 *
 * Why: the shim's own verdict (ossl_verdict.c) verifies an OpenSSL peer's
 * chain against the policy's store right after a program that verifies the
 * server itself did the same: the leaf's signature by its CA is checked twice
 * in one process on the same bytes (issue 15; X509_verify of a P-256 leaf:
 * about 880 K instructions in OpenSSL 3, 550 K in 1.1). The second check still
 * happens, against the policy's store; only the arithmetic is not redone: it
 * is answered with what the same X509_verify answered, in this process, for
 * exactly these bytes. nettle_memo.c does the same for GnuTLS.
 *
 * The key of an entry, compared byte for byte: the real X509_verify (which
 * libcrypto), the whole certificate as i2d_X509 encodes it (the TBS bytes
 * X509_verify checks, the outer signature algorithm it compares with the
 * inner one, the signature), and the public key: in OpenSSL 1.1 its
 * SubjectPublicKeyInfo (i2d_PUBKEY); in OpenSSL 3, where i2d_PUBKEY runs the
 * encoder framework and costs about as much as the verification itself, its
 * type and the parameters the verification uses, as the key's own provider
 * exports them: an EC key's group name and public point (the point's encoding
 * determines the point on that group; a group given by explicit parameters
 * has a name only when they are a named curve's), an RSA key's n and e. Any
 * other key type (RSA-PSS, SM2, EdDSA, DSA), a key the provider cannot export
 * so, a certificate with an SM2 distinguishing ID (object state that
 * X509_verify uses and no encoding shows), or an input larger than an entry:
 * the real function is asked and nothing is kept. Only a result of 1 is kept.
 *
 * Why a forged signature cannot pass: an entry is made only from inputs for
 * which the real X509_verify returned 1, and answers only a call to the same
 * function whose certificate bytes (signature included) and key are equal to
 * it. A changed signature byte, a changed TBS byte (another certificate with
 * the same issuer name, signed by an impostor), another key: unequal bytes,
 * the real function decides.
 *
 * The residual assumption: the library's answer for exactly these bytes and
 * this key stays its answer in this process. X509_verify also depends on
 * state no encoding shows: the library context and property query the
 * certificate was made with and the providers that implement the key and the
 * digest. The program's check and the shim's run in one process with the
 * default context; a program that loads or unloads providers or changes the
 * default properties between them (say, the FIPS provider refusing SHA-1
 * after an earlier acceptance) would see the earlier acceptance repeated.
 *
 * Only after the process has had an SMTP connection (smtp_seen.h): before,
 * the real function is called at once, with no encoding, lock or memo.
 *
 * The real function is the one the caller would have reached (scope.c),
 * found at the first call from each call site: a process holding OpenSSL 1.1
 * and 3 calls each caller's own. The encoding functions are looked up in the
 * object that defines it at its first check after an SMTP connection. Nothing
 * is looked up at load. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "locks.h"
#include "policy.h"
#include "real.h"
#include "sig_memo.h"
#include "scope.h"
#include "smtp_seen.h"

#define SLOTS 8
#define LIBS 4
/* A certificate of up to 8 KiB and a key: RSA n and e of up to 4096 bits. */
#define BLOB_MAX 10240
#define KEY_PART 520

typedef int verify_fn(X509 *, EVP_PKEY *);
typedef int i2d_cert_fn(X509 *, unsigned char **);
typedef int i2d_key_fn(EVP_PKEY *, unsigned char **);
typedef int key_id_fn(const EVP_PKEY *);
typedef int get_params_fn(const EVP_PKEY *, OSSL_PARAM *);
typedef void *dist_id_fn(const X509 *);
typedef void free_fn(void *, const char *, int);

/* What encodes one libcrypto's objects, found at its first memoised check. */
struct encoders {
    i2d_cert_fn *i2d_x509;
    key_id_fn *key_id;           /* EVP_PKEY_get_id (3), EVP_PKEY_id (1.1) */
    get_params_fn *get_params;   /* OpenSSL 3 */
    dist_id_fn *dist_id;         /* OpenSSL 3: X509_get0_distinguishing_id */
    i2d_key_fn *i2d_pubkey;      /* OpenSSL 1.1 */
    free_fn *crypto_free;        /* OpenSSL 1.1: what i2d_PUBKEY allocated */
    int usable;                  /* all it needs was found: the memo may answer */
};

/* One libcrypto: its X509_verify, and its encoders once described is set
 * (release; under sg_lock_memo). */
struct lib {
    verify_fn *verify;
    int described;
    struct encoders enc;
};

static struct lib libs[LIBS]; /* published by lib_count; written under sg_lock_memo */
static int lib_count;
static struct sg_callsites sites SG_TABLE; /* call site -> struct lib *; put under sg_lock_memo */

struct blob {
    size_t len;
    uint8_t b[BLOB_MAX];
};

static struct blob memo[SLOTS] SG_TABLE; /* under sg_lock_memo */
static struct sg_memo table;

/* ---- the real function, per call site ----------------------------------- */

static struct lib *bound(verify_fn *fn)
{
    int n = __atomic_load_n(&lib_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (libs[i].verify == fn)
            return &libs[i];
    return NULL;
}

static void *own(void *h, const char *name)
{
    void *fn = dlsym(h, name);
    return fn && !sg_is_own_address(fn) ? fn : NULL;
}

/* The encoders of the libcrypto that defines fn. */
static void find_encoders(verify_fn *fn, struct encoders *e)
{
    memset(e, 0, sizeof *e);
    struct sg_object obj;
    void *h = sg_scope_owner((const void *)fn, &obj); /* pinned, as scope.c does */
    if (!h)
        return;
    e->i2d_x509 = (i2d_cert_fn *)own(h, "i2d_X509");
    e->get_params = (get_params_fn *)own(h, "EVP_PKEY_get_params");
    if (e->get_params) { /* OpenSSL 3 */
        e->key_id = (key_id_fn *)own(h, "EVP_PKEY_get_id");
        e->dist_id = (dist_id_fn *)own(h, "X509_get0_distinguishing_id");
        e->usable = e->i2d_x509 && e->key_id && e->dist_id;
    } else {
        e->key_id = (key_id_fn *)own(h, "EVP_PKEY_id");
        e->i2d_pubkey = (i2d_key_fn *)own(h, "i2d_PUBKEY");
        e->crypto_free = (free_fn *)own(h, "CRYPTO_free");
        e->usable = e->i2d_x509 && e->key_id && e->i2d_pubkey && e->crypto_free;
    }
}

/* Found on the first check that may be memoised, not at the first call: a
 * process that never speaks SMTP never looks them up. The loader is asked
 * without our lock held (backend.c says why); racing threads find the same. */
static const struct encoders *encoders_of(struct lib *l)
{
    if (SG_LIKELY(__atomic_load_n(&l->described, __ATOMIC_ACQUIRE)))
        return &l->enc;
    struct encoders e;
    find_encoders(l->verify, &e);
    pthread_mutex_lock(&sg_lock_memo);
    if (!l->described) {
        l->enc = e;
        __atomic_store_n(&l->described, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sg_lock_memo);
    return &l->enc;
}

/* The caller's libcrypto; past LIBS of them, spare (on the caller's stack)
 * holds just its function: called, never memoised. NULL: there is none. */
static struct lib *lib_for(const void *ret, struct lib *spare)
{
    struct lib *l = sg_callsite_get(&sites, ret);
    if (SG_LIKELY(l != NULL))
        return l;
    verify_fn *fn = (verify_fn *)sg_scope_next(ret, "X509_verify", "libcrypto.so");
    if (!fn)
        return NULL;
    pthread_mutex_lock(&sg_lock_memo);
    l = bound(fn);
    if (!l && lib_count < LIBS) {
        l = &libs[lib_count];
        l->verify = fn;
        __atomic_store_n(&lib_count, lib_count + 1, __ATOMIC_RELEASE);
    }
    if (l)
        sg_callsite_put(&sites, ret, l);
    pthread_mutex_unlock(&sg_lock_memo);
    if (l)
        return l;
    memset(spare, 0, sizeof *spare);
    spare->verify = fn;
    spare->described = 1; /* with no encoders: never memoised */
    return spare;
}

/* ---- a check's whole input, as bytes ---------------------------------------
 * Every variable part is preceded by its length: equal blobs, equal inputs. */

static int put(struct blob *x, const void *p, size_t n)
{
    return sg_blob_put((struct sg_blob *)x, BLOB_MAX, p, n);
}

static int put_part(struct blob *x, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    return n <= UINT32_MAX && put(x, &len, sizeof len) && put(x, p, n);
}

static OSSL_PARAM param(const char *key, unsigned type, void *data, size_t size)
{
    OSSL_PARAM p = {key, type, data, size, OSSL_PARAM_UNMODIFIED};
    return p;
}

/* OpenSSL 3: the key's type and the parameters its verification uses. */
static int key3(const struct encoders *l, struct blob *x, EVP_PKEY *r)
{
    unsigned char a[KEY_PART], b[KEY_PART];
    OSSL_PARAM p[3];
    int id = l->key_id(r);
    if (id == EVP_PKEY_EC) {
        p[0] = param(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING, a, sizeof a);
        p[1] = param(OSSL_PKEY_PARAM_PUB_KEY, OSSL_PARAM_OCTET_STRING, b, sizeof b);
    } else if (id == EVP_PKEY_RSA) {
        p[0] = param(OSSL_PKEY_PARAM_RSA_N, OSSL_PARAM_UNSIGNED_INTEGER, a, sizeof a);
        p[1] = param(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER, b, sizeof b);
    } else {
        return 0;
    }
    p[2] = param(NULL, 0, NULL, 0);
    if (l->get_params(r, p) != 1)
        return 0;
    for (int i = 0; i < 2; i++)
        if (p[i].return_size == OSSL_PARAM_UNMODIFIED || p[i].return_size > KEY_PART ||
            p[i].return_size == 0)
            return 0;
    /* SM2 is EC-typed in name only: its checks use a distinguishing ID */
    if (id == EVP_PKEY_EC && p[0].return_size == 3 && memcmp(a, "SM2", 3) == 0)
        return 0;
    int32_t kind = id;
    return put(x, &kind, sizeof kind) && put_part(x, a, p[0].return_size) &&
           put_part(x, b, p[1].return_size);
}

/* OpenSSL 1.1: the key's type and its SubjectPublicKeyInfo, encoded once
 * into memory the library allocates (measuring first would encode it twice:
 * an EC key's point is made affine each time, ~50 K instructions). */
static int key11(const struct encoders *l, struct blob *x, EVP_PKEY *r)
{
    int32_t kind = l->key_id(r); /* an SM2 alias is not EC: not kept */
    if (kind != EVP_PKEY_EC && kind != EVP_PKEY_RSA)
        return 0;
    unsigned char *der = NULL;
    int n = l->i2d_pubkey(r, &der);
    int ok = n > 0 && der && put(x, &kind, sizeof kind) && put_part(x, der, (size_t)n);
    if (der)
        l->crypto_free(der, __FILE__, __LINE__);
    return ok;
}

static int cert(const struct encoders *l, struct blob *x, X509 *a)
{
    if (l->dist_id && l->dist_id(a))
        return 0;
    int n = l->i2d_x509(a, NULL);
    uint32_t len = (uint32_t)n;
    if (n <= 0 || !put(x, &len, sizeof len) || (size_t)n > BLOB_MAX - x->len)
        return 0;
    unsigned char *p = x->b + x->len;
    if (l->i2d_x509(a, &p) != n)
        return 0;
    x->len += (size_t)n;
    return 1;
}

static int input(struct lib *l, struct blob *x, X509 *a, EVP_PKEY *r)
{
    x->len = 0;
    const struct encoders *e = encoders_of(l);
    return a && r && e->usable && put(x, &l->verify, sizeof l->verify) &&
           (e->get_params ? key3(e, x, r) : key11(e, x, r)) && cert(e, x, a);
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

/* ---- the interposed check ------------------------------------------------- */

/* The input is on the heap: 10 KiB more of stack inside OpenSSL's own
 * verification could overflow a program's small thread or coroutine stack.
 * No memory: the real function alone. */
__attribute__((noinline)) static int verify_memo(struct lib *l, X509 *a, EVP_PKEY *r)
{
    struct blob *x = malloc(sizeof *x);
    int fits = x && input(l, x, a, r), ok = 1;
    if (!fits || !remembered(x)) {
        ok = l->verify(a, r);
        if (ok == 1 && fits)
            remember(x);
    }
    free(x);
    return ok;
}

/* The first call from a call site: its libcrypto found and kept. */
__attribute__((noinline, cold)) static int verify_first(const void *ret, X509 *a, EVP_PKEY *r)
{
    struct lib spare;
    struct lib *l = lib_for(ret, &spare);
    if (!l)
        return -1; /* no X509_verify to reach: nothing is verified */
    return sg_smtp_ever() ? verify_memo(l, a, r) : l->verify(a, r);
}

SG_EXPORT int X509_verify(X509 *a, EVP_PKEY *r)
{
    const void *ret = __builtin_return_address(0);
    struct lib *l = sg_callsite_get(&sites, ret);
    if (SG_UNLIKELY(!l))
        return verify_first(ret, a, r);
    if (SG_LIKELY(!sg_smtp_ever()))
        return l->verify(a, r); /* not an SMTP process (yet): untouched */
    return verify_memo(l, a, r);
}
