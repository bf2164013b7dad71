/* glibc's POSIX AIO writes from its own threads with internal calls a preload
 * never sees. On an SMTP socket each write is judged when it is queued, as
 * write() would judge it; a refused one is not queued (EACCES). For any other
 * descriptor: one branch before the real call. */
#include <aio.h>
#include <errno.h>

#include "classify.h"
#include "guard.h"
#include "real.h"

/* 0: queue it; -1: refused (errno set). Accounted as sent once queued. */
static int judge(const struct aiocb *cb)
{
    int fd = cb->aio_fildes;
    struct iovec iov = {(void *)cb->aio_buf, cb->aio_nbytes};
    return sg_classify(fd) != 0 || sg_guard_before_send(fd, &iov, 1) != 0 ? -1 : 0;
}

static void queued(const struct aiocb *cb)
{
    struct iovec iov = {(void *)cb->aio_buf, cb->aio_nbytes};
    if (sg_fd_tracked(cb->aio_fildes) && cb->aio_nbytes)
        sg_guard_sent(cb->aio_fildes, &iov, 1, cb->aio_nbytes);
}

SG_EXPORT int aio_write(struct aiocb *cb)
{
    if (SG_LIKELY(!sg_fd_tracked(cb->aio_fildes)))
        return REAL(aio_write)(cb);
    if (judge(cb) != 0)
        return -1;
    int r = REAL(aio_write)(cb);
    if (r == 0)
        queued(cb);
    return r;
}

/* The same structure on 64-bit systems; the 64 names reach the same guard. */
SG_EXPORT int aio_write64(struct aiocb64 *cb)
{
    return aio_write((struct aiocb *)cb);
}

static int writes_smtp(struct aiocb *const list[], int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] && list[i]->aio_lio_opcode == LIO_WRITE && sg_fd_tracked(list[i]->aio_fildes))
            return 1;
    return 0;
}

SG_EXPORT int lio_listio(int mode, struct aiocb *const list[], int n, struct sigevent *sig)
{
    if (SG_LIKELY(n <= 0 || !writes_smtp(list, n)))
        return REAL(lio_listio)(mode, list, n, sig);
    for (int i = 0; i < n; i++) /* all judged first: a refusal queues nothing */
        if (list[i] && list[i]->aio_lio_opcode == LIO_WRITE &&
            sg_fd_tracked(list[i]->aio_fildes) && judge(list[i]) != 0)
            return -1;
    int r = REAL(lio_listio)(mode, list, n, sig);
    if (r == 0 || mode == LIO_NOWAIT)
        for (int i = 0; i < n; i++)
            if (list[i] && list[i]->aio_lio_opcode == LIO_WRITE)
                queued(list[i]);
    return r;
}

SG_EXPORT int lio_listio64(int mode, struct aiocb64 *const list[], int n, struct sigevent *sig)
{
    return lio_listio(mode, (struct aiocb *const *)list, n, sig);
}
