/* What a TLS session is connected to, and whether the policy covers it.
 * Shared by every TLS library backend. */
#ifndef SG_TARGET_H
#define SG_TARGET_H

#include <netinet/in.h>

#include "policy.h"
#include "resolve.h"

struct sg_target {
    int fd;                        /* -1 while unknown (a connect BIO not yet connected) */
    int port;
    int ip_literal;                /* host is an address: check the IP SAN */
    int mode;                      /* effective mode for this destination */
    const struct sg_dest *dest;    /* matching policy section, or NULL */
    char host[SG_HOST_MAX];        /* the name the certificate must prove, "" if none */
    char addr[INET6_ADDRSTRLEN];   /* IPv4-mapped IPv6 written as IPv4 */
    char candidates[SG_CANDS_MAX]; /* host is "": these names could all apply */
};

/* A socket (fd < 0: none) on an SMTP port of the policy: fill t, return 1.
 * sni is the name the program set for the server, or NULL. */
int sg_target_socket(int fd, const char *sni, struct sg_target *t);
struct sg_conn;
/* The same for the connection record c (copied by the caller), reached by fd. */
int sg_target_conn(const struct sg_conn *c, int fd, const char *sni, struct sg_target *t);
/* A connection not made yet, known by the host and port the program gave. */
int sg_target_named(const char *host, int port, const char *sni, struct sg_target *t);

#endif
