/* A small ring under a mutex: only SMTP handshakes come here. Entries match
 * on every field, so no second hash can collide. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "locks.h"
#include "verdict_cache.h"

#define ENTRIES 32

static struct entry {
    unsigned char chain[32];
    char host[SG_HOST_MAX];
    const char *ca_file, *ca_path; /* policy strings: frozen, compared by address */
    unsigned gen;                  /* of the store's files (trust_follow.h) */
    time_t until;
} ring[ENTRIES] SG_TABLE;
static unsigned next;

static int same(const struct entry *e, const unsigned char chain[32], const struct sg_target *t,
                const char *ca_file, const char *ca_path, unsigned gen)
{
    return e->ca_file == ca_file && e->ca_path == ca_path && e->gen == gen &&
           memcmp(e->chain, chain, 32) == 0 && strcmp(e->host, t->host) == 0;
}

int sg_verdict_cached(const unsigned char chain[32], const struct sg_target *t,
                      const char *ca_file, const char *ca_path, unsigned gen)
{
    time_t now = time(NULL);
    int hit = 0;
    pthread_mutex_lock(&sg_lock_tls);
    /* Only the entries ever written: a process's first lookup reads none of
     * the ring's pages (each first read of one is a page fault, issue 15).
     * next is read as a write: sg_verdict_remember writes it next, and a page
     * first read, then written costs two faults. */
    unsigned n = __atomic_fetch_add(&next, 0, __ATOMIC_RELAXED);
    unsigned used = n < ENTRIES ? n : ENTRIES;
    for (unsigned i = 0; i < used && !hit; i++)
        hit = ring[i].until > now && same(&ring[i], chain, t, ca_file, ca_path, gen);
    pthread_mutex_unlock(&sg_lock_tls);
    return hit;
}

void sg_verdict_remember(const unsigned char chain[32], const struct sg_target *t,
                         const char *ca_file, const char *ca_path, unsigned gen)
{
    pthread_mutex_lock(&sg_lock_tls);
    struct entry *e = &ring[next++ % ENTRIES];
    memcpy(e->chain, chain, 32);
    strcpy(e->host, t->host);
    e->ca_file = ca_file;
    e->ca_path = ca_path;
    e->gen = gen;
    e->until = time(NULL) + SG_VERDICT_TTL;
    pthread_mutex_unlock(&sg_lock_tls);
}
