/* SMTP sockets that come across exec (a wrapper connects, then execs the
 * mailer with the descriptor) are not seen by connect: find them when the
 * library loads. Cheap for everyone: descriptors from 3 up are probed with
 * fstat until a run of closed ones (reading /proc/self/fd cost more than the
 * whole probe at every exec); the policy is read only when an inherited TCP
 * socket to an SMTP port exists. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "config.h"
#include "fdstate.h"
#include "guard.h"
#include "rawsys.h"
#include "resolve.h"

#define GAP 16 /* closed descriptors in a row that end the probe */

static void adopt(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    int port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
    const struct sg_policy *p = sg_config();
    if (!sg_port_in(p->smtp_ports, port) || p->mode == SG_MODE_OFF)
        return;
    struct sg_conn *c = sg_conn_open(fd, (struct sockaddr *)&ss, len, port);
    if (c) {
        sg_resolve_lookup(c->addr, c->host, sizeof c->host);
        sg_guard_inherited(fd, sg_port_in(p->implicit_ports, port));
    }
}

__attribute__((constructor)) static void inherit_scan(void)
{
    struct stat st;
    for (int fd = 3, closed = 0; fd < SG_FD_CAP && closed < GAP; fd++) {
        if (sg_raw_fstat(fd, &st) != 0) {
            closed++;
            continue;
        }
        closed = 0;
        if (S_ISSOCK(st.st_mode)) {
            int saved = errno; /* adopt() calls libc: only with a socket at hand */
            adopt(fd);
            errno = saved;
        }
    }
}
