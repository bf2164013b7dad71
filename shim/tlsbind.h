/* Which socket a TLS session belongs to, by what it put on the wire: the
 * client random of its ClientHello. The hooked backends register each
 * session's random while its handshake runs; the guard records the random
 * of the ClientHello that leaves each SMTP socket. A memory BIO (asyncio,
 * Node.js), a custom BIO (curl) or GnuTLS push/pull functions give no
 * descriptor, and the thread that runs the handshake need not be the one
 * that moves its bytes: only the random ties a session to its socket. */
#ifndef SG_TLSBIND_H
#define SG_TLSBIND_H

#include "hello.h"
#include "target.h"

/* How a backend reads a session's client random: 1 with the bytes in out,
 * 0 while it has none. Called under the table's lock, possibly from another
 * thread while the session is inside a handshake call: it must only read
 * (SSL_get_client_random, gnutls_session_get_random). */
typedef int (*sg_random_fn)(void *lib, void *session, unsigned char out[SG_RANDOM_LEN]);

/* A hooked session enters before each real handshake call and leaves after
 * it; unbound: it has no descriptor of its own (sg_bind_unidentified may be
 * asked about it). Returns a slot, or -1 when the table is full: the caller
 * refuses. */
int sg_bind_enter(void *session, void *lib, sg_random_fn fn, int unbound);
void sg_bind_leave(int slot, void *session);
/* Its handshake is over (judged or failed): the session no longer claims.
 * Returns 1 when it did. */
int sg_bind_end(void *session);

/* The descriptor of the SMTP socket whose ClientHello carried this session's
 * random while it claimed it, or -1. */
int sg_bind_session_socket(void *session);
/* The descriptor of the SMTP socket whose ClientHello carried this random,
 * or -1 when none did (yet): for a session that no longer claims. */
int sg_bind_socket(const unsigned char random[SG_RANDOM_LEN]);
/* Wire side: does a hooked session claim this random, seen leaving fd? */
int sg_bind_claimed(const unsigned char random[SG_RANDOM_LEN], int fd);

/* The session's handshake completed without its socket identified (call
 * before sg_bind_end). It is not an SMTP session unless an SMTP connection
 * that already waited for a ClientHello when the session made its own still
 * waits for one the shim has not seen (the session may have reached it by a
 * road the shim cannot see). 1: no such connection, the program goes on
 * untouched; 0: there is one: t is its target (fd -1: the shim will not
 * touch it) and detail the words, for sg_conclude (refused in enforce mode,
 * logged in audit). */
int sg_bind_unidentified(void *session, struct sg_target *t, char *detail, size_t len);

/* In a forked child (locks.c): no other thread is inside a handshake call. */
void sg_bind_forked(void);

#endif
