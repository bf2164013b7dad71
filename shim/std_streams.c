/* A program started with an SMTP socket as its standard output (a shell's
 * `exec 3<>/dev/tcp/mail/25; printf ... >&3`) writes to it through glibc's
 * stdout, whose internal write() a preload never sees. When the inherited
 * descriptor 1 or 2 is a guarded SMTP socket, stdout or stderr is replaced by
 * a stream whose writes go through the interposed write(). Nothing changes
 * for any other program. */
#include <dlfcn.h>
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

/* The program's stdout or stderr variable, looked up only when needed: naming
 * it in the code would cost every process a symbol lookup at load. The
 * global scope finds the executable's copy when it has one. */
static FILE **std_var(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

void sg_guard_std_streams(void)
{
    FILE *f, **var;
    if (sg_conn_peek(STDOUT_FILENO) && (var = std_var("stdout")) &&
        (f = guarded_stream(STDOUT_FILENO)))
        *var = f;
    if (sg_conn_peek(STDERR_FILENO) && (var = std_var("stderr")) &&
        (f = guarded_stream(STDERR_FILENO))) {
        setvbuf(f, NULL, _IONBF, 0);
        *var = f;
    }
}
