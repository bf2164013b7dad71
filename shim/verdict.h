/* The shim's own judgement of a finished handshake, whatever the program
 * configured: version, cipher, chain against the policy store, host name,
 * pins. */
#ifndef SG_VERDICT_H
#define SG_VERDICT_H

#include <stddef.h>

#include "ossl.h"
#include "target.h"

/* 0 when the connection passes, else an SG_R_* reason with words in detail. */
int sg_verdict(struct sg_ossl *o, SSL *s, const struct sg_target *t, char *detail, size_t len);

#endif
