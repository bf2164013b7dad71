/* Learning from a program's own DNS traffic (dns_sock.h). Only answers read
 * from a socket whose peer is port 53 count; the marker is checked against
 * the socket itself at each answer, so a descriptor number reused behind our
 * back (fclose of an fdopen'd socket) is never read as DNS. */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "dns.h"
#include "dns_sock.h"
#include "fdstate.h"
#include "real.h"
#include "resolve.h"

#define MAX_ANSWER 4096 /* a scattered read is gathered up to this much */

static int port_of(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

static int sock_type(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -1;
}

/* Only an untracked descriptor gets the marker: an SMTP record stays. */
static void mark(int fd)
{
    unsigned short none = 0;
    if ((unsigned)fd < SG_FD_CAP)
        __atomic_compare_exchange_n(&sg_fdtab[fd], &none, (unsigned short)SG_FD_DNS, 0,
                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

static void unmark(int fd)
{
    unsigned short m = SG_FD_DNS;
    if ((unsigned)fd < SG_FD_CAP)
        __atomic_compare_exchange_n(&sg_fdtab[fd], &m, 0, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED);
}

int sg_dns_sock_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (sg_fd_tracked(fd)) /* reconnected: whatever it was, it is this now */
        sg_fd_forget(fd);
    int r = REAL(connect)(fd, sa, len);
    int saved = errno;
    int type = sock_type(fd);
    if ((r == 0 || errno == EINPROGRESS) && (type == SOCK_DGRAM || type == SOCK_STREAM))
        mark(fd);
    errno = saved;
    return r;
}

static void learn(void *ctx, const char *name, int family, const void *addr)
{
    (void)ctx;
    sg_resolve_remember(name, family, addr, NULL, NULL);
}

/* TCP frames each message with a two-byte length: a read may hold the frame
 * or (a program that reads the length first) the bare message. */
static void parse(const unsigned char *p, size_t n, int stream)
{
    if (stream && n > 2 && ((size_t)p[0] << 8 | p[1]) == n - 2 &&
        sg_dns_answer(p + 2, n - 2, learn, NULL) >= 0)
        return;
    sg_dns_answer(p, n, learn, NULL);
}

static int still_dns(int fd, int *stream)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type = sock_type(fd);
    *stream = type == SOCK_STREAM;
    return (type == SOCK_DGRAM || type == SOCK_STREAM) &&
           getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
           port_of((struct sockaddr *)&ss, len) == SG_DNS_PORT;
}

int sg_dns_sock_received(int fd, const struct iovec *iov, int iovcnt, size_t n)
{
    if ((unsigned)fd >= SG_FD_CAP ||
        __atomic_load_n(&sg_fdtab[fd], __ATOMIC_RELAXED) != SG_FD_DNS || !iov || iovcnt <= 0)
        return 0;
    int saved = errno, stream;
    if (!still_dns(fd, &stream)) {
        unmark(fd);
    } else if (iovcnt == 1 || iov[0].iov_len >= n) {
        parse(iov[0].iov_base, n < iov[0].iov_len ? n : iov[0].iov_len, stream);
    } else if (n <= MAX_ANSWER) {
        unsigned char buf[MAX_ANSWER];
        size_t used = 0;
        for (int i = 0; i < iovcnt && used < n; i++) {
            size_t k = iov[i].iov_len < n - used ? iov[i].iov_len : n - used;
            memcpy(buf + used, iov[i].iov_base, k);
            used += k;
        }
        parse(buf, used, stream);
    }
    errno = saved;
    return 0;
}
