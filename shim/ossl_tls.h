/* The OpenSSL handshake driver: apply the policy before, judge after. */
#ifndef SG_TLS_H
#define SG_TLS_H

#include "decision.h"
#include "ossl.h"

/* Run a handshake step (real is SSL_connect or SSL_do_handshake of o);
 * client: called through SSL_connect. Returns what the program should
 * get: 1, or <= 0 with the error queued. */
int sg_tls_handshake(struct sg_ossl *o, SSL *s, int (*real)(SSL *), int client);
/* Before application I/O on s: 1 to go on with the real call, or <= 0 to
 * return (the object was refused, or an implicit handshake did not finish),
 * or SG_UNDRIVABLE. */
int sg_tls_before_io(struct sg_ossl *o, SSL *s);
/* The library lacks functions the policy needs (found at its first session
 * that may be SMTP): the caller makes the real call as if the shim were not
 * there (no inside mark, inside.h), so that the wire judges its TLS, as it
 * did for such a library always. */
#define SG_UNDRIVABLE (-1001)

#endif
