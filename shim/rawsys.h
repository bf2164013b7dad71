/* System calls made without libc, for code that runs at every exec (the
 * constructors): calling a libc function there first costs a lazy binding,
 * a symbol lookup of several hundred instructions for every program, SMTP
 * or not. These first ones also leave errno alone. Elsewhere, the libc call. */
#ifndef SG_RAWSYS_H
#define SG_RAWSYS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* One system call, its result as the kernel gives it (-errno on failure). */
#if defined(__x86_64__)
static inline long sg_raw_call(long nr, long a, long b, long c, long d, long e)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return r;
}
#endif

/* Whether fd is open, and if so whether it is a socket: fstat's answer. */
static inline int sg_raw_fstat(int fd, struct stat *st)
{
#if defined(__x86_64__)
    return sg_raw_call(SYS_fstat, fd, (long)st, 0, 0, 0) < 0 ? -1 : 0;
#else
    int saved = errno, r = fstat(fd, st);
    errno = saved;
    return r;
#endif
}

/* poll() with a zero timeout: which of fds are open (POLLNVAL: closed). */
static inline int sg_raw_poll(struct pollfd *fds, unsigned n)
{
#if defined(__x86_64__)
    long r = sg_raw_call(SYS_poll, (long)fds, n, 0, 0, 0);
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
#if defined(__x86_64__)
    return sg_raw_call(SYS_prctl, PR_GET_NAME, (long)name, 0, 0, 0) < 0 ? -1 : 0;
#else
    int saved = errno, r = prctl(PR_GET_NAME, name);
    errno = saved;
    return r;
#endif
}

/* The same calls with libc's contract (the result, or -1 with errno set), for
 * the library's own files, log and identity: each libc function called there
 * first costs a lazy binding in every process that speaks SMTP (issue 15),
 * and read() or close() of the library's own descriptor would also pass
 * through its own interposer (a binding to itself, then one to libc) for
 * nothing. On x86-64 none of these is a cancellation point, unlike libc's: the
 * library's own short file reads are not where a thread should end. */
#if defined(__x86_64__)
static inline long sg_raw_result(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

#define SG_SYS5(nr, a, b, c, d, e)                                                  \
    sg_raw_result(sg_raw_call((long)(nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e)))
#define SG_SYS(nr, a, b, c, d) SG_SYS5(nr, a, b, c, d, 0)

static inline int sg_sys_open(const char *path, int flags, mode_t mode)
{
    return (int)SG_SYS(SYS_openat, AT_FDCWD, path, flags, mode);
}
static inline ssize_t sg_sys_read(int fd, void *buf, size_t n)
{
    return SG_SYS(SYS_read, fd, buf, n, 0);
}
static inline ssize_t sg_sys_pread(int fd, void *buf, size_t n, off_t off)
{
    return SG_SYS(SYS_pread64, fd, buf, n, off);
}
static inline ssize_t sg_sys_write(int fd, const void *buf, size_t n)
{
    return SG_SYS(SYS_write, fd, buf, n, 0);
}
static inline int sg_sys_close(int fd)
{
    return (int)SG_SYS(SYS_close, fd, 0, 0, 0);
}
static inline ssize_t sg_sys_readlink(const char *path, char *buf, size_t n)
{
    return SG_SYS(SYS_readlinkat, AT_FDCWD, path, buf, n);
}
static inline int sg_sys_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    return (int)SG_SYS5(SYS_getsockopt, fd, level, name, val, len);
}
static inline int sg_sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    return (int)SG_SYS(SYS_getsockname, fd, sa, len, 0);
}
static inline pid_t sg_sys_getpid(void)
{
    return (pid_t)sg_raw_call(SYS_getpid, 0, 0, 0, 0, 0); /* never fails */
}
static inline uid_t sg_sys_getuid(void)
{
    return (uid_t)sg_raw_call(SYS_getuid, 0, 0, 0, 0, 0); /* never fails */
}
#else
/* Elsewhere libc's: syscall(2) for the three the library interposes, which by
 * name would reach its own read(), write() and close() (a binding to itself,
 * and its log written through its own guard); the others by name. */
static inline ssize_t sg_sys_read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}
static inline ssize_t sg_sys_write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}
static inline int sg_sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}
#define sg_sys_open open
#define sg_sys_pread pread
#define sg_sys_readlink readlink
#define sg_sys_getsockopt getsockopt
#define sg_sys_getsockname getsockname
#define sg_sys_getpid getpid
#define sg_sys_getuid getuid
#endif

#endif
