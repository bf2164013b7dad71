/* Classifying a socket by its peer. A connection the shim cannot track (the
 * pool is full, the policy is broken) is refused, never left unguarded. */
#include <errno.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "classify.h"
#include "config.h"
#include "guard.h"
#include "log.h"
#include "resolve.h"

int sg_refuse_unguarded(int fd, const char *addr, int port, const char *why)
{
    struct sg_event e = {.verdict = SG_REFUSED, .what = "connection", .host = "",
                         .addr = addr, .port = port, .check = "policy", .reason = why};
    sg_log_event(sg_config(), &e);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    errno = EACCES;
    return -1;
}

static int inet_stream(int fd)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof type, dlen = sizeof domain;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
           getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == 0 &&
           (domain == AF_INET || domain == AF_INET6);
}

/* 1: fd is now a tracked SMTP connection; 0: it is not one (or not yet
 * connected: the marker stays); -1: refused. */
static int classify(int fd, int inherited)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "";
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        if (errno == ENOTCONN && inet_stream(fd))
            sg_fd_mark(fd, SG_FD_UNCLASSIFIED); /* connected later, maybe */
        else
            sg_fd_unmark(fd);
        return 0;
    }
    const struct sg_policy *p = sg_config();
    int v6 = ss.ss_family == AF_INET6;
    if ((ss.ss_family != AF_INET && !v6) || !inet_stream(fd)) {
        sg_fd_unmark(fd);
        return 0;
    }
    int port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                        : ((struct sockaddr_in *)&ss)->sin_port);
    if (!sg_port_in(p->smtp_ports, p->smtp_blocks, port) ||
        (p->mode == SG_MODE_OFF && !p->broken)) {
        sg_fd_unmark(fd);
        return 0;
    }
    inet_ntop(ss.ss_family,
              v6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                 : (void *)&((struct sockaddr_in *)&ss)->sin_addr,
              addr, sizeof addr);
    if (p->broken)
        return sg_refuse_unguarded(fd, addr, port, p->error);
    struct sg_conn *c = sg_conn_open(fd, (struct sockaddr *)&ss, len, port);
    if (!c)
        return sg_refuse_unguarded(fd, addr, port,
                                   (unsigned)fd >= SG_FD_CAP
                                       ? "descriptor number too high to guard"
                                       : "too many SMTP connections to guard at once");
    sg_resolve_bind((struct sockaddr *)&ss, len, c->host, sizeof c->host, c->candidates,
                    sizeof c->candidates);
    int implicit = sg_port_in(p->implicit_ports, p->implicit_blocks, port);
    if (inherited)
        sg_guard_inherited(fd, implicit);
    else
        sg_guard_connected(fd, implicit);
    return 1;
}

/* Connected by a call the shim did not see, and used from the start: its
 * dialogue is followed like one made by connect(). */
int sg_classify_slow(int fd)
{
    int saved = errno;
    int r = classify(fd, 0);
    if (r >= 0)
        errno = saved;
    return r < 0 ? -1 : 0;
}

void sg_adopt(int fd)
{
    int saved = errno;
    classify(fd, 1);
    errno = saved;
}
