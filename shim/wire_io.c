/* One wire reader per SMTP socket whose TLS no hooked library drives, in
 * its own mapping (about 130 KiB, only while the handshake is read: no
 * allocation for any other socket). The slot's mutex serialises the reader;
 * sg_lock_wire guards only the link from the connection record, so that a
 * close on another thread never frees a reader in use. Lock order: a slot's
 * mutex, then sg_lock_tls (the trust store) or sg_lock_fd (the guard's calls);
 * sg_lock_fd, then sg_lock_wire (a record released); nobody waits for a
 * slot's mutex while holding sg_lock_wire or sg_lock_fd. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "decision.h"
#include "guard.h"
#include "locks.h"
#include "wire_io.h"
#include "wire_resume.h"
#include "wire_verdict.h"

static int live; /* slots mapped, so that a fork child with none skips the scan */

struct slot {
    pthread_mutex_t mutex;
    int users;   /* threads between acquire and give_back */
    int orphan;  /* the record let go of it: the last user unmaps it */
    int following; /* accepted TLS 1.2: reading the server's second flight */
    struct sg_wire w;
};

static void unmap(struct slot *s)
{
    munmap(s, sizeof *s);
    __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
}

/* A fork child has only the forking thread: no slot is in use, and a slot's
 * mutex held by another thread at the fork would never be released. */
static void child_after_fork(void)
{
    if (__atomic_load_n(&live, __ATOMIC_RELAXED) == 0)
        return;
    for (int i = 0; i < SG_CONN_MAX; i++) {
        struct slot *s = sg_conn_pool[i].wire;
        if (s) {
            pthread_mutex_init(&s->mutex, NULL);
            s->users = 0;
        }
    }
}

/* Registered with the first reader: a process that never needs one pays nothing. */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, child_after_fork);
}

/* The part of the ClientHello that left before the socket was known to be
 * foreign (guard_hello.c decides on the random): the reader reads it first. */
static void start_from_hello(struct slot *s, const struct sg_conn *c)
{
    if (c->wire_pre_len > SG_WIRE_PRE)
        sg_wire_fail(&s->w, "a ClientHello cut in more pieces than smtpguard follows");
    else if (c->wire_pre_len)
        sg_wire_client(&s->w, c->wire_pre, c->wire_pre_len);
}

void sg_wire_hello_sent(struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    for (int i = 0; i < iovcnt && n; i++) {
        size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;
        size_t room = c->wire_pre_len > SG_WIRE_PRE ? 0 : SG_WIRE_PRE - c->wire_pre_len;
        if (len > room) {
            c->wire_pre_len = SG_WIRE_PRE + 1;
            return;
        }
        memcpy(c->wire_pre + c->wire_pre_len, iov[i].iov_base, len);
        c->wire_pre_len += (unsigned short)len;
        n -= len;
    }
}

static struct slot *acquire(struct sg_conn *c)
{
    pthread_once(&fork_once, register_fork_handler);
    pthread_mutex_lock(&sg_lock_wire);
    struct slot *s = c->wire;
    if (!s) {
        void *m = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m != MAP_FAILED) {
            s = m;
            pthread_mutex_init(&s->mutex, NULL);
            sg_wire_init(&s->w);
            start_from_hello(s, c);
            c->wire = s;
            __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
        }
    }
    if (s)
        s->users++;
    pthread_mutex_unlock(&sg_lock_wire);
    if (s)
        pthread_mutex_lock(&s->mutex);
    return s;
}

/* done: the reader has said all it will (verdict given): unlink it. */
static void give_back(struct sg_conn *c, struct slot *s, int done)
{
    pthread_mutex_unlock(&s->mutex);
    pthread_mutex_lock(&sg_lock_wire);
    if (done && !s->orphan && c->wire == s) {
        c->wire = NULL;
        s->orphan = 1;
    }
    int last = --s->users == 0 && s->orphan;
    pthread_mutex_unlock(&sg_lock_wire);
    if (last)
        unmap(s);
}

void sg_wire_release(struct sg_conn *c)
{
    pthread_mutex_lock(&sg_lock_wire);
    struct slot *s = c->wire;
    c->wire = NULL;
    int idle = s && s->users == 0;
    if (s)
        s->orphan = 1;
    pthread_mutex_unlock(&sg_lock_wire);
    if (idle)
        unmap(s);
}

static int feed(struct sg_wire *w, int server, const struct iovec *iov, int iovcnt, size_t n)
{
    for (int i = 0; i < iovcnt && n; i++) {
        size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;
        if (server)
            sg_wire_server(w, iov[i].iov_base, len);
        else
            sg_wire_client(w, iov[i].iov_base, len);
        n -= len;
    }
    return w->state;
}

/* Refuse (or in audit mode log and let go) with reason; -1 when refused.
 * follow: accepted, the reader goes on (the socket stays in SG_TLS_FOREIGN). */
static int conclude_as(int fd, const struct sg_wire *w, int reason, const char *detail,
                       int unverified, int follow)
{
    struct sg_target t;
    char cipher[16];
    if (!sg_target_socket(fd, w && w->sni[0] ? w->sni : NULL, &t)) {
        sg_guard_tls_ok(fd); /* no longer an SMTP port of the policy */
        return 0;
    }
    if (t.mode == SG_MODE_OFF) {
        sg_guard_tls_ok(fd);
        return 0;
    }
    int seen = w && w->version;
    const char *protocol = seen ? sg_wire_version_name(w->version) : NULL;
    const char *name = seen ? sg_wire_cipher_name(w->cipher, cipher, sizeof cipher) : NULL;
    if (!sg_conclude_wire(&t, reason, detail, protocol, name, unverified, follow)) {
        errno = EACCES;
        return -1;
    }
    if (!follow)
        sg_guard_tls_ok(fd); /* audit mode or accepted: the reader's work is over */
    return 0;
}

static int conclude(int fd, const struct sg_wire *w, int reason, const char *detail,
                    int unverified)
{
    return conclude_as(fd, w, reason, detail, unverified, 0);
}

/* The server's second flight after an accepted full TLS 1.2 handshake: at its
 * ChangeCipherSpec, remember the session's id and ticket, and the reader is done. */
static int follow(int fd, struct sg_conn *c, struct slot *s, const struct iovec *iov,
                  int iovcnt, size_t n)
{
    int state = feed(&s->w, 1, iov, iovcnt, n);
    if (state == SG_WIRE_SECOND) {
        give_back(c, s, 0);
        return 0;
    }
    struct sg_target t;
    if (state == SG_WIRE_DONE && sg_target_socket(fd, s->w.sni[0] ? s->w.sni : NULL, &t))
        sg_wire_resume_remember(&s->w, &t);
    sg_guard_tls_ok(fd);
    give_back(c, s, 1);
    return 0;
}

static const char *why(const struct sg_wire *w)
{
    return w->error ? w->error : "the TLS handshake could not be read";
}

int sg_wire_before_send(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt)
{
    struct slot *s = acquire(c);
    if (!s)
        return conclude(fd, NULL, SG_R_WIRE, "no memory for the wire reader", 0);
    int ok = sg_wire_may_send(&s->w, iov, iovcnt);
    char detail[160];
    if (!ok)
        snprintf(detail, sizeof detail, "%s",
                 s->w.state == SG_WIRE_ERROR ? why(&s->w)
                 : "the program sent more than a hello or an alert before the server's "
                   "handshake was judged");
    int r = ok ? 0 : conclude(fd, &s->w, SG_R_WIRE, detail, 0);
    give_back(c, s, !ok);
    return r;
}


void sg_wire_sent(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    struct slot *s = acquire(c);
    if (!s)
        return;
    feed(&s->w, 0, iov, iovcnt, n);
    int bad = s->w.state == SG_WIRE_ERROR;
    char detail[160];
    snprintf(detail, sizeof detail, "%s", why(&s->w));
    if (bad)
        conclude(fd, &s->w, SG_R_WIRE, detail, 0);
    give_back(c, s, bad);
}

/* The verdict on a complete server flight: 0, or an SG_R_* reason. */
static int judge(int fd, struct slot *s, int *unverified, char *detail, size_t len)
{
    struct sg_target t;
    if (s->w.state == SG_WIRE_ERROR) {
        snprintf(detail, len, "%s", why(&s->w));
        return SG_R_WIRE;
    }
    if (!sg_target_socket(fd, s->w.sni[0] ? s->w.sni : NULL, &t))
        return 0;
    return sg_wire_judge(&s->w, &t, unverified, detail, len);
}

int sg_wire_received(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    struct slot *s = acquire(c);
    if (!s)
        return conclude(fd, NULL, SG_R_WIRE, "no memory for the wire reader", 0);
    if (s->following)
        return follow(fd, c, s, iov, iovcnt, n);
    int state = feed(&s->w, 1, iov, iovcnt, n);
    if (state != SG_WIRE_READY && state != SG_WIRE_ERROR) {
        give_back(c, s, 0);
        return 0;
    }
    int unverified = 0, r = 0;
    char detail[640] = "";
    int reason = judge(fd, s, &unverified, detail, sizeof detail);
    /* An accepted full TLS 1.2 handshake: its ticket comes next, in clear. */
    s->following = state == SG_WIRE_READY && !reason && s->w.version == 0x0303 &&
                   !s->w.resumed;
    r = conclude_as(fd, &s->w, reason, detail, unverified, s->following);
    if (s->following && r == 0) {
        sg_wire_follow(&s->w);
        give_back(c, s, 0);
        return 0;
    }
    give_back(c, s, 1);
    return r;
}
