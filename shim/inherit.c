/* SMTP sockets that come across exec (a wrapper connects, then execs the
 * mailer with the descriptor) are not seen by connect: find them when the
 * library loads. Cheap for everyone: descriptors from 3 up are probed with
 * fstat until a run of closed ones (reading /proc/self/fd cost more than the
 * whole probe at every exec); the policy is read only when an inherited TCP
 * socket to an SMTP port exists. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"

#define GAP 16 /* closed descriptors in a row that end the probe */

__attribute__((constructor)) static void inherit_scan(void)
{
    int saved = errno;
    struct stat st;
    for (int fd = 3, closed = 0; fd < SG_FD_CAP && closed < GAP; fd++) {
        if (fstat(fd, &st) != 0) {
            closed++;
            continue;
        }
        closed = 0;
        if (S_ISSOCK(st.st_mode))
            sg_adopt(fd); /* refused (shut) if it cannot be guarded */
    }
    errno = saved;
}
