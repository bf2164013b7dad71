/* The descriptor table and the connection pool. Writers (connect, close, dup)
 * take one mutex; readers of the table take none. A connection record is
 * shared by every descriptor that refers to the same socket (dup) and freed
 * with the last of them. */
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "fdstate.h"
#include "locks.h"
#include "smtp_seen.h"

unsigned short sg_fdtab[SG_FD_CAP] SG_TABLE;
/* Page-aligned: slot 0, the one a process's first connection takes, on one page. */
struct sg_conn sg_conn_pool[SG_CONN_MAX] SG_TABLE __attribute__((aligned(4096)));
int sg_conn_active;
int sg_smtp_seen;
static int pool_used; /* slots ever taken; those past it were never written */
#define pool sg_conn_pool
#define lock sg_lock_fd

static void release(unsigned short slot)
{
    struct sg_conn *c = &pool[slot - 1];
    if (--c->refs == 0) {
        if (c->wire)
            sg_wire_release(c);
        memset(c, 0, sizeof *c);
        __atomic_sub_fetch(&sg_conn_active, 1, __ATOMIC_RELAXED);
    }
}

static void set_slot(int fd, unsigned short slot)
{
    unsigned short old = sg_fdtab[fd];
    __atomic_store_n(&sg_fdtab[fd], slot, __ATOMIC_RELEASE);
    if (old && old < SG_FD_MARKER)
        release(old);
}

/* An IPv4-mapped IPv6 peer (Java connects so to IPv4 servers) is written as
 * the IPv4 address: the form the name memory and the policy know it by. */
static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    int family = sa->sa_family;
    const void *a = &((const struct sockaddr_in *)sa)->sin_addr;
    if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
        a = family == AF_INET ? (const void *)&a6->s6_addr[12] : (const void *)a6;
    }
    if (!inet_ntop(family, a, out, len))
        out[0] = 0;
}

struct sg_conn *sg_conn_open(int fd, const struct sockaddr *addr, socklen_t len, int port)
{
    struct stat st;
    (void)len;
    if ((unsigned)fd >= SG_FD_CAP || fstat(fd, &st) != 0)
        return NULL;
    pthread_mutex_lock(&lock);
    struct sg_conn *c = NULL;
    /* A slot never taken is known free without reading it: a process's first
     * connection writes its slot's page at once (one page fault, not two). */
    for (int i = 0; i < pool_used && !c; i++)
        if (pool[i].refs == 0)
            c = &pool[i];
    if (!c && pool_used < SG_CONN_MAX)
        c = &pool[pool_used++];
    if (c) {
        memset(c, 0, sizeof *c);
        c->refs = 1;
        __atomic_add_fetch(&sg_conn_active, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&sg_smtp_seen, 1, __ATOMIC_RELAXED);
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        c->port = port;
        format_addr(addr, c->addr, sizeof c->addr);
        set_slot(fd, (unsigned short)(c - pool + 1));
    }
    pthread_mutex_unlock(&lock);
    return c;
}

struct sg_conn *sg_conn_get(int fd)
{
    if (!sg_fd_tracked(fd))
        return NULL;
    struct stat st;
    struct sg_conn *c = sg_conn_peek(fd);
    if (!c)
        return NULL; /* a marker: the caller classifies it */
    if (fstat(fd, &st) == 0 && st.st_ino == c->ino && st.st_dev == c->dev)
        return c;
    /* The number now names something else: glibc closed it internally. */
    sg_fd_forget(fd);
    return NULL;
}

void sg_fd_forget(int fd)
{
    if (!sg_fd_tracked(fd))
        return;
    pthread_mutex_lock(&lock);
    set_slot(fd, 0);
    pthread_mutex_unlock(&lock);
}

void sg_fd_forget_range(unsigned first, unsigned last)
{
    if (__atomic_load_n(&sg_conn_active, __ATOMIC_RELAXED) == 0)
        return;
    if (last >= SG_FD_CAP)
        last = SG_FD_CAP - 1;
    for (unsigned fd = first; fd <= last && fd >= first; fd++)
        sg_fd_forget((int)fd);
}

void sg_fd_copy(int oldfd, int newfd)
{
    if ((unsigned)newfd >= SG_FD_CAP)
        return;
    pthread_mutex_lock(&lock);
    unsigned short slot = (unsigned)oldfd < SG_FD_CAP ? sg_fdtab[oldfd] : 0;
    if (slot && slot < SG_FD_MARKER)
        pool[slot - 1].refs++;
    set_slot(newfd, slot);
    pthread_mutex_unlock(&lock);
}

void sg_fd_mark(int fd, unsigned short marker)
{
    unsigned short none = 0;
    if ((unsigned)fd < SG_FD_CAP)
        __atomic_compare_exchange_n(&sg_fdtab[fd], &none, marker, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED);
}

/* Only SG_FD_UNCLASSIFIED is dropped: a record that replaced it meanwhile,
 * and the markers of other parts (0xFF00 up), stay. */
void sg_fd_unmark(int fd)
{
    if ((unsigned)fd >= SG_FD_CAP)
        return;
    unsigned short m = SG_FD_UNCLASSIFIED;
    __atomic_compare_exchange_n(&sg_fdtab[fd], &m, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
