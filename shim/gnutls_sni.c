/* gnutls_server_name_set: a small table of the names
 * client sessions were given, keyed by session, an entry dying with its
 * session (a new session at a freed one's address must not inherit it). */
#include <pthread.h>
#include <string.h>

#include "gnutls_api.h"
#include "gnutls_sni.h"
#include "locks.h"
#include "policy.h"
#include "real.h"
#include "ring.h"

#define CALLER __builtin_return_address(0)
/* As many as SMTP connections the shim tracks (SG_CONN_MAX); sessions leave
 * at gnutls_deinit, so only a program holding more live sessions that set a
 * name than that overwrites one (see remember). The sessions are apart from
 * the names: a scan reads 8 bytes a slot (ring.h). */
#define SLOTS 1024

static gnutls_session_t session[SLOTS] SG_TABLE;
static char names[SLOTS][SG_HOST_MAX] SG_TABLE;
static struct sg_ring ring;
static unsigned used;

static void forget_locked(gnutls_session_t s)
{
    for (unsigned i = 0; i < ring.filled; i++)
        if (session[i] == s) {
            session[i] = NULL;
            used--;
        }
}

/* A full table overwrites its oldest entry: that session then has no
 * name here and is judged as if it set none (never under another's name). */
static void remember(gnutls_session_t s, const void *name, size_t len)
{
    if (!name || len == 0 || len >= SG_HOST_MAX || memchr(name, 0, len))
        return;
    pthread_mutex_lock(&sg_lock_tls);
    forget_locked(s);
    unsigned filled = ring.filled, i = sg_ring_take(&ring, SLOTS);
    used += i >= filled || session[i] == NULL; /* a slot never written is not read (ring.h) */
    session[i] = s;
    memcpy(names[i], name, len);
    names[i][len] = 0;
    pthread_mutex_unlock(&sg_lock_tls);
}

int sg_gnutls_sni(gnutls_session_t s, char *out, size_t len)
{
    int found = 0;
    pthread_mutex_lock(&sg_lock_tls);
    for (unsigned i = 0; i < ring.filled && !found; i++)
        if (session[i] == s && strlen(names[i]) < len) {
            strcpy(out, names[i]);
            found = 1;
        }
    pthread_mutex_unlock(&sg_lock_tls);
    return found;
}

SG_EXPORT int gnutls_server_name_set(gnutls_session_t s, gnutls_server_name_type_t type,
                                     const void *name, size_t len)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_server_name_set");
    if (SG_UNLIKELY(!g || !g->gnutls_server_name_set))
        return GNUTLS_E_INTERNAL_ERROR;
    int r = g->gnutls_server_name_set(s, type, name, len);
    if (r == 0 && type == GNUTLS_NAME_DNS)
        remember(s, name, len);
    return r;
}

void sg_gnutls_sni_forget(gnutls_session_t s)
{
    if (__atomic_load_n(&used, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&sg_lock_tls);
        forget_locked(s);
        pthread_mutex_unlock(&sg_lock_tls);
    }
}
