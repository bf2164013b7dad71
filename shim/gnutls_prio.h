/* The priority a GnuTLS program chose for a session. GnuTLS has no getter
 * for it, so it is learned where the program sets it (gnutls_prio.c), and
 * the policy narrows it before an SMTP handshake (gnutls_narrow.c): the
 * program can add strictness, the shim never removes it. */
#ifndef SG_GNUTLS_PRIO_H
#define SG_GNUTLS_PRIO_H

#include "gnutls_api.h"

/* Longer priority strings are not kept: such a session gets the policy's
 * own string, as one whose priority was set where the shim cannot see. */
#define SG_PRIO_MAX 512

/* A priority as the program gave it: the text alone, or (def) the text
 * appended to the library's default priority (an empty text: the default). */
struct sg_gnutls_prio {
    int def;
    char text[SG_PRIO_MAX];
};

/* 1 and the program's priority for s in out; 0 when it is not known. */
int sg_gnutls_prio_of(gnutls_session_t s, struct sg_gnutls_prio *out);
/* The session is being freed: what it chose goes with it. */
void sg_gnutls_prio_forget(gnutls_session_t s);

/* Sets on s the program's priority minus what the policy's string policy
 * excludes (tls13_only: the policy's minimum is TLS 1.3); the policy's own
 * string when the program's is not known or nothing of it would remain.
 * 0, or GnuTLS's error for the policy's string. */
int sg_gnutls_narrow(struct sg_gnutls *g, gnutls_session_t s, int tls13_only, const char *policy);

/* 1 when a handshake's version, key exchange and cipher are ones the policy's
 * string allows (tls13_only: the policy's minimum is TLS 1.3, whose suites
 * are all forward-secret AEAD): the verdict asks it, so that audit mode,
 * which narrows nothing, reports what enforce mode would refuse. */
int sg_gnutls_suite_allowed(unsigned version, unsigned kx, unsigned cipher, int tls13_only);

#endif
