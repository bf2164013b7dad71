/* glibc's stdio writes to its descriptor with an internal write() that a
 * preload never sees, so a program that fdopen()s its SMTP socket and
 * fprintf()s commands would slip past the guard. Such a stream is handed
 * out as a fopencookie stream whose I/O goes through our interposers. */
#include <stdint.h>
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

SG_EXPORT FILE *fdopen(int fd, const char *mode)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(fdopen)(fd, mode);
    cookie_io_functions_t io = {cookie_read, cookie_write, NULL, cookie_close};
    return fopencookie((void *)(intptr_t)fd, mode, io);
}
