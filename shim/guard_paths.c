/* The byte paths besides write/send: sendfile, splice (vmsplice fills the
 * pipe), pwritev2/preadv2, sendmmsg, dprintf. On a descriptor that is not an
 * SMTP socket each is one branch before the real call. On an SMTP socket
 * that is not in TLS, the kernel-side copies are emulated with a bounded read
 * and the guarded write: the guard sees every byte it judges, exactly as it
 * leaves. Once TLS is up (kTLS included) they pass through. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "classify.h"
#include "guard.h"
#include "guard_io.h"
#include "real.h"

#define CHUNK 16384 /* bytes per emulated copy: a sendfile loop asks again */

/* Is fd an SMTP socket whose bytes must pass the guard one by one? */
static int plaintext_socket(int fd)
{
    if (sg_classify(fd) != 0)
        return 1; /* refused: the guarded write says so */
    struct sg_conn *c = sg_conn_peek(fd);
    if (!c)
        return 0;
    int phase = __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE);
    return phase != SG_TLS_OK && phase != SG_TLS_HANDSHAKE && phase != SG_TLS_FOREIGN;
}

/* Write all of buf through the guard, waiting for room on a non-blocking
 * socket: bytes already taken from a pipe cannot be put back. */
static ssize_t write_all(int fd, const char *buf, size_t n)
{
    size_t done = 0;
    for (int waits = 0; done < n && waits < 100;) {
        ssize_t w = sg_guarded_write(fd, buf + done, n - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 100);
            waits++;
        } else {
            return done ? (ssize_t)done : w;
        }
    }
    return (ssize_t)done;
}

/* Up to len bytes of in (at *off, else its file position) to the SMTP socket
 * out. A seekable source is read with pread and advanced by what was sent. */
static ssize_t copy_to_smtp(int out, int in, off64_t *off, size_t len)
{
    char buf[CHUNK];
    size_t n = len < sizeof buf ? len : sizeof buf;
    off64_t pos = off ? *off : lseek64(in, 0, SEEK_CUR);
    if (pos < 0 || n == 0) {
        ssize_t got = n ? REAL(read)(in, buf, n) : 0;
        return got > 0 ? write_all(out, buf, (size_t)got) : got;
    }
    ssize_t got = pread64(in, buf, n, pos);
    if (got <= 0)
        return got;
    ssize_t w = sg_guarded_write(out, buf, (size_t)got);
    if (w > 0) {
        if (off)
            *off = pos + w;
        else
            lseek64(in, pos + w, SEEK_SET);
    }
    return w;
}

/* Up to len bytes read from the SMTP socket in (the reply tracker sees them)
 * to out, at *off when given. */
static ssize_t copy_from_smtp(int out, off64_t *off, int in, size_t len)
{
    char buf[CHUNK];
    ssize_t got = sg_observed_read(in, buf, len < sizeof buf ? len : sizeof buf);
    if (got <= 0)
        return got;
    size_t done = 0;
    for (int waits = 0; done < (size_t)got && waits < 100;) {
        ssize_t w = off ? pwrite64(out, buf + done, (size_t)got - done, *off + (off64_t)done)
                        : REAL(write)(out, buf + done, (size_t)got - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = out, .events = POLLOUT};
            poll(&p, 1, 100);
            waits++;
        } else {
            break;
        }
    }
    if (off)
        *off += (off64_t)done;
    return done ? (ssize_t)done : -1;
}

SG_EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count)
{
    if (SG_LIKELY(!sg_fd_tracked(out)) || !plaintext_socket(out))
        return REAL(sendfile64)(out, in, offset, count);
    return copy_to_smtp(out, in, offset, count);
}

SG_EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
    if (SG_LIKELY(!sg_fd_tracked(out)) || !plaintext_socket(out))
        return REAL(sendfile)(out, in, offset, count);
    off64_t o = offset ? *offset : 0;
    ssize_t r = copy_to_smtp(out, in, offset ? &o : NULL, count);
    if (offset)
        *offset = (off_t)o;
    return r;
}

SG_EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
                         unsigned flags)
{
    if (SG_LIKELY(!sg_fd_tracked(in) && !sg_fd_tracked(out)))
        return REAL(splice)(in, off_in, out, off_out, len, flags);
    if (sg_fd_tracked(out) && plaintext_socket(out))
        return copy_to_smtp(out, in, off_in, len);
    if (sg_fd_tracked(in) && plaintext_socket(in))
        return copy_from_smtp(out, off_out, in, len);
    return REAL(splice)(in, off_in, out, off_out, len, flags);
}

/* pwritev2 with offset -1 on a socket is writev with flags. */
SG_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(pwritev2)(fd, iov, iovcnt, off, flags);
    if (sg_classify(fd) != 0 || sg_guard_before_send(fd, iov, iovcnt) != 0)
        return -1;
    ssize_t r = REAL(pwritev2)(fd, iov, iovcnt, off, flags);
    if (r > 0)
        sg_guard_sent(fd, iov, iovcnt, (size_t)r);
    return r;
}

SG_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off64_t off,
                              int flags)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(pwritev64v2)(fd, iov, iovcnt, off, flags);
    if (sg_classify(fd) != 0 || sg_guard_before_send(fd, iov, iovcnt) != 0)
        return -1;
    ssize_t r = REAL(pwritev64v2)(fd, iov, iovcnt, off, flags);
    if (r > 0)
        sg_guard_sent(fd, iov, iovcnt, (size_t)r);
    return r;
}

static ssize_t observed(int fd, const struct iovec *iov, int iovcnt, ssize_t r)
{
    if (r <= 0 || !sg_fd_tracked(fd))
        return r;
    return sg_guard_received(fd, iov, iovcnt, (size_t)r) == 0 ? r : -1;
}

SG_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(preadv2)(fd, iov, iovcnt, off, flags);
    if (sg_classify(fd) != 0)
        return -1;
    return observed(fd, iov, iovcnt, REAL(preadv2)(fd, iov, iovcnt, off, flags));
}

SG_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int iovcnt, off64_t off,
                             int flags)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(preadv64v2)(fd, iov, iovcnt, off, flags);
    if (sg_classify(fd) != 0)
        return -1;
    return observed(fd, iov, iovcnt, REAL(preadv64v2)(fd, iov, iovcnt, off, flags));
}

/* One message at a time through the guarded sendmsg: the first refused
 * message ends the batch. */
SG_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)) && !(flags & MSG_FASTOPEN))
        return REAL(sendmmsg)(fd, vec, vlen, flags);
    unsigned i = 0;
    for (; i < vlen; i++) {
        ssize_t r = sg_guarded_sendmsg(fd, &vec[i].msg_hdr, flags);
        if (r < 0)
            return i ? (int)i : -1;
        vec[i].msg_len = (unsigned)r;
    }
    return (int)i;
}

/* Each message received is shown to the reply tracker in order; one refused
 * fails the call (the socket is shut). */
SG_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags,
                       struct timespec *timeout)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
    if (sg_classify(fd) != 0)
        return -1;
    if (SG_UNLIKELY(flags & MSG_TRUNC) && vlen > 0 && sg_conn_peek(fd)) {
        /* TCP drops these bytes uncopied: one message, through recvmsg's
         * discard (guard_io.c), so the guard sees them. */
        ssize_t one = recvmsg(fd, &vec[0].msg_hdr, flags & ~MSG_WAITFORONE);
        if (one < 0)
            return -1;
        vec[0].msg_len = (unsigned)one;
        return 1;
    }
    int r = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
    for (int i = 0; i < r; i++) {
        struct msghdr *m = &vec[i].msg_hdr;
        if (m->msg_controllen >= sizeof(struct cmsghdr))
            sg_adopt_rights(m);
        if (!(flags & MSG_PEEK) && sg_fd_tracked(fd) &&
            sg_guard_received(fd, m->msg_iov, (int)m->msg_iovlen, vec[i].msg_len) != 0)
            return -1;
    }
    return r;
}

/* glibc's dprintf writes with its internal write(): format here, send
 * through the guard. */
static int format_and_send(int fd, const char *fmt, va_list ap)
{
    char small[1024], *buf = small;
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(small, sizeof small, fmt, aq);
    va_end(aq);
    if (n < 0)
        return n;
    if ((size_t)n >= sizeof small) {
        if (!(buf = malloc((size_t)n + 1))) {
            errno = ENOMEM;
            return -1;
        }
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
    }
    ssize_t w = write_all(fd, buf, (size_t)n);
    if (buf != small)
        free(buf);
    return w == n ? n : -1;
}

SG_EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(vdprintf)(fd, fmt, ap);
    return format_and_send(fd, fmt, ap);
}

SG_EXPORT int dprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = sg_fd_tracked(fd) ? format_and_send(fd, fmt, ap) : REAL(vdprintf)(fd, fmt, ap);
    va_end(ap);
    return r;
}

/* _FORTIFY_SOURCE builds call these. */
SG_EXPORT int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
    if (SG_LIKELY(!sg_fd_tracked(fd)))
        return REAL(__vdprintf_chk)(fd, flag, fmt, ap);
    return format_and_send(fd, fmt, ap);
}

SG_EXPORT int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = sg_fd_tracked(fd) ? format_and_send(fd, fmt, ap)
                              : REAL(__vdprintf_chk)(fd, flag, fmt, ap);
    va_end(ap);
    return r;
}
