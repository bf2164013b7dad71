/* pushpull_gnutls: a careless SMTP client whose GnuTLS session has push/pull
 * functions and no descriptor.
 *
 *   pushpull_gnutls [memory] HOST PORT starttls|implicit MESSAGE_FILE
 *
 * The main thread connects and does the plaintext part (greeting, EHLO,
 * STARTTLS). Then, by default, it only moves bytes between the socket and two
 * pipes while a second thread runs the TLS session over those pipes: push
 * writes to one, pull reads the other (blocking), so the whole handshake is
 * one gnutls_handshake call during which the main thread sends the
 * ClientHello. With "memory", one thread does it all as a memory BIO would:
 * push appends to a buffer, pull takes from another or says EAGAIN, and the
 * program moves the buffers to and from the socket between GnuTLS calls (the
 * ClientHello leaves after gnutls_handshake returned).
 * No verification, SNI HOST; then EHLO, AUTH PLAIN with the test
 * credentials, MAIL, RCPT, DATA of MESSAGE_FILE, QUIT. Prints
 * "pushpull_gnutls: delivered" or "... failed"; exits 0 only when the server
 * took the message. The run is bounded by alarm(30). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include <gnutls/gnutls.h>

#include "smtp_dialogue.h"

struct sess {
    int fd;
    int implicit;
    int memory;                 /* buffers instead of pipes, one thread */
    int hello_first;            /* memory: the ClientHello made before connecting */
    const char *port;
    char out[65536], in[65536]; /* memory: what push produced, what pull gets */
    size_t nout, nin;
    int to_io[2], from_io[2];
    gnutls_session_t tls;
    gnutls_certificate_credentials_t cred;
    const char *host;
    const char *msg;
    size_t len;
    int ok;
};

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    struct sess *s = p;
    if (s->memory) {
        if (len > sizeof s->out - s->nout)
            len = sizeof s->out - s->nout;
        memcpy(s->out + s->nout, buf, len);
        s->nout += len;
        return (ssize_t)len;
    }
    ssize_t n = write(s->to_io[1], buf, len);
    if (n < 0)
        gnutls_transport_set_errno(s->tls, errno);
    return n;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    struct sess *s = p;
    if (s->memory) {
        if (s->nin == 0) {
            gnutls_transport_set_errno(s->tls, EAGAIN);
            return -1;
        }
        if (len > s->nin)
            len = s->nin;
        memcpy(buf, s->in, len);
        memmove(s->in, s->in + len, s->nin - len);
        s->nin -= len;
        return (ssize_t)len;
    }
    ssize_t n = read(s->from_io[0], buf, len);
    if (n < 0)
        gnutls_transport_set_errno(s->tls, errno);
    return n;
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    struct sess *s = p;
    if (s->memory)
        return s->nin > 0;
    struct pollfd fd = {.fd = s->from_io[0], .events = POLLIN};
    return poll(&fd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? 20000 : (int)ms);
}

/* memory: what push produced goes to the socket. */
static int flush(struct sess *s)
{
    if (!s->memory || s->nout == 0)
        return 0;
    int r = dlg_fd_send(&s->fd, s->out, s->nout);
    s->nout = 0;
    return r;
}

/* memory: GnuTLS wants more; it comes from the socket. After a
 * post-handshake message GnuTLS says EAGAIN with bytes still unread: those
 * first. */
static int fill(struct sess *s)
{
    static size_t offered = (size_t)-1;
    if (!s->memory)
        return 0;
    if (s->nin > 0 && s->nin != offered) {
        offered = s->nin;
        return 0;
    }
    offered = (size_t)-1;
    ssize_t n = recv(s->fd, s->in + s->nin, sizeof s->in - s->nin, 0);
    if (n <= 0)
        return -1;
    s->nin += (size_t)n;
    return 0;
}

static int tls_send(void *ctx, const void *buf, size_t n)
{
    struct sess *s = ctx;
    for (size_t done = 0; done < n;) {
        ssize_t k = gnutls_record_send(s->tls, (const char *)buf + done, n - done);
        if (flush(s) != 0)
            return -1;
        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
            continue;
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static ssize_t tls_recv(void *ctx, void *buf, size_t n)
{
    struct sess *s = ctx;
    for (int i = 0; i < 1000; i++) {
        ssize_t k = gnutls_record_recv(s->tls, buf, n);
        if (flush(s) != 0)
            return -1;
        if (k != GNUTLS_E_AGAIN && k != GNUTLS_E_INTERRUPTED) {
            if (k < 0)
                fprintf(stderr, "pushpull_gnutls: gnutls_record_recv: %s\n",
                        gnutls_strerror((int)k));
            return k < 0 ? -1 : k;
        }
        if (fill(s) != 0)
            return -1;
    }
    return -1;
}

static void *tls_thread(void *arg)
{
    struct sess *s = arg;
    int r;
    if (gnutls_init(&s->tls, GNUTLS_CLIENT | (s->memory ? GNUTLS_NONBLOCK : 0)) < 0 || gnutls_set_default_priority(s->tls) < 0 ||
        gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, s->cred) < 0 ||
        gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, s->host, strlen(s->host)) < 0)
        goto out;
    gnutls_transport_set_ptr(s->tls, s);
    gnutls_transport_set_push_function(s->tls, push);
    gnutls_transport_set_pull_function(s->tls, pull);
    gnutls_transport_set_pull_timeout_function(s->tls, pull_timeout);
    if (s->fd < 0) { /* PUSHPULL_HELLO_FIRST: the ClientHello, then the socket */
        r = gnutls_handshake(s->tls);
        if (r != GNUTLS_E_AGAIN || (s->fd = dlg_connect(s->host, s->port)) < 0)
            goto out;
    }
    for (int i = 0; i < 1000; i++) {
        r = gnutls_handshake(s->tls);
        if (flush(s) != 0 || r >= 0 || gnutls_error_is_fatal(r) || fill(s) != 0)
            break;
    }
    if (r < 0) {
        fprintf(stderr, "pushpull_gnutls: gnutls_handshake: %s\n", gnutls_strerror(r));
        goto out;
    }
    struct dlg d = {.ctx = s, .send = tls_send, .recv = tls_recv, .who = "pushpull_gnutls"};
    s->ok = dlg_mail(&d, s->implicit, s->msg, s->len) == 0;
out:
    if (!s->memory)
        close(s->to_io[1]);
    return NULL;
}

/* Moves bytes between the socket and the TLS thread until it is done. */
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
            if (dlg_fd_send(&s->fd, buf, (size_t)n) != 0)
                fprintf(stderr, "pushpull_gnutls: send: %s\n", strerror(errno));
        }
        if (p[1].revents) {
            ssize_t n = recv(s->fd, buf, sizeof buf, 0);
            if (n <= 0 || dlg_write_all(s->from_io[1], buf, (size_t)n) != 0) {
                sock_open = 0;
                close(s->from_io[1]);
            }
        }
    }
}

int main(int argc, char **argv)
{
    alarm(30);
    signal(SIGPIPE, SIG_IGN);
    static struct sess s;
    s.memory = argc == 6 && strcmp(argv[1], "memory") == 0;
    argv += s.memory;
    if (argc != 5 + s.memory) {
        fprintf(stderr, "usage: pushpull_gnutls [memory] HOST PORT starttls|implicit "
                        "MESSAGE_FILE\n");
        return 64;
    }
    s.host = argv[1];
    s.implicit = strcmp(argv[3], "implicit") == 0;
    s.msg = dlg_load(argv[4], &s.len);
    s.port = argv[2];
    /* memory + implicit: PUSHPULL_HELLO_FIRST=1 makes the first handshake step (the
     * ClientHello, into the buffer) before the socket is connected. */
    s.hello_first = s.memory && s.implicit && getenv("PUSHPULL_HELLO_FIRST");
    s.fd = s.hello_first ? -1 : dlg_connect(argv[1], argv[2]);
    struct dlg d = {.ctx = &s.fd, .send = dlg_fd_send, .recv = dlg_fd_recv,
                    .who = "pushpull_gnutls"};
    pthread_t t;
    if (!s.msg || (s.fd < 0 && !s.hello_first) || (!s.implicit && dlg_starttls(&d) != 0) ||
        gnutls_certificate_allocate_credentials(&s.cred) < 0 ||
        (!s.memory && (pipe(s.to_io) != 0 || pipe(s.from_io) != 0 ||
                       pthread_create(&t, NULL, tls_thread, &s) != 0))) {
        puts("pushpull_gnutls: failed");
        return 1;
    }
    if (s.memory) {
        tls_thread(&s);
    } else {
        pump(&s);
        pthread_join(t, NULL);
    }
    puts(s.ok ? "pushpull_gnutls: delivered" : "pushpull_gnutls: failed");
    return s.ok ? 0 : 1;
}
