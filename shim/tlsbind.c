/* The table of hooked sessions in handshake. Small and fixed: an entry lives
 * from a session's first handshake call to its verdict, so it holds only the
 * handshakes under way at once; when full, the caller refuses (fail closed).
 * An entry whose session vanished mid-handshake (freed without finishing)
 * is taken over once it has been idle for STALE seconds. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fdstate.h"
#include "locks.h"
#include "tlsbind.h"

#define CLAIMS 256
#define STALE 60

struct claim {
    void *session;      /* NULL: free */
    void *lib;
    sg_random_fn fn;
    int known;          /* random holds the session's client random */
    int inside;         /* threads inside a real handshake call for it */
    int unbound;        /* no descriptor of its own: keeps a snapshot (awaiting) */
    time_t touched;
    int fd;             /* the socket its ClientHello left by, -1 until then */
    struct sg_conn *conn; /* that socket's record, to catch a number reused */
    unsigned char random[SG_RANDOM_LEN];
    /* The SMTP connections that waited for a ClientHello when the session made
     * its own: only they can have carried it (programs connect, and read the
     * 220 reply to STARTTLS, before they start TLS). */
    unsigned char awaiting[SG_CONN_MAX / 8];
};

static struct claim claims[CLAIMS] SG_TABLE;
static int used; /* entries in use, for a quick "none" without the lock */
static int top;  /* entries [top, CLAIMS) have never been used: scans stop there */

static time_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static int nonzero(const unsigned char *r)
{
    for (int i = 0; i < SG_RANDOM_LEN; i++)
        if (r[i])
            return 1;
    return 0;
}

static int waiting(struct sg_conn *c)
{
    return __atomic_load_n(&c->refs, __ATOMIC_RELAXED) &&
           __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE) == SG_TLS_WANTED;
}

static void snapshot(unsigned char *mask)
{
    memset(mask, 0, SG_CONN_MAX / 8);
    if (!__atomic_load_n(&sg_conn_active, __ATOMIC_RELAXED))
        return;
    for (int i = 0; i < SG_CONN_MAX; i++)
        if (waiting(&sg_conn_pool[i]))
            mask[i / 8] |= (unsigned char)(1u << (i % 8));
}

/* Ask the session for its random (only while it cannot be freed: inside a
 * handshake call, or from its own thread). */
static void refresh(struct claim *e)
{
    unsigned char r[SG_RANDOM_LEN];
    int was = e->known;
    e->known = e->fn(e->lib, e->session, r) && nonzero(r);
    if (!e->known || (was && memcmp(e->random, r, sizeof r) == 0))
        return;
    memcpy(e->random, r, sizeof r);
    if (e->unbound)
        snapshot(e->awaiting); /* its ClientHello was just made */
}

static struct claim *find(void *session)
{
    if (!session) { /* a free entry: a freed one, else the first never used (not read) */
        for (int i = 0; i < top; i++)
            if (!claims[i].session)
                return &claims[i];
        return top < CLAIMS ? &claims[top] : NULL;
    }
    for (int i = 0; i < top; i++)
        if (claims[i].session == session)
            return &claims[i];
    return NULL;
}

static struct claim *take(time_t t)
{
    struct claim *e = find(NULL);
    for (int i = 0; !e && i < CLAIMS; i++)
        if (!claims[i].inside && t - claims[i].touched > STALE)
            e = &claims[i];
    if (e && (e - claims >= top || !e->session))
        __atomic_add_fetch(&used, 1, __ATOMIC_RELAXED);
    if (e && e - claims >= top)
        top = (int)(e - claims) + 1;
    return e;
}

/* A forked child has only the thread that forked: no other is inside a
 * handshake call, and their entries may be taken over once stale. Called by
 * locks.c's child handler (one registration at load, not two). */
void sg_bind_forked(void)
{
    for (int i = 0; i < top; i++)
        claims[i].inside = 0;
}

int sg_bind_enter(void *session, void *lib, sg_random_fn fn, int unbound)
{
    time_t t = now();
    pthread_mutex_lock(&sg_lock_bind);
    struct claim *e = find(session);
    if (!e && (e = take(t)) != NULL) {
        memset(e, 0, sizeof *e);
        e->session = session;
        e->fd = -1;
    }
    if (e) {
        e->lib = lib;
        e->fn = fn;
        e->unbound = unbound;
        e->inside++;
        e->touched = t;
        refresh(e); /* a new session at a freed one's address starts with none */
    }
    pthread_mutex_unlock(&sg_lock_bind);
    return e ? (int)(e - claims) : -1;
}

void sg_bind_leave(int slot, void *session)
{
    if (slot < 0 || slot >= CLAIMS)
        return;
    pthread_mutex_lock(&sg_lock_bind);
    struct claim *e = &claims[slot];
    if (e->session == session) {
        refresh(e);
        e->inside--;
        e->touched = now();
    }
    pthread_mutex_unlock(&sg_lock_bind);
}

int sg_bind_end(void *session)
{
    if (!session || !__atomic_load_n(&used, __ATOMIC_RELAXED))
        return 0;
    pthread_mutex_lock(&sg_lock_bind);
    struct claim *e = find(session);
    if (e) {
        memset(e, 0, sizeof *e);
        __atomic_sub_fetch(&used, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&sg_lock_bind);
    return e != NULL;
}

int sg_bind_claimed(const unsigned char random[SG_RANDOM_LEN], int fd)
{
    int yes = 0;
    pthread_mutex_lock(&sg_lock_bind);
    for (int i = 0; i < top && !yes; i++) {
        struct claim *e = &claims[i];
        if (!e->session)
            continue;
        if (!e->known && e->inside) /* its handshake call has not returned yet */
            refresh(e);
        yes = e->known && memcmp(e->random, random, SG_RANDOM_LEN) == 0;
        if (yes) {
            e->fd = fd;
            e->conn = sg_conn_peek(fd);
        }
    }
    pthread_mutex_unlock(&sg_lock_bind);
    return yes;
}

int sg_bind_session_socket(void *session)
{
    int fd = -1;
    if (!session || !__atomic_load_n(&used, __ATOMIC_RELAXED))
        return -1;
    pthread_mutex_lock(&sg_lock_bind);
    struct claim *e = find(session);
    if (e && e->fd >= 0 && e->conn && sg_conn_peek(e->fd) == e->conn)
        fd = e->fd;
    pthread_mutex_unlock(&sg_lock_bind);
    return fd;
}

int sg_bind_socket(const unsigned char random[SG_RANDOM_LEN])
{
    int fd = -1;
    if (!nonzero(random) || !__atomic_load_n(&sg_conn_active, __ATOMIC_RELAXED))
        return -1;
    pthread_mutex_lock(&sg_lock_fd);
    for (int i = 0; i < SG_CONN_MAX && fd < 0; i++) {
        struct sg_conn *c = &sg_conn_pool[i];
        if (c->refs && __atomic_load_n(&c->hello.state, __ATOMIC_ACQUIRE) == SG_HELLO_DONE &&
            memcmp(sg_hello_random(&c->hello), random, SG_RANDOM_LEN) == 0 &&
            sg_conn_peek(c->hello_fd) == c)
            fd = c->hello_fd;
    }
    pthread_mutex_unlock(&sg_lock_fd);
    return fd;
}

/* A connection in mask still waiting for its ClientHello, not in mode off:
 * 1 and its target. */
static int awaiting(const unsigned char *mask, struct sg_target *t)
{
    struct sg_conn copy;
    int found = 0;
    if (!__atomic_load_n(&sg_conn_active, __ATOMIC_RELAXED))
        return 0;
    for (int i = 0; i < SG_CONN_MAX && !found; i++) {
        struct sg_conn *c = &sg_conn_pool[i];
        if (!(mask[i / 8] >> (i % 8) & 1) || !waiting(c))
            continue;
        pthread_mutex_lock(&sg_lock_fd);
        found = waiting(c);
        if (found)
            copy = *c;
        pthread_mutex_unlock(&sg_lock_fd);
        found = found && sg_target_conn(&copy, -1, NULL, t) && t->mode != SG_MODE_OFF;
    }
    return found;
}

int sg_bind_unidentified(void *session, struct sg_target *t, char *detail, size_t len)
{
    unsigned char mask[SG_CONN_MAX / 8];
    memset(mask, 0xff, sizeof mask); /* not claimed: any waiting connection counts */
    pthread_mutex_lock(&sg_lock_bind);
    struct claim *e = find(session);
    if (e && e->known)
        memcpy(mask, e->awaiting, sizeof mask);
    pthread_mutex_unlock(&sg_lock_bind);
    if (!awaiting(mask, t))
        return 1;
    snprintf(detail, len, "a handshake completed whose ClientHello no SMTP socket carried, "
             "while this connection still waits for one");
    return 0;
}
