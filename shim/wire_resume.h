/* Sessions the wire verdict accepted, by the tokens that can resume them:
 * a resumed TLS 1.2 session shows no certificate, but one resumed from a
 * session verified here is as good as that one. */
#ifndef SG_WIRE_RESUME_H
#define SG_WIRE_RESUME_H

#include "target.h"
#include "wire.h"

/* After an accepted full TLS 1.2 handshake and the server's second flight:
 * remember its session id and ticket for t. */
void sg_wire_resume_remember(const struct sg_wire *w, const struct sg_target *t);
/* A resumed handshake: 1 when the token the server accepted (the ticket the
 * program offered, or the session id the server echoed) was remembered for t. */
int sg_wire_resume_known(const struct sg_wire *w, const struct sg_target *t);

#endif
