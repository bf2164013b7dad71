/* The copy of an anchor GnuTLS's chain verification makes only to free it:
 * a stand-in lent instead during the shim's own verification. */
#ifndef SG_GNUTLS_LEND_H
#define SG_GNUTLS_LEND_H

#include "gnutls_api.h"

/* Around the shim's verification against list, a list it made for that
 * verdict alone: from open to close this thread lends (when g->lends). */
void sg_gnutls_lend_open(struct sg_gnutls *g, gnutls_x509_trust_list_t list);
void sg_gnutls_lend_close(void);

/* Is crt the stand-in out on loan? Then its free is the loan's return. */
int sg_gnutls_lend_returned(gnutls_x509_crt_t crt);

#endif
