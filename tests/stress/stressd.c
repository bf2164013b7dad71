/* stressd: the servers of the stress run (tests/stress/stress.py).
 *
 *   stressd smtp CERT KEY [inject]   SMTP: STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, QUIT;
 *                                    each message is checked byte for byte (message.h).
 *                                    inject: plaintext follows the 220 reply to STARTTLS.
 *   stressd echo                     every byte is sent back.
 *
 * Prints "port N" once listening on 127.0.0.1. At end of file on stdin it stops
 * accepting, waits for running sessions (bounded), prints "key=value" counts and,
 * for smtp, one "id ID COUNT" line per message id received. One thread per
 * connection; every socket has a receive and send timeout. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lineio.h"
#include "message.h"

#define MAX_IDS (1 << 20)
#define IO_TIMEOUT_S 15

static SSL_CTX *ctx;
static int inject, listen_fd;
static unsigned received[MAX_IDS]; /* deliveries per message id */
static struct {
    long sessions, active, tls, secrets, delivered, corrupt;
} count;

#define ADD(field, n) __atomic_add_fetch(&count.field, (n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&count.field, __ATOMIC_RELAXED)

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int is_verb(const char *line, const char *verb)
{
    size_t n = strlen(verb);
    return strncasecmp(line, verb, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* DATA: lines up to ".", dot-unstuffed, then the check against message.h. */
static int receive_message(struct lio *l)
{
    static __thread char msg[STRESS_MESSAGE_MAX + 1], want[STRESS_MESSAGE_MAX];
    char line[1024];
    size_t n = 0;
    long len;
    while ((len = lio_line(l, line, sizeof line)) >= 0 && strcmp(line, ".") != 0) {
        const char *p = line[0] == '.' ? line + 1 : line;
        size_t plen = strlen(p);
        if (n + plen + 2 > STRESS_MESSAGE_MAX)
            return -1;
        memcpy(msg + n, p, plen);
        memcpy(msg + n + plen, "\r\n", 2);
        n += plen + 2;
    }
    if (len < 0)
        return -1;
    msg[n] = '\0';
    long id = stress_message_id(msg, n);
    if (id < 0 || id >= MAX_IDS || stress_message((unsigned)id, want) != n || memcmp(msg, want, n)) {
        ADD(corrupt, 1);
        return 0;
    }
    __atomic_add_fetch(&received[id], 1, __ATOMIC_RELAXED);
    ADD(delivered, 1);
    return 0;
}

static int start_tls(struct lio *l)
{
    static const char ready[] = "220 2.0.0 Ready to start TLS\r\n";
    static const char injected[] = "220 2.0.0 Ready to start TLS\r\n250 injected\r\n";
    if (lio_puts(l, inject ? injected : ready) < 0)
        return -1;
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, l->fd) || SSL_accept(ssl) != 1) {
        SSL_free(ssl);
        return -1;
    }
    lio_tls(l, ssl);
    ADD(tls, 1);
    return 0;
}

static void smtp_session(struct lio *l)
{
    char line[1024];
    if (lio_puts(l, "220 stressd ESMTP\r\n") < 0)
        return;
    while (lio_line(l, line, sizeof line) >= 0) {
        int r = 0;
        if (is_verb(line, "AUTH") || is_verb(line, "MAIL") || is_verb(line, "RCPT") ||
            is_verb(line, "DATA") || is_verb(line, "BDAT"))
            ADD(secrets, 1);
        if (is_verb(line, "EHLO"))
            r = lio_puts(l, l->ssl ? "250-stressd\r\n250 AUTH PLAIN\r\n"
                                   : "250-stressd\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
        else if (is_verb(line, "STARTTLS") && !l->ssl)
            r = start_tls(l);
        else if (is_verb(line, "AUTH"))
            r = lio_puts(l, "235 2.7.0 Authenticated\r\n");
        else if (is_verb(line, "DATA"))
            r = lio_puts(l, "354 Go ahead\r\n") < 0 || receive_message(l) < 0
                    ? -1 : lio_puts(l, "250 2.0.0 Queued\r\n");
        else if (is_verb(line, "QUIT")) {
            lio_puts(l, "221 2.0.0 Bye\r\n");
            return;
        } else
            r = lio_puts(l, "250 2.0.0 Ok\r\n");
        if (r < 0)
            return;
    }
}

static void echo_session(int fd)
{
    char buf[16384];
    ssize_t n;
    struct lio l;
    lio_init(&l, fd);
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (lio_write(&l, buf, (size_t)n) < 0)
            return;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    set_timeouts(fd);
    if (ctx) {
        struct lio l;
        lio_init(&l, fd);
        smtp_session(&l);
        if (l.ssl) {
            SSL_shutdown(l.ssl);
            SSL_free(l.ssl);
        }
    } else {
        echo_session(fd);
    }
    close(fd);
    ADD(active, -1);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            return NULL;
        }
        ADD(sessions, 1);
        ADD(active, 1);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) {
            close(fd);
            ADD(active, -1);
        }
    }
}

static int listen_loopback(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof sin;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("stressd: listen");
        exit(2);
    }
    printf("port %d\n", ntohs(sin.sin_port));
    fflush(stdout);
    return fd;
}

static void report(void)
{
    for (int i = 0; i < 100 && GET(active) > 0; i++) /* at most 10 s */
        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    printf("sessions=%ld active=%ld tls=%ld secrets=%ld delivered=%ld corrupt=%ld\n",
           GET(sessions), GET(active), GET(tls), GET(secrets), GET(delivered), GET(corrupt));
    for (long id = 0; ctx && id < MAX_IDS; id++)
        if (received[id])
            printf("id %ld %u\n", id, received[id]);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr, "usage: stressd smtp CERT KEY [inject] | stressd echo\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "smtp") == 0) {
        inject = argc == 5 && strcmp(argv[4], "inject") == 0;
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            return 2;
        }
    } else if (argc != 2 || strcmp(argv[1], "echo") != 0) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    listen_fd = listen_loopback();
    pthread_t acceptor;
    if (pthread_create(&acceptor, NULL, accept_loop, NULL) != 0)
        return 2;
    char buf[256];
    while (fread(buf, 1, sizeof buf, stdin) > 0)
        ;
    shutdown(listen_fd, SHUT_RDWR);
    pthread_join(acceptor, NULL);
    report();
    return 0;
}
