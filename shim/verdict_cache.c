/* A small ring under a mutex: only SMTP handshakes come here. Entries match
 * on every field, so no second hash can collide. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "locks.h"
#include "ring.h"
#include "verdict_cache.h"

#define ENTRIES 32

static struct entry {
    unsigned char chain[32];
    char host[SG_HOST_MAX];
    const char *ca_file, *ca_path; /* policy strings: frozen, compared by address */
    unsigned gen;                  /* of the store's files (trust_follow.h) */
    time_t until;
} ring[ENTRIES] SG_TABLE;
static struct sg_ring slots; /* under sg_lock_tls */

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
    /* Only entries ever written (ring.h): a one-message process never reads
     * the ring's pages. */
    for (unsigned i = 0; i < slots.filled && !hit; i++)
        hit = ring[i].until > now && same(&ring[i], chain, t, ca_file, ca_path, gen);
    pthread_mutex_unlock(&sg_lock_tls);
    return hit;
}

void sg_verdict_remember(const unsigned char chain[32], const struct sg_target *t,
                         const char *ca_file, const char *ca_path, unsigned gen)
{
    pthread_mutex_lock(&sg_lock_tls);
    struct entry *e = &ring[sg_ring_take(&slots, ENTRIES)];
    memcpy(e->chain, chain, 32);
    strcpy(e->host, t->host);
    e->ca_file = ca_file;
    e->ca_path = ca_path;
    e->gen = gen;
    e->until = time(NULL) + SG_VERDICT_TTL;
    pthread_mutex_unlock(&sg_lock_tls);
}
