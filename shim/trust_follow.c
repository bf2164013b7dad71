/* The generations of the policy's trust-store paths (trust_follow.h) and the
 * indexes of ca_file bundles, one per path and generation. Paths are policy
 * strings (frozen): their addresses are their identities. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "locks.h"
#include "trust_follow.h"
#include "trust_index.h"

#define MAX_PATHS 16   /* paths followed; others keep their first store */

struct id {
    int found;
    struct stat st;
};

static struct path { /* under sg_lock_tls */
    const char *path;
    struct id id;
    unsigned gen, changes;
    const struct sg_trust_index *x; /* ca_file: the index of generation x_gen */
    unsigned x_gen;
    int x_built;
} paths[MAX_PATHS];
static int frozen;

static void id_of(const char *path, struct id *id)
{
    memset(id, 0, sizeof *id);
    id->found = stat(path, &id->st) == 0;
}

static int same(const struct id *a, const struct id *b)
{
    return a->found == b->found && (!a->found || sg_same_file(&a->st, &b->st));
}

/* The record of path, made on first sight with id (or a stat when id is
 * NULL); NULL when the table is full. */
static struct path *record(const char *path, const struct id *id)
{
    int i = 0;
    while (i < MAX_PATHS && paths[i].path && paths[i].path != path)
        i++;
    if (i == MAX_PATHS)
        return NULL;
    struct path *p = &paths[i];
    if (!p->path) {
        if (id)
            p->id = *id;
        else
            id_of(path, &p->id);
        p->path = path, p->gen = 1;
    }
    return p;
}

/* *lost: the file differs from the newest store and no new one may be built. */
static unsigned gen_of(const char *path, const struct id *now, int *lost)
{
    struct path *p = path && *path ? record(path, now) : NULL;
    if (!p)
        return 0;
    if (now && !same(now, &p->id) && !frozen) {
        if (p->changes < SG_TRUST_CHANGES)
            p->id = *now, p->gen++, p->changes++;
        else if (lost)
            *lost = 1;
    }
    return p->gen;
}

/* Past the bound, a ca_file replaced by the very bytes its newest store was
 * built from (update-ca-certificates moves a new file into place at every
 * run, changed or not) is no change: its identity is taken, nothing lost.
 * The newest store's index holds those bytes (read into memory past the
 * bound, sg_trust_index_get). Compared outside the lock. */
static int same_content(const char *ca_file)
{
    pthread_mutex_lock(&sg_lock_tls);
    struct path *p = record(ca_file, NULL);
    const struct sg_trust_index *x = p && p->x_built && p->x_gen == p->gen ? p->x : NULL;
    pthread_mutex_unlock(&sg_lock_tls);
    struct id now = {1, {0}};
    if (!sg_trust_index_same_text(x, ca_file, &now.st))
        return 0;
    pthread_mutex_lock(&sg_lock_tls);
    if (p->x == x)
        p->id = now;
    pthread_mutex_unlock(&sg_lock_tls);
    return 1;
}

unsigned sg_trust_follow(const char *ca_file, const char *ca_path, int *lost)
{
    struct id f = {0}, d = {0};
    int now = !__atomic_load_n(&frozen, __ATOMIC_RELAXED), lost_file = 0, lost_dir = 0;
    if (now && ca_file && *ca_file)
        id_of(ca_file, &f); /* outside the lock: a slow file system stalls no one else */
    if (now && ca_path && *ca_path)
        id_of(ca_path, &d);
    pthread_mutex_lock(&sg_lock_tls);
    unsigned g = gen_of(ca_file, now ? &f : NULL, &lost_file) +
                 gen_of(ca_path, now ? &d : NULL, &lost_dir);
    pthread_mutex_unlock(&sg_lock_tls);
    if (lost)
        *lost = lost_dir || (lost_file && !same_content(ca_file));
    return g;
}

unsigned sg_trust_generation(const char *ca_file, const char *ca_path)
{
    return gen_of(ca_file, NULL, NULL) + gen_of(ca_path, NULL, NULL);
}

void sg_trust_freeze(void)
{
    pthread_mutex_lock(&sg_lock_tls);
    __atomic_store_n(&frozen, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < MAX_PATHS && paths[i].path; i++)
        paths[i].gen++; /* file-backed indexes would read paths that now mean other files */
    pthread_mutex_unlock(&sg_lock_tls);
}

const struct sg_trust_index *sg_trust_index_get(const char *ca_file)
{
    if (!ca_file || !*ca_file || secure_getenv("SMTPGUARD_EAGER_TRUST"))
        return NULL; /* the variable: for comparing both ways (tests, diagnosis) */
    struct path *p = record(ca_file, NULL);
    if (!p)
        return NULL; /* more paths than followed: loaded the eager way */
    if (!p->x_built || p->x_gen != p->gen) {
        /* The index of an older generation stays allocated: a store that
         * another thread is verifying with may point to it. */
        /* In memory when the path will not be followed any more: a
         * file-backed index of a file that changes again would lose every
         * anchor, and same_content compares a replaced file with this text. */
        /* The identity of this generation, taken by the follow that made
         * it (or by record): the index describes the very file the
         * generation stands for, and the file is not stat'd twice. */
        p->x = sg_trust_index_open(ca_file, frozen || p->changes >= SG_TRUST_CHANGES,
                                   p->id.found ? &p->id.st : NULL);
        p->x_gen = p->gen, p->x_built = 1; /* NULL is remembered too */
    }
    return p->x;
}
