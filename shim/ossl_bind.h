/* Which socket an OpenSSL session belongs to (tlsbind.c does the binding),
 * and the per-SSL state the handshake driver (ossl_tls.c) keeps: a small
 * tagged integer in the object's own ex_data slot, freed with it. */
#ifndef SG_OSSL_BIND_H
#define SG_OSSL_BIND_H

#include <stdint.h>

#include "ossl.h"
#include "target.h"

enum {
    ST_SEEN = 1,     /* classified */
    ST_SMTP = 2,     /* an SMTP connection: the policy applies */
    ST_PASSED = 4,   /* the verdict let the handshake through */
    ST_REFUSED = 8,  /* refused: every later call fails */
    ST_UNBOUND = 16, /* a client with no descriptor: its ClientHello will name its socket */
    ST_CLAIM = 32,   /* in tlsbind's table while its handshake runs */
    ST_OFF = 64,     /* an SMTP socket in mode off: claims its random, is not judged */
    ST_OWN_VERIFY = 128, /* the verification in the handshake is the program's own */
};

static inline unsigned sg_ossl_state(struct sg_ossl *o, SSL *s)
{
    return (unsigned)(uintptr_t)o->SSL_get_ex_data(s, o->ex_index);
}

static inline void sg_ossl_set_state(struct sg_ossl *o, SSL *s, unsigned st)
{
    o->SSL_set_ex_data(s, o->ex_index, (void *)(uintptr_t)st);
}

/* The socket: 1 an SMTP target in t, 0 not SMTP, -1 no socket known yet.
 * client: the caller knows (SSL_connect). */
int sg_ossl_target(struct sg_ossl *o, SSL *s, struct sg_target *t, int client);
/* After a step: the socket the ClientHello named, if t had another or none. */
void sg_ossl_relearn(struct sg_ossl *o, SSL *s, struct sg_target *t);
/* An ST_UNBOUND session: 1 now bound to an SMTP socket (t), 0 not yet, -1
 * bound where the policy leaves it alone (then a plain ST_SEEN). */
int sg_ossl_settle(struct sg_ossl *o, SSL *s, struct sg_target *t);
/* Run a real handshake step while the session claims its random; returns
 * what it returned, or SG_CLAIMS_FULL (nothing run) when it cannot claim. */
#define SG_CLAIMS_FULL (-1000)
int sg_ossl_run_claimed(struct sg_ossl *o, SSL *s, int (*real)(SSL *));
/* The session no longer claims (its handshake is over). */
void sg_ossl_end_claim(struct sg_ossl *o, SSL *s);
/* OpenSSL frees an SSL object (our ex_data slot's free callback): a session
 * freed in mid-handshake stops claiming its random. */
void sg_tls_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

#endif
