/* ossl_memo: OpenSSL's X509_verify as a program and libcrypto call it, to test
 * the shim's memo of accepted certificate signatures (shim/ossl_memo.c,
 * tests/test_ossl_memo.py).
 *
 *   ossl_memo PORT CA GOOD SIG_BYTE FORGED OTHER_CA
 *
 * PORT: when not 0, first a TCP connection to 127.0.0.1:PORT, closed at once:
 * with the library preloaded and PORT an SMTP port of its policy, the process
 * has had an SMTP connection (the memo's gate). The files (PEM): the CA, a
 * leaf it signed, that leaf with one signature byte changed, a leaf with the
 * CA's name as issuer signed by another key, another CA (another key).
 * Prints one line per check, "NAME RESULT", RESULT what X509_verify (or, for
 * store_*, X509_verify_cert with the CA alone as the store) returned:
 *   valid, valid_again      the good leaf by the CA's key, twice
 *   sig_byte, sig_byte_again  the leaf with a changed signature byte, twice
 *   forged, forged_again    the impostor's leaf by the CA's key, twice
 *   other_key               the good leaf by the other CA's key
 *   valid_last              the good leaf again
 *   store_good, store_sig_byte, store_forged, store_good_again
 *                           through X509_verify_cert (libcrypto's own call)
 *   key_fresh               (first of all) the good leaf by a second copy of
 *                           the CA's key
 *   key_changed             the same, after that copy's EC point was set to
 *                           the other CA's (in place: the memo must hold a copy
 *                           of what it checked, not the program's object); an
 *                           RSA key, which cannot be changed so: the other key
 *   child_valid, child_bad  in a forked child: valid and sig_byte
 * then "threads_wrong N": the wrong answers of 4 threads checking the valid
 * and the sig_byte leaf at once, then "speedup X": the fastest of 15 refused
 * checks (sig_byte: never kept) over the fastest of 15 repeats of the valid
 * one (thread CPU time); about 1 without a memo.
 * Exits 0 unless something failed to run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "smtp_gate.h"

#define ROUNDS 15

static X509 *load(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!x) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    return x;
}

/* key's EC point set, in place, to that of other's; 0 if it cannot be. */
static int change_point(EVP_PKEY *key, EVP_PKEY *other)
{
    unsigned char *pt = NULL;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    size_t n = EVP_PKEY_get1_encoded_public_key(other, &pt);
    int ok = n > 0 && EVP_PKEY_get_id(key) == EVP_PKEY_EC &&
             EVP_PKEY_set1_encoded_public_key(key, pt, n) == 1;
#else
    size_t n = EVP_PKEY_get1_tls_encodedpoint(other, &pt);
    int ok = n > 0 && EVP_PKEY_id(key) == EVP_PKEY_EC &&
             EVP_PKEY_set1_tls_encodedpoint(key, pt, n) == 1;
#endif
    OPENSSL_free(pt);
    ERR_clear_error();
    return ok;
}

static int store_check(X509 *ca, X509 *leaf)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!store || !ctx || X509_STORE_add_cert(store, ca) != 1 ||
        X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1)
        exit(2);
    int r = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double fastest(X509 *leaf, EVP_PKEY *key)
{
    double best = 1e18;
    for (int i = 0; i < ROUNDS; i++) {
        double t0 = cpu_ns();
        X509_verify(leaf, key);
        double t = cpu_ns() - t0;
        best = t < best ? t : best;
    }
    return best;
}

#define THREADS 4
#define THREAD_ROUNDS 40

static X509 *t_good, *t_bad;
static EVP_PKEY *t_key;

static void *checker(void *arg)
{
    long wrong = 0;
    (void)arg;
    for (int i = 0; i < THREAD_ROUNDS; i++)
        wrong += (X509_verify(t_good, t_key) != 1) + (X509_verify(t_bad, t_key) != 0);
    return (void *)wrong;
}

static long threads(X509 *good, X509 *bad, EVP_PKEY *key)
{
    pthread_t t[THREADS];
    long wrong = 0;
    t_good = good, t_bad = bad, t_key = key;
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, checker, NULL) != 0)
            exit(2);
    for (int i = 0; i < THREADS; i++) {
        void *w;
        pthread_join(t[i], &w);
        wrong += (long)w;
    }
    return wrong;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: ossl_memo PORT CA GOOD SIG_BYTE FORGED OTHER_CA\n");
        return 2;
    }
    int port = atoi(argv[1]);
    X509 *ca = load(argv[2]), *good = load(argv[3]), *sig_byte = load(argv[4]);
    X509 *forged = load(argv[5]), *other = load(argv[6]);
    EVP_PKEY *key = X509_get0_pubkey(ca), *other_key = X509_get0_pubkey(other);
    if (!key || !other_key)
        return 2;
    if (port)
        smtp_gate(port);
    /* First, so that the memo's entry is made from this key object. */
    X509 *ca2 = load(argv[2]);
    EVP_PKEY *key2 = X509_get0_pubkey(ca2);
    if (!key2)
        return 2;
    printf("key_fresh %d\n", X509_verify(good, key2));
    printf("key_changed %d\n", X509_verify(good, change_point(key2, other_key) ? key2 : other_key));
    const struct {
        const char *name;
        X509 *cert;
        EVP_PKEY *key;
    } checks[] = {
        {"valid", good, key},          {"valid_again", good, key},
        {"sig_byte", sig_byte, key},   {"sig_byte_again", sig_byte, key},
        {"forged", forged, key},       {"forged_again", forged, key},
        {"other_key", good, other_key}, {"valid_last", good, key},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        printf("%s %d\n", checks[i].name, X509_verify(checks[i].cert, checks[i].key));
    printf("store_good %d\n", store_check(ca, good));
    printf("store_sig_byte %d\n", store_check(ca, sig_byte));
    printf("store_forged %d\n", store_check(ca, forged));
    printf("store_good_again %d\n", store_check(ca, good));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child_valid %d\n", X509_verify(good, key));
        printf("child_bad %d\n", X509_verify(sig_byte, key));
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return 2;
    printf("threads_wrong %ld\n", threads(good, sig_byte, key));
    double refused = fastest(sig_byte, key), repeated = fastest(good, key);
    printf("speedup %.2f\n", refused / (repeated > 0 ? repeated : 1));
    return 0;
}
