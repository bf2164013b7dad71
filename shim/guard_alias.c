/* Other names glibc exports for the same calls. _FORTIFY_SOURCE turns read()
 * and recv() into __read_chk and __recv_chk whenever the buffer size is
 * known; glibc implements them with its internal read, which a preload never
 * sees: the reply tracker and the injection check would miss what a fortified
 * program reads. __write, __send, __connect and __read are public aliases a
 * program may call. Each one goes to the interposer of its plain name. */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "real.h"

/* What glibc's __chk_fail does, without binding it: that symbol alone would
 * add a glibc version for the loader to check at every exec. */
__attribute__((noreturn, cold)) static void chk_fail(void)
{
    static const char msg[] = "*** buffer overflow detected ***: terminated\n";
    if (REAL(write)(2, msg, sizeof msg - 1) < 0)
        abort();
    abort();
}

SG_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        chk_fail();
    return read(fd, buf, n);
}

SG_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        chk_fail();
    return recv(fd, buf, n, flags);
}

SG_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                 struct sockaddr *from, socklen_t *fromlen)
{
    if (n > buflen)
        chk_fail();
    return recvfrom(fd, buf, n, flags, from, fromlen);
}

SG_EXPORT ssize_t __read(int fd, void *buf, size_t n)
{
    return read(fd, buf, n);
}

SG_EXPORT ssize_t __write(int fd, const void *buf, size_t n)
{
    return write(fd, buf, n);
}

SG_EXPORT ssize_t __send(int fd, const void *buf, size_t n, int flags)
{
    return send(fd, buf, n, flags);
}

SG_EXPORT int __connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    return connect(fd, sa, len);
}
