/* A program started with an SMTP socket as its standard output (a shell's
 * `exec 3<>/dev/tcp/mail/25; printf ... >&3`) writes to it through glibc's
 * stdout, whose internal write() a preload never sees. When the inherited
 * descriptor 1 or 2 is a guarded SMTP socket, stdout or stderr is replaced by
 * a stream whose writes go through the interposed write(). Nothing changes
 * for any other program. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "classify.h"

static ssize_t std_write(void *cookie, const char *buf, size_t n)
{
    ssize_t r = write((int)(intptr_t)cookie, buf, n);
    return r < 0 ? 0 : r; /* stdio reads 0 as an error and sets it on the stream */
}

static int std_close(void *cookie)
{
    return close((int)(intptr_t)cookie);
}

static FILE *guarded_stream(int fd)
{
    cookie_io_functions_t io = {NULL, std_write, NULL, std_close};
    FILE *f = fopencookie((void *)(intptr_t)fd, "w", io);
    if (f)
        f->_fileno = fd; /* fileno(stdout) still says 1 (see stdio.c) */
    return f;
}

void sg_guard_std_streams(void)
{
    FILE *f;
    if (sg_conn_peek(STDOUT_FILENO) && (f = guarded_stream(STDOUT_FILENO)))
        stdout = f;
    if (sg_conn_peek(STDERR_FILENO) && (f = guarded_stream(STDERR_FILENO))) {
        setvbuf(f, NULL, _IONBF, 0);
        stderr = f;
    }
}
