/* The name a server must prove (DESIGN.md pitfall 8), in this order:
 *  1. the SNI the program set (a host name: an address there counts as 5);
 *  2. the policy's verify_name for the destination;
 *  3. the name bound to the connection: the name whose answer produced the
 *     address connected to (resolve.c);
 *  4. when several names resolved to that address and nothing above decides:
 *     none (refused in enforce mode, with the candidates in the message);
 *  5. when no name was resolved to it, the program addressed the server by
 *     address: the address is the identity (its IP SAN), as curl and
 *     OpenSSL check an address literal. */
#include <arpa/inet.h>
#include <string.h>

#include "config.h"
#include "fdstate.h"
#include "resolve.h"
#include "target.h"

/* As snprintf(dst, cap, "%s", src) would, without its lazy binding. */
static void copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    n = n < cap ? n : cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static int is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Connected before we were loaded, inherited, or by a raw syscall. */
static int peer_by_getpeername(int fd, struct sg_target *t)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    const void *a;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        a = &((struct sockaddr_in *)&ss)->sin_addr;
    } else if (ss.ss_family == AF_INET6) {
        t->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    } else {
        return 0;
    }
    if (!inet_ntop(ss.ss_family, a, t->addr, sizeof t->addr))
        return 0;
    sg_resolve_bind((struct sockaddr *)&ss, len, t->host, sizeof t->host, t->candidates,
                    sizeof t->candidates);
    return 1;
}

static int finish(struct sg_target *t, const char *sni)
{
    const struct sg_policy *p = sg_config();
    if (!sg_port_in(p->smtp_ports, p->smtp_blocks, t->port))
        return 0;
    sg_addr_normalise(t->addr, sizeof t->addr);
    if (sni && *sni) {
        copy(t->host, sizeof t->host, sni);
        t->candidates[0] = 0;
    }
    sg_name_normalise(t->host);
    if (is_ip(t->host))
        sg_addr_normalise(t->host, sizeof t->host);
    t->dest = sg_policy_match(p, t->host, t->addr, t->port);
    /* An address in SNI (RFC 6066 forbids it, careless programs send it) names
     * no host: verify_name still decides then, as for any address. */
    int named = sni && *sni && !is_ip(sni);
    if (!named && t->dest && t->dest->verify_name[0]) {
        copy(t->host, sizeof t->host, t->dest->verify_name);
        sg_name_normalise(t->host);
        t->candidates[0] = 0;
    } else if (!t->host[0] && !t->candidates[0]) {
        copy(t->host, sizeof t->host, t->addr);
    }
    t->ip_literal = t->host[0] && is_ip(t->host);
    t->mode = sg_policy_mode(p, t->dest);
    return 1;
}

int sg_target_socket(int fd, const char *sni, struct sg_target *t)
{
    memset(t, 0, sizeof *t);
    t->fd = fd;
    if (fd < 0)
        return 0;
    struct sg_conn *c = sg_conn_get(fd);
    if (c)
        return sg_target_conn(c, fd, sni, t);
    if (!peer_by_getpeername(fd, t))
        return 0;
    return finish(t, sni);
}

int sg_target_conn(const struct sg_conn *c, int fd, const char *sni, struct sg_target *t)
{
    memset(t, 0, sizeof *t);
    t->fd = fd;
    t->port = c->port;
    copy(t->addr, sizeof t->addr, c->addr);
    copy(t->host, sizeof t->host, c->host);
    copy(t->candidates, sizeof t->candidates, c->candidates);
    return finish(t, sni);
}

int sg_target_named(const char *host, int port, const char *sni, struct sg_target *t)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    t->port = port;
    copy(t->host, sizeof t->host, host);
    return finish(t, sni);
}
