/* smtpc: a correct SMTP client for the benchmarks. It verifies the server
 * itself (the CA it is given, SSL_VERIFY_PEER, the host name, SNI), so the
 * baseline it gives is that of a careful mailer, not a careless one.
 *
 *   smtpc starttls|plain PORT CAFILE NAME SESSIONS THREADS BYTES
 *
 * THREADS threads each run SESSIONS sessions one after another against
 * 127.0.0.1:PORT: greeting, EHLO, STARTTLS and the handshake (starttls
 * mode), EHLO, AUTH PLAIN, MAIL, RCPT, DATA of a BYTES-long message, QUIT.
 * Plain mode skips STARTTLS (for a TLS proxy such as stunnel in front; CAFILE
 * and NAME are then unused). Prints "sessions=N delivered=D bytes=B ns=NS"
 * (NS: wall time from the first connect to the last QUIT) and exits 0 only
 * when every message was accepted. */
#include <pthread.h>
#include <signal.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "bench.h"
#include "smtpio.h"

#define IO_TIMEOUT_S 20
#define RUN_TIMEOUT_S 240
#define MAX_THREADS 64
#define LINE_LEN 78

struct job {
    int tls, port, sessions;
    const char *name;
    SSL_CTX *ctx;
    char *message; /* the message, dot-free, with the final ".\r\n" */
    size_t message_len;
    char auth[128]; /* "AUTH PLAIN <base64>" */
    long delivered;
};

/* BYTES of headers and 78-character lines; no line starts with a dot. */
static char *make_message(size_t bytes, size_t *len)
{
    static const char head[] = "From: <sender@example.com>\r\nTo: <rcpt@example.com>\r\n"
                               "Subject: smtpguard benchmark\r\n\r\n";
    char line[LINE_LEN + 2];
    for (int i = 0; i < LINE_LEN; i++)
        line[i] = (char)('a' + i % 26);
    memcpy(line + LINE_LEN, "\r\n", 2);
    size_t n = bytes < sizeof head + sizeof line ? sizeof head + sizeof line : bytes;
    if ((n - (sizeof head - 1)) % sizeof line == 1)
        n++; /* a last line of one byte would leave no room for its CRLF */
    char *m = malloc(n + 3);
    if (!m)
        die("out of memory for a %zu-byte message", n);
    memcpy(m, head, sizeof head - 1);
    for (size_t at = sizeof head - 1; at < n; at += sizeof line)
        memcpy(m + at, line, n - at < sizeof line ? n - at : sizeof line);
    /* The last line is cut short: end it, and the message, properly. */
    memcpy(m + n - 2, "\r\n.\r\n", 5);
    *len = n + 3;
    return m;
}

static int expect(struct sconn *c, int code)
{
    return sconn_reply(c) == code;
}

static int cmd(struct sconn *c, const char *line, int code)
{
    return sconn_printf(c, "%s\r\n", line) == 0 && expect(c, code);
}

static int handshake(const struct job *j, struct sconn *c)
{
    SSL *s = SSL_new(j->ctx);
    if (!s || SSL_set_fd(s, c->fd) != 1 || SSL_set_tlsext_host_name(s, j->name) != 1 ||
        SSL_set1_host(s, j->name) != 1 || SSL_connect(s) != 1 ||
        SSL_get_verify_result(s) != X509_V_OK) {
        ERR_print_errors_fp(stderr);
        SSL_free(s);
        return 0;
    }
    c->ssl = s;
    return 1;
}

static int dialogue(const struct job *j, struct sconn *c)
{
    if (!expect(c, 220) || !cmd(c, "EHLO bench.example", 250))
        return 0;
    if (j->tls && (!cmd(c, "STARTTLS", 220) || sconn_pending(c) || !handshake(j, c) ||
                   !cmd(c, "EHLO bench.example", 250)))
        return 0;
    return cmd(c, j->auth, 235) && cmd(c, "MAIL FROM:<sender@example.com>", 250) &&
           cmd(c, "RCPT TO:<rcpt@example.com>", 250) && cmd(c, "DATA", 354) &&
           sconn_write(c, j->message, j->message_len) == 0 && expect(c, 250) &&
           cmd(c, "QUIT", 221);
}

static int session(const struct job *j, struct sconn *c)
{
    struct sockaddr_in a = loopback_addr(j->port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("smtpc: connect");
        if (fd >= 0)
            close(fd);
        return 0;
    }
    sconn_init(c, fd, IO_TIMEOUT_S);
    int ok = dialogue(j, c);
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(fd);
    return ok;
}

/* A thread's sessions; the first failure ends them (it says why). */
static void *worker(void *arg)
{
    struct job *j = arg;
    struct sconn *c = malloc(sizeof *c);
    for (int i = 0; c && i < j->sessions; i++) {
        if (!session(j, c)) {
            fprintf(stderr, "smtpc: session %d failed\n", i);
            break;
        }
        __atomic_add_fetch(&j->delivered, 1, __ATOMIC_RELAXED);
    }
    free(c);
    return NULL;
}

static SSL_CTX *client_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        die("cannot set up TLS with CA file %s", ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void set_auth(struct job *j)
{
    static const char plain[] = "\0sguser\0Sg-S3cret-Pa55";
    unsigned char b64[64];
    EVP_EncodeBlock(b64, (const unsigned char *)plain, sizeof plain - 1);
    snprintf(j->auth, sizeof j->auth, "AUTH PLAIN %s", b64);
}

int main(int argc, char **argv)
{
    if (argc != 8 || (strcmp(argv[1], "starttls") != 0 && strcmp(argv[1], "plain") != 0))
        die("usage: smtpc starttls|plain PORT CAFILE NAME SESSIONS THREADS BYTES");
    struct job j = {.tls = strcmp(argv[1], "starttls") == 0,
                    .port = (int)count_arg(argv[2], "port"), .name = argv[4],
                    .sessions = (int)count_arg(argv[5], "session count")};
    long threads = count_arg(argv[6], "thread count");
    if (threads > MAX_THREADS)
        die("at most %d threads", MAX_THREADS);
    j.message = make_message((size_t)count_arg(argv[7], "message size"), &j.message_len);
    j.ctx = j.tls ? client_ctx(argv[3]) : NULL;
    set_auth(&j);
    signal(SIGPIPE, SIG_IGN);
    alarm(RUN_TIMEOUT_S);

    pthread_t t[MAX_THREADS];
    long long t0 = now_ns();
    for (long i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, &j) != 0)
            die("pthread_create");
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    long long ns = now_ns() - t0;
    long total = threads * j.sessions;
    printf("sessions=%ld delivered=%ld bytes=%zu ns=%lld\n", total, j.delivered,
           j.message_len - 3, ns);
    return j.delivered == total ? 0 : 1;
}
