/* System calls made without libc, for code that runs at every exec (the
 * constructors): calling a libc function there first costs a lazy binding,
 * a symbol lookup of several hundred instructions for every program, SMTP
 * or not. A raw call also leaves errno alone. Elsewhere, the libc call. */
#ifndef SG_RAWSYS_H
#define SG_RAWSYS_H

#include <errno.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Whether fd is open, and if so whether it is a socket: fstat's answer. */
static inline int sg_raw_fstat(int fd, struct stat *st)
{
#if defined(__x86_64__) && defined(SYS_fstat)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_fstat), "D"((long)fd), "S"(st)
                     : "rcx", "r11", "memory");
    return r < 0 ? -1 : 0;
#else
    int saved = errno, r = fstat(fd, st);
    errno = saved;
    return r;
#endif
}

/* poll() with a zero timeout: which of fds are open (POLLNVAL: closed). */
static inline int sg_raw_poll(struct pollfd *fds, unsigned n)
{
#if defined(__x86_64__) && defined(SYS_poll)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_poll), "D"(fds), "S"((long)n), "d"(0L)
                     : "rcx", "r11", "memory");
    return r < 0 ? -1 : (int)r;
#else
    int saved = errno, r = poll(fds, n, 0);
    errno = saved;
    return r;
#endif
}

/* prctl(PR_GET_NAME): the command name (16 bytes). */
static inline int sg_raw_get_name(char *name)
{
#if defined(__x86_64__) && defined(SYS_prctl)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_prctl), "D"((long)PR_GET_NAME), "S"(name)
                     : "rcx", "r11", "memory");
    return r < 0 ? -1 : 0;
#else
    int saved = errno, r = prctl(PR_GET_NAME, name);
    errno = saved;
    return r;
#endif
}

#endif
