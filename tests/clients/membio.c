/* membio: a careless SMTP client whose OpenSSL sessions have no descriptor:
 * memory BIOs, as Python's asyncio (SSLObject) and Node.js use them.
 *
 *   membio thread HOST PORT starttls|implicit MESSAGE_FILE
 *       one session; the plaintext part and all socket I/O on the main
 *       thread, the handshake and the TLS dialogue on another thread, the
 *       records passed between them through pipes
 *   membio two HOST PORT_A PORT_B starttls|implicit MESSAGE_FILE
 *       two sessions on one thread: both ClientHellos leave before either
 *       handshake finishes (B's last), then A's handshake and dialogue, then B's
 *   membio many N K HOST SINK_PORT PORT implicit MESSAGE_FILE
 *       N sessions on one thread, all their ClientHellos out first: N-K to
 *       SINK_PORT (a listener that takes no part), the last K to PORT; then
 *       those K finish their handshakes and dialogues while the others wait
 *       (more handshakes under way at once than the shim can tell apart)
 *
 * Each session: (greeting, EHLO, STARTTLS), TLS with SSL_VERIFY_NONE and SNI
 * HOST, EHLO, AUTH PLAIN with the test credentials, MAIL, RCPT, DATA of
 * MESSAGE_FILE, QUIT. Prints "membio: NAME: delivered" or "membio: NAME:
 * failed" per session; exits 0 only when every session delivered. The run
 * is bounded by alarm(30).
 *
 * Environment, for the TLS records on the socket: MEMBIO_CHUNK=N sends them
 * N bytes per send() (N=1: the ClientHello in hundreds of writes);
 * MEMBIO_RAW=1 sends them with the raw sendto system call, a road no
 * preload sees. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "smtp_dialogue.h"

struct sess {
    const char *name;
    int fd;          /* the SMTP socket */
    int implicit;
    int threaded;    /* records go through the pipes, the main thread moves them */
    int to_io[2];    /* TLS thread -> I/O thread */
    int from_io[2];  /* I/O thread -> TLS thread */
    SSL *ssl;
    BIO *rbio, *wbio;
    const char *msg;
    size_t len;
    int ok;
};

static size_t chunk = 1 << 20; /* MEMBIO_CHUNK */
static int raw;                 /* MEMBIO_RAW */

/* TLS records to the socket. */
static int sock_send(int fd, const void *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        size_t len = n - done < chunk ? n - done : chunk;
        const char *p = (const char *)buf + done;
        ssize_t k = raw ? syscall(SYS_sendto, fd, p, len, MSG_NOSIGNAL, NULL, 0)
                        : send(fd, p, len, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

/* What the session's memory BIO produced goes to the socket (or its pipe). */
static int flush(struct sess *s)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(s->wbio, buf, sizeof buf)) > 0) {
        int r = s->threaded ? dlg_write_all(s->to_io[1], buf, (size_t)n)
                            : sock_send(s->fd, buf, (size_t)n);
        if (r != 0)
            return -1;
    }
    return 0;
}

/* What the peer sent goes into the session's memory BIO. */
static int fill(struct sess *s)
{
    char buf[16384];
    ssize_t n = s->threaded ? read(s->from_io[0], buf, sizeof buf) : recv(s->fd, buf, sizeof buf, 0);
    if (n <= 0)
        return -1;
    BIO_write(s->rbio, buf, (int)n);
    return 0;
}

/* One handshake call: 1 done, 0 wants more from the peer, -1 failed. */
static int hs_step(struct sess *s)
{
    int r = SSL_do_handshake(s->ssl);
    if (flush(s) != 0)
        return -1;
    if (r == 1)
        return 1;
    if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
        return 0;
    fprintf(stderr, "membio: %s: SSL_do_handshake failed\n", s->name);
    ERR_print_errors_fp(stderr);
    return -1;
}

static int handshake(struct sess *s)
{
    int k;
    while ((k = hs_step(s)) == 0)
        if (fill(s) != 0) {
            fprintf(stderr, "membio: %s: the peer went away in the handshake\n", s->name);
            return -1;
        }
    return k;
}

static int tls_send(void *ctx, const void *buf, size_t n)
{
    struct sess *s = ctx;
    size_t w;
    if (SSL_write_ex(s->ssl, buf, n, &w) != 1)
        return -1;
    return flush(s);
}

static ssize_t tls_recv(void *ctx, void *buf, size_t n)
{
    struct sess *s = ctx;
    for (int i = 0; i < 1000; i++) {
        size_t got;
        int r = SSL_read_ex(s->ssl, buf, n, &got);
        if (flush(s) != 0)
            return -1;
        if (r == 1)
            return (ssize_t)got;
        if (SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_READ || fill(s) != 0)
            return -1;
    }
    return -1;
}

static int tls_new(struct sess *s, SSL_CTX *ctx, const char *host)
{
    s->ssl = SSL_new(ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->rbio || !s->wbio)
        return -1;
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_connect_state(s->ssl);
    return SSL_set_tlsext_host_name(s->ssl, host) == 1 ? 0 : -1;
}

static int mail(struct sess *s)
{
    struct dlg d = {.ctx = s, .send = tls_send, .recv = tls_recv, .who = s->name};
    return dlg_mail(&d, s->implicit, s->msg, s->len);
}

static int open_plain(struct sess *s, const char *host, const char *port)
{
    s->fd = dlg_connect(host, port);
    if (s->fd < 0) {
        fprintf(stderr, "membio: %s: cannot connect to %s:%s\n", s->name, host, port);
        return -1;
    }
    struct dlg d = {.ctx = &s->fd, .send = dlg_fd_send, .recv = dlg_fd_recv, .who = s->name};
    return s->implicit ? 0 : dlg_starttls(&d);
}

static void say(struct sess *s)
{
    printf("membio: %s: %s\n", s->name, s->ok ? "delivered" : "failed");
    fflush(stdout);
}

/* ------------------------------------------------------------------ thread */

static void *tls_thread(void *arg)
{
    struct sess *s = arg;
    s->ok = handshake(s) == 1 && mail(s) == 0;
    close(s->to_io[1]); /* the I/O thread sees the end */
    return NULL;
}

/* Moves records between the socket and the TLS thread until it is done. */
static void pump(struct sess *s)
{
    int sock_open = 1;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->to_io[0], .events = POLLIN},
                              {.fd = sock_open ? s->fd : -1, .events = POLLIN}};
        if (poll(p, 2, 20000) <= 0)
            return;
        char buf[16384];
        if (p[0].revents) {
            ssize_t n = read(s->to_io[0], buf, sizeof buf);
            if (n <= 0)
                return;
            if (sock_send(s->fd, buf, (size_t)n) != 0)
                fprintf(stderr, "membio: %s: send: %s\n", s->name, strerror(errno));
        }
        if (p[1].revents) {
            ssize_t n = recv(s->fd, buf, sizeof buf, 0);
            if (n <= 0 || dlg_write_all(s->from_io[1], buf, (size_t)n) != 0) {
                sock_open = 0;
                close(s->from_io[1]); /* the TLS thread's next read ends */
            }
        }
    }
}

static int run_thread(char **argv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct sess s = {.name = "A", .implicit = strcmp(argv[3], "implicit") == 0, .threaded = 1};
    s.msg = dlg_load(argv[4], &s.len);
    if (!ctx || !s.msg || open_plain(&s, argv[1], argv[2]) != 0 ||
        tls_new(&s, ctx, argv[1]) != 0 || pipe(s.to_io) != 0 || pipe(s.from_io) != 0)
        return say(&s), 1;
    pthread_t t;
    if (pthread_create(&t, NULL, tls_thread, &s) != 0)
        return say(&s), 1;
    pump(&s);
    pthread_join(t, NULL);
    say(&s);
    return s.ok ? 0 : 1;
}

/* --------------------------------------------------------------------- two */

static int run_two(char **argv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int implicit = strcmp(argv[4], "implicit") == 0;
    struct sess s[2] = {{.name = "A", .implicit = implicit}, {.name = "B", .implicit = implicit}};
    const char *ports[2] = {argv[2], argv[3]};
    for (int i = 0; i < 2; i++) {
        s[i].msg = dlg_load(argv[5], &s[i].len);
        if (!ctx || !s[i].msg || open_plain(&s[i], argv[1], ports[i]) != 0 ||
            tls_new(&s[i], ctx, argv[1]) != 0)
            return say(&s[i]), 1;
    }
    int started[2];
    for (int i = 0; i < 2; i++) /* both ClientHellos leave, B's last */
        started[i] = hs_step(&s[i]);
    for (int i = 0; i < 2; i++) {
        s[i].ok = started[i] >= 0 && handshake(&s[i]) == 1 && mail(&s[i]) == 0;
        say(&s[i]);
    }
    return s[0].ok && s[1].ok ? 0 : 1;
}

/* -------------------------------------------------------------------- many */

static int run_many(char **argv)
{
    int n = atoi(argv[0]), k = atoi(argv[1]), ok = 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct sess *s = calloc((size_t)(n > 0 ? n : 1), sizeof *s);
    char (*names)[16] = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
    if (!ctx || !s || !names || n <= 0 || k <= 0 || k > n)
        return 64;
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "S%d", i + 1);
        s[i].name = names[i];
        s[i].implicit = 1;
        s[i].msg = dlg_load(argv[6], &s[i].len);
        if (!s[i].msg || open_plain(&s[i], argv[2], i < n - k ? argv[3] : argv[4]) != 0 ||
            tls_new(&s[i], ctx, argv[2]) != 0)
            return say(&s[i]), 1;
    }
    int *started = calloc((size_t)n, sizeof *started);
    for (int i = 0; i < n; i++)
        started[i] = hs_step(&s[i]);
    for (int i = n - k; i < n; i++) {
        s[i].ok = started[i] >= 0 && handshake(&s[i]) == 1 && mail(&s[i]) == 0;
        say(&s[i]);
        ok += s[i].ok;
    }
    return ok == k ? 0 : 1;
}

int main(int argc, char **argv)
{
    alarm(30);
    signal(SIGPIPE, SIG_IGN);
    const char *c = getenv("MEMBIO_CHUNK");
    if (c && atoi(c) > 0)
        chunk = (size_t)atoi(c);
    raw = getenv("MEMBIO_RAW") != NULL;
    if (argc == 6 && strcmp(argv[1], "thread") == 0)
        return run_thread(argv + 1);
    if (argc == 7 && strcmp(argv[1], "two") == 0)
        return run_two(argv + 1);
    if (argc == 9 && strcmp(argv[1], "many") == 0 && strcmp(argv[7], "implicit") == 0)
        return run_many(argv + 2);
    fprintf(stderr, "usage: membio thread HOST PORT starttls|implicit MESSAGE_FILE\n"
                    "       membio two HOST PORT_A PORT_B starttls|implicit MESSAGE_FILE\n"
                    "       membio many N K HOST SINK_PORT PORT implicit MESSAGE_FILE\n");
    return 64;
}
