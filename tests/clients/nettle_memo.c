/* nettle_memo: nettle_ecdsa_verify and nettle_rsa_pkcs1_verify as libgnutls
 * calls them, to test the shim's memo of accepted checks (shim/nettle_memo.c,
 * tests/test_nettle_memo.py).
 *
 *   nettle_memo [--smtp PORT]
 *   nettle_memo [--smtp PORT] x509 CA_FILE CERT_FILE...
 *
 * --smtp PORT: first a connection to 127.0.0.1:PORT, closed at once
 * (smtp_gate.h): the shim's memo is used only after an SMTP connection.
 *
 * For P-256, P-384 and P-521, with keys and signatures made here (a fixed
 * seed: the same every run), prints one line per check, "CURVE NAME RESULT",
 * RESULT being what nettle_ecdsa_verify returned:
 *   valid, valid_again       a good signature, then the very same check again
 *   digest_byte, digest_len  after it, the same with one digest byte changed,
 *                            with the digest one byte shorter
 *   r_changed, s_changed     r + 1, s + 1
 *   r_negated, swapped       -r; r and s exchanged
 *   other_key                the same digest and signature, another public key
 *   invalid, invalid_again   a bad signature (s + 1 of another digest), twice
 *   long_digest, long_again  a digest of 1000 bytes (nettle uses its leading
 *                            bits: valid), twice: larger than the memo keeps
 *   child_valid, child_bad   in a forked child: valid, and digest_byte again
 * then the same for nettle_rsa_pkcs1_verify with RSA-2048 keys ("RSA-2048 NAME
 * RESULT": valid, valid_again, digest_byte, digest_len, s_changed, other_key,
 * e_changed (the same modulus, exponent 3), invalid, invalid_again, child_valid,
 * child_bad), and then "speedup X" and "rsa_speedup X": the fastest of 15 first
 * checks of distinct valid signatures over the fastest of 15 repeats of one
 * check (thread CPU time); about 1 without a memo; then "threads_wrong N": the
 * wrong answers of 4 threads checking valid and refused signatures at once.
 *
 * x509: each certificate (PEM), in order, verified alone against the CA file by
 * GnuTLS (gnutls_x509_trust_list_verify_crt: the CA's signature over it, checked
 * by nettle through libgnutls); prints "CERT_FILE STATUS", 0 when trusted.
 *
 * Exits 0 unless something failed to run. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecdsa.h>
#include <nettle/knuth-lfib.h>
#include <nettle/rsa.h>

#include "smtp_gate.h"

#define DIGEST_MAX 66
#define LONG_DIGEST 1000 /* more than an entry of the memo holds */
#define ROUNDS 15

static struct knuth_lfib_ctx rng;

static void rnd(void *ctx, size_t n, uint8_t *out)
{
    knuth_lfib_random(ctx, n, out);
}

struct key {
    struct ecc_point pub;
    struct ecc_scalar priv;
};

static void make_key(struct key *k, const struct ecc_curve *ecc)
{
    ecc_point_init(&k->pub, ecc);
    ecc_scalar_init(&k->priv, ecc);
    ecdsa_generate_keypair(&k->pub, &k->priv, &rng, rnd);
}

static void sign(const struct key *k, const uint8_t *digest, size_t len, struct dsa_signature *sig)
{
    dsa_signature_init(sig);
    ecdsa_sign(&k->priv, &rng, rnd, len, digest, sig);
}

static const char *curve;

static int check(const char *name, const struct key *k, const uint8_t *digest, size_t len,
                 const struct dsa_signature *sig)
{
    int r = nettle_ecdsa_verify(&k->pub, len, digest, sig);
    printf("%s %s %d\n", curve, name, r);
    return r;
}

/* The signature sig changed by change(), checked, then restored. */
static void altered(const char *name, const struct key *k, const uint8_t *digest, size_t len,
                    struct dsa_signature *sig, void (*change)(struct dsa_signature *))
{
    struct dsa_signature copy;
    dsa_signature_init(&copy);
    mpz_set(copy.r, sig->r);
    mpz_set(copy.s, sig->s);
    change(&copy);
    check(name, k, digest, len, &copy);
    dsa_signature_clear(&copy);
}

static void r_plus(struct dsa_signature *s) { mpz_add_ui(s->r, s->r, 1); }
static void s_plus(struct dsa_signature *s) { mpz_add_ui(s->s, s->s, 1); }
static void r_neg(struct dsa_signature *s) { mpz_neg(s->r, s->r); }
static void swap(struct dsa_signature *s) { mpz_swap(s->r, s->s); }

static void child(const struct key *k, uint8_t *digest, size_t len,
                  const struct dsa_signature *sig)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        check("child_valid", k, digest, len, sig);
        digest[0] ^= 1;
        check("child_bad", k, digest, len, sig);
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "child failed\n");
        exit(1);
    }
}

static void one_curve(const char *name, const struct ecc_curve *ecc, size_t len)
{
    struct key k, other;
    struct dsa_signature sig, bad;
    uint8_t digest[DIGEST_MAX], second[DIGEST_MAX];
    curve = name;
    make_key(&k, ecc);
    make_key(&other, ecc);
    knuth_lfib_random(&rng, sizeof digest, digest);
    knuth_lfib_random(&rng, sizeof second, second);
    sign(&k, digest, len, &sig);

    check("valid", &k, digest, len, &sig);
    check("valid_again", &k, digest, len, &sig);
    digest[len / 2] ^= 0x80;
    check("digest_byte", &k, digest, len, &sig);
    digest[len / 2] ^= 0x80;
    check("digest_len", &k, digest, len - 1, &sig);
    altered("r_changed", &k, digest, len, &sig, r_plus);
    altered("s_changed", &k, digest, len, &sig, s_plus);
    altered("r_negated", &k, digest, len, &sig, r_neg);
    altered("swapped", &k, digest, len, &sig, swap);
    check("other_key", &other, digest, len, &sig);

    sign(&k, second, len, &bad);
    mpz_add_ui(bad.s, bad.s, 1);
    check("invalid", &k, second, len, &bad);
    check("invalid_again", &k, second, len, &bad);

    static uint8_t long_digest[LONG_DIGEST];
    struct dsa_signature longsig;
    memmove(long_digest, digest, len);
    sign(&k, long_digest, sizeof long_digest, &longsig);
    check("long_digest", &k, long_digest, sizeof long_digest, &longsig);
    check("long_again", &k, long_digest, sizeof long_digest, &longsig);

    child(&k, digest, len, &sig);
    dsa_signature_clear(&sig);
    dsa_signature_clear(&bad);
    dsa_signature_clear(&longsig);
}

/* ---- RSA PKCS#1 v1.5, as libgnutls checks a certificate's signature ---- */

static void make_rsa(struct rsa_public_key *pub, struct rsa_private_key *key)
{
    rsa_public_key_init(pub);
    rsa_private_key_init(key);
    mpz_set_ui(pub->e, 65537);
    if (!rsa_generate_keypair(pub, key, &rng, rnd, NULL, NULL, 2048, 0)) {
        fprintf(stderr, "rsa_generate_keypair failed\n");
        exit(1);
    }
}

static void rsa_check(const char *name, const struct rsa_public_key *pub, const uint8_t *info,
                      size_t len, const mpz_t s)
{
    printf("RSA-2048 %s %d\n", name, nettle_rsa_pkcs1_verify(pub, len, info, s));
}

static void rsa_child(const struct rsa_public_key *pub, uint8_t *info, size_t len, const mpz_t s)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        rsa_check("child_valid", pub, info, len, s);
        info[len - 1] ^= 1;
        rsa_check("child_bad", pub, info, len, s);
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status)) {
        fprintf(stderr, "child failed\n");
        exit(1);
    }
}

static void rsa(void)
{
    struct rsa_public_key pub, other, e3;
    struct rsa_private_key key, other_key;
    uint8_t info[51], second[51]; /* the length of a SHA-256 DigestInfo */
    mpz_t s, t, bad;
    make_rsa(&pub, &key);
    make_rsa(&other, &other_key);
    knuth_lfib_random(&rng, sizeof info, info);
    knuth_lfib_random(&rng, sizeof second, second);
    mpz_inits(s, t, bad, NULL);
    rsa_pkcs1_sign(&key, sizeof info, info, s);

    rsa_check("valid", &pub, info, sizeof info, s);
    rsa_check("valid_again", &pub, info, sizeof info, s);
    info[7] ^= 0x10;
    rsa_check("digest_byte", &pub, info, sizeof info, s);
    info[7] ^= 0x10;
    rsa_check("digest_len", &pub, info, sizeof info - 1, s);
    mpz_add_ui(t, s, 1);
    rsa_check("s_changed", &pub, info, sizeof info, t);
    rsa_check("other_key", &other, info, sizeof info, s);
    rsa_public_key_init(&e3);
    mpz_set(e3.n, pub.n);
    mpz_set_ui(e3.e, 3);
    rsa_public_key_prepare(&e3);
    rsa_check("e_changed", &e3, info, sizeof info, s);

    rsa_pkcs1_sign(&key, sizeof second, second, bad);
    mpz_add_ui(bad, bad, 1);
    rsa_check("invalid", &pub, second, sizeof second, bad);
    rsa_check("invalid_again", &pub, second, sizeof second, bad);
    rsa_child(&pub, info, sizeof info, s);
    mpz_clears(s, t, bad, NULL);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Distinct valid checks, for speedup(): check_nth(i) verifies the i-th. */
static struct key speed_key;
static struct dsa_signature speed_sig[ROUNDS];
static struct rsa_public_key speed_pub;
static mpz_t speed_s[ROUNDS];
static uint8_t speed_digest[ROUNDS][51];

static int ecdsa_nth(int i)
{
    return nettle_ecdsa_verify(&speed_key.pub, 32, speed_digest[i], &speed_sig[i]);
}

static int rsa_nth(int i)
{
    return nettle_rsa_pkcs1_verify(&speed_pub, sizeof speed_digest[i], speed_digest[i], speed_s[i]);
}

static void speed_setup(void)
{
    struct rsa_private_key key;
    make_key(&speed_key, nettle_get_secp_256r1());
    make_rsa(&speed_pub, &key);
    for (int i = 0; i < ROUNDS; i++) {
        knuth_lfib_random(&rng, sizeof speed_digest[i], speed_digest[i]);
        sign(&speed_key, speed_digest[i], 32, &speed_sig[i]);
        mpz_init(speed_s[i]);
        rsa_pkcs1_sign(&key, sizeof speed_digest[i], speed_digest[i], speed_s[i]);
    }
}

/* THREADS threads at once, each checking the speed_* signatures (valid) and
 * their neighbours' (another digest: refused) in turns; the wrong answers. */
#define THREADS 4
static int wrong;

static void *hammer(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int n = 0; n < 40; n++) {
        int i = (t + n) % ROUNDS, j = (i + 1) % ROUNDS;
        int good = ecdsa_nth(i) + rsa_nth(i);
        int bad = nettle_ecdsa_verify(&speed_key.pub, 32, speed_digest[j], &speed_sig[i]) +
                  nettle_rsa_pkcs1_verify(&speed_pub, sizeof speed_digest[j], speed_digest[j],
                                          speed_s[i]);
        if (good != 2 || bad != 0)
            __atomic_add_fetch(&wrong, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int threads(void)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, hammer, (void *)(intptr_t)t)) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    return wrong;
}

/* The fastest of ROUNDS first checks of distinct signatures over the fastest
 * of ROUNDS repeats of the last one. */
static double speedup(int (*check_nth)(int))
{
    double fresh = 1e9, repeat = 1e9;
    for (int i = 0; i < 2 * ROUNDS; i++) {
        double t = now();
        int ok = check_nth(i < ROUNDS ? i : ROUNDS - 1);
        t = now() - t;
        double *best = i < ROUNDS ? &fresh : &repeat;
        *best = ok == 1 && t < *best ? t : *best;
    }
    return repeat > 0 ? fresh / repeat : fresh / 1e-9;
}

static void die_gnutls(const char *what, int r)
{
    fprintf(stderr, "%s: %s\n", what, gnutls_strerror(r));
    exit(1);
}

static unsigned verify_file(gnutls_x509_trust_list_t list, const char *path)
{
    gnutls_datum_t pem;
    gnutls_x509_crt_t crt;
    unsigned status = 0;
    int r = gnutls_load_file(path, &pem);
    if (r < 0)
        die_gnutls(path, r);
    if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
        (r = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM)) < 0 ||
        (r = gnutls_x509_trust_list_verify_crt(list, &crt, 1, 0, &status, NULL)) < 0)
        die_gnutls(path, r);
    gnutls_x509_crt_deinit(crt);
    gnutls_free(pem.data);
    return status;
}

static int x509(int n, char **files)
{
    gnutls_x509_trust_list_t list;
    int r = gnutls_x509_trust_list_init(&list, 0);
    if (r < 0 || (r = gnutls_x509_trust_list_add_trust_file(list, files[0], NULL,
                                                            GNUTLS_X509_FMT_PEM, 0, 0)) < 1)
        die_gnutls(files[0], r);
    for (int i = 1; i < n; i++)
        printf("%s %u\n", files[i], verify_file(list, files[i]));
    gnutls_x509_trust_list_deinit(list, 1);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(30);
    if (argc >= 3 && !strcmp(argv[1], "--smtp")) {
        smtp_gate(atoi(argv[2]));
        argc -= 2;
        argv += 2;
    }
    if (argc >= 4 && !strcmp(argv[1], "x509"))
        return x509(argc - 2, argv + 2);
    knuth_lfib_init(&rng, 4711);
    one_curve("P-256", nettle_get_secp_256r1(), 32);
    one_curve("P-384", nettle_get_secp_384r1(), 48);
    one_curve("P-521", nettle_get_secp_521r1(), 64);
    rsa();
    speed_setup();
    printf("speedup %.1f\n", speedup(ecdsa_nth));
    printf("rsa_speedup %.1f\n", speedup(rsa_nth));
    printf("threads_wrong %d\n", threads());
    return 0;
}
