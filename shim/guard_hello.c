/* The ClientHello leaving an SMTP socket: its client random is recorded on
 * the connection, and tells who drives the TLS: a hooked session that claims
 * the random (the socket is then in SG_TLS_HANDSHAKE, and the session is
 * judged against it) or a library no hook reaches (SG_TLS_FOREIGN, for the
 * wire reader). Until the random is complete the socket is in SG_TLS_HELLO.
 * The decision is taken on the bytes the program hands over, before they
 * leave; only bytes the kernel took advance the parse. */
#include "fdstate.h"
#include "guard.h"
#include "tlsbind.h"

static void set_phase(struct sg_conn *c, int phase)
{
    __atomic_store_n(&c->phase, phase, __ATOMIC_RELEASE);
}

static int feed(struct sg_hello *h, const struct iovec *iov, int iovcnt, size_t limit)
{
    for (int i = 0; i < iovcnt && limit && h->state == SG_HELLO_MORE; i++) {
        size_t n = iov[i].iov_len < limit ? iov[i].iov_len : limit;
        sg_hello_feed(h, iov[i].iov_base, n);
        limit -= n;
    }
    return h->state;
}

void sg_guard_hello_start(struct sg_conn *c)
{
    c->hello = (struct sg_hello){0};
    set_phase(c, SG_TLS_HELLO);
}

void sg_guard_hello_before(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt)
{
    struct sg_hello probe = c->hello;
    int state = feed(&probe, iov, iovcnt, (size_t)-1);
    if (state == SG_HELLO_MORE)
        return;
    int hooked = state == SG_HELLO_DONE && sg_bind_claimed(sg_hello_random(&probe), fd);
    probe.state = SG_HELLO_MORE;
    c->hello = probe;
    c->hello_fd = fd;
    __atomic_store_n(&c->hello.state, (unsigned char)state, __ATOMIC_RELEASE);
    set_phase(c, hooked ? SG_TLS_HANDSHAKE : SG_TLS_FOREIGN);
}

void sg_guard_hello_sent(struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    if (__atomic_load_n(&c->phase, __ATOMIC_ACQUIRE) == SG_TLS_HELLO)
        feed(&c->hello, iov, iovcnt, n);
}
