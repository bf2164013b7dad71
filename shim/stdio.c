/* glibc's stdio writes to its descriptor with an internal write() that a
 * preload never sees, so a program that fdopen()s its SMTP socket and
 * fprintf()s commands would slip past the guard. Such a stream is handed
 * out as a fopencookie stream whose I/O goes through our interposers: for a
 * socket already known as SMTP, and for one that may still become one. */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdio.h>

#include "fdstate.h"
#include "real.h"

static ssize_t cookie_read(void *cookie, char *buf, size_t n)
{
    return read((int)(intptr_t)cookie, buf, n);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t n)
{
    ssize_t r = write((int)(intptr_t)cookie, buf, n);
    return r < 0 ? 0 : r; /* stdio reads 0 as an error and sets it on the stream */
}

static int cookie_close(void *cookie)
{
    return close((int)(intptr_t)cookie);
}

/* A TCP socket not connected yet may become an SMTP connection after the
 * stream is made: its stream must pass through the guard too. */
static int unconnected_tcp(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
           getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 && errno == ENOTCONN;
}

SG_EXPORT FILE *fdopen(int fd, const char *mode)
{
    if (!sg_fd_tracked(fd) && !unconnected_tcp(fd))
        return REAL(fdopen)(fd, mode);
    cookie_io_functions_t io = {cookie_read, cookie_write, NULL, cookie_close};
    FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
    /* Programs poll or setsockopt on fileno(f): a cookie stream says -1. The
     * field is glibc's public FILE ABI; its cookie I/O never uses it. */
    if (f)
        f->_fileno = fd;
    return f;
}
