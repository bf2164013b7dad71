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
 * inner one, the signature), and the public key. An RSA key: in OpenSSL 1.1
 * its SubjectPublicKeyInfo (i2d_PUBKEY), in OpenSSL 3 (where i2d_PUBKEY runs
 * the encoder framework and costs about as much as the verification itself)
 * n and e as the key's own provider exports them. An EC key: its public point
 * can only be encoded in affine coordinates, a field inversion (~45 K
 * instructions, as much again per encoding as the rest of the memo's work;
 * issue 15), so it is not encoded. In OpenSSL 1.1 the key is its group as
 * the SubjectPublicKeyInfo encodes it (i2d_ECPKParameters: the named curve's
 * OID, or the explicit parameters) and the point's Jacobian coordinates as
 * the library holds them (X, Y, Z): the same point held otherwise is merely
 * a miss. In OpenSSL 3, where the key lives in its provider, the entry holds
 * a private copy of the key (EVP_PKEY_dup, made when the check is kept) and a
 * query must equal it by EVP_PKEY_eq, the library's own comparison of the
 * group (field, curve, generator, order, cofactor) and the point. Any other
 * key type (RSA-PSS, SM2, EdDSA, DSA), a key that cannot be described so, a
 * certificate with an SM2 distinguishing ID (object state that X509_verify
 * uses and no encoding shows), or an input larger than an entry: the real
 * function is asked and nothing is kept. Only a result of 1 is kept.
 *
 * Why a forged signature cannot pass: an entry is made only from inputs for
 * which the real X509_verify returned 1, and answers only a call to the same
 * function whose certificate bytes (signature included) and key are equal to
 * it. A changed signature byte, a changed TBS byte (another certificate with
 * the same issuer name, signed by an impostor), another key: unequal bytes
 * (or, for an OpenSSL 3 EC key, a key EVP_PKEY_eq tells from the entry's
 * copy: a key object changed after its check no longer equals it), the real
 * function decides.
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
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
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
/* The most a key takes: its kind and four parts (1.1 EC: the group, X, Y, Z). */
#define KEY_MAX (4 + 4 * (4 + KEY_PART))

typedef int verify_fn(X509 *, EVP_PKEY *);
typedef int i2d_cert_fn(X509 *, unsigned char **);
typedef int i2d_key_fn(EVP_PKEY *, unsigned char **);
typedef int key_id_fn(const EVP_PKEY *);
typedef int get_params_fn(const EVP_PKEY *, OSSL_PARAM *);
typedef void *dist_id_fn(const X509 *);
typedef void free_fn(void *, const char *, int);
/* OpenSSL 3, an EC key: a private copy, compared by the library */
typedef EVP_PKEY *dup_fn(EVP_PKEY *);
typedef int eq_fn(const EVP_PKEY *, const EVP_PKEY *);
typedef int up_ref_fn(EVP_PKEY *);
typedef void pkey_free_fn(EVP_PKEY *);
/* OpenSSL 1.1, an EC key: its group's encoding and its point as held */
typedef void *get0_ec_fn(EVP_PKEY *);
typedef const EC_GROUP *ec_group_fn(const void *);
typedef const EC_POINT *ec_point_fn(const void *);
typedef const void *method_of_fn(const EC_GROUP *);
typedef int field_type_fn(const void *);
typedef int i2d_group_fn(const EC_GROUP *, unsigned char **);
typedef int group_int_fn(const EC_GROUP *);
typedef int jacobian_fn(const EC_GROUP *, const EC_POINT *, BIGNUM *, BIGNUM *, BIGNUM *,
                        BN_CTX *);
typedef BIGNUM *bn_new_fn(void);
typedef void bn_free_fn(BIGNUM *);
typedef int bn_bits_fn(const BIGNUM *);
typedef int bn2bin_fn(const BIGNUM *, unsigned char *);

/* What encodes one libcrypto's objects, found at its first memoised check. */
struct encoders {
    i2d_cert_fn *i2d_x509;
    key_id_fn *key_id;           /* EVP_PKEY_get_id (3), EVP_PKEY_id (1.1) */
    get_params_fn *get_params;   /* OpenSSL 3 */
    dist_id_fn *dist_id;         /* OpenSSL 3: X509_get0_distinguishing_id */
    i2d_key_fn *i2d_pubkey;      /* OpenSSL 1.1 */
    free_fn *crypto_free;        /* OpenSSL 1.1: what i2d_PUBKEY allocated */
    int usable;                  /* all it needs was found: the memo may answer */
    struct {                     /* OpenSSL 3, EC keys; by_value: all found */
        dup_fn *dup;
        eq_fn *eq;
        up_ref_fn *up_ref;
        pkey_free_fn *free;
        int by_value;
    } v;
    struct {                     /* OpenSSL 1.1, EC keys; usable: all found */
        get0_ec_fn *get0_ec;
        ec_group_fn *group;
        ec_point_fn *point;
        method_of_fn *method_of;
        field_type_fn *field_type;
        i2d_group_fn *i2d_group;
        group_int_fn *asn1_flag;
        group_int_fn *curve_name;
        jacobian_fn *jacobian;
        bn_new_fn *bn_new;
        bn_free_fn *bn_free;
        bn_bits_fn *bn_bits;
        bn2bin_fn *bn2bin;
        int usable;
    } ec;
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
static int sites_used;

static struct lib *site(const void *ret)
{
    return sg_callsite_recall(&sites, &sites_used, ret);
}

/* cap: the bytes b holds (an entry BLOB_MAX; a query what its input needs,
 * so that it takes no more memory than that). len and b are a struct sg_blob. */
struct blob {
    size_t cap;
    size_t len;
    uint8_t b[BLOB_MAX];
};

/* An entry: its bytes, and for an OpenSSL 3 EC key the private copy of the
 * key that a query must also equal (with the encoders of its libcrypto). */
static struct blob memo[SLOTS] SG_TABLE; /* under sg_lock_memo */
static struct {
    EVP_PKEY *key;
    const struct encoders *enc;
} held[SLOTS];                           /* under sg_lock_memo */
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

/* The name in that libcrypto (its own scope, as dlsym on its handle
 * searches it: scope_sym.c), never one of ours. */
static void *own(struct sg_search *lib, const char *name, uint32_t hash)
{
    void *fn = sg_scope_sym_h(lib, name, hash);
    return fn && !sg_is_own_address(fn) ? fn : NULL;
}

#define FIND(lib, dst, name) ((dst) = (__typeof__(dst))own(lib, name, SG_GNU_HASH(name)))

static void find_ec3(struct sg_search *lib, struct encoders *e)
{
    e->v.by_value = FIND(lib, e->v.dup, "EVP_PKEY_dup") && FIND(lib, e->v.eq, "EVP_PKEY_eq") &&
                    FIND(lib, e->v.up_ref, "EVP_PKEY_up_ref") &&
                    FIND(lib, e->v.free, "EVP_PKEY_free");
}

static void find_ec11(struct sg_search *lib, struct encoders *e)
{
    e->ec.usable = FIND(lib, e->ec.get0_ec, "EVP_PKEY_get0_EC_KEY") &&
                   FIND(lib, e->ec.group, "EC_KEY_get0_group") &&
                   FIND(lib, e->ec.point, "EC_KEY_get0_public_key") &&
                   FIND(lib, e->ec.method_of, "EC_GROUP_method_of") &&
                   FIND(lib, e->ec.field_type, "EC_METHOD_get_field_type") &&
                   FIND(lib, e->ec.i2d_group, "i2d_ECPKParameters") &&
                   FIND(lib, e->ec.asn1_flag, "EC_GROUP_get_asn1_flag") &&
                   FIND(lib, e->ec.curve_name, "EC_GROUP_get_curve_name") &&
                   FIND(lib, e->ec.jacobian, "EC_POINT_get_Jprojective_coordinates_GFp") &&
                   FIND(lib, e->ec.bn_new, "BN_new") && FIND(lib, e->ec.bn_free, "BN_free") &&
                   FIND(lib, e->ec.bn_bits, "BN_num_bits") &&
                   FIND(lib, e->ec.bn2bin, "BN_bn2bin");
}

/* The encoders of the libcrypto that defines fn. */
static void find_encoders(verify_fn *fn, struct encoders *e)
{
    memset(e, 0, sizeof *e);
    struct sg_object obj;
    struct sg_search lib;
    void *h = sg_scope_owner((const void *)fn, &obj); /* pinned, as scope.c does */
    if (!h)
        return;
    sg_scope_search_init(&lib, h);
    FIND(&lib, e->i2d_x509, "i2d_X509");
    if (FIND(&lib, e->get_params, "EVP_PKEY_get_params")) { /* OpenSSL 3 */
        FIND(&lib, e->key_id, "EVP_PKEY_get_id");
        FIND(&lib, e->dist_id, "X509_get0_distinguishing_id");
        e->usable = e->i2d_x509 && e->key_id && e->dist_id;
        find_ec3(&lib, e);
    } else {
        FIND(&lib, e->key_id, "EVP_PKEY_id");
        FIND(&lib, e->i2d_pubkey, "i2d_PUBKEY");
        FIND(&lib, e->crypto_free, "CRYPTO_free");
        e->usable = e->i2d_x509 && e->key_id && e->i2d_pubkey && e->crypto_free;
        find_ec11(&lib, e);
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
    struct lib *l = site(ret);
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
        sg_callsite_remember(&sites, &sites_used, ret, l);
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
    return sg_blob_put((struct sg_blob *)&x->len, x->cap, p, n);
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

/* The kind of key an entry holds, first in its key part: an OpenSSL 3 EC key
 * compared by value has a kind of its own, so that its bytes never equal
 * those of a key described whole. */
#define KIND_EC_BY_VALUE (-EVP_PKEY_EC)

/* OpenSSL 3, an EC key: only its kind in the bytes; the key itself is
 * compared with the entry's copy (EVP_PKEY_eq: the group, named or explicit,
 * and the point). A key on the SM2 curve is of type SM2 in OpenSSL 3 (not
 * kept); an EC-typed one made on that curve is checked as ECDSA, with no
 * distinguishing ID, or refused by an SM2 signature's key type check. */
static int key3_ec(struct blob *x)
{
    int32_t kind = KIND_EC_BY_VALUE;
    return put(x, &kind, sizeof kind);
}

/* OpenSSL 3: the key's type and the parameters its verification uses.
 * 2: an EC key whose entry must also hold its copy. */
static int key3(const struct encoders *l, struct blob *x, EVP_PKEY *r)
{
    unsigned char a[KEY_PART], b[KEY_PART];
    OSSL_PARAM p[3];
    int id = l->key_id(r);
    if (id == EVP_PKEY_EC && l->v.by_value) {
        return key3_ec(x) ? 2 : 0;
    } else if (id == EVP_PKEY_EC) {
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

static int put_bn(const struct encoders *l, struct blob *x, const BIGNUM *n)
{
    unsigned char b[KEY_PART];
    int len = (l->ec.bn_bits(n) + 7) / 8;
    return len >= 0 && len <= KEY_PART && l->ec.bn2bin(n, b) == len &&
           put_part(x, b, (size_t)len);
}

/* OpenSSL 1.1, an EC key over a prime field: its group as its
 * SubjectPublicKeyInfo encodes it, and the Jacobian coordinates of its point
 * (which determine it: x = X/Z^2, y = Y/Z^3 in that field). Its affine
 * encoding would cost a field inversion; a point held with another Z is a
 * miss. -1: not such a key, described as a whole instead. */
static int key11_ec(const struct encoders *l, struct blob *x, EVP_PKEY *r)
{
    const void *ec = l->ec.get0_ec(r);
    const EC_GROUP *g = ec ? l->ec.group(ec) : NULL;
    const EC_POINT *pt = ec ? l->ec.point(ec) : NULL;
    const void *meth = g ? l->ec.method_of(g) : NULL;
    /* A group flagged as named but of no known name: its SubjectPublicKeyInfo
     * spells its parameters, which i2d_ECPKParameters would refuse. */
    if (!g || !pt || !meth || l->ec.field_type(meth) != NID_X9_62_prime_field ||
        (l->ec.asn1_flag(g) && !l->ec.curve_name(g)))
        return -1;
    unsigned char der[KEY_PART], *p = der;
    int n = l->ec.i2d_group(g, NULL);
    if (n <= 0 || n > KEY_PART || l->ec.i2d_group(g, &p) != n)
        return 0;
    BIGNUM *c[3] = {l->ec.bn_new(), l->ec.bn_new(), l->ec.bn_new()};
    int32_t kind = EVP_PKEY_EC;
    int ok = c[0] && c[1] && c[2] && l->ec.jacobian(g, pt, c[0], c[1], c[2], NULL) == 1 &&
             put(x, &kind, sizeof kind) && put_part(x, der, (size_t)n) &&
             put_bn(l, x, c[0]) && put_bn(l, x, c[1]) && put_bn(l, x, c[2]);
    for (int i = 0; i < 3; i++)
        if (c[i])
            l->ec.bn_free(c[i]);
    return ok;
}

/* OpenSSL 1.1: the key's type and its SubjectPublicKeyInfo, encoded once
 * into memory the library allocates (measuring first would encode it twice:
 * an EC key's point is made affine each time, ~50 K instructions). */
static int key11(const struct encoders *l, struct blob *x, EVP_PKEY *r)
{
    int32_t kind = l->key_id(r); /* an SM2 alias is not EC: not kept */
    if (kind != EVP_PKEY_EC && kind != EVP_PKEY_RSA)
        return 0;
    if (kind == EVP_PKEY_EC && l->ec.usable) {
        int ok = key11_ec(l, x, r);
        if (ok >= 0)
            return ok;
    }
    unsigned char *der = NULL;
    int n = l->i2d_pubkey(r, &der);
    int ok = n > 0 && der && put(x, &kind, sizeof kind) && put_part(x, der, (size_t)n);
    if (der)
        l->crypto_free(der, __FILE__, __LINE__);
    return ok;
}

/* The certificate's n bytes (n from i2d_X509), after their length. */
static int cert(const struct encoders *l, struct blob *x, X509 *a, int n)
{
    uint32_t len = (uint32_t)n;
    if (n <= 0 || !put(x, &len, sizeof len) || (size_t)n > x->cap - x->len)
        return 0;
    unsigned char *p = x->b + x->len;
    if (l->i2d_x509(a, &p) != n)
        return 0;
    x->len += (size_t)n;
    return 1;
}

/* The check's whole input, in memory of its size (NULL: not to be
 * memoised, or no memory). *kind: 1 when the bytes are all of it, 2 when
 * the key itself goes with them (an OpenSSL 3 EC key, compared by value). */
static struct blob *input(struct lib *l, X509 *a, EVP_PKEY *r, int *kind)
{
    const struct encoders *e = encoders_of(l);
    *kind = 0;
    if (!a || !r || !e->usable || (e->dist_id && e->dist_id(a)))
        return NULL;
    int n = e->i2d_x509(a, NULL);
    size_t cap = sizeof l->verify + KEY_MAX + sizeof(uint32_t) + (size_t)(n > 0 ? n : 0);
    struct blob *x = n > 0 ? malloc(offsetof(struct blob, b) + (cap < BLOB_MAX ? cap : BLOB_MAX))
                           : NULL;
    if (!x)
        return NULL;
    x->cap = cap < BLOB_MAX ? cap : BLOB_MAX;
    x->len = 0;
    int k = put(x, &l->verify, sizeof l->verify)
                ? (e->get_params ? key3(e, x, r) : key11(e, x, r))
                : 0;
    if (k && cert(e, x, a, n)) {
        *kind = k;
        return x;
    }
    free(x);
    return NULL;
}

/* ---- the memo -------------------------------------------------------------- */

/* Is x (and, by_value, the key r) an entry? The copies of the keys to compare
 * are taken under the lock and compared after it (the library has locks of
 * its own). */
static int remembered(const struct blob *x, int by_value, const struct encoders *e, EVP_PKEY *r)
{
    EVP_PKEY *copy[SLOTS];
    int n = 0, found = 0;
    pthread_mutex_lock(&sg_lock_memo);
    for (unsigned i = 0; i < table.count && !found; i++) {
        if (memo[i].len != x->len || memcmp(memo[i].b, x->b, x->len) != 0)
            continue;
        if (!by_value)
            found = held[i].key == NULL;
        else if (held[i].key && held[i].enc == e && e->v.up_ref(held[i].key) == 1)
            copy[n++] = held[i].key;
    }
    pthread_mutex_unlock(&sg_lock_memo);
    for (int i = 0; i < n; i++) {
        found = found || e->v.eq(copy[i], r) == 1;
        e->v.free(copy[i]);
    }
    return found;
}

/* Keep x (with key, a private copy, when by value), over the oldest entry. */
static void remember(const struct blob *x, EVP_PKEY *key, const struct encoders *e)
{
    pthread_mutex_lock(&sg_lock_memo);
    unsigned i = table.next;
    EVP_PKEY *old = held[i].key;
    const struct encoders *old_enc = held[i].enc;
    memo[i].len = x->len;
    memcpy(memo[i].b, x->b, x->len);
    held[i].key = key;
    held[i].enc = key ? e : NULL;
    table.next = (i + 1) % SLOTS;
    if (table.count < SLOTS)
        table.count++;
    pthread_mutex_unlock(&sg_lock_memo);
    if (old)
        old_enc->v.free(old);
}

/* ---- the interposed check ------------------------------------------------- */

/* The input is on the heap: up to 10 KiB more of stack inside OpenSSL's own
 * verification could overflow a program's small thread or coroutine stack.
 * No memory: the real function alone. */
__attribute__((noinline)) static int verify_memo(struct lib *l, X509 *a, EVP_PKEY *r)
{
    int kind, ok = 1;
    struct blob *x = input(l, a, r, &kind);
    if (!x || !remembered(x, kind == 2, &l->enc, r)) {
        ok = l->verify(a, r);
        EVP_PKEY *copy = ok == 1 && kind == 2 ? l->enc.v.dup(r) : NULL;
        if (ok == 1 && x && (kind == 1 || copy))
            remember(x, copy, &l->enc);
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
    struct lib *l = site(ret);
    if (SG_UNLIKELY(!l))
        return verify_first(ret, a, r);
    if (SG_LIKELY(!sg_smtp_ever()))
        return l->verify(a, r); /* not an SMTP process (yet): untouched */
    return verify_memo(l, a, r);
}
