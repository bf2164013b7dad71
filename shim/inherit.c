/* SMTP sockets that come across exec (a wrapper connects, then execs the
 * mailer with the descriptor) are not seen by connect: find them when the
 * library loads. Cheap for everyone: one directory read of /proc/self/fd and
 * one fstat per descriptor; the policy is read only when an inherited TCP
 * socket to an SMTP port exists. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "config.h"
#include "fdstate.h"
#include "guard.h"
#include "real.h"
#include "resolve.h"

struct linux_dirent64 {
    ino64_t d_ino;
    off64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void adopt(int fd)
{
    struct stat st;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
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

/* getdents64 directly: opendir would allocate in every process. */
__attribute__((constructor)) static void inherit_scan(void)
{
    char buf[2048];
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            int fd = atoi(d->d_name);
            if (d->d_name[0] != '.' && fd > 2 && fd != dir)
                adopt(fd);
            off += d->d_reclen;
        }
    REAL(close)(dir);
}
