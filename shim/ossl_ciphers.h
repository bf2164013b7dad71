/* The policy's ciphers on an SMTP connection's SSL object: a restriction of
 * the program's own choice, never a widening of it (ossl_ciphers.c). */
#ifndef SG_OSSL_CIPHERS_H
#define SG_OSSL_CIPHERS_H

#include "ossl.h"
#include "policy.h"

/* Before the handshake of s, an SMTP client in enforce mode: its ClientHello
 * offers the program's TLS 1.2 ciphers and TLS 1.3 suites that the policy
 * allows, in the program's order; a part of which the policy allows none gets
 * the policy's list. 1, or 0 when OpenSSL rejected the policy's list. */
int sg_ossl_apply_ciphers(struct sg_ossl *o, SSL *s, const struct sg_policy *p);

/* Does the policy allow c (a TLS 1.3 suite its ciphersuites names; a TLS 1.2
 * cipher the default ciphers rule selects, or any under another rule, whose
 * list replaced the program's)? The verdict asks it too: a program can take
 * the filter off its SSL (its own security callback, set in a callback of
 * the handshake, or SSL_set_SSL_CTX), and the suite it then negotiates must
 * still be one the policy names. */
int sg_ossl_cipher_allowed(struct sg_ossl *o, const SSL_CIPHER *c, const struct sg_policy *p);

#endif
