/* Sockets connected behind the shim's back: by a raw syscall or io_uring
 * (found at their first interposed I/O through the SG_FD_UNCLASSIFIED
 * marker), across exec, or received over SCM_RIGHTS. Each is classified by
 * its peer: an SMTP port of the policy makes it a tracked connection. */
#ifndef SG_CLASSIFY_H
#define SG_CLASSIFY_H

#include "fdstate.h"

/* The slow paths call this first: a marked fd is classified. 0 to go on,
 * -1 with errno set when the connection cannot be guarded (it is shut). */
int sg_classify_slow(int fd);
static inline int sg_classify(int fd)
{
    if (SG_FD_UNCLASSIFIED ==
        ((unsigned)fd < SG_FD_CAP ? __atomic_load_n(&sg_fdtab[fd], __ATOMIC_RELAXED) : 0))
        return sg_classify_slow(fd);
    return 0;
}

/* A socket that came across exec or over SCM_RIGHTS, in an unknown phase. */
void sg_adopt(int fd);
/* std_streams.c: stdout/stderr on an adopted SMTP socket write through the guard. */
void sg_guard_std_streams(void);

/* net.c: fd is about to be connected to sa (connect, TCP Fast Open).
 * 1: an SMTP connection, now tracked; 0: not one; -1: refused (errno set). */
int sg_before_connect(int fd, const struct sockaddr *sa, socklen_t len);

/* Refuse an SMTP connection the shim cannot guard: log, shut fd, errno. */
int sg_refuse_unguarded(int fd, const char *addr, int port, const char *why);

#endif
