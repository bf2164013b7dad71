/* The server's certificates GnuTLS parsed and freed during the shim's
 * handshake call, kept for the verdict instead of parsed again. */
#ifndef SG_GNUTLS_KEEP_H
#define SG_GNUTLS_KEEP_H

#include "gnutls_api.h"

/* Around the real handshake call: from open to close this thread keeps the
 * certificates g frees; release frees them (every path out of the shim's
 * handshake call goes through it). */
void sg_gnutls_keep_open(struct sg_gnutls *g);
void sg_gnutls_keep_close(void);
void sg_gnutls_keep_release(void);

/* 1 and *out: the certificate whose DER is der, now the caller's (it
 * deinits it): a kept one with exactly these bytes, else parsed from them;
 * 0 when they do not parse. */
int sg_gnutls_crt_of(struct sg_gnutls *g, const gnutls_datum_t *der, gnutls_x509_crt_t *out);

/* A certificate g made and freed during the handshake call, a copy of one
 * kept, now the caller's (it deinits it); NULL when there is none. Its
 * content is no one's concern: it only stands in (gnutls_lend.c). */
gnutls_x509_crt_t sg_gnutls_spare_take(struct sg_gnutls *g);

#endif
