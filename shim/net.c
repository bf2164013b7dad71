/* connect and the descriptor lifecycle. SMTP state is created by connect
 * and dies with the descriptor; a dup shares it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>

#include "config.h"
#include "dns_sock.h"
#include "fdstate.h"
#include "gnutls_api.h"
#include "guard.h"
#include "ident.h"
#include "log.h"
#include "ossl.h"
#include "real.h"
#include "resolve.h"

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
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* Fail closed: this SMTP connection cannot be guarded. */
static int refuse_connect(const struct sockaddr *sa, int port, const char *why)
{
    const struct sg_policy *p = sg_config();
    char addr[INET6_ADDRSTRLEN] = "";
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    inet_ntop(sa->sa_family, a, addr, sizeof addr);
    struct sg_event e = {.verdict = SG_REFUSED, .what = "connection", .host = "",
                         .addr = addr, .port = port, .check = "policy", .reason = why};
    sg_log_event(p, &e);
    errno = EACCES;
    return -1;
}

static void track(int fd, const struct sockaddr *sa, socklen_t len, int port)
{
    struct sg_conn *c = sg_conn_open(fd, sa, len, port);
    if (!c)
        return;
    sg_resolve_bind(sa, len, c->host, sizeof c->host, c->candidates, sizeof c->candidates);
    sg_guard_connected(fd, sg_port_in(sg_config()->implicit_ports, port));
}

__attribute__((noinline)) static int connect_slow(int fd, const struct sockaddr *sa,
                                                  socklen_t len)
{
    int port = inet_port(sa, len);
    const struct sg_policy *p = sg_config();
    if (port == SG_DNS_PORT && !sg_port_in(p->smtp_ports, port) && p->mode != SG_MODE_OFF)
        return sg_dns_sock_connect(fd, sa, len);
    if (SG_LIKELY(!port || !sg_port_in(p->smtp_ports, port) ||
                  (p->mode == SG_MODE_OFF && !p->broken) || !is_stream(fd))) {
        if (SG_UNLIKELY(sg_fd_tracked(fd)))
            sg_fd_forget(fd);
        return REAL(connect)(fd, sa, len);
    }
    if (p->broken)
        return refuse_connect(sa, port, p->error);
    if ((unsigned)fd >= SG_FD_CAP)
        return refuse_connect(sa, port, "descriptor number too high to guard");
    int r = REAL(connect)(fd, sa, len);
    int saved = errno;
    if (r == 0 || errno == EINPROGRESS || errno == EINTR)
        track(fd, sa, len, port);
    errno = saved;
    return r;
}

/* Not an SMTP port of a loaded policy, on an untracked descriptor: a tail call. */
SG_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    __typeof__(sg_libc.connect) real = __atomic_load_n(&sg_libc.connect, __ATOMIC_RELAXED);
    const struct sg_policy *p = __atomic_load_n(&sg_config_loaded, __ATOMIC_ACQUIRE);
    if (SG_LIKELY(real && p && !sg_fd_tracked(fd))) {
        int port = inet_port(sa, len);
        if (!port || (!sg_port_in(p->smtp_ports, port) && port != SG_DNS_PORT))
            return real(fd, sa, len);
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

SG_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    int r = REAL(close_range)(first, last, flags);
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        sg_fd_forget_range(first, last);
    return r;
}

static int copied(int oldfd, int newfd)
{
    if (newfd >= 0 && newfd != oldfd && (sg_fd_tracked(oldfd) || sg_fd_tracked(newfd)))
        sg_fd_copy(oldfd, newfd);
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
    sg_ossl_prepare_stores();
    sg_gnutls_prepare_trust();
    return REAL(chroot)(path);
}
