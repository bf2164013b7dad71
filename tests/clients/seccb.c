/* seccb: a program with security callbacks of its own, narrowing its TLS 1.2
 * list to one cipher (tests/test_cipher_choice.py).
 *
 *   seccb distinct HOST PORT N    N sessions, each SSL with its own callback
 *   seccb reuse HOST PORT         one SSL, two sessions (SSL_clear between)
 *
 * Each session: implicit TLS to HOST:PORT, TLS 1.2 at most, the cipher list
 * "ECDHE-RSA-AES256-GCM-SHA384" only, no verification, SNI HOST; after the
 * handshake it reads the greeting and says QUIT. The program's callbacks
 * allow everything and count how often OpenSSL asked them. Prints a line a
 * session:
 *   session I cipher NAME chained yes|no calls N
 * (chained: the SSL's callback is no longer the program's own, calls: the
 * program's callback was asked N times), and for reuse:
 *   same_callback yes|no
 * (the second handshake left the callback the first one had). Exit 0 when
 * every session completed, 2 on a TLS failure, 1 otherwise. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CB 12
#define PROGRAM_CIPHER "ECDHE-RSA-AES256-GCM-SHA384"

typedef int (*sec_cb)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

static int calls[MAX_CB];

#define CB(i)                                                                        \
    static int cb##i(const SSL *s, const SSL_CTX *c, int op, int bits, int nid,      \
                     void *other, void *ex)                                          \
    {                                                                                \
        (void)s, (void)c, (void)op, (void)bits, (void)nid, (void)other, (void)ex;    \
        calls[i]++;                                                                  \
        return 1;                                                                    \
    }
CB(0) CB(1) CB(2) CB(3) CB(4) CB(5) CB(6) CB(7) CB(8) CB(9) CB(10) CB(11)
static const sec_cb cbs[MAX_CB] = {cb0, cb1, cb2, cb3, cb4, cb5, cb6, cb7, cb8, cb9, cb10, cb11};

static int tls_fail(const char *what)
{
    fprintf(stderr, "seccb: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static int tcp(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        exit(1);
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "seccb: cannot connect to %s:%s\n", host, port);
        exit(1);
    }
    freeaddrinfo(ai);
    return fd;
}

/* The handshake, the greeting, QUIT; the SSL stays for the caller. */
static void session(SSL *s, int i, const char *host, const char *port)
{
    int fd = tcp(host, port);
    char buf[512];
    if (!SSL_set_fd(s, fd) || !SSL_set_tlsext_host_name(s, host))
        tls_fail("SSL_set_fd");
    if (SSL_connect(s) != 1)
        tls_fail("SSL_connect");
    if (SSL_read(s, buf, sizeof buf) <= 0 || strncmp(buf, "220", 3) != 0)
        tls_fail("reading the greeting");
    SSL_write(s, "QUIT\r\n", 6);
    printf("session %d cipher %s chained %s calls %d\n", i,
           SSL_CIPHER_get_name(SSL_get_current_cipher(s)),
           SSL_get_security_callback(s) != cbs[i] ? "yes" : "no", calls[i]);
    SSL_shutdown(s);
    close(fd);
}

static SSL *new_ssl(SSL_CTX *ctx, int i)
{
    SSL *s = SSL_new(ctx);
    if (!s)
        tls_fail("SSL_new");
    SSL_set_security_callback(s, cbs[i]);
    return s;
}

int main(int argc, char **argv)
{
    int distinct = argc == 5 && !strcmp(argv[1], "distinct");
    if (!distinct && !(argc == 4 && !strcmp(argv[1], "reuse"))) {
        fprintf(stderr, "usage: seccb distinct HOST PORT N | seccb reuse HOST PORT\n");
        return 1;
    }
    alarm(30);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_cipher_list(ctx, PROGRAM_CIPHER) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION))
        tls_fail("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (distinct) {
        int n = atoi(argv[4]);
        for (int i = 0; i < n && i < MAX_CB; i++) {
            SSL *s = new_ssl(ctx, i);
            session(s, i, argv[2], argv[3]);
            SSL_free(s);
        }
    } else {
        SSL *s = new_ssl(ctx, 0);
        session(s, 0, argv[2], argv[3]);
        sec_cb first = SSL_get_security_callback(s);
        if (!SSL_clear(s))
            tls_fail("SSL_clear");
        session(s, 0, argv[2], argv[3]);
        printf("same_callback %s\n", SSL_get_security_callback(s) == first ? "yes" : "no");
        SSL_free(s);
    }
    SSL_CTX_free(ctx);
    return 0;
}
