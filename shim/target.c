/* Finding the SMTP socket and host name behind an SSL object. The socket:
 * the descriptor OpenSSL reads from; else the one a connect BIO will open
 * (BIO_new_ssl_connect); else, for a custom BIO (curl), the SMTP socket this
 * thread brought to the point of TLS. The name: the SNI the program set,
 * else the name it resolved to the peer address, else the policy's
 * verify_name for it. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fdstate.h"
#include "guard.h"
#include "resolve.h"
#include "target.h"

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int peer_of_socket(int fd, struct sg_target *t)
{
    struct sg_conn *c = sg_conn_get(fd);
    if (c) {
        t->port = c->port;
        copy(t->addr, sizeof t->addr, c->addr);
        copy(t->host, sizeof t->host, c->host);
        return 1;
    }
    /* Connected before we were loaded, inherited, or by raw syscall. */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    const void *a;
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
    sg_resolve_lookup(t->addr, t->host, sizeof t->host);
    return 1;
}

/* A connect BIO knows host and port before it connects. */
static int peer_of_connect_bio(struct sg_ossl *o, SSL *s, struct sg_target *t)
{
    BIO *b = o->SSL_get_rbio(s);
    if (!b || o->BIO_method_type(b) != BIO_TYPE_CONNECT)
        return 0;
    const char *host = o->BIO_ptr_ctrl(b, BIO_C_GET_CONNECT, 0);
    const char *port = o->BIO_ptr_ctrl(b, BIO_C_GET_CONNECT, 1);
    if (!host || !port)
        return 0;
    t->port = atoi(port);
    copy(t->host, sizeof t->host, host);
    return 1;
}

static int is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int locate(struct sg_ossl *o, SSL *s, struct sg_target *t)
{
    t->fd = o->SSL_get_fd(s);
    if (t->fd >= 0)
        return peer_of_socket(t->fd, t);
    if (peer_of_connect_bio(o, s, t))
        return 1;
    t->fd = sg_guard_tls_pending();
    return t->fd >= 0 && peer_of_socket(t->fd, t);
}

int sg_target_of(struct sg_ossl *o, SSL *s, struct sg_target *t, int client)
{
    memset(t, 0, sizeof *t);
    if ((!client && o->SSL_is_server(s)) || !locate(o, s, t) || !sg_config_smtp_port(t->port))
        return 0;
    const struct sg_policy *p = sg_config();
    const char *sni = o->SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (sni && *sni)
        copy(t->host, sizeof t->host, sni);
    t->dest = sg_policy_match(p, t->host, t->addr, t->port);
    if ((!t->host[0] || is_ip(t->host)) && t->dest && t->dest->verify_name[0])
        copy(t->host, sizeof t->host, t->dest->verify_name);
    t->ip_literal = t->host[0] && is_ip(t->host);
    t->mode = sg_policy_mode(p, t->dest);
    return 1;
}
