/* The I/O interposers. For a descriptor that is not an SMTP socket each is
 * one table load and a branch before the real call. */
#include <errno.h>
#include <string.h>

#include "classify.h"
#include "dns_sock.h"
#include "guard.h"
#include "guard_io.h"
#include "real.h"

#define ONE(buf, n) (&(struct iovec){(void *)(buf), (n)})

#define GUARDED_SEND(fd, iov, iovcnt, call)                                     \
    do {                                                                        \
        if (SG_LIKELY(!sg_fd_tracked(fd)))                                      \
            return call;                                                        \
        if (sg_classify(fd) != 0 || sg_guard_before_send(fd, iov, iovcnt) != 0) \
            return -1;                                                          \
        ssize_t r_ = call;                                                      \
        if (r_ > 0)                                                             \
            sg_guard_sent(fd, iov, iovcnt, (size_t)r_);                         \
        return r_;                                                              \
    } while (0)

#define OBSERVED_RECV(fd, iov, iovcnt, call)                                    \
    do {                                                                        \
        if (SG_UNLIKELY(sg_fd_tracked(fd)) && sg_classify(fd) != 0)             \
            return -1;                                                          \
        ssize_t r_ = call;                                                      \
        if (SG_LIKELY(!sg_fd_tracked(fd)) || r_ <= 0)                           \
            return r_;                                                          \
        return sg_guard_received(fd, iov, iovcnt, (size_t)r_) == 0 ? r_ : -1;   \
    } while (0)

/* The fast path as a tail call with no stack frame: the real function is
 * bound and the descriptor is not an SMTP socket. Anything else goes to the
 * out-of-line NAME_slow. */
#define FAST_OR_SLOW(name, fd, ...)                                             \
    do {                                                                        \
        __typeof__(sg_libc.name) real_ = __atomic_load_n(&sg_libc.name, __ATOMIC_RELAXED); \
        if (SG_LIKELY(real_ != NULL && !sg_fd_tracked(fd)))                     \
            return real_(__VA_ARGS__);                                          \
        return name##_slow(__VA_ARGS__);                                        \
    } while (0)

__attribute__((noinline)) static ssize_t write_slow(int fd, const void *buf, size_t n)
{
    GUARDED_SEND(fd, ONE(buf, n), 1, REAL(write)(fd, buf, n));
}

ssize_t sg_guarded_write(int fd, const void *buf, size_t n)
{
    return write_slow(fd, buf, n);
}

SG_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    FAST_OR_SLOW(write, fd, fd, buf, n);
}

SG_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    GUARDED_SEND(fd, ONE(buf, n), 1, REAL(send)(fd, buf, n, flags));
}

/* TCP Fast Open connects and sends in one call: the destination is
 * classified first, exactly as connect() would. */
static int fast_open(int fd, int flags, const struct sockaddr *to, socklen_t tolen)
{
    if (!(flags & MSG_FASTOPEN) || !to || sg_conn_peek(fd))
        return 0;
    return sg_before_connect(fd, to, tolen) < 0 ? -1 : 0;
}

/* A query to port 53 on a socket that is not connected: a program's own
 * resolver whose answers the name memory must learn (dns_sock.h). */
static inline void dns_query(int fd, const struct sockaddr *to, socklen_t tolen)
{
    if (SG_UNLIKELY(to != NULL) && !sg_fd_tracked(fd) && sg_dns_port_of(to, tolen) == SG_DNS_PORT)
        sg_dns_sock_sent_to(fd, to, tolen);
}

static inline int dns_marked(int fd)
{
    return SG_UNLIKELY(sg_fd_tracked(fd)) &&
           __atomic_load_n(&sg_fdtab[fd], __ATOMIC_RELAXED) == SG_FD_DNS;
}

SG_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *to, socklen_t tolen)
{
    if (SG_UNLIKELY(flags & MSG_FASTOPEN) && fast_open(fd, flags, to, tolen) != 0)
        return -1;
    dns_query(fd, to, tolen);
    GUARDED_SEND(fd, ONE(buf, n), 1, REAL(sendto)(fd, buf, n, flags, to, tolen));
}

ssize_t sg_guarded_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (SG_UNLIKELY(flags & MSG_FASTOPEN) && msg &&
        fast_open(fd, flags, msg->msg_name, msg->msg_namelen) != 0)
        return -1;
    if (msg)
        dns_query(fd, msg->msg_name, msg->msg_namelen);
    GUARDED_SEND(fd, msg ? msg->msg_iov : NULL, msg ? (int)msg->msg_iovlen : 0,
                 REAL(sendmsg)(fd, msg, flags));
}

SG_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return sg_guarded_sendmsg(fd, msg, flags);
}

SG_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    GUARDED_SEND(fd, iov, iovcnt, REAL(writev)(fd, iov, iovcnt));
}

/* Tracked-ness is taken before the call: it cannot become tracked during a
 * read of this descriptor, and a number closed and reused meanwhile must not
 * feed the old socket's bytes to the new one's tracker. */
__attribute__((noinline)) static ssize_t read_slow(int fd, void *buf, size_t n)
{
    OBSERVED_RECV(fd, ONE(buf, n), 1, REAL(read)(fd, buf, n));
}

ssize_t sg_observed_read(int fd, void *buf, size_t n)
{
    return read_slow(fd, buf, n);
}

SG_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    FAST_OR_SLOW(read, fd, fd, buf, n);
}

/* MSG_TRUNC on a TCP socket drops the bytes without copying them into the
 * buffer (which may be NULL): the guard would read whatever the buffer held
 * (or crash on NULL). On an SMTP socket they are read into a buffer of ours,
 * shown to the guard and dropped: a short discard, as recv may return. */
static inline int truncating(int fd, int flags)
{
    return SG_UNLIKELY(flags & MSG_TRUNC) && sg_fd_tracked(fd) && !dns_marked(fd);
}

__attribute__((noinline)) static ssize_t discard_observed(int fd, size_t n, int flags)
{
    char buf[4096];
    size_t want = n < sizeof buf ? n : sizeof buf;
    flags &= ~MSG_TRUNC;
    OBSERVED_RECV(fd, ONE(buf, want), 1, REAL(recv)(fd, buf, want, flags));
}

SG_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    if (flags & MSG_PEEK)
        return REAL(recv)(fd, buf, n, flags);
    if (truncating(fd, flags))
        return discard_observed(fd, n, flags);
    OBSERVED_RECV(fd, ONE(buf, n), 1, REAL(recv)(fd, buf, n, flags));
}

SG_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                           socklen_t *fromlen)
{
    if (flags & MSG_PEEK)
        return REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
    if (dns_marked(fd))
        return sg_dns_recvfrom(fd, buf, n, flags, from, fromlen);
    if (truncating(fd, flags))
        return discard_observed(fd, n, flags); /* a TCP socket: no source address */
    OBSERVED_RECV(fd, ONE(buf, n), 1, REAL(recvfrom)(fd, buf, n, flags, from, fromlen));
}

/* Descriptors received over SCM_RIGHTS: a privilege-separated program
 * connects in one process and talks SMTP in another. */
void sg_adopt_rights(const struct msghdr *msg)
{
    for (struct cmsghdr *h = CMSG_FIRSTHDR(msg); h; h = CMSG_NXTHDR((struct msghdr *)msg, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof fd, sizeof fd);
            sg_adopt(fd);
        }
    }
}

static ssize_t recvmsg_observed(int fd, struct msghdr *msg, int flags)
{
    if (msg && truncating(fd, flags)) {
        size_t n = 0;
        for (size_t i = 0; i < msg->msg_iovlen; i++)
            n += msg->msg_iov[i].iov_len;
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
        return discard_observed(fd, n, flags);
    }
    OBSERVED_RECV(fd, msg ? msg->msg_iov : NULL, msg ? (int)msg->msg_iovlen : 0,
                  REAL(recvmsg)(fd, msg, flags));
}

SG_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t r = (flags & MSG_PEEK)            ? REAL(recvmsg)(fd, msg, flags)
                : msg && dns_marked(fd) ? sg_dns_recvmsg(fd, msg, flags)
                                        : recvmsg_observed(fd, msg, flags);
    if (SG_UNLIKELY(r >= 0 && msg && msg->msg_controllen >= sizeof(struct cmsghdr)))
        sg_adopt_rights(msg);
    return r;
}

SG_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    OBSERVED_RECV(fd, iov, iovcnt, REAL(readv)(fd, iov, iovcnt));
}
