/* Which socket an OpenSSL session belongs to: the one whose ClientHello
 * carried its client random (tlsbind.c), else its descriptor, else the one
 * its connect BIO opens. A memory BIO (asyncio, Node.js) or a custom BIO
 * (curl) has no descriptor: such a session is bound only once its
 * ClientHello has left, whichever thread moved it. */
#include <stdlib.h>
#include <string.h>

#include "decision.h"
#include "fdstate.h"
#include "inside.h"
#include "ossl_bind.h"
#include "ossl_tls.h"
#include "tlsbind.h"

static int client_random(void *lib, void *session, unsigned char out[SG_RANDOM_LEN])
{
    struct sg_ossl *o = lib;
    return o->SSL_get_client_random(session, out, SG_RANDOM_LEN) == SG_RANDOM_LEN;
}

void sg_tls_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)ad, (void)idx, (void)argl, (void)argp;
    if ((uintptr_t)ptr & ST_CLAIM)
        sg_bind_end(parent);
}

void sg_ossl_end_claim(struct sg_ossl *o, SSL *s)
{
    unsigned st = sg_ossl_state(o, s);
    if (st & ST_CLAIM) {
        sg_bind_end(s);
        sg_ossl_set_state(o, s, st & ~ST_CLAIM);
    }
}

/* The socket: the SMTP socket whose ClientHello carried this session's
 * random; else the descriptor OpenSSL reads from; else the one a connect BIO
 * will open (BIO_new_ssl_connect). client: the caller knows (SSL_connect);
 * a TLS_method object says "server" until it starts. 1: an SMTP target in
 * t; 0: not SMTP; -1: no socket known yet (memory BIO, custom BIO). */
int sg_ossl_target(struct sg_ossl *o, SSL *s, struct sg_target *t, int client)
{
    if (!client && o->SSL_is_server(s))
        return 0;
    const char *sni = o->SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    unsigned char random[SG_RANDOM_LEN];
    int fd = sg_ossl_state(o, s) & ST_CLAIM ? sg_bind_session_socket(s) : -1;
    if (fd < 0 && client_random(o, s, random))
        fd = sg_bind_socket(random);
    if (fd < 0)
        fd = o->SSL_get_fd(s);
    if (fd >= 0)
        return sg_target_socket(fd, sni, t);
    BIO *b = o->SSL_get_rbio(s);
    if (b && o->BIO_method_type(b) == BIO_TYPE_CONNECT) {
        const char *host = o->BIO_ptr_ctrl(b, BIO_C_GET_CONNECT, 0);
        const char *port = o->BIO_ptr_ctrl(b, BIO_C_GET_CONNECT, 1);
        return host && port && sg_target_named(host, atoi(port), sni, t);
    }
    memset(t, 0, sizeof *t);
    t->fd = -1;
    return -1;
}

/* A connect BIO has connected during the handshake, or the ClientHello left
 * by another socket than the descriptor: learn its socket. */
void sg_ossl_relearn(struct sg_ossl *o, SSL *s, struct sg_target *t)
{
    struct sg_target now;
    int fd = sg_ossl_state(o, s) & ST_CLAIM ? sg_bind_session_socket(s) : -1;
    if (t->fd >= 0 && (fd < 0 || sg_conn_peek(fd) == sg_conn_peek(t->fd)))
        return; /* the socket it had */
    if (sg_ossl_target(o, s, &now, 1) > 0 && now.fd >= 0 &&
        (t->fd < 0 || sg_conn_peek(now.fd) != sg_conn_peek(t->fd)))
        *t = now;
}

/* An unbound session whose ClientHello may have left by now: 1 bound to an
 * SMTP socket (t), 0 not yet, -1 bound where the policy leaves it alone. */
int sg_ossl_settle(struct sg_ossl *o, SSL *s, struct sg_target *t)
{
    int where = sg_ossl_target(o, s, t, 1);
    if (where < 0)
        return 0;
    if (where == 0 || t->mode == SG_MODE_OFF) {
        sg_ossl_end_claim(o, s);
        sg_ossl_set_state(o, s, ST_SEEN);
        return -1;
    }
    /* Its ClientHello is out: the policy can no longer be applied ahead, the
     * verdict alone judges it. */
    sg_ossl_set_state(o, s, ST_SEEN | ST_SMTP | (sg_ossl_state(o, s) & ST_CLAIM));
    return 1;
}

/* The real step, with the session claiming its random meanwhile: the wire
 * may meet its ClientHello before the call returns (its own descriptor,
 * curl's BIO, or another thread moving the bytes). */
int sg_ossl_run_claimed(struct sg_ossl *o, SSL *s, int (*real)(SSL *))
{
    int slot = sg_bind_enter(s, o, client_random, (sg_ossl_state(o, s) & ST_UNBOUND) != 0);
    if (slot < 0)
        return SG_CLAIMS_FULL;
    sg_ossl_set_state(o, s, sg_ossl_state(o, s) | ST_CLAIM);
    struct sg_inside in;
    sg_inside_enter(&in, s);
    int r = real(s);
    sg_inside_leave(&in);
    sg_bind_leave(slot, s);
    return r;
}
