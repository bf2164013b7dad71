/* cipher_rule: which ciphers the security callback of an SMTP connection's
 * SSL allows, for every cipher the OpenSSL build knows, next to what a
 * cipher rule selects (tests/test_cipher_rule.py).
 *
 *   cipher_rule HOST PORT RULE
 *
 * One implicit-TLS handshake to HOST:PORT (no verification, SNI HOST), so
 * that a preloaded smtpguard applies its policy to the SSL. Then, at security
 * level 0 (the default callback allows every cipher there), the SSL's own
 * security callback is asked about each cipher of "ALL:COMPLEMENTOFALL" and
 * each TLS 1.3 suite the build knows, with the three questions OpenSSL asks
 * about a cipher. Prints:
 *   wrapped yes|no       the callback is not a fresh SSL's
 *   known N              TLS 1.2 ciphers asked about
 *   allowed NAME         a TLS 1.2 cipher the callback allows
 *   rule NAME            a TLS 1.2 cipher RULE selects
 *   suite NAME yes|no    a TLS 1.3 suite, allowed or not
 *   ops disagree NAME    the three questions got different answers
 * Exit 0 after the handshake, 2 on a TLS failure, 1 otherwise. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define ALL_SUITES                                                                 \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:" \
    "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"

typedef int (*sec_cb)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

static int tls_fail(const char *what)
{
    fprintf(stderr, "cipher_rule: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    return 2;
}

static int tcp(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static STACK_OF(SSL_CIPHER) *list_of(SSL_CTX *ctx, const char *rule, const char *suites)
{
    if (!SSL_CTX_set_cipher_list(ctx, rule) || !SSL_CTX_set_ciphersuites(ctx, suites))
        return NULL;
    return SSL_CTX_get_ciphers(ctx);
}

static int is_tls13(const SSL_CIPHER *c)
{
    return SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

/* What s's callback answers about c: 1 allowed, 0 refused, -1 the three
 * questions disagree. */
static int ask(SSL *s, const SSL_CIPHER *c)
{
    sec_cb cb = SSL_get_security_callback(s);
    void *ex = SSL_get0_security_ex_data(s);
    int bits = SSL_CIPHER_get_bits(c, NULL);
    static const int ops[] = {SSL_SECOP_CIPHER_SUPPORTED, SSL_SECOP_CIPHER_SHARED,
                              SSL_SECOP_CIPHER_CHECK};
    int first = cb(s, NULL, ops[0], bits, 0, (void *)c, ex) != 0;
    for (size_t i = 1; i < sizeof ops / sizeof ops[0]; i++)
        if ((cb(s, NULL, ops[i], bits, 0, (void *)c, ex) != 0) != first)
            return -1;
    return first;
}

static void report(SSL *s, SSL_CTX *all, SSL_CTX *ruled, const char *rule)
{
    STACK_OF(SSL_CIPHER) *known = list_of(all, "ALL:COMPLEMENTOFALL", ALL_SUITES);
    STACK_OF(SSL_CIPHER) *selected = list_of(ruled, rule, ALL_SUITES);
    if (!known || !selected) {
        printf("bad rule\n");
        return;
    }
    int n12 = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(known); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(known, i);
        const char *name = SSL_CIPHER_get_name(c);
        int verdict = ask(s, c);
        if (verdict < 0)
            printf("ops disagree %s\n", name);
        else if (is_tls13(c))
            printf("suite %s %s\n", name, verdict ? "yes" : "no");
        else if (verdict)
            printf("allowed %s\n", name);
        n12 += !is_tls13(c);
    }
    printf("known %d\n", n12);
    for (int i = 0; i < sk_SSL_CIPHER_num(selected); i++)
        if (!is_tls13(sk_SSL_CIPHER_value(selected, i)))
            printf("rule %s\n", SSL_CIPHER_get_name(sk_SSL_CIPHER_value(selected, i)));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: cipher_rule HOST PORT RULE\n");
        return 1;
    }
    alarm(30);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX *all = SSL_CTX_new(TLS_client_method());
    SSL_CTX *ruled = SSL_CTX_new(TLS_client_method());
    if (!ctx || !all || !ruled)
        return tls_fail("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *s = SSL_new(ctx), *fresh = SSL_new(ctx);
    int fd = tcp(argv[1], argv[2]);
    if (fd < 0) {
        fprintf(stderr, "cipher_rule: cannot connect to %s:%s\n", argv[1], argv[2]);
        return 1;
    }
    if (!s || !fresh || !SSL_set_fd(s, fd) || !SSL_set_tlsext_host_name(s, argv[1]))
        return tls_fail("SSL_new");
    if (SSL_connect(s) != 1)
        return tls_fail("SSL_connect");
    printf("wrapped %s\n",
           SSL_get_security_callback(s) != SSL_get_security_callback(fresh) ? "yes" : "no");
    SSL_set_security_level(s, 0);
    report(s, all, ruled, argv[3]);
    SSL_shutdown(s);
    close(fd);
    SSL_free(s);
    SSL_free(fresh);
    SSL_CTX_free(ctx);
    SSL_CTX_free(all);
    SSL_CTX_free(ruled);
    return 0;
}
