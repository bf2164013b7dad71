/* The SNI a GnuTLS client set: GnuTLS does not report a client's own server
 * name back (gnutls_server_name_get fails on client sessions), so it is
 * learned where the program sets it. */
#ifndef SG_GNUTLS_SNI_H
#define SG_GNUTLS_SNI_H

#include <stddef.h>
#include <gnutls/gnutls.h>

/* 1 and the name in out when the program set a DNS name on s. */
int sg_gnutls_sni(gnutls_session_t s, char *out, size_t len);
/* The session is being freed: its name goes with it. */
void sg_gnutls_sni_forget(gnutls_session_t s);

#endif
