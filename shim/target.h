/* What a TLS object is connected to, and whether the policy covers it. */
#ifndef SG_TARGET_H
#define SG_TARGET_H

#include <netinet/in.h>

#include "ossl.h"
#include "policy.h"

struct sg_target {
    int fd;                        /* -1 while unknown (a connect BIO not yet connected) */
    int port;
    int ip_literal;                /* host is an address: check the IP SAN */
    int mode;                      /* effective mode for this destination */
    const struct sg_dest *dest;    /* matching policy section, or NULL */
    char host[SG_HOST_MAX];        /* the name the certificate must prove, "" if none */
    char addr[INET6_ADDRSTRLEN];
};

/* Fills t and returns 1 when s is a client TLS object on an SMTP port of the
 * policy. client: the caller knows it is a client (SSL_connect: a generic
 * TLS_method object still says "server" until the handshake starts). */
int sg_target_of(struct sg_ossl *o, SSL *s, struct sg_target *t, int client);

#endif
