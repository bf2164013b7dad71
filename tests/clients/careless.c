/* careless: a legacy-style OpenSSL 3 SMTP client that uses TLS carelessly.
 *
 *   careless STYLE HOST PORT starttls|implicit [MESSAGE_FILE]
 *
 * One SMTP session: greeting, EHLO, STARTTLS (starttls mode), TLS handshake,
 * EHLO, AUTH PLAIN with the test credentials, MAIL, RCPT, DATA of
 * MESSAGE_FILE (or the built-in message), QUIT.  Prints "careless: delivered"
 * and exits 0 only when the server accepted the message.  A TLS failure
 * prints the OpenSSL error queue and exits 2; any other failure exits 1.
 *
 * The SMTP dialogue exists once (dialogue()).  A STYLE only decides how the
 * SSL_CTX/SSL are configured (ctx_setup/ssl_setup) and which driver runs the
 * connection: the driver opens the TCP connection, upgrades it to TLS and
 * provides the read/write functions the dialogue uses (struct io_ops). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#define SG_USER "sguser"
#define SG_PASSWORD "Sg-S3cret-Pa55"
#define SG_FROM "sender@example.com"
#define SG_TO "rcpt@example.com"
#define SG_EHLO_NAME "careless.example"

#define TIMEOUT_TOTAL 30 /* seconds, whole run (alarm) */
#define TIMEOUT_POLL_MS 20000
#define LINE_MAX_LEN 1000 /* RFC 5321 reply line limit, CRLF excluded */
#define MAX_REPLY_LINES 100
#define MESSAGE_MAX (16 * 1024 * 1024)

/* Default message: tests/lib/constants.py MESSAGE byte for byte (headers, body
 * lines starting with '.', UTF-8 beyond ASCII, CRLF line ends). */
static const char builtin_message[] =
    "From: <" SG_FROM ">\r\n"
    "To: <" SG_TO ">\r\n"
    "Subject: smtpguard test\r\n"
    "Message-ID: <smtpguard-test@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Hello from the smtpguard tests.\r\n"
    ".a line that starts with a dot\r\n"
    "..and one that starts with two\r\n"
    "Non-ASCII: Gr\xc3\xbc\xc3\x9f" "e, na\xc3\xaf" "ve caf\xc3\xa9, "
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n"
    "The end.\r\n";

/* ------------------------------------------------------------------------ */
/* Failures                                                                 */

/* Set once the server accepted the message: from then on (QUIT) nothing can
 * turn the run into a failure. */
static int delivered;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail_tls(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("careless: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(delivered ? 0 : 1);
}

static void fail_tls(const char *fmt, ...)
{
    va_list ap;
    fputs("careless: TLS failure: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(delivered ? 0 : 2);
}

static void on_alarm(int sig)
{
    static const char msg[] = "careless: timeout, giving up\n";
    (void)sig;
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

/* ------------------------------------------------------------------------ */
/* Connection and I/O abstraction                                           */

struct conn;

struct io_ops {
    const char *name;
    /* >0 bytes read, 0 on EOF; failures do not return (fail/fail_tls). */
    size_t (*read)(struct conn *c, char *buf, size_t len);
    /* writes all of buf; failures do not return. */
    void (*write)(struct conn *c, const char *buf, size_t len);
};

struct conn {
    const char *host;
    const char *port;
    int implicit;
    int fd;            /* -1 when a BIO owns the socket */
    int nonblocking;   /* socket is O_NONBLOCK */
    SSL_CTX *ctx;
    SSL *ssl;          /* owned here unless bio != NULL */
    BIO *bio;          /* BIO chain top, owns everything below it */
    const struct io_ops *io;
    char rbuf[4096];   /* line reader buffer */
    size_t rlen, rpos;
};

/* Wait for fd to be readable (POLLIN) or writable (POLLOUT). */
static void wait_fd(int fd, short events, const char *what)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int r = poll(&p, 1, TIMEOUT_POLL_MS);
        if (r > 0)
            return;
        if (r == 0)
            fail("timeout waiting to %s", what);
        if (errno != EINTR)
            fail("poll: %s", strerror(errno));
    }
}

/* Plaintext I/O on the socket (blocking or not: always poll first). */
static size_t plain_read(struct conn *c, char *buf, size_t len)
{
    for (;;) {
        wait_fd(c->fd, POLLIN, "read");
        ssize_t n = read(c->fd, buf, len);
        if (n >= 0)
            return (size_t)n;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            fail("read: %s", strerror(errno));
    }
}

static void plain_write(struct conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        wait_fd(c->fd, POLLOUT, "write");
        ssize_t n = write(c->fd, buf, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            fail("write: %s", strerror(errno));
        }
        buf += n;
        len -= (size_t)n;
    }
}

static const struct io_ops plain_io = { "plain", plain_read, plain_write };

/* Blocking SSL_read/SSL_write (also drives an implicit handshake). */
static size_t ssl_read(struct conn *c, char *buf, size_t len)
{
    for (;;) {
        int n = SSL_read(c->ssl, buf, (int)len);
        if (n > 0)
            return (size_t)n;
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            continue;
        fail_tls("SSL_read failed (SSL_get_error %d)", err);
    }
}

static void ssl_write(struct conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        int n = SSL_write(c->ssl, buf, (int)len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            continue;
        fail_tls("SSL_write failed (SSL_get_error %d)", err);
    }
}

static const struct io_ops ssl_io = { "ssl", ssl_read, ssl_write };

/* Non-blocking SSL: every WANT_READ/WANT_WRITE waits in poll. */
static void nb_wait(struct conn *c, int ret, const char *what)
{
    int err = SSL_get_error(c->ssl, ret);
    if (err == SSL_ERROR_WANT_READ)
        wait_fd(c->fd, POLLIN, what);
    else if (err == SSL_ERROR_WANT_WRITE)
        wait_fd(c->fd, POLLOUT, what);
    else
        fail_tls("%s failed (SSL_get_error %d)", what, err);
}

static size_t nb_read(struct conn *c, char *buf, size_t len)
{
    for (;;) {
        int n = SSL_read(c->ssl, buf, (int)len);
        if (n > 0)
            return (size_t)n;
        if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN)
            return 0;
        nb_wait(c, n, "SSL_read");
    }
}

static void nb_write(struct conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        int n = SSL_write(c->ssl, buf, (int)len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        nb_wait(c, n, "SSL_write"); /* retried with the same buffer */
    }
}

static const struct io_ops nb_io = { "ssl-nonblocking", nb_read, nb_write };

/* BIO_read/BIO_write on an SSL BIO chain. */
static size_t bio_read(struct conn *c, char *buf, size_t len)
{
    for (;;) {
        int n = BIO_read(c->bio, buf, (int)len);
        if (n > 0)
            return (size_t)n;
        if (BIO_should_retry(c->bio))
            continue;
        SSL *ssl = NULL;
        BIO_get_ssl(c->bio, &ssl);
        if (n == 0 && ssl && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN))
            return 0;
        fail_tls("BIO_read failed (%d)", n);
    }
}

static void bio_write(struct conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        int n = BIO_write(c->bio, buf, (int)len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (BIO_should_retry(c->bio))
            continue;
        fail_tls("BIO_write failed (%d)", n);
    }
}

static const struct io_ops bio_io = { "bio", bio_read, bio_write };

/* ------------------------------------------------------------------------ */
/* TCP                                                                      */

#include "addr_knobs.h"

static int connect_one(const struct addrinfo *ai, int nonblocking)
{
    struct sockaddr_storage ss;
    socklen_t alen;
    int family;
    const struct sockaddr *addr = knob_addr(ai, &ss, &alen, &family);
    int fd = socket(family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (nonblocking) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, addr, alen) == 0)
        return fd;
    if (nonblocking && errno == EINPROGRESS) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int r;
        do
            r = poll(&p, 1, TIMEOUT_POLL_MS);
        while (r < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            return fd;
        errno = r == 0 ? ETIMEDOUT : (soerr ? soerr : errno);
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}


/* SG_DNS_SERVER=ADDR:PORT (tests/test_identity.py): resolve HOST as Postfix
 * and Exim do, with the res_* API against that server instead of
 * getaddrinfo; SG_DNS_API=search|nsearch|query picks the call, or udp|tcp|tcp1
 * (tcp: the frame length read first; tcp1: the frame in one read; udp_sendto: an
 * unconnected UDP socket, sendto and recvfrom) for a
 * resolver of the program's own (as c-ares and OpenSMTPD's asr have:
 * its own socket to the server, res_mkquery only to build the question).
 * SG_DNS_MX=1 looks HOST up as a mail domain and connects to its first MX
 * host. The list made holds one IPv4 address. */
/* udp_sendto: a resolver that never connects its UDP socket (sendto, recvfrom). */
static int unconnected_query(const struct sockaddr_in *ns, const char *name, int type,
                             unsigned char *ans, int len)
{
    unsigned char q[NS_PACKETSZ];
    int n = res_mkquery(QUERY, name, C_IN, type, NULL, 0, NULL, q, sizeof q);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { .tv_sec = 5 };
    if (n < 0 || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        sendto(fd, q, (size_t)n, 0, (const struct sockaddr *)ns, sizeof *ns) < 0)
        fail("own resolver: cannot reach the server: %s", strerror(errno));
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    int got = (int)recvfrom(fd, ans, (size_t)len, 0, (struct sockaddr *)&from, &flen);
    close(fd);
    return got;
}

static int own_query(const struct sockaddr_in *ns, int tcp, const char *name, int type,
                     unsigned char *ans, int len)
{
    unsigned char q[NS_PACKETSZ + 2];
    int n = res_mkquery(QUERY, name, C_IN, type, NULL, 0, NULL, q + 2, NS_PACKETSZ);
    int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    struct timeval tv = { .tv_sec = 5 };
    if (n < 0 || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (const struct sockaddr *)ns, sizeof *ns) != 0)
        fail("own resolver: cannot reach the server: %s", strerror(errno));
    q[0] = (unsigned char)(n >> 8);
    q[1] = (unsigned char)n;
    if (send(fd, tcp ? q : q + 2, (size_t)n + (tcp ? 2 : 0), 0) < 0)
        fail("own resolver: send: %s", strerror(errno));
    int got = 0;
    if (tcp == 2) { /* the whole frame in one read, as c-ares reads it */
        unsigned char frame[NS_MAXMSG + 2];
        got = (int)recv(fd, frame, sizeof frame, 0);
        int want = got >= 2 ? frame[0] << 8 | frame[1] : -1;
        if (want < 0 || want > len || got != want + 2)
            fail("own resolver: not one whole frame (%d bytes)", got);
        memcpy(ans, frame + 2, (size_t)want);
        got = want;
    } else if (tcp) { /* the frame length first, then the message, as asr reads them */
        unsigned char hdr[2];
        if (recv(fd, hdr, 2, MSG_WAITALL) != 2)
            fail("own resolver: no answer");
        int want = hdr[0] << 8 | hdr[1];
        if (want > len)
            fail("own resolver: answer too long");
        got = (int)recv(fd, ans, (size_t)want, MSG_WAITALL);
    } else {
        got = (int)recv(fd, ans, (size_t)len, 0);
    }
    close(fd);
    return got;
}

static int dns_query(const char *name, int type, unsigned char *ans, int len)
{
    static struct __res_state st;
    const char *api = getenv("SG_DNS_API") ? getenv("SG_DNS_API") : "search";
    char server[64];
    snprintf(server, sizeof server, "%s", getenv("SG_DNS_SERVER"));
    char *colon = strrchr(server, ':');
    if (!colon)
        fail("SG_DNS_SERVER is ADDR:PORT");
    *colon = 0;
    struct sockaddr_in ns = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
    inet_pton(AF_INET, server, &ns.sin_addr);
    if (!strcmp(api, "udp_sendto"))
        return unconnected_query(&ns, name, type, ans, len);
    if (!strcmp(api, "udp") || !strcmp(api, "tcp") || !strcmp(api, "tcp1"))
        return own_query(&ns, !strcmp(api, "tcp1") ? 2 : !strcmp(api, "tcp"), name, type,
                         ans, len);
    if (!strcmp(api, "nsearch")) {
        if (res_ninit(&st) != 0)
            fail("res_ninit");
        st.nsaddr_list[0] = ns;
        st.nscount = 1;
        return res_nsearch(&st, name, C_IN, type, ans, len);
    }
    if (res_init() != 0)
        fail("res_init");
    _res.nsaddr_list[0] = ns;
    _res.nscount = 1;
    return !strcmp(api, "query") ? res_query(name, C_IN, type, ans, len)
                                 : res_search(name, C_IN, type, ans, len);
}

/* The first record of type in the answer section: its rdata offset. */
static int first_record(const unsigned char *ans, int n, int type, int *rdlen)
{
    const unsigned char *p = ans + 12, *end = ans + n;
    char name[NS_MAXDNAME];
    int qd = ans[4] << 8 | ans[5], an = ans[6] << 8 | ans[7];
    for (int i = 0; i < qd; i++) {
        int k = dn_skipname(p, end);
        if (k < 0)
            return -1;
        p += k + 4;
    }
    for (int i = 0; i < an && p < end; i++) {
        int k = dn_expand(ans, end, p, name, sizeof name);
        if (k < 0 || p + k + 10 > end)
            return -1;
        p += k;
        int t = p[0] << 8 | p[1], len = p[8] << 8 | p[9];
        p += 10;
        if (t == type) {
            *rdlen = len;
            return (int)(p - ans);
        }
        p += len;
    }
    return -1;
}

static struct addrinfo *dns_resolve(const char *host, const char *port)
{
    static unsigned char ans[4096];
    static char target[NS_MAXDNAME];
    static struct sockaddr_in sin;
    static struct addrinfo ai;
    int n, len, off;
    if (getenv("SG_DNS_MX")) {
        n = dns_query(host, T_MX, ans, sizeof ans);
        if (n <= 0 || (off = first_record(ans, n, T_MX, &len)) < 0 ||
            dn_expand(ans, ans + n, ans + off + 2, target, sizeof target) < 0)
            fail("no MX for %s", host);
        host = target;
    }
    n = dns_query(host, T_A, ans, sizeof ans);
    if (n <= 0 || (off = first_record(ans, n, T_A, &len)) < 0 || len != 4)
        fail("no A record for %s", host);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(atoi(port));
    memcpy(&sin.sin_addr, ans + off, 4);
    ai = (struct addrinfo){ .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                            .ai_addr = (struct sockaddr *)&sin, .ai_addrlen = sizeof sin };
    return &ai;
}

/* Resolves with getaddrinfo and connects to the first address that answers. */
static void tcp_connect(struct conn *c)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int dns = getenv("SG_DNS_SERVER") != NULL;
    int r = dns ? (res = dns_resolve(c->host, c->port), 0)
                : getaddrinfo(c->host, c->port, &hints, &res);
    if (r != 0)
        fail("cannot resolve %s: %s", c->host, gai_strerror(r));
    also_resolve(c->port);
    int err = 0;
    c->fd = -1;
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        c->fd = connect_one(ai, c->nonblocking);
        if (c->fd < 0)
            err = errno;
    }
    if (!dns)
        freeaddrinfo(res);
    if (c->fd < 0)
        fail("cannot connect to %s port %s: %s", c->host, c->port, strerror(err));
    c->io = &plain_io;
}

/* ------------------------------------------------------------------------ */
/* Styles: SSL_CTX / SSL configuration                                      */

static int host_is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static void set_sni(SSL *ssl, const char *host)
{
    if (!SSL_set_tlsext_host_name(ssl, host))
        fail_tls("SSL_set_tlsext_host_name");
}

static int verify_accept_all(int preverify_ok, X509_STORE_CTX *x)
{
    (void)preverify_ok;
    (void)x;
    return 1;
}

static int cert_verify_accept_all(X509_STORE_CTX *x, void *arg)
{
    (void)x;
    (void)arg;
    return 1;
}

static void ctx_verify_none(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
}

static void ctx_accept_all_cb(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_accept_all);
}

static void ctx_cert_verify_cb(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_accept_all, NULL);
}

static void ctx_tls10_max(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (!SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"))
        fail_tls("SSL_CTX_set_cipher_list");
    /* Legacy TLS only: 1.0 or 1.1 (the name is historical). */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION))
        fail_tls("SSL_CTX_set_{min,max}_proto_version");
    SSL_CTX_set_options(ctx, SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3);
}

static void ctx_seclevel0(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (!SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0"))
        fail_tls("SSL_CTX_set_cipher_list");
    /* any version */
    if (!SSL_CTX_set_min_proto_version(ctx, 0) || !SSL_CTX_set_max_proto_version(ctx, 0))
        fail_tls("SSL_CTX_set_{min,max}_proto_version");
}

static void ctx_good(SSL_CTX *ctx)
{
    const char *ca = getenv("SG_CA_FILE");
    if (ca && *ca) {
        if (!SSL_CTX_load_verify_locations(ctx, ca, NULL))
            fail_tls("cannot load CA file %s", ca);
    } else if (!SSL_CTX_set_default_verify_paths(ctx)) {
        fail_tls("SSL_CTX_set_default_verify_paths");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        fail_tls("SSL_CTX_set_min_proto_version");
    /* Forward-secret AEAD only for TLS 1.2; TLS 1.3 suites stay the defaults. */
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"))
        fail_tls("SSL_CTX_set_cipher_list");
}

static void ssl_sni(SSL *ssl, const char *host)
{
    set_sni(ssl, host);
}

static void ssl_no_sni(SSL *ssl, const char *host)
{
    (void)ssl;
    (void)host;
}

static void ssl_good(SSL *ssl, const char *host)
{
    if (host_is_ip(host)) {
        /* SNI carries no address literal (RFC 6066); check the IP SAN. */
        if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host))
            fail_tls("X509_VERIFY_PARAM_set1_ip_asc");
    } else {
        set_sni(ssl, host);
        if (!SSL_set1_host(ssl, host))
            fail_tls("SSL_set1_host");
    }
}

static int allow_all(const SSL *s, const SSL_CTX *ctx, int op, int bits, int nid,
                     void *other, void *ex)
{
    (void)s, (void)ctx, (void)op, (void)bits, (void)nid, (void)other, (void)ex;
    return 1;
}

/* SG_RESET_SECCB: as its handshake starts, the program puts a security
 * callback of its own on the SSL, one that allows everything. */
static void reset_seccb(const SSL *s, int where, int ret)
{
    (void)ret;
    if (where & SSL_CB_HANDSHAKE_START)
        SSL_set_security_callback((SSL *)s, allow_all);
}

/* SG_CIPHERS, SG_CIPHERSUITES (tests/test_cipher_choice.py): the program's own
 * TLS 1.2 cipher list and TLS 1.3 suites, set after its style's setup. */
static void own_ciphers(SSL_CTX *ctx)
{
    const char *list = getenv("SG_CIPHERS"), *suites = getenv("SG_CIPHERSUITES");
    if (getenv("SG_RESET_SECCB"))
        SSL_CTX_set_info_callback(ctx, reset_seccb);
    if (list && !SSL_CTX_set_cipher_list(ctx, list))
        fail_tls("SSL_CTX_set_cipher_list(\"%s\")", list);
    if (suites && !SSL_CTX_set_ciphersuites(ctx, suites))
        fail_tls("SSL_CTX_set_ciphersuites(\"%s\")", suites);
}

/* ------------------------------------------------------------------------ */
/* Drivers: how the TLS connection is opened and driven                     */

struct style;

struct driver {
    int nonblocking;                            /* socket in O_NONBLOCK */
    /* Upgrades the connected plaintext socket c->fd to TLS. */
    void (*start_tls)(struct conn *c, const struct style *s);
    /* Opens an implicit-TLS connection; NULL: tcp_connect + start_tls. */
    void (*open_implicit)(struct conn *c, const struct style *s);
};

struct style {
    const char *name;
    void (*ctx_setup)(SSL_CTX *ctx);
    void (*ssl_setup)(SSL *ssl, const char *host);
    const struct driver *driver;
};

static SSL *new_ssl(struct conn *c, const struct style *s)
{
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl)
        fail_tls("SSL_new");
    if (!SSL_set_fd(ssl, c->fd))
        fail_tls("SSL_set_fd");
    s->ssl_setup(ssl, c->host);
    return ssl;
}

/* Blocking SSL_connect. */
static void start_tls_connect(struct conn *c, const struct style *s)
{
    c->ssl = new_ssl(c, s);
    int r = SSL_connect(c->ssl);
    /* SG_IGNORE_FAILURE: the worst legacy habit, going on after a failed handshake. */
    if (r != 1 && getenv("SG_IGNORE_FAILURE")) {
        fprintf(stderr, "careless: SSL_connect failed, going on anyway\n");
        ERR_print_errors_fp(stderr);
    } else if (r != 1) {
        fail_tls("SSL_connect failed (SSL_get_error %d)", SSL_get_error(c->ssl, r));
    }
    c->io = &ssl_io;
}

/* Non-blocking SSL_connect in a poll loop. */
static void start_tls_nonblocking(struct conn *c, const struct style *s)
{
    c->ssl = new_ssl(c, s);
    int r;
    while ((r = SSL_connect(c->ssl)) != 1) {
        if (r == 0)
            fail_tls("SSL_connect failed (SSL_get_error %d)", SSL_get_error(c->ssl, r));
        nb_wait(c, r, "SSL_connect");
    }
    c->io = &nb_io;
}

/* No SSL_connect: the first SSL_write (or SSL_read) performs the handshake. */
static void start_tls_implicit_write(struct conn *c, const struct style *s)
{
    c->ssl = new_ssl(c, s);
    SSL_set_connect_state(c->ssl);
    c->io = &ssl_io;
}

/* STARTTLS: BIO_new_ssl pushed onto a socket BIO, BIO_do_handshake. */
static void start_tls_bio(struct conn *c, const struct style *s)
{
    BIO *sock = BIO_new_socket(c->fd, BIO_NOCLOSE);
    BIO *sslb = BIO_new_ssl(c->ctx, 1);
    SSL *ssl = NULL;
    if (!sock || !sslb)
        fail_tls("BIO_new_socket/BIO_new_ssl");
    BIO_get_ssl(sslb, &ssl);
    if (!ssl)
        fail_tls("BIO_get_ssl");
    s->ssl_setup(ssl, c->host);
    c->bio = BIO_push(sslb, sock);
    if (BIO_do_handshake(c->bio) != 1)
        fail_tls("BIO_do_handshake failed");
    c->io = &bio_io;
}

/* Implicit TLS: BIO_new_ssl_connect + BIO_set_conn_hostname + BIO_do_handshake
 * (the connect BIO resolves and connects by itself). */
static void open_implicit_bio(struct conn *c, const struct style *s)
{
    char hostport[512];
    const char *fmt = strchr(c->host, ':') ? "[%s]:%s" : "%s:%s";
    if ((size_t)snprintf(hostport, sizeof hostport, fmt, c->host, c->port) >= sizeof hostport)
        fail("host name too long");
    BIO *b = BIO_new_ssl_connect(c->ctx);
    SSL *ssl = NULL;
    if (!b)
        fail_tls("BIO_new_ssl_connect");
    c->bio = b;
    BIO_get_ssl(b, &ssl);
    if (!ssl)
        fail_tls("BIO_get_ssl");
    s->ssl_setup(ssl, c->host);
    if (BIO_set_conn_hostname(b, hostport) != 1)
        fail_tls("BIO_set_conn_hostname");
    if (BIO_do_handshake(b) != 1)
        fail_tls("BIO_do_handshake (connect to %s) failed", hostport);
    c->io = &bio_io;
}

static const struct driver drv_connect = { 0, start_tls_connect, NULL };
static const struct driver drv_nonblocking = { 1, start_tls_nonblocking, NULL };
static const struct driver drv_implicit_write = { 0, start_tls_implicit_write, NULL };
static const struct driver drv_bio = { 0, start_tls_bio, open_implicit_bio };

static const struct style styles[] = {
    { "verify_none", ctx_verify_none, ssl_sni, &drv_connect },
    { "accept_all_cb", ctx_accept_all_cb, ssl_sni, &drv_connect },
    { "cert_verify_cb", ctx_cert_verify_cb, ssl_sni, &drv_connect },
    { "tls10_max", ctx_tls10_max, ssl_sni, &drv_connect },
    { "seclevel0", ctx_seclevel0, ssl_sni, &drv_connect },
    { "no_sni", ctx_verify_none, ssl_no_sni, &drv_connect },
    { "nonblocking", ctx_verify_none, ssl_sni, &drv_nonblocking },
    { "bio_ssl_connect", ctx_verify_none, ssl_sni, &drv_bio },
    { "implicit_write", ctx_verify_none, ssl_sni, &drv_implicit_write },
    { "good", ctx_good, ssl_good, &drv_connect },
};

static void start_tls(struct conn *c, const struct style *s)
{
    c->rlen = c->rpos = 0; /* nothing read in plaintext survives the upgrade */
    s->driver->start_tls(c, s);
}

static void open_implicit(struct conn *c, const struct style *s)
{
    if (s->driver->open_implicit) {
        s->driver->open_implicit(c, s);
        return;
    }
    tcp_connect(c);
    start_tls(c, s);
}

static void conn_close(struct conn *c)
{
    if (c->bio) {
        BIO_ssl_shutdown(c->bio);
        BIO_free_all(c->bio); /* frees the SSL (and the connect BIO's socket) */
    } else if (c->ssl) {
        SSL_shutdown(c->ssl); /* send close_notify, don't wait */
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    c->bio = NULL;
    c->ssl = NULL;
    c->fd = -1;
}

/* ------------------------------------------------------------------------ */
/* SMTP dialogue (shared by every style)                                    */

static void send_line(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void send_line(struct conn *c, const char *fmt, ...)
{
    char line[LINE_MAX_LEN + 3];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        fail("command too long");
    if (strncmp(line, "AUTH ", 5) == 0)
        fprintf(stderr, "C: AUTH ...\n");
    else
        fprintf(stderr, "C: %s\n", line);
    memcpy(line + n, "\r\n", 2);
    c->io->write(c, line, (size_t)n + 2);
}

/* Reads one line (without CRLF) into line; returns its length. */
static size_t read_line(struct conn *c, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        if (c->rpos == c->rlen) {
            c->rpos = 0;
            c->rlen = c->io->read(c, c->rbuf, sizeof c->rbuf);
            if (c->rlen == 0)
                fail("connection closed by the server");
        }
        char ch = c->rbuf[c->rpos++];
        if (ch == '\n')
            break;
        if (n + 1 >= cap)
            fail("reply line too long");
        line[n++] = ch;
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return n;
}

/* Reads a complete (possibly multiline "250-...") reply; returns its code. */
static int read_reply(struct conn *c)
{
    char line[LINE_MAX_LEN + 3];
    int code = -1;
    for (int i = 0; i < MAX_REPLY_LINES; i++) {
        size_t n = read_line(c, line, sizeof line);
        fprintf(stderr, "S: %s\n", line);
        if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' || (n > 3 && line[3] != ' ' && line[3] != '-'))
            fail("malformed reply line: %s", line);
        int this_code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code >= 0 && this_code != code)
            fail("inconsistent multiline reply");
        code = this_code;
        if (n == 3 || line[3] == ' ')
            return code;
    }
    fail("reply has too many lines");
}

static void expect(struct conn *c, int want, const char *after)
{
    int code = read_reply(c);
    if (code != want)
        fail("unexpected reply %d to %s (wanted %d)", code, after, want);
}

static void expect_2xx(struct conn *c, const char *after)
{
    int code = read_reply(c);
    if (code / 100 != 2)
        fail("unexpected reply %d to %s", code, after);
}

/* Sends the message with CRLF line ends and dot-stuffing, then ".". */
static void send_data(struct conn *c, const char *msg, size_t len)
{
    char out[8192];
    size_t o = 0;
    int bol = 1; /* at the beginning of a line */
    for (size_t i = 0; i < len; i++) {
        if (o + 3 > sizeof out) {
            c->io->write(c, out, o);
            o = 0;
        }
        char ch = msg[i];
        if (bol && ch == '.')
            out[o++] = '.';
        if (ch == '\n' && (i == 0 || msg[i - 1] != '\r'))
            out[o++] = '\r'; /* bare LF */
        out[o++] = ch;
        bol = ch == '\n';
    }
    if (o)
        c->io->write(c, out, o);
    if (len > 0 && !bol)
        c->io->write(c, "\r\n", 2);
    c->io->write(c, ".\r\n", 3);
    fprintf(stderr, "C: <%zu bytes of message>\nC: .\n", len);
}

static void dialogue(struct conn *c, const struct style *s, const char *msg, size_t msglen)
{
    if (c->implicit)
        open_implicit(c, s);
    else
        tcp_connect(c);

    expect(c, 220, "connect (greeting)");
    send_line(c, "EHLO %s", SG_EHLO_NAME);
    expect(c, 250, "EHLO");
    if (!c->implicit) {
        send_line(c, "STARTTLS");
        expect(c, 220, "STARTTLS");
        start_tls(c, s);
        send_line(c, "EHLO %s", SG_EHLO_NAME);
        expect(c, 250, "EHLO after STARTTLS");
    }

    static const char plain[] = "\0" SG_USER "\0" SG_PASSWORD;
    unsigned char b64[4 * ((sizeof plain - 1 + 2) / 3) + 1];
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)(sizeof plain - 1));
    send_line(c, "AUTH PLAIN %s", (const char *)b64);
    expect(c, 235, "AUTH PLAIN");

    send_line(c, "MAIL FROM:<%s>", SG_FROM);
    expect(c, 250, "MAIL FROM");
    send_line(c, "RCPT TO:<%s>", SG_TO);
    expect_2xx(c, "RCPT TO");
    send_line(c, "DATA");
    expect(c, 354, "DATA");
    send_data(c, msg, msglen);
    expect(c, 250, "end of DATA");

    /* Delivered; QUIT politely but don't let a failure there matter. */
    delivered = 1;
    printf("careless: delivered\n");
    fflush(stdout);
    send_line(c, "QUIT");
    (void)read_reply(c);
}

/* ------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail("cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        fail("out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= MESSAGE_MAX)
                fail("%s: message too large", path);
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                fail("out of memory");
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                fail("reading %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void usage(void)
{
    fprintf(stderr, "usage: careless STYLE HOST PORT starttls|implicit [MESSAGE_FILE]\nstyles:");
    for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++)
        fprintf(stderr, " %s", styles[i].name);
    fputc('\n', stderr);
    exit(1);
}

/* Like Postfix's smtp client: set TLS up, then chroot (SG_CHROOT) and drop
 * to an unprivileged user (SG_SETUID) before any connection, where neither the
 * policy nor the trust store can be read any more. */
static void enter_jail(void)
{
    const char *dir = getenv("SG_CHROOT"), *uid = getenv("SG_SETUID");
    if (dir && (chroot(dir) != 0 || chdir("/") != 0)) {
        perror("chroot");
        exit(1);
    }
    if (uid && setuid((uid_t)atoi(uid)) != 0) {
        perror("setuid");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6)
        usage();

    const struct style *s = NULL;
    for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++)
        if (strcmp(argv[1], styles[i].name) == 0)
            s = &styles[i];
    if (!s)
        usage();

    struct conn c = { .host = argv[2], .port = argv[3], .fd = -1 };
    if (strcmp(argv[4], "starttls") == 0)
        c.implicit = 0;
    else if (strcmp(argv[4], "implicit") == 0)
        c.implicit = 1;
    else
        usage();
    c.nonblocking = s->driver->nonblocking;

    struct sigaction sa = { .sa_handler = on_alarm };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(TIMEOUT_TOTAL);

    char *file_msg = NULL;
    const char *msg = builtin_message;
    size_t msglen = sizeof builtin_message - 1;
    if (argc == 6)
        msg = file_msg = read_file(argv[5], &msglen);

    c.ctx = SSL_CTX_new(TLS_client_method());
    if (!c.ctx)
        fail_tls("SSL_CTX_new");
    s->ctx_setup(c.ctx);
    own_ciphers(c.ctx);
    enter_jail();

    dialogue(&c, s, msg, msglen);

    conn_close(&c);
    SSL_CTX_free(c.ctx);
    free(file_msg);
    return 0;
}
