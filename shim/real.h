/* The real libc functions behind the interposed names, bound lazily with
 * dlsym(RTLD_NEXT) on first use: no constructor order to rely on, no lock. */
#ifndef SG_REAL_H
#define SG_REAL_H

#include <aio.h>
#include <netdb.h>
#include <stdio.h>
#include <stdarg.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define SG_EXPORT __attribute__((visibility("default")))
#define SG_LIKELY(x) __builtin_expect(!!(x), 1)
#define SG_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define SG_LIBC_FUNCS(X)                                                          \
    X(int, connect, (int, const struct sockaddr *, socklen_t))                    \
    X(int, close, (int))                                                          \
    X(int, close_range, (unsigned, unsigned, int))                                \
    X(void, closefrom, (int))                                                     \
    X(int, dup, (int))                                                            \
    X(int, dup2, (int, int))                                                      \
    X(int, dup3, (int, int, int))                                                 \
    X(int, fcntl, (int, int, ...))                                                \
    X(int, fcntl64, (int, int, ...))                                              \
    X(ssize_t, write, (int, const void *, size_t))                                \
    X(ssize_t, send, (int, const void *, size_t, int))                            \
    X(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *,  \
                        socklen_t))                                               \
    X(ssize_t, sendmsg, (int, const struct msghdr *, int))                        \
    X(ssize_t, writev, (int, const struct iovec *, int))                          \
    X(ssize_t, read, (int, void *, size_t))                                       \
    X(ssize_t, recv, (int, void *, size_t, int))                                  \
    X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *,            \
                          socklen_t *))                                           \
    X(ssize_t, recvmsg, (int, struct msghdr *, int))                              \
    X(ssize_t, readv, (int, const struct iovec *, int))                           \
    X(int, getaddrinfo, (const char *, const char *, const struct addrinfo *,     \
                         struct addrinfo **))                                     \
    X(struct hostent *, gethostbyname, (const char *))                            \
    X(struct hostent *, gethostbyname2, (const char *, int))                      \
    X(int, gethostbyname_r, (const char *, struct hostent *, char *, size_t,      \
                             struct hostent **, int *))                           \
    X(int, gethostbyname2_r, (const char *, int, struct hostent *, char *, size_t,\
                              struct hostent **, int *))                          \
    X(int, chroot, (const char *))                                                \
    X(FILE *, fdopen, (int, const char *))                                        \
    X(int, socket, (int, int, int))                                               \
    X(ssize_t, sendfile, (int, int, off_t *, size_t))                             \
    X(ssize_t, sendfile64, (int, int, off64_t *, size_t))                         \
    X(ssize_t, splice, (int, loff_t *, int, loff_t *, size_t, unsigned))          \
    X(ssize_t, pwritev2, (int, const struct iovec *, int, off_t, int))            \
    X(ssize_t, pwritev64v2, (int, const struct iovec *, int, off64_t, int))       \
    X(ssize_t, preadv2, (int, const struct iovec *, int, off_t, int))             \
    X(ssize_t, preadv64v2, (int, const struct iovec *, int, off64_t, int))        \
    X(int, sendmmsg, (int, struct mmsghdr *, unsigned, int))                      \
    X(int, recvmmsg, (int, struct mmsghdr *, unsigned, int, struct timespec *))   \
    X(int, aio_write, (struct aiocb *))                                           \
    X(int, lio_listio, (int, struct aiocb *const[], int, struct sigevent *))      \
    X(int, vdprintf, (int, const char *, va_list))                                \
    X(int, __vdprintf_chk, (int, int, const char *, va_list))

struct sg_libc {
#define SG_MEMBER(ret, name, args) ret(*name) args;
    SG_LIBC_FUNCS(SG_MEMBER)
#undef SG_MEMBER
};

extern struct sg_libc sg_libc;

/* Bind one function; returns the pointer (NULL only if libc lacks it). */
void *sg_real_bind(void **slot, const char *name);

/* REAL(write) is the real write(), bound on first use. */
#define REAL(name)                                                                  \
    (SG_LIKELY(sg_libc.name != NULL)                                                \
         ? sg_libc.name                                                             \
         : (__typeof__(sg_libc.name))sg_real_bind((void **)&sg_libc.name, #name))

/* The library's own socket() interposer (shim/net.c), called directly by a
 * hidden alias, for its own log socket: the same work (a number the kernel
 * hands out again drops a stale state), without the lazy binding of the
 * library to itself that a call by name costs in every process. */
int sg_socket(int domain, int type, int protocol);

/* Is this address inside libsmtpguard.so itself? */
int sg_is_own_address(const void *addr);

#endif
