/* The questions of decision.h, answered by GnuTLS. */
#ifndef SG_GNUTLS_VERDICT_H
#define SG_GNUTLS_VERDICT_H

#include "decision.h"
#include "gnutls_api.h"

struct sg_gnutls_session {
    struct sg_gnutls *g;
    gnutls_session_t s;
};

extern const struct sg_checks sg_gnutls_checks;

#endif
