/* load: the stress load generator (tests/stress/stress.py), run under the shim.
 *
 *   load SESSIONS THREADS WORKDIR GOOD_PORT ECHO_PORT HOSTILE_PORT...
 *
 * THREADS threads take SMTP sessions from a shared counter. Session i goes to a
 * hostile server when i % 8 == 7 (round robin over HOSTILE_PORTs; the shim must
 * refuse its TLS handshake), else to the good server with message i (message.h).
 * Each client uses TLS carelessly (no verification: the shim verifies). Around
 * every session a thread does non-SMTP I/O whose bytes must come back unchanged,
 * most of it looking like SMTP commands: a socketpair, a loopback TCP echo, a
 * pipe, a file; it reuses descriptor numbers at once (a socketpair right after
 * closing an SMTP socket, dup2 of an echo socket over a live SMTP socket) and
 * now and then forks a child that writes to a pipe and _exits.
 *
 * Prints one line of key=value counts, including the open descriptors at start
 * and end, and writes the ids of delivered messages to WORKDIR/delivered.ids.
 * Exits 0 when every count is as it must be. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lineio.h"
#include "message.h"

#define IO_TIMEOUT_S 15
#define MAX_HOSTILE 8
#define MAX_ERRORS 10
#define FORK_EVERY 97
#define NONSMTP_MAX 6000
#define AUTH "AUTH PLAIN AGxvYWQAc2VjcmV0\r\n" /* \0load\0secret */
#define SMTP_LOOKING "MAIL FROM:<not-smtp@example.com>\r\n" AUTH "RCPT TO:<x@example.com>\r\n"

enum outcome { DELIVERED, REFUSED, FAILED };

static struct {
    long good, delivered, good_failed, hostile, refused, hostile_accepted;
    long nonsmtp_bytes, nonsmtp_failed, forks, fork_failed, errors;
} count;
#define ADD(field, n) __atomic_add_fetch(&count.field, (n), __ATOMIC_RELAXED)

static long sessions, next_session;
static int good_port, echo_port, hostile_port[MAX_HOSTILE], nhostile;
static const char *workdir;
static SSL_CTX *client_ctx;
static unsigned char *delivered_ids;

static void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void error(const char *fmt, ...)
{
    if (ADD(errors, 1) > MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- descriptors ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static int connect_port(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- non-SMTP I/O: every byte must come back unchanged ---- */

static size_t fill(unsigned seed, char *buf)
{
    size_t n = sizeof SMTP_LOOKING - 1 + seed * 7919u % NONSMTP_MAX;
    memcpy(buf, SMTP_LOOKING, sizeof SMTP_LOOKING - 1);
    for (size_t i = sizeof SMTP_LOOKING - 1; i < n; i++)
        buf[i] = (char)(seed * 31 + i * 131);
    return n;
}

static int write_all(int fd, const char *p, size_t n)
{
    struct lio l;
    lio_init(&l, fd);
    return lio_write(&l, p, n);
}

static int read_all(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Bytes written to out must be read unchanged from in. */
static void transfer(const char *what, int out, int in, unsigned seed)
{
    static __thread char sent[NONSMTP_MAX + 256], got[NONSMTP_MAX + 256];
    size_t n = fill(seed, sent);
    if (out < 0 || in < 0 || write_all(out, sent, n) < 0 || read_all(in, got, n) < 0 ||
        memcmp(sent, got, n) != 0) {
        ADD(nonsmtp_failed, 1);
        error("%s: bytes lost or changed (%s)", what, strerror(errno));
        return;
    }
    ADD(nonsmtp_bytes, (long)n);
}

static void socketpair_io(unsigned seed)
{
    int sp[2] = {-1, -1};
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
    transfer("socketpair", sp[0], sp[1], seed);
    close(sp[0]);
    close(sp[1]);
}

static void echo_io(unsigned seed)
{
    int fd = connect_port(echo_port);
    transfer("echo", fd, fd, seed);
    close(fd);
}

static void pipe_io(unsigned seed)
{
    int p[2] = {-1, -1};
    pipe2(p, O_CLOEXEC); /* 64 KiB of pipe buffer: the write cannot block */
    transfer("pipe", p[1], p[0], seed);
    close(p[0]);
    close(p[1]);
}

static void file_io(unsigned seed)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/file-%u", workdir, seed);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int in = open(path, O_RDONLY | O_CLOEXEC);
    transfer("file", out, in, seed);
    close(out);
    close(in);
    unlink(path);
}

/* A child writes to a pipe and _exits: only async-signal-safe calls in it. */
static void fork_io(unsigned seed)
{
    static __thread char sent[NONSMTP_MAX + 256], got[NONSMTP_MAX + 256];
    size_t n = fill(seed, sent);
    int p[2], status = -1;
    ADD(forks, 1);
    if (pipe2(p, O_CLOEXEC) != 0)
        goto failed;
    pid_t pid = fork();
    if (pid == 0)
        _exit(write(p[1], sent, n) == (ssize_t)n ? 0 : 1);
    close(p[1]);
    int ok = pid > 0 && read_all(p[0], got, n) == 0 && memcmp(sent, got, n) == 0;
    close(p[0]);
    if (pid > 0 && waitpid(pid, &status, 0) == pid && ok && status == 0)
        return;
failed:
    ADD(fork_failed, 1);
    error("fork: child's bytes lost or changed (status %d)", status);
}

static void nonsmtp(long i)
{
    static void (*const tasks[])(unsigned) = {socketpair_io, echo_io, pipe_io, file_io};
    tasks[i % 4]((unsigned)i);
    if (i % FORK_EVERY == 0)
        fork_io((unsigned)i);
}

/* ---- SMTP ---- */

static int reply(struct lio *l)
{
    char line[1024];
    long n;
    do
        n = lio_line(l, line, sizeof line);
    while (n >= 4 && line[3] == '-');
    return n >= 3 ? atoi(line) : -1;
}

static int command(struct lio *l, const char *cmd, int want)
{
    return lio_puts(l, cmd) == 0 && reply(l) == want ? 0 : -1;
}

/* DATA with dot-stuffing; message.h lines end in CRLF. */
static int send_message(struct lio *l, long id)
{
    static __thread char msg[STRESS_MESSAGE_MAX], out[2 * STRESS_MESSAGE_MAX + 8];
    size_t n = stress_message((unsigned)id, msg), o = 0;
    for (size_t i = 0; i < n; i++) {
        if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n'))
            out[o++] = '.';
        out[o++] = msg[i];
    }
    memcpy(out + o, ".\r\n", 3);
    return command(l, "DATA\r\n", 354) == 0 && lio_write(l, out, o + 3) == 0 && reply(l) == 250
               ? 0 : -1;
}

static enum outcome dialogue(struct lio *l, long id, SSL **ssl)
{
    if (reply(l) != 220 || command(l, "EHLO load.example\r\n", 250) < 0)
        return FAILED;
    errno = 0;
    if (command(l, "STARTTLS\r\n", 220) < 0) /* the shim refuses injected bytes as they come */
        return errno == EACCES ? REFUSED : FAILED;
    *ssl = SSL_new(client_ctx);
    if (!*ssl || !SSL_set_tlsext_host_name(*ssl, "localhost") || !SSL_set_fd(*ssl, l->fd))
        return FAILED;
    if (SSL_connect(*ssl) != 1) {
        ERR_clear_error();
        return REFUSED;
    }
    lio_tls(l, *ssl);
    if (command(l, "EHLO load.example\r\n", 250) < 0 || command(l, AUTH, 235) < 0 ||
        command(l, "MAIL FROM:<load@example.com>\r\n", 250) < 0 ||
        command(l, "RCPT TO:<sink@example.com>\r\n", 250) < 0 || send_message(l, id) < 0)
        return FAILED;
    command(l, "QUIT\r\n", 221);
    return DELIVERED;
}

/* The end of an SMTP socket, and its number reused at once for non-SMTP bytes. */
static void end_smtp(int fd, long i)
{
    if (i % 3 == 0) { /* a non-SMTP socket dup2()ed over the live SMTP one */
        int echo = connect_port(echo_port);
        if (echo >= 0 && dup2(echo, fd) == fd)
            transfer("dup2 over an SMTP socket", fd, fd, (unsigned)i);
        else
            transfer("dup2 over an SMTP socket", -1, -1, (unsigned)i);
        close(echo);
    } else if (i % 3 == 1) { /* the number handed out again right away */
        close(fd);
        socketpair_io((unsigned)i);
        return;
    }
    close(fd);
}

static void smtp(long i)
{
    int hostile = i % 8 == 7;
    int port = hostile ? hostile_port[(i / 8) % nhostile] : good_port;
    int fd = connect_port(port);
    SSL *ssl = NULL;
    struct lio l;
    lio_init(&l, fd);
    enum outcome r = fd < 0 ? FAILED : dialogue(&l, i, &ssl);
    SSL_free(ssl);
    if (fd >= 0)
        end_smtp(fd, i);
    if (hostile) {
        ADD(hostile, 1);
        if (r == REFUSED)
            ADD(refused, 1);
        else {
            ADD(hostile_accepted, r == DELIVERED);
            error("session %ld to hostile port %d was not refused (%d)", i, port, r);
        }
        return;
    }
    ADD(good, 1);
    if (r == DELIVERED) {
        ADD(delivered, 1);
        delivered_ids[i] = 1;
    } else {
        ADD(good_failed, 1);
        error("session %ld to the good server: %s", i, r == REFUSED ? "TLS refused" : "failed");
    }
}

static void *worker(void *arg)
{
    (void)arg;
    long i;
    while ((i = __atomic_fetch_add(&next_session, 1, __ATOMIC_RELAXED)) < sessions) {
        nonsmtp(i);
        smtp(i);
    }
    return NULL;
}

static int write_ids(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/delivered.ids", workdir);
    FILE *f = fopen(path, "w");
    for (long i = 0; f && i < sessions; i++)
        if (delivered_ids[i])
            fprintf(f, "%ld\n", i);
    return f && fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc - 6 > MAX_HOSTILE) {
        fprintf(stderr, "usage: load SESSIONS THREADS WORKDIR GOOD_PORT ECHO_PORT HOSTILE_PORT...\n");
        return 2;
    }
    sessions = atol(argv[1]);
    int threads = atoi(argv[2]);
    workdir = argv[3];
    good_port = atoi(argv[4]);
    echo_port = atoi(argv[5]);
    for (int k = 6; k < argc; k++)
        hostile_port[nhostile++] = atoi(argv[k]);
    signal(SIGPIPE, SIG_IGN);
    client_ctx = SSL_CTX_new(TLS_client_method());
    delivered_ids = calloc((size_t)sessions + 1, 1);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!client_ctx || !delivered_ids || !t || threads < 1)
        return 2;
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL); /* careless: the shim verifies */

    int fd_start = count_fds();
    for (int k = 0; k < threads; k++)
        if (pthread_create(&t[k], NULL, worker, NULL) != 0)
            return 2;
    for (int k = 0; k < threads; k++)
        pthread_join(t[k], NULL);
    int fd_end = count_fds();

    printf("good=%ld delivered=%ld good_failed=%ld hostile=%ld refused=%ld hostile_accepted=%ld "
           "nonsmtp_bytes=%ld nonsmtp_failed=%ld forks=%ld fork_failed=%ld errors=%ld "
           "fd_start=%d fd_end=%d\n",
           count.good, count.delivered, count.good_failed, count.hostile, count.refused,
           count.hostile_accepted, count.nonsmtp_bytes, count.nonsmtp_failed, count.forks,
           count.fork_failed, count.errors, fd_start, fd_end);
    int ok = write_ids() == 0 && count.errors == 0 && count.delivered == count.good &&
             count.refused == count.hostile && fd_start == fd_end;
    SSL_CTX_free(client_ctx);
    free(delivered_ids);
    free(t);
    return ok ? 0 : 1;
}
