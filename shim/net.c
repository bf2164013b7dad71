/* connect and the descriptor lifecycle. SMTP state is created by connect
 * and dies with the descriptor; a dup shares it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>

#include "classify.h"
#include "config.h"
#include "dns_sock.h"
#include "fdstate.h"
#include "gnutls_api.h"
#include "guard.h"
#include "ident.h"
#include "log.h"
#include "ossl.h"
#include "rawsys.h"
#include "real.h"
#include "resolve.h"
#include "trust_follow.h"

static int inet_port(const struct sockaddr *sa, socklen_t len)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

static int is_stream(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return sg_sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, out, len))
        out[0] = 0;
}

/* The record is taken before the connection exists: when none is left the
 * connection is refused, it never goes out unguarded. */
int sg_before_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int port = inet_port(sa, len);
    const struct sg_policy *p = sg_config();
    if (SG_LIKELY(!port || !sg_port_in(p->smtp_ports, p->smtp_blocks, port) ||
                  (p->mode == SG_MODE_OFF && !p->broken) || !is_stream(fd))) {
        if (SG_UNLIKELY(sg_fd_tracked(fd)))
            sg_fd_forget(fd);
        return 0;
    }
    char addr[INET6_ADDRSTRLEN];
    format_addr(sa, addr, sizeof addr);
    if (p->broken)
        return sg_refuse_unguarded(-1, addr, port, p->error);
    if ((unsigned)fd >= SG_FD_CAP)
        return sg_refuse_unguarded(-1, addr, port, "descriptor number too high to guard");
    struct sg_conn *c = sg_conn_open(fd, sa, len, port);
    if (!c)
        return sg_refuse_unguarded(-1, addr, port,
                                   "too many SMTP connections to guard at once");
    sg_resolve_bind(sa, len, c->host, sizeof c->host, c->candidates, sizeof c->candidates);
    sg_guard_connected(fd, sg_port_in(p->implicit_ports, p->implicit_blocks, port));
    return 1;
}

/* The ports connect() must look at, one byte each, so that the fast path
 * asks one question: the policy's SMTP ports and DNS's (the policy is frozen
 * once loaded). Built by the first connect that takes the slow way, together
 * with the real connect: connect_ready publishes both. Untouched pages stay
 * the kernel's zero page. */
static unsigned char slow_port[65536] SG_TABLE;
static const unsigned char *connect_ready;
static pthread_once_t slow_port_once = PTHREAD_ONCE_INIT;

static void build_slow_ports(void)
{
    const struct sg_policy *p = sg_config();
    const uint64_t *words = (const uint64_t *)p->smtp_ports;
    /* Only the blocks of 2048 ports that hold one: the rest is never read. */
    for (unsigned m = p->smtp_blocks; m; m &= m - 1)
        for (unsigned k = (unsigned)__builtin_ctz(m) * 32, end = k + 32; k < end; k++)
            for (uint64_t bits = words[k]; bits; bits &= bits - 1)
                slow_port[k * 64 + (unsigned)__builtin_ctzll(bits)] = 1;
    slow_port[SG_DNS_PORT] = 1;
    slow_port[0] = 0; /* not an Internet address (inet_port): nothing to do */
    if (REAL(connect))
        __atomic_store_n(&connect_ready, slow_port, __ATOMIC_RELEASE);
}

__attribute__((noinline)) static int connect_slow(int fd, const struct sockaddr *sa,
                                                  socklen_t len)
{
    int port = inet_port(sa, len);
    const struct sg_policy *p = sg_config();
    if (SG_UNLIKELY(!__atomic_load_n(&connect_ready, __ATOMIC_ACQUIRE)))
        pthread_once(&slow_port_once, build_slow_ports);
    if (port == SG_DNS_PORT && !sg_port_in(p->smtp_ports, p->smtp_blocks, port) &&
        p->mode != SG_MODE_OFF)
        return sg_dns_sock_connect(fd, sa, len); /* the real connect, and its marker */
    int smtp = sg_before_connect(fd, sa, len);
    if (smtp < 0)
        return -1;
    int r = REAL(connect)(fd, sa, len);
    int saved = errno;
    if (smtp && r != 0 && saved != EINPROGRESS && saved != EINTR && saved != EALREADY &&
        saved != EISCONN)
        sg_fd_forget(fd); /* not connected: the record goes back to the pool */
    errno = saved;
    return r;
}

/* An Internet stream socket is marked: however it gets connected (TCP Fast
 * Open, a raw syscall, io_uring) its first interposed I/O classifies it. */
__attribute__((noinline, cold)) static int socket_first(int domain, int type, int protocol)
{
    return REAL(socket)(domain, type, protocol);
}

/* The kernel just gave out this number, so whatever the table holds for it
 * was left by a close the shim did not see (glibc's closefrom, a raw
 * syscall): dropped, or the new socket would carry the old one's phase and a
 * TCP Fast Open or raw connect would pass unguarded. */
__attribute__((noinline, cold)) static int socket_reused(int fd, unsigned short mark)
{
    sg_fd_forget(fd);
    __atomic_store_n(&sg_fdtab[fd], mark, __ATOMIC_RELAXED);
    return fd;
}

_Static_assert((AF_INET | 8) == AF_INET6, "one compare tells both Internet families");

SG_EXPORT int socket(int domain, int type, int protocol)
{
    /* Decided before the call, without a branch: only this value lives
     * across it. The marker for an Internet stream socket, else 0: key is 0
     * only for AF_INET or AF_INET6 with SOCK_STREAM. */
    unsigned key = (((unsigned)domain | 8) ^ AF_INET6) | (((unsigned)type & 0xf) ^ SOCK_STREAM);
    unsigned short mark = (unsigned short)-(unsigned)(key == 0);
    __asm__("" : "+r"(mark)); /* kept here: the compiler would keep domain and type instead */
    __typeof__(sg_libc.socket) real = __atomic_load_n(&sg_libc.socket, __ATOMIC_RELAXED);
    int fd = SG_LIKELY(real != NULL) ? real(domain, type, protocol)
                                     : socket_first(domain, type, protocol);
    if ((unsigned)fd >= SG_FD_CAP)
        return fd;
    if (SG_UNLIKELY(__atomic_load_n(&sg_fdtab[fd], __ATOMIC_RELAXED)))
        return socket_reused(fd, mark);
    /* The caller owns the new number: a plain store, no compare (0 over 0
     * for a socket that is not an Internet stream). */
    __atomic_store_n(&sg_fdtab[fd], mark, __ATOMIC_RELAXED);
    return fd;
}

__attribute__((alias("socket"), copy(socket))) int sg_socket(int domain, int type, int protocol);

/* Not an SMTP (or DNS) port, on an untracked descriptor: a tail call. */
SG_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    const unsigned char *slow = __atomic_load_n(&connect_ready, __ATOMIC_ACQUIRE);
    if (SG_LIKELY(slow != NULL && (unsigned)fd < SG_FD_CAP)) {
        unsigned short m = __atomic_load_n(&sg_fdtab[fd], __ATOMIC_RELAXED);
        /* m is 0 (untracked) or the marker: (m + 1) wraps to 0 or is 1. */
        if (SG_LIKELY((unsigned short)(m + 1) <= 1 && !slow[inet_port(sa, len)])) {
            /* Connected by connect(): classified. The caller owns fd while
             * it connects it: a plain store drops the marker (0 over 0 for an
             * untracked one). connect_ready says the real one is bound. */
            __atomic_store_n(&sg_fdtab[fd], 0, __ATOMIC_RELAXED);
            return __atomic_load_n(&sg_libc.connect, __ATOMIC_RELAXED)(fd, sa, len);
        }
    }
    return connect_slow(fd, sa, len);
}

__attribute__((noinline)) static int close_slow(int fd)
{
    sg_fd_forget(fd);
    return REAL(close)(fd);
}

SG_EXPORT int close(int fd)
{
    __typeof__(sg_libc.close) real = __atomic_load_n(&sg_libc.close, __ATOMIC_RELAXED);
    if (SG_LIKELY(real && !sg_fd_tracked(fd)))
        return real(fd);
    return close_slow(fd);
}

/* glibc closes these with its internal close_range (or, failing that, one by
 * one, or it aborts): the table follows, or their numbers would come back
 * with the old sockets' states. */
SG_EXPORT void closefrom(int lowfd)
{
    REAL(closefrom)(lowfd);
    if (lowfd >= 0)
        sg_fd_forget_range((unsigned)lowfd, SG_FD_CAP - 1);
}

SG_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    int r = REAL(close_range)(first, last, flags);
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        sg_fd_forget_range(first, last);
    return r;
}

/* A copy of an SMTP socket past the table could not be guarded: it is
 * closed and the call fails, the original stays as it was. */
__attribute__((noinline)) static int too_high(int oldfd, int newfd)
{
    struct sg_conn *c = sg_conn_peek(oldfd);
    REAL(close)(newfd);
    return sg_refuse_unguarded(-1, c->addr, c->port,
                               "a copy of the socket at a descriptor number too high to guard");
}

static int copied(int oldfd, int newfd)
{
    if (newfd >= 0 && newfd != oldfd && (sg_fd_tracked(oldfd) || sg_fd_tracked(newfd))) {
        if (SG_UNLIKELY((unsigned)newfd >= SG_FD_CAP) && sg_conn_peek(oldfd))
            return too_high(oldfd, newfd);
        sg_fd_copy(oldfd, newfd);
    }
    return newfd;
}

SG_EXPORT int dup(int fd)
{
    return copied(fd, REAL(dup)(fd));
}

SG_EXPORT int dup2(int oldfd, int newfd)
{
    return copied(oldfd, REAL(dup2)(oldfd, newfd));
}

SG_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    return copied(oldfd, REAL(dup3)(oldfd, newfd, flags));
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, va_list ap)
{
    void *arg = va_arg(ap, void *);
    int r = real(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        copied(fd, r);
    return r;
}

SG_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_common(REAL(fcntl), fd, cmd, ap);
    va_end(ap);
    return r;
}

SG_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_common(REAL(fcntl64), fd, cmd, ap);
    va_end(ap);
    return r;
}

/* Postfix's smtp client sets up TLS, then chroots where neither the policy
 * nor the trust store can be read: read them while they are reachable. */
SG_EXPORT int chroot(const char *path)
{
    sg_config();
    sg_ident(); /* /proc/self/exe and the script, for log lines after the chroot */
    /* The paths will name other files (or none): stores built now read all
     * they need into memory, and are kept (trust_follow.h). */
    sg_trust_freeze();
    sg_ossl_prepare_stores();
    sg_gnutls_prepare_trust();
    return REAL(chroot)(path);
}
