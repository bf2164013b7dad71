/* libc functions the library defines for itself, hidden, so that it needs
 * fewer glibc symbol versions: the loader checks every version a library
 * names against libc's list at every exec, about 450 instructions each (with
 * the binding slot), SMTP or not. These are the ones that alone pulled in
 * GLIBC_2.33 (stat, fstat), GLIBC_2.14 (memcpy), GLIBC_2.3 (realpath) and
 * GLIBC_2.17 (secure_getenv, clock_gettime); none is on the fast path.
 * Nothing here is exported (hidden visibility; shim/smtpguard.map). */
#include <features.h>
#if defined(__linux__) && defined(__x86_64__) && __GLIBC_PREREQ(2, 33)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auxv.h"
#include "rawsys.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* Raw (rawsys.h), as libc's syscall() would answer: no binding of syscall(). */
HIDDEN int fstat(int fd, struct stat *st)
{
    return (int)SG_SYS(SYS_fstat, fd, st, 0, 0);
}

HIDDEN int stat(const char *restrict path, struct stat *restrict st)
{
    return (int)SG_SYS(SYS_newfstatat, AT_FDCWD, path, st, 0);
}

HIDDEN int clock_gettime(clockid_t clock, struct timespec *ts)
{
    return (int)SG_SYS(SYS_clock_gettime, clock, ts, 0, 0);
}

/* memmove copies non-overlapping memory exactly as memcpy does (glibc runs
 * the same code for both); the compiler's own struct copies land here too.
 * No `restrict` here: with it the compiler may turn the memmove back into a
 * call to memcpy, itself (tests/test_build.py checks the code). */
HIDDEN void *memcpy(void *dst, const void *src, size_t n)
{
    return memmove(dst, src, n);
}

/* glibc's snprintf is this very call of vsnprintf, which every process that
 * logs a line binds anyway: one lazy binding fewer (not a version: issue 15). */
HIDDEN int snprintf(char *restrict s, size_t n, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(s, n, fmt, ap);
    va_end(ap);
    return r;
}

/* glibc's secure_getenv is this very test: __libc_enable_secure is the
 * kernel's AT_SECURE (set for setuid, setgid and file-capability programs).
 * A vector that cannot be read counts as privileged. */
HIDDEN char *secure_getenv(const char *name)
{
    unsigned long secure;
    return !sg_auxval(AT_SECURE, &secure) || secure ? NULL : getenv(name);
}

HIDDEN char *realpath(const char *restrict path, char *restrict resolved)
{
    char *r = canonicalize_file_name(path);
    if (!r || !resolved)
        return r;
    size_t n = strlen(r);
    if (n >= PATH_MAX) {
        free(r);
        errno = ENAMETOOLONG;
        return NULL;
    }
    memmove(resolved, r, n + 1);
    free(r);
    return resolved;
}
#endif
