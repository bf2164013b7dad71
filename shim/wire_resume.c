/* A small table, replaced oldest first: a token that fell out of it only
 * means that resumption is judged as unverified (fail closed). Tokens are
 * kept whole and compared exactly: nothing to collide. A man in the middle
 * cannot complete a resumption without the session's secret, which only the
 * verified server and the program hold. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "locks.h"
#include "wire_resume.h"

#define ENTRIES 32
#define LIFETIME 3600 /* seconds a token is honoured after the verified handshake */

struct entry {
    time_t until;
    int port;
    char host[SG_HOST_MAX];
    struct sg_wire_token token;
};

static struct entry table[ENTRIES] SG_TABLE;
static unsigned next;

static int usable(const struct sg_wire_token *t)
{
    return t->len > 0 && t->len <= SG_WIRE_TOKEN_MAX;
}

static int same(const struct entry *e, const struct sg_wire_token *tok,
                const struct sg_target *t, time_t now)
{
    return e->until > now && e->port == t->port && strcmp(e->host, t->host) == 0 &&
           e->token.len == tok->len && memcmp(e->token.data, tok->data, tok->len) == 0;
}

static void put(const struct sg_wire_token *tok, const struct sg_target *t, time_t now)
{
    if (!usable(tok))
        return;
    struct entry *e = &table[next++ % ENTRIES];
    e->until = now + LIFETIME;
    e->port = t->port;
    memcpy(e->host, t->host, sizeof e->host);
    e->token.len = tok->len;
    memcpy(e->token.data, tok->data, tok->len);
}

void sg_wire_resume_remember(const struct sg_wire *w, const struct sg_target *t)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&sg_lock_wire);
    put(&w->server_sid, t, now);
    put(&w->new_ticket, t, now);
    pthread_mutex_unlock(&sg_lock_wire);
}

static int known(const struct sg_wire_token *tok, const struct sg_target *t, time_t now)
{
    for (int i = 0; usable(tok) && i < ENTRIES; i++)
        if (same(&table[i], tok, t, now))
            return 1;
    return 0;
}

int sg_wire_resume_known(const struct sg_wire *w, const struct sg_target *t)
{
    time_t now = time(NULL);
    const struct sg_wire_token *sid = &w->server_sid;
    int echoed = usable(sid) && sid->len == w->client_sid.len &&
                 memcmp(sid->data, w->client_sid.data, sid->len) == 0;
    pthread_mutex_lock(&sg_lock_wire);
    int ok = known(&w->client_ticket, t, now) || (echoed && known(sid, t, now));
    pthread_mutex_unlock(&sg_lock_wire);
    return ok;
}
