/* smtpd: a fast SMTP server for the benchmarks, so that the client's side is
 * what the numbers measure (the Python harness server would dominate them).
 *
 *   smtpd CERT KEY [LIFETIME_S]
 *
 * Listens on 127.0.0.1 at BENCH_SMTPD_PORT if set and free, else at a port
 * the kernel picks, and prints "port=N". One
 * thread per connection: greeting, EHLO/HELO, STARTTLS, AUTH PLAIN (any
 * credentials), MAIL, RCPT, DATA (counted, then dropped), RSET, NOOP, QUIT.
 * TLS 1.2 or 1.3 with no session tickets and no session cache: every session
 * is a full handshake, as for a mailer that does not resume. On SIGTERM or
 * SIGINT it prints "sessions=S messages=M bytes=B tls=T" (S: sessions that
 * reached QUIT, T: TLS handshakes) and exits; after LIFETIME_S (default 900)
 * it exits anyway. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>

#include "bench.h"
#include "smtpio.h"

#define IO_TIMEOUT_S 20
#define MAX_COMMANDS 1000

static SSL_CTX *ctx;
static volatile sig_atomic_t stopping;
static long long n_sessions, n_messages, n_bytes, n_tls;

static void count(long long *counter, long long by)
{
    __atomic_add_fetch(counter, by, __ATOMIC_RELAXED);
}

static int is(const char *line, const char *verb)
{
    return strncasecmp(line, verb, strlen(verb)) == 0;
}

static int ehlo(struct sconn *c)
{
    return sconn_printf(c, "250-bench.smtpd\r\n%s250-8BITMIME\r\n250 AUTH PLAIN\r\n",
                        c->ssl ? "" : "250-STARTTLS\r\n");
}

/* As in smtpio.c's fill(): during the handshake too, ACK at once, or a
 * client without TCP_NODELAY waits for our delayed ACK between its writes. */
static void quick_ack(const SSL *ssl, int where, int ret)
{
    int one = 1;
    (void)ret;
    if (where & SSL_CB_LOOP)
        setsockopt(SSL_get_fd(ssl), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static int starttls(struct sconn *c)
{
    if (c->ssl || sconn_pending(c))
        return sconn_printf(c, "503 5.5.1 not now\r\n");
    if (sconn_printf(c, "220 2.0.0 ready to start TLS\r\n") != 0)
        return -1;
    c->ssl = SSL_new(ctx);
    if (c->ssl)
        SSL_set_info_callback(c->ssl, quick_ack);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1)
        return -1;
    count(&n_tls, 1);
    return 0;
}

static int auth(struct sconn *c, const char *line)
{
    char resp[SMTPIO_LINE];
    if (!is(line, "AUTH PLAIN"))
        return sconn_printf(c, "504 5.5.4 only PLAIN\r\n");
    if (!line[10] && (sconn_printf(c, "334 \r\n") != 0 ||
                      sconn_getline(c, resp, sizeof resp) < 0))
        return -1;
    return sconn_printf(c, "235 2.7.0 accepted\r\n");
}

static int data(struct sconn *c)
{
    if (sconn_printf(c, "354 go ahead\r\n") != 0)
        return -1;
    long long n = sconn_data(c);
    if (n < 0)
        return -1;
    count(&n_bytes, n);
    count(&n_messages, 1);
    return sconn_printf(c, "250 2.0.0 queued\r\n");
}

/* One command: 0 to go on, 1 after QUIT, -1 on error. */
static int command(struct sconn *c, const char *line)
{
    if (is(line, "EHLO") || is(line, "HELO"))
        return ehlo(c);
    if (is(line, "STARTTLS"))
        return starttls(c);
    if (is(line, "AUTH"))
        return auth(c, line);
    if (is(line, "MAIL") || is(line, "RCPT") || is(line, "RSET") || is(line, "NOOP"))
        return sconn_printf(c, "250 2.0.0 ok\r\n");
    if (is(line, "DATA"))
        return data(c);
    if (is(line, "QUIT")) {
        count(&n_sessions, 1);
        return sconn_printf(c, "221 2.0.0 bye\r\n") == 0 ? 1 : -1;
    }
    return sconn_printf(c, "500 5.5.2 unknown command\r\n");
}

static void *session(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct sconn *c = malloc(sizeof *c);
    char line[SMTPIO_LINE];
    if (c) {
        sconn_init(c, fd, IO_TIMEOUT_S);
        int r = sconn_printf(c, "220 bench.smtpd ESMTP\r\n");
        for (int i = 0; i < MAX_COMMANDS && r == 0; i++)
            r = sconn_getline(c, line, sizeof line) < 0 ? -1 : command(c, line);
        if (c->ssl) {
            SSL_shutdown(c->ssl);
            SSL_free(c->ssl);
        }
        free(c);
    }
    ERR_clear_error();
    close(fd);
    return NULL;
}

static void setup_tls(const char *cert, const char *key)
{
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        die("cannot set up TLS with %s and %s", cert, key);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

/* Workers inherit a mask that blocks the stop signals: the main thread
 * alone sees them, in its poll. */
static void spawn_session(int fd, const pthread_attr_t *attr)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    pthread_t t;
    if (pthread_create(&t, attr, session, (void *)(intptr_t)fd) != 0)
        close(fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void serve(int lfd)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    while (!stopping) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            spawn_session(fd, &attr);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        die("usage: smtpd CERT KEY [LIFETIME_S]");
    setup_tls(argv[1], argv[2]);
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(argc == 4 ? (unsigned)count_arg(argv[3], "lifetime") : 900);
    /* BENCH_SMTPD_PORT: the port to try first (harness.py: one of the shipped
     * policy's SMTP ports); taken, the kernel picks one. */
    const char *want = getenv("BENCH_SMTPD_PORT");
    int port, lfd = listen_loopback_at(want ? (int)count_arg(want, "port") : 0, &port);
    printf("port=%d\n", port);
    fflush(stdout);
    serve(lfd);
    printf("sessions=%lld messages=%lld bytes=%lld tls=%lld\n",
           __atomic_load_n(&n_sessions, __ATOMIC_RELAXED),
           __atomic_load_n(&n_messages, __ATOMIC_RELAXED),
           __atomic_load_n(&n_bytes, __ATOMIC_RELAXED), __atomic_load_n(&n_tls, __ATOMIC_RELAXED));
    return 0;
}
