/* What priority a GnuTLS program chose for each session, learned where it
 * is set: gnutls_priority_set_direct, gnutls_set_default_priority(_append),
 * and gnutls_priority_set with a cache whose string gnutls_priority_init(2)
 * was given. GnuTLS has no getter for a session's priority, and the policy
 * must narrow the program's choice, never replace it (gnutls_narrow.c).
 *
 * Only the program's own calls count: GnuTLS calls these entry points
 * itself (gnutls_priority_set_direct is gnutls_priority_init, _set and
 * _deinit through its PLT; gnutls_deinit drops its cache), also under the
 * shim's narrowing, which calls GnuTLS's functions directly. A call from
 * inside the library is passed on untouched.
 *
 * Two fixed tables (ring.h), sessions and caches, the keys apart from the
 * texts; no allocation; a slot freed (gnutls_deinit, gnutls_priority_deinit)
 * is taken again first. A full table overwrites its oldest entry: that
 * session (or cache) is then unknown and gets the policy's own string, the
 * strict answer, never another's choice. */
#include <pthread.h>
#include <string.h>

#include "gnutls_prio.h"
#include "locks.h"
#include "policy.h"
#include "real.h"
#include "ring.h"

#define CALLER __builtin_return_address(0)
#define SESSIONS 256 /* live sessions that set a priority (servers' too) */
#define CACHES 64    /* live priority caches */

struct table {
    const void **key; /* a scan reads 8 bytes a slot */
    struct sg_gnutls_prio *prio;
    unsigned cap;
    struct sg_ring *ring;
    unsigned *used;
};

static const void *session_key[SESSIONS] SG_TABLE, *cache_key[CACHES] SG_TABLE;
static struct sg_gnutls_prio session_prio[SESSIONS] SG_TABLE, cache_prio[CACHES] SG_TABLE;
static struct sg_ring session_ring, cache_ring;
static unsigned sessions_used, caches_used;

/* Built on the stack: a static one would need relocations at every exec. */
#define SESSIONS_TABLE {session_key, session_prio, SESSIONS, &session_ring, &sessions_used}
#define CACHES_TABLE {cache_key, cache_prio, CACHES, &cache_ring, &caches_used}

static int find_locked(const struct table *t, const void *key)
{
    for (unsigned i = 0; i < t->ring->filled; i++)
        if (t->key[i] == key)
            return (int)i;
    return -1;
}

static void drop_locked(const struct table *t, const void *key)
{
    int i = find_locked(t, key);
    if (i >= 0) {
        t->key[i] = NULL;
        (*t->used)--;
    }
}

/* key's priority is now (def, text); text NULL is "". A text too long to
 * keep makes key unknown. */
static void put_locked(const struct table *t, const void *key, int def, const char *text)
{
    size_t n = text ? strnlen(text, SG_PRIO_MAX) : 0;
    if (n >= SG_PRIO_MAX) {
        drop_locked(t, key);
        return;
    }
    int i = find_locked(t, key), fresh = 0;
    if (i < 0 && *t->used < t->ring->filled) /* a freed slot first: no live entry is lost */
        i = find_locked(t, NULL);
    if (i < 0) {
        unsigned filled = t->ring->filled;
        i = (int)sg_ring_take(t->ring, t->cap);
        fresh = (unsigned)i >= filled; /* never written: not read (ring.h) */
    }
    if (fresh || t->key[i] != key) {
        *t->used += fresh || t->key[i] == NULL;
        t->key[i] = key;
    }
    t->prio[i].def = def;
    memcpy(t->prio[i].text, text ? text : "", n);
    t->prio[i].text[n] = 0;
}

static void put(const struct table *t, const void *key, int def, const char *text)
{
    pthread_mutex_lock(&sg_lock_tls);
    put_locked(t, key, def, text);
    pthread_mutex_unlock(&sg_lock_tls);
}

static void drop(const struct table *t, const void *key)
{
    if (!__atomic_load_n(t->used, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&sg_lock_tls);
    drop_locked(t, key);
    pthread_mutex_unlock(&sg_lock_tls);
}

/* The session now has the cache's priority, or an unknown one. */
static void session_from_cache(gnutls_session_t s, gnutls_priority_t c)
{
    const struct table sessions = SESSIONS_TABLE, caches = CACHES_TABLE;
    pthread_mutex_lock(&sg_lock_tls);
    int i = find_locked(&caches, c);
    if (i >= 0)
        put_locked(&sessions, s, caches.prio[i].def, caches.prio[i].text);
    else
        drop_locked(&sessions, s);
    pthread_mutex_unlock(&sg_lock_tls);
}

int sg_gnutls_prio_of(gnutls_session_t s, struct sg_gnutls_prio *out)
{
    const struct table sessions = SESSIONS_TABLE;
    pthread_mutex_lock(&sg_lock_tls);
    int i = find_locked(&sessions, s);
    if (i >= 0)
        *out = sessions.prio[i];
    pthread_mutex_unlock(&sg_lock_tls);
    return i >= 0;
}

void sg_gnutls_prio_forget(gnutls_session_t s)
{
    const struct table sessions = SESSIONS_TABLE;
    drop(&sessions, s);
}

/* The program called (not GnuTLS itself, nor the shim's narrowing). */
static int by_program(const struct sg_gnutls *g, const void *ret)
{
    return !sg_lib_holds(&g->lib, ret);
}

static void keep_session(const struct sg_gnutls *g, const void *ret, gnutls_session_t s,
                         int def, const char *text)
{
    const struct table sessions = SESSIONS_TABLE;
    if (by_program(g, ret))
        put(&sessions, s, def, text);
}

static void keep_cache(const struct sg_gnutls *g, const void *ret, gnutls_priority_t c, int def,
                       const char *text)
{
    const struct table caches = CACHES_TABLE;
    if (by_program(g, ret))
        put(&caches, c, def, text);
}

SG_EXPORT int gnutls_priority_set_direct(gnutls_session_t s, const char *prio, const char **err)
{
    const char *sym = "gnutls_priority_set_direct";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_priority_set_direct))
        SG_GNUTLS_PASS_ON(gnutls_priority_set_direct, GNUTLS_E_INTERNAL_ERROR, s, prio, err);
    int r = g->gnutls_priority_set_direct(s, prio, err);
    if (r == 0)
        keep_session(g, CALLER, s, prio == NULL, prio);
    return r;
}

SG_EXPORT int gnutls_priority_set(gnutls_session_t s, gnutls_priority_t c)
{
    const char *sym = "gnutls_priority_set";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_priority_set))
        SG_GNUTLS_PASS_ON(gnutls_priority_set, GNUTLS_E_INTERNAL_ERROR, s, c);
    int r = g->gnutls_priority_set(s, c);
    if (r == 0 && by_program(g, CALLER))
        session_from_cache(s, c);
    return r;
}

SG_EXPORT int gnutls_set_default_priority(gnutls_session_t s)
{
    const char *sym = "gnutls_set_default_priority";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_set_default_priority))
        SG_GNUTLS_PASS_ON(gnutls_set_default_priority, GNUTLS_E_INTERNAL_ERROR, s);
    int r = g->gnutls_set_default_priority(s);
    if (r == 0)
        keep_session(g, CALLER, s, 1, NULL);
    return r;
}

SG_EXPORT int gnutls_set_default_priority_append(gnutls_session_t s, const char *add,
                                                 const char **err, unsigned flags)
{
    const char *sym = "gnutls_set_default_priority_append";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_set_default_priority_append))
        SG_GNUTLS_PASS_ON(gnutls_set_default_priority_append, GNUTLS_E_INTERNAL_ERROR, s, add, err,
                          flags);
    int r = g->gnutls_set_default_priority_append(s, add, err, flags);
    if (r == 0)
        keep_session(g, CALLER, s, 1, add);
    return r;
}

SG_EXPORT int gnutls_priority_init(gnutls_priority_t *c, const char *prio, const char **err)
{
    const char *sym = "gnutls_priority_init";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_priority_init))
        SG_GNUTLS_PASS_ON(gnutls_priority_init, GNUTLS_E_INTERNAL_ERROR, c, prio, err);
    int r = g->gnutls_priority_init(c, prio, err);
    if (r == 0 && c)
        keep_cache(g, CALLER, *c, prio == NULL, prio);
    return r;
}

SG_EXPORT int gnutls_priority_init2(gnutls_priority_t *c, const char *prio, const char **err,
                                    unsigned flags)
{
    const char *sym = "gnutls_priority_init2";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_priority_init2))
        SG_GNUTLS_PASS_ON(gnutls_priority_init2, GNUTLS_E_INTERNAL_ERROR, c, prio, err, flags);
    int r = g->gnutls_priority_init2(c, prio, err, flags);
    if (r == 0 && c)
        keep_cache(g, CALLER, *c, prio == NULL || (flags & GNUTLS_PRIORITY_INIT_DEF_APPEND),
                   prio);
    return r;
}

SG_EXPORT void gnutls_priority_deinit(gnutls_priority_t c)
{
    const char *sym = "gnutls_priority_deinit";
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, sym);
    if (SG_UNLIKELY(!g || !g->gnutls_priority_deinit)) {
        __typeof__(gnutls_priority_deinit) *next =
            (__typeof__(gnutls_priority_deinit) *)sg_gnutls_next(CALLER, sym);
        if (next)
            next(c);
        return;
    }
    /* GnuTLS's own calls drop a session's reference; the program's handle lives on. */
    if (by_program(g, CALLER)) {
        const struct table caches = CACHES_TABLE;
        drop(&caches, c);
    }
    g->gnutls_priority_deinit(c);
}
