/* SMTP sockets that come across exec (a wrapper connects, then execs the
 * mailer with the descriptor, maybe as its standard output) are not seen by
 * connect: find them when the library loads. Cheap for everyone: descriptors
 * 0-2, then from 3 up until a run of closed ones, are probed with a raw fstat
 * (reading /proc/self/fd cost more than the whole probe at every exec), and
 * one raw poll() looks past the gap up to descriptor 63; the policy is read
 * only when an inherited TCP socket to an SMTP port exists. */
#include <errno.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"
#include "rawsys.h"

#define GAP 16   /* closed descriptors in a row that end the probe */
#define TABLE 64 /* the kernel's first descriptor table size (NR_OPEN_DEFAULT) */

static void adopt_if_socket(int fd)
{
    struct stat st;
    if (sg_raw_fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
        sg_adopt(fd); /* refused (shut) if it cannot be guarded; keeps errno */
}

/* Past the gap, up to the kernel's first descriptor table size: one poll()
 * says which are open (a closed one is POLLNVAL). A descriptor above that
 * after a gap is not found (README: what it does not protect). */
static void beyond_the_gap(int from)
{
    struct pollfd p[TABLE];
    int n = 0;
    for (int fd = from; fd < TABLE; fd++)
        p[n++] = (struct pollfd){.fd = fd};
    if (n == 0 || sg_raw_poll(p, (unsigned)n) < 0)
        return;
    for (int i = 0; i < n; i++)
        if (!(p[i].revents & POLLNVAL))
            adopt_if_socket(p[i].fd);
}

__attribute__((constructor)) static void inherit_scan(void)
{
    struct stat st;
    /* 0-2 too: a socket as standard output is a road (std_streams.c). They
     * do not count towards the gap. */
    for (int fd = 0; fd < 3; fd++)
        adopt_if_socket(fd);
    int fd = 3;
    for (int closed = 0; fd < SG_FD_CAP && closed < GAP; fd++) {
        if (sg_raw_fstat(fd, &st) != 0) {
            closed++;
            continue;
        }
        closed = 0;
        if (S_ISSOCK(st.st_mode))
            sg_adopt(fd);
    }
    beyond_the_gap(fd);
    sg_guard_std_streams();
}
