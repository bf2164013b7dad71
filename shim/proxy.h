/* Proxy requests on the ports the policy names (proxy_ports): SOCKS5 (RFC
 * 1928, with RFC 1929 user/password), SOCKS4/4a and HTTP CONNECT. The
 * client's request names the real destination; the proxy's replies come
 * before the first byte of the tunnel. Pure parsers fed byte by byte, so any
 * cut of the stream gives the same result: no I/O, no allocation. */
#ifndef SG_PROXY_H
#define SG_PROXY_H

#include <stddef.h>

#define SG_PROXY_HOST_MAX 256

enum sg_px_state {
    SG_PX_OFF = 0,  /* not a proxy connection, or its tunnel is open */
    SG_PX_ACTIVE,   /* reading the request (out) or the replies (in) */
    SG_PX_DONE,     /* the request (out) or the replies (in) are complete */
    SG_PX_BAD,      /* not a proxy protocol this parser knows */
};

struct sg_px_out {
    int state;              /* enum sg_px_state */
    int kind;               /* 0 not known yet, 4, 5, or 'H' (HTTP CONNECT) */
    int step;               /* position inside the protocol */
    unsigned need;          /* bytes left in the current field */
    unsigned atyp;          /* SOCKS address type */
    int socks4a;            /* SOCKS4 with a host name after the user id */
    unsigned char ip[16];   /* address bytes as sent */
    unsigned iplen;
    int port;               /* the destination port */
    char host[SG_PROXY_HOST_MAX]; /* destination name or address literal */
    unsigned hlen;
    unsigned crlf;          /* HTTP: progress through "\r\n\r\n" */
};

struct sg_px_in {
    int state;              /* enum sg_px_state */
    int step;
    unsigned need;
    int auth;               /* SOCKS5: the proxy chose user/password */
    unsigned crlf;          /* HTTP: progress through "\r\n\r\n" */
};

/* Feed bytes the program sends. Returns how many of them belong to the
 * request: fewer than n when it ended inside buf (state DONE), all when it
 * did not; on a byte no proxy protocol allows, state becomes BAD. */
size_t sg_px_out_feed(struct sg_px_out *st, const void *buf, size_t n);
/* Feed bytes the program receives, given the request parser (its kind).
 * Returns how many belong to the proxy's replies. */
size_t sg_px_in_feed(struct sg_px_in *st, const struct sg_px_out *req, const void *buf,
                     size_t n);

#endif
