/* The questions of decision.h, answered by OpenSSL. */
#ifndef SG_OSSL_VERDICT_H
#define SG_OSSL_VERDICT_H

#include "decision.h"
#include "ossl.h"

struct sg_ossl_session {
    struct sg_ossl *o;
    SSL *s;
};

extern const struct sg_checks sg_ossl_checks;

#endif
