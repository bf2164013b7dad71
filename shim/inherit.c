/* SMTP sockets that come across exec (a wrapper connects, then execs the
 * mailer with the descriptor, maybe as its standard output) are not seen by
 * connect: find them when the library loads. Cheap for everyone: one raw
 * poll() says which of descriptors 0-63 (the kernel's first table) are open
 * (a closed one is POLLNVAL), only those are probed with a raw fstat, and a
 * program whose descriptors run on past 63 is followed with fstat until a run
 * of closed ones (reading /proc/self/fd cost more than all of it); the policy
 * is read only when an inherited TCP socket to an SMTP port exists. */
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

/* Open descriptors among 0..TABLE-1 are probed. Returns how many closed ones
 * end the table (a run shorter than GAP: the scan goes on past it), or -1
 * when poll failed (then everything is probed one by one). */
static int first_table(void)
{
    struct pollfd p[TABLE];
    for (int fd = 0; fd < TABLE; fd++)
        p[fd] = (struct pollfd){.fd = fd};
    if (sg_raw_poll(p, TABLE) < 0)
        return -1;
    int closed = 0;
    for (int fd = 0; fd < TABLE; fd++) {
        if (p[fd].revents & POLLNVAL) {
            closed++;
            continue;
        }
        closed = 0;
        adopt_if_socket(fd);
    }
    return closed;
}

__attribute__((constructor)) static void inherit_scan(void)
{
    struct stat st;
    int closed = first_table(), fd = closed < 0 ? 0 : TABLE;
    for (closed = closed < 0 ? 0 : closed; fd < SG_FD_CAP && closed < GAP; fd++) {
        if (sg_raw_fstat(fd, &st) != 0) {
            closed++;
            continue;
        }
        closed = 0;
        if (S_ISSOCK(st.st_mode))
            sg_adopt(fd);
    }
    sg_guard_std_streams();
}
