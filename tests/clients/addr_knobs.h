/* Knobs shared by the careless clients for the name binding tests. */
#ifndef SG_ADDR_KNOBS_H
#define SG_ADDR_KNOBS_H

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Test knobs for the name binding tests (tests/test_identity.py):
 * SG_ALSO_RESOLVE="a b": after resolving HOST, resolve these names too, for
 * the same port (a later lookup, for the same service); SG_COPY_ADDR=1: connect from a copy of the
 * address, not from getaddrinfo's own sockaddr; SG_MAP_V6=1: connect an IPv6
 * socket to the IPv4-mapped form of an IPv4 address. */
static void also_resolve(const char *port)
{
    const char *names = getenv("SG_ALSO_RESOLVE");
    char buf[512], *save = NULL;
    if (!names || strlen(names) >= sizeof buf)
        return;
    strcpy(buf, names);
    for (char *n = strtok_r(buf, " ", &save); n; n = strtok_r(NULL, " ", &save)) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *r;
        if (getaddrinfo(n, port, &hints, &r) == 0)
            freeaddrinfo(r);
    }
}

/* The address to connect to, per the knobs above; *family for socket(). */
static const struct sockaddr *knob_addr(const struct addrinfo *ai, struct sockaddr_storage *ss,
                                        socklen_t *len, int *family)
{
    *family = ai->ai_family;
    *len = ai->ai_addrlen;
    if (getenv("SG_MAP_V6") && ai->ai_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
        struct sockaddr_in6 *six = (struct sockaddr_in6 *)ss;
        memset(ss, 0, sizeof *ss);
        six->sin6_family = AF_INET6;
        six->sin6_port = in->sin_port;
        six->sin6_addr.s6_addr[10] = six->sin6_addr.s6_addr[11] = 0xFF;
        memcpy(&six->sin6_addr.s6_addr[12], &in->sin_addr, 4);
        *family = AF_INET6;
        *len = sizeof *six;
        return (struct sockaddr *)ss;
    }
    if (getenv("SG_COPY_ADDR")) {
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        return (struct sockaddr *)ss;
    }
    return ai->ai_addr;
}

#endif
