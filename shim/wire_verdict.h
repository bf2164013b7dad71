/* The verdict on a handshake read off the wire (wire.c): the same checks
 * as the hooked backends (decision.c), answered from the bytes, with the
 * certificates verified by the system's OpenSSL loaded privately. */
#ifndef SG_WIRE_VERDICT_H
#define SG_WIRE_VERDICT_H

#include <stddef.h>

#include "target.h"
#include "wire.h"

/* 0 when the server's flight passes, else an SG_R_* reason with words in
 * detail. *unverified is 1 when it passes without a certificate check (TLS
 * 1.3 or a resumed session under unverified_tls = allow), 2 when it is a
 * session resumed from one verified on the wire, else 0. */
int sg_wire_judge(const struct sg_wire *w, const struct sg_target *t, int *unverified,
                  char *detail, size_t len);

#endif
