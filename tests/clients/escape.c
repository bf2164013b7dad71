/* escape HOW SESSION HOST ESC_PORT PORT MESSAGE_FILE
 *
 * A program that leaves a TLS call without returning from it, then, on the
 * same thread, mails carelessly: the shim must judge the second session as
 * any other (tests/test_inside.py).
 *
 * HOW, the first connection (to HOST:ESC_PORT, implicit TLS):
 *   none          no first connection
 *   ossl_alarm    SSL_connect blocks on a server that never answers the
 *                 ClientHello; a SIGALRM handler siglongjmps out of it
 *                 (the timeout of old mailers and monitoring probes)
 *   ossl_altstack ossl_alarm with the SIGALRM handler on an alternate stack
 *   ossl_verify   SSL_connect to a TLS server; the verify callback longjmps
 *   gnutls_alarm  gnutls_handshake, blocked likewise, left by siglongjmp
 *   gnutls_verify gnutls_handshake; the verify function longjmps
 *   thread_alarm  ossl_alarm on another thread, whose SIGALRM handler
 *                 siglongjmps out of it; the session then runs on the main
 *                 thread (a marker is per thread: this must deliver/refuse
 *                 exactly as none)
 *   ossl_coroutine SSL_connect in a coroutine (ucontext, a heap stack) whose
 *                 verify callback switches back to the main context: the
 *                 session runs while that real call is suspended, which is
 *                 resumed (and fails) before the program exits
 *   gnutls_retry  gnutls_alarm verifying nothing; then gnutls_handshake on that
 *                 same session again, from below a 64 KiB buffer never written
 *                 (a retry after a timeout), and the message over it (implicit
 *                 TLS, ESC_PORT) in place of the SESSION connection
 *   ossl_freed    ossl_coroutine on the upper half of one mapping, whose half
 *                 is then unmapped with the handshake still suspended in it
 *                 (a fiber library freeing a cancelled fiber); the session
 *                 runs in a second coroutine on the lower half, right below
 *   thread_cancel SSL_connect on another thread, blocked as above, ended by
 *                 pthread_cancel; the session then runs on a new thread (which
 *                 may reuse the cancelled one's stack and TLS block)
 * It prints "escaped" once the first call was left that way. Env
 * ESCAPE_DEEP=1: the first connection is made 64 KiB deeper on the stack
 * than the second (the abandoned frames lie below every later call).
 * ESCAPE_SESSION_DEEP=1: the opposite, the second connection runs below a
 * 64 KiB buffer its frame never writes, which covers the abandoned frames
 * (a program whose session function keeps a large line buffer on the stack).
 *
 * SESSION, the second connection (HOST:PORT, STARTTLS), verifying nothing:
 *   ossl | gnutls | both (ossl to PORT, then gnutls to PORT again)
 * AUTH PLAIN with the test credentials, MAIL, RCPT, DATA of MESSAGE_FILE.
 * Env ESCAPE_READ_ON=1: after the 220 to STARTTLS it reads on for up to a
 * second (a buffered reader) and carelessly drops what came.
 * Prints "delivered" and exits 0 when the server took it (every session);
 * 2 when a session failed, 1 on a setup failure. alarm(20) bounds it all. */
#include <gnutls/gnutls.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>

#include "smtp_dialogue.h"

static sigjmp_buf out;
static volatile sig_atomic_t armed;
static const char *host;

static void on_alarm(int sig)
{
    (void)sig;
    if (armed) {
        armed = 0;
        siglongjmp(out, 1);
    }
    _exit(3); /* the overall bound */
}

/* An interval timer of 500 ms: the first handshake's timeout. */
static void arm(void)
{
    struct itimerval it = {.it_value = {.tv_usec = 500000}};
    armed = 1;
    setitimer(ITIMER_REAL, &it, NULL);
}

static int ossl_leave(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    siglongjmp(out, 1);
}

static int gnutls_leave(gnutls_session_t s)
{
    (void)s;
    siglongjmp(out, 1);
}

enum { BY_ALARM, BY_VERIFY, BY_CANCEL, BY_SWAP };

static ucontext_t main_ctx, co_ctx;
static volatile int co_suspended, co_done;

static int co_verify(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    co_suspended = 1;
    swapcontext(&co_ctx, &main_ctx);
    co_suspended = 0;
    return 0; /* resumed: the handshake fails */
}

/* 1 when the first handshake was left by a jump, 0 when it returned. */
static int ossl_first(const char *port, int by)
{
    int fd = dlg_connect(host, port);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *s = ctx ? SSL_new(ctx) : NULL;
    if (fd < 0 || !s)
        return -1;
    SSL_set_fd(s, fd);
    SSL_set_tlsext_host_name(s, host);
    SSL_set_verify(s, SSL_VERIFY_PEER,
                   by == BY_VERIFY ? ossl_leave : by == BY_SWAP ? co_verify : NULL);
    if (sigsetjmp(out, 1))
        return 1; /* the SSL object is abandoned, as such programs do */
    if (by == BY_ALARM)
        arm();
    SSL_connect(s);
    armed = 0;
    return 0;
}

static gnutls_session_t left_gnutls; /* gnutls_retry's session */
static int retrying;                 /* gnutls_retry: retry at once, from the jump */
static const char *retry_msg;
static size_t retry_len;
static int retry_deep(const char *msg, size_t len);

static int gnutls_first(const char *port, int verify)
{
    gnutls_certificate_credentials_t cred;
    gnutls_session_t s;
    int fd = dlg_connect(host, port);
    if (fd < 0 || gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_init(&s, GNUTLS_CLIENT) < 0)
        return -1;
    if (verify)
        gnutls_certificate_set_verify_function(cred, gnutls_leave);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_set_default_priority(s);
    gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, strlen(host));
    gnutls_transport_set_int(s, fd);
    left_gnutls = s;
    if (sigsetjmp(out, 1)) {
        if (!retrying)
            return 1;
        /* at once: no call in between writes over the abandoned frames */
        return retry_deep(retry_msg, retry_len) == 0 ? 3 : 4; /* delivered, failed */
    }
    if (!verify)
        arm();
    gnutls_handshake(s);
    armed = 0;
    return 0;
}

static void *thread_first(void *port)
{
    return (void *)(long)ossl_first(port, BY_ALARM);
}

static void *thread_blocked(void *port)
{
    return (void *)(long)ossl_first(port, BY_CANCEL);
}

static const char *co_port;

static void co_body(void)
{
    ossl_first(co_port, BY_SWAP);
    co_done = 1;
}

/* ossl_freed: two coroutine stacks of FREED_HALF each, adjacent in one
 * mapping; the first (upper) is unmapped once its handshake is suspended. */
#define FREED_HALF ((size_t)1 << 18)
static char *freed_map;

/* 1 when the coroutine's handshake is suspended in its verify callback. */
static int coroutine_first(const char *port, int freed)
{
    size_t size = 1 << 18;
    co_port = port;
    if (freed) {
        freed_map = mmap(NULL, 2 * FREED_HALF, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (freed_map == MAP_FAILED)
            return -1;
    }
    if (getcontext(&co_ctx) != 0 ||
        !(co_ctx.uc_stack.ss_sp = freed ? freed_map + FREED_HALF : malloc(size)))
        return -1;
    co_ctx.uc_stack.ss_size = size;
    co_ctx.uc_link = &main_ctx;
    makecontext(&co_ctx, co_body, 0);
    if (swapcontext(&main_ctx, &co_ctx) != 0)
        return -1;
    if (freed && co_suspended && munmap(freed_map + FREED_HALF, FREED_HALF) != 0)
        return -1;
    return co_suspended ? 1 : 0;
}

/* The SIGALRM handler on a heap-allocated alternate stack of its own. */
static int on_altstack(void)
{
    stack_t ss = {.ss_size = 1 << 16};
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_ONSTACK};
    ss.ss_sp = malloc(ss.ss_size);
    sigemptyset(&sa.sa_mask);
    return !ss.ss_sp || sigaltstack(&ss, NULL) != 0 || sigaction(SIGALRM, &sa, NULL) != 0;
}

/* 1 when the thread blocked in SSL_connect was cancelled there. */
static int cancelled_first(const char *port)
{
    pthread_t t;
    void *r = NULL;
    struct timespec wait = {.tv_nsec = 300000000};
    if (pthread_create(&t, NULL, thread_blocked, (void *)port) != 0)
        return -1;
    nanosleep(&wait, NULL);
    pthread_cancel(t);
    pthread_join(t, &r);
    return r == PTHREAD_CANCELED ? 1 : -1;
}

static int first(const char *how, const char *port)
{
    if (strcmp(how, "none") == 0)
        return 1;
    if (strcmp(how, "ossl_altstack") == 0 && on_altstack() != 0)
        return -1;
    if (strcmp(how, "ossl_alarm") == 0 || strcmp(how, "ossl_altstack") == 0)
        return ossl_first(port, BY_ALARM);
    if (strcmp(how, "ossl_verify") == 0)
        return ossl_first(port, BY_VERIFY);
    if (strcmp(how, "gnutls_alarm") == 0 || strcmp(how, "gnutls_verify") == 0)
        return gnutls_first(port, how[7] == 'v');
    if (strcmp(how, "gnutls_retry") == 0)
        return retrying = 1, gnutls_first(port, 0);
    if (strcmp(how, "thread_cancel") == 0)
        return cancelled_first(port);
    if (strcmp(how, "ossl_coroutine") == 0 || strcmp(how, "ossl_freed") == 0)
        return coroutine_first(port, how[5] == 'f');
    if (strcmp(how, "thread_alarm") == 0) {
        /* SIGALRM goes to a thread that does not block it: the other one only. */
        sigset_t alrm;
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        pthread_t t;
        void *r = (void *)-1L;
        if (pthread_create(&t, NULL, thread_first, (void *)port) != 0)
            return -1;
        pthread_sigmask(SIG_BLOCK, &alrm, NULL);
        pthread_join(t, &r);
        pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
        return (int)(long)r;
    }
    return -1;
}

/* The first connection below a 64 KiB frame of its own. */
static __attribute__((noinline)) int first_deep(const char *how, const char *port)
{
    volatile char pad[1 << 16];
    pad[0] = 0;
    int r = first(how, port);
    return r + pad[0];
}

/* ---- the second connection: STARTTLS, no verification, the message ---- */

static int ossl_send(void *ctx, const void *buf, size_t n)
{
    return SSL_write(ctx, buf, (int)n) == (int)n ? 0 : -1;
}

static ssize_t ossl_recv(void *ctx, void *buf, size_t n)
{
    return SSL_read(ctx, buf, (int)n);
}

static int gnutls_send(void *ctx, const void *buf, size_t n)
{
    return gnutls_record_send(ctx, buf, n) == (ssize_t)n ? 0 : -1;
}

static ssize_t gnutls_recv(void *ctx, void *buf, size_t n)
{
    ssize_t r;
    for (int i = 0; i < 100; i++)
        if ((r = gnutls_record_recv(ctx, buf, n)) != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
            break;
    if (r < 0)
        fprintf(stderr, "escape: gnutls_record_recv: %s\n", gnutls_strerror((int)r));
    return r;
}

static int ossl_start(int fd, struct dlg *d)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *s = ctx ? SSL_new(ctx) : NULL;
    if (!s)
        return -1;
    SSL_set_verify(s, SSL_VERIFY_NONE, NULL);
    SSL_set_tlsext_host_name(s, host);
    SSL_set_fd(s, fd);
    if (SSL_connect(s) != 1) {
        fprintf(stderr, "escape: SSL_connect failed\n");
        ERR_print_errors_fp(stderr);
        return -1;
    }
    d->ctx = s;
    d->send = ossl_send;
    d->recv = ossl_recv;
    return 0;
}

/* gnutls_handshake until done or fatal: 0, or -1 said on stderr. */
static int gnutls_shake(gnutls_session_t s)
{
    int r;
    do
        r = gnutls_handshake(s);
    while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0)
        fprintf(stderr, "escape: gnutls_handshake: %s\n", gnutls_strerror(r));
    return r < 0 ? -1 : 0;
}

static int gnutls_start(int fd, struct dlg *d)
{
    gnutls_certificate_credentials_t cred;
    gnutls_session_t s;
    if (gnutls_certificate_allocate_credentials(&cred) < 0 || gnutls_init(&s, GNUTLS_CLIENT) < 0)
        return -1;
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_set_default_priority(s);
    gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, strlen(host));
    gnutls_transport_set_int(s, fd);
    if (gnutls_shake(s) != 0)
        return -1;
    d->ctx = s;
    d->send = gnutls_send;
    d->recv = gnutls_recv;
    return 0;
}

static int mail(const char *lib, const char *port, const char *msg, size_t len)
{
    int fd = dlg_connect(host, port);
    struct dlg d = {.ctx = &fd, .send = dlg_fd_send, .recv = dlg_fd_recv, .who = lib};
    if (fd < 0 || dlg_starttls(&d) != 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (getenv("ESCAPE_READ_ON") && poll(&p, 1, 1000) == 1) {
        char junk[512];
        ssize_t n = recv(fd, junk, sizeof junk, 0);
        fprintf(stderr, "escape: %zd bytes after the 220 to STARTTLS\n", n);
        if (n <= 0)
            return -1;
    }
    int r = strcmp(lib, "gnutls") == 0 ? gnutls_start(fd, &d) : ossl_start(fd, &d);
    if (r != 0 || dlg_mail(&d, 0, msg, len) != 0)
        return -1;
    close(fd);
    return 0;
}

struct job {
    const char *lib, *port, *msg;
    size_t len;
};

static void *mail_thread(void *arg)
{
    struct job *j = arg;
    int both = strcmp(j->lib, "both") == 0;
    return (void *)(long)(mail(both ? "ossl" : j->lib, j->port, j->msg, j->len) != 0 ||
                          (both && mail("gnutls", j->port, j->msg, j->len) != 0));
}

/* ossl_freed: the session in a coroutine on the lower half of the mapping. */
static ucontext_t second_ctx;
static struct job *second_job;
static void *second_failed = (void *)1L;

static void second_body(void)
{
    second_failed = mail_thread(second_job);
}

static void *mail_below_freed(struct job *j)
{
    second_job = j;
    if (getcontext(&second_ctx) != 0)
        return (void *)1L;
    second_ctx.uc_stack.ss_sp = freed_map;
    second_ctx.uc_stack.ss_size = FREED_HALF;
    second_ctx.uc_link = &main_ctx;
    makecontext(&second_ctx, second_body, 0);
    if (swapcontext(&main_ctx, &second_ctx) != 0)
        return (void *)1L;
    return second_failed;
}

/* The session below a 64 KiB buffer that is never written: the abandoned
 * frames of the first connection lie inside it, as they were left. */
static __attribute__((noinline)) void *mail_deep(struct job *j)
{
    volatile char pad[1 << 16];
    pad[0] = 0;
    void *r = mail_thread(j);
    return (char *)r + pad[0];
}

/* gnutls_retry: the abandoned session's handshake again, then the message. */
static __attribute__((noinline)) int retry_deep(const char *msg, size_t len)
{
    volatile char pad[1 << 16];
    pad[0] = 0;
    struct dlg d = {.ctx = left_gnutls, .send = gnutls_send, .recv = gnutls_recv,
                    .who = "retry"};
    if (gnutls_shake(left_gnutls) != 0)
        return -1;
    return dlg_mail(&d, 1, msg, len) + pad[0];
}

int main(int argc, char **argv)
{
    size_t len = 0;
    (void)dlg_write_all; /* smtp_dialogue.h's, for the pipe pumps of other clients */
    signal(SIGALRM, on_alarm);
    alarm(20);
    if (argc != 7) {
        fprintf(stderr, "usage: escape HOW ossl|gnutls|both HOST ESC_PORT PORT MESSAGE_FILE\n");
        return 1;
    }
    host = argv[3];
    const char *msg = dlg_load(argv[6], &len);
    retry_msg = msg, retry_len = len;
    int left = getenv("ESCAPE_DEEP") ? first_deep(argv[1], argv[4]) : first(argv[1], argv[4]);
    if (left == 3 || left == 4) { /* gnutls_retry: its session was the message's */
        printf("escaped\n");
        if (left == 4)
            return 2;
        printf("delivered\n");
        return 0;
    }
    alarm(20); /* the first handshake's timer took the overall bound's place */
    if (!msg || left < 0) {
        fprintf(stderr, "escape: setup failed\n");
        return 1;
    }
    if (left == 0) {
        fprintf(stderr, "escape: the first handshake returned: nothing was escaped\n");
        return 1;
    }
    printf("escaped\n");
    fflush(stdout);
    struct job j = {argv[2], argv[5], msg, len};
    void *failed = (void *)1L;
    pthread_t t;
    if (strcmp(argv[1], "ossl_freed") == 0)
        failed = mail_below_freed(&j);
    else if (strcmp(argv[1], "thread_cancel") != 0)
        failed = getenv("ESCAPE_SESSION_DEEP") ? mail_deep(&j) : mail_thread(&j);
    else if (pthread_create(&t, NULL, mail_thread, &j) == 0)
        pthread_join(t, &failed);
    if (co_suspended && !freed_map) { /* the suspended handshake goes on, and fails */
        swapcontext(&main_ctx, &co_ctx);
        if (!co_done)
            return 1;
    }
    if (failed)
        return 2;
    printf("delivered\n");
    return 0;
}
