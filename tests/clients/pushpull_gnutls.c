/* pushpull_gnutls: a careless SMTP client whose GnuTLS session has push/pull
 * functions and no descriptor, and whose handshake runs on another thread
 * than the socket I/O.
 *
 *   pushpull_gnutls HOST PORT starttls|implicit MESSAGE_FILE
 *
 * The main thread connects, does the plaintext part (greeting, EHLO,
 * STARTTLS) and then only moves bytes between the socket and two pipes. A
 * second thread runs the TLS session over those pipes: push writes to one,
 * pull reads the other (blocking), so the whole handshake is one
 * gnutls_handshake call during which the main thread sends the ClientHello.
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
    ssize_t n = write(s->to_io[1], buf, len);
    if (n < 0)
        gnutls_transport_set_errno(s->tls, errno);
    return n;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    struct sess *s = p;
    ssize_t n = read(s->from_io[0], buf, len);
    if (n < 0)
        gnutls_transport_set_errno(s->tls, errno);
    return n;
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    struct sess *s = p;
    struct pollfd fd = {.fd = s->from_io[0], .events = POLLIN};
    return poll(&fd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? 20000 : (int)ms);
}

static int tls_send(void *ctx, const void *buf, size_t n)
{
    struct sess *s = ctx;
    for (size_t done = 0; done < n;) {
        ssize_t k = gnutls_record_send(s->tls, (const char *)buf + done, n - done);
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
        if (k != GNUTLS_E_AGAIN && k != GNUTLS_E_INTERRUPTED)
            return k < 0 ? -1 : k;
    }
    return -1;
}

static void *tls_thread(void *arg)
{
    struct sess *s = arg;
    int r;
    if (gnutls_init(&s->tls, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s->tls) < 0 ||
        gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, s->cred) < 0 ||
        gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, s->host, strlen(s->host)) < 0)
        goto out;
    gnutls_transport_set_ptr(s->tls, s);
    gnutls_transport_set_push_function(s->tls, push);
    gnutls_transport_set_pull_function(s->tls, pull);
    gnutls_transport_set_pull_timeout_function(s->tls, pull_timeout);
    do
        r = gnutls_handshake(s->tls);
    while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0) {
        fprintf(stderr, "pushpull_gnutls: gnutls_handshake: %s\n", gnutls_strerror(r));
        goto out;
    }
    struct dlg d = {.ctx = s, .send = tls_send, .recv = tls_recv, .who = "pushpull_gnutls"};
    s->ok = dlg_mail(&d, s->implicit, s->msg, s->len) == 0;
out:
    close(s->to_io[1]);
    return NULL;
}

static int write_all(int fd, const void *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = write(fd, (const char *)buf + done, n - done);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
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
            if (n <= 0 || write_all(s->from_io[1], buf, (size_t)n) != 0) {
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
    if (argc != 5) {
        fprintf(stderr, "usage: pushpull_gnutls HOST PORT starttls|implicit MESSAGE_FILE\n");
        return 64;
    }
    struct sess s = {.host = argv[1], .implicit = strcmp(argv[3], "implicit") == 0};
    s.msg = dlg_load(argv[4], &s.len);
    s.fd = dlg_connect(argv[1], argv[2]);
    struct dlg d = {.ctx = &s.fd, .send = dlg_fd_send, .recv = dlg_fd_recv,
                    .who = "pushpull_gnutls"};
    pthread_t t;
    if (!s.msg || s.fd < 0 || (!s.implicit && dlg_starttls(&d) != 0) ||
        gnutls_certificate_allocate_credentials(&s.cred) < 0 || pipe(s.to_io) != 0 ||
        pipe(s.from_io) != 0 || pthread_create(&t, NULL, tls_thread, &s) != 0) {
        puts("pushpull_gnutls: failed");
        return 1;
    }
    pump(&s);
    pthread_join(t, NULL);
    puts(s.ok ? "pushpull_gnutls: delivered" : "pushpull_gnutls: failed");
    return s.ok ? 0 : 1;
}
