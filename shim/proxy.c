/* Proxy request and reply parsers (see proxy.h). Each byte moves one step of
 * a small state machine; fields of known length count down `need`. */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "proxy.h"

enum {
    /* SOCKS5 request */
    S5_NMETH = 1, S5_METHODS, S5_NEXT, S5_ULEN, S5_USER, S5_PLEN, S5_PASS, S5_REQVER,
    S5_CMD, S5_RSV, S5_ATYP, S5_NLEN, S5_NAME, S5_ADDR, S5_PORT1, S5_PORT2,
    /* SOCKS4 request */
    S4_CMD, S4_PORT1, S4_PORT2, S4_IP, S4_USER, S4_HOST,
    /* HTTP CONNECT request */
    H_VERB, H_TARGET, H_REST,
};

static int bad(struct sg_px_out *st)
{
    st->state = SG_PX_BAD;
    return 0;
}

static void add_host(struct sg_px_out *st, unsigned char c)
{
    if (st->hlen + 1 < sizeof st->host)
        st->host[st->hlen++] = (char)c;
    st->host[st->hlen] = 0;
}

static void ip_to_host(struct sg_px_out *st)
{
    if (!inet_ntop(st->iplen == 4 ? AF_INET : AF_INET6, st->ip, st->host, sizeof st->host))
        st->host[0] = 0;
    st->hlen = (unsigned)strlen(st->host);
}

/* "host:port" or "[v6]:port" of an HTTP CONNECT line. */
static int http_target(struct sg_px_out *st)
{
    char *colon = strrchr(st->host, ':');
    if (!colon || colon[1] == 0)
        return -1;
    int port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535)
            return -1;
    }
    *colon = 0;
    if (st->host[0] == '[' && colon > st->host && colon[-1] == ']') {
        colon[-1] = 0;
        memmove(st->host, st->host + 1, strlen(st->host));
    }
    st->hlen = (unsigned)strlen(st->host);
    st->port = port;
    return port ? 0 : -1;
}

static int socks5_byte(struct sg_px_out *st, unsigned char c)
{
    switch (st->step) {
    case S5_NMETH:
        st->need = c;
        st->step = c ? S5_METHODS : S5_NEXT;
        return c ? 1 : bad(st);
    case S5_METHODS:
        if (--st->need == 0)
            st->step = S5_NEXT;
        return 1;
    case S5_NEXT: /* user/password (RFC 1929) or the request itself */
        st->step = c == 1 ? S5_ULEN : c == 5 ? S5_CMD : 0;
        return st->step ? 1 : bad(st);
    case S5_ULEN:
    case S5_PLEN:
        st->need = c;
        st->step = c ? st->step + 1 : st->step + 2; /* the field, or past it */
        return 1;
    case S5_USER:
    case S5_PASS:
        if (--st->need == 0)
            st->step++;
        return 1;
    case S5_REQVER:
        st->step = S5_CMD;
        return c == 5 ? 1 : bad(st);
    case S5_CMD:
    case S5_RSV:
        st->step++;
        return 1;
    case S5_ATYP:
        st->atyp = c;
        st->need = c == 1 ? 4 : 16;
        st->step = c == 3 ? S5_NLEN : S5_ADDR;
        return c == 1 || c == 3 || c == 4 ? 1 : bad(st);
    case S5_NLEN:
        st->need = c;
        st->step = S5_NAME;
        return c ? 1 : bad(st);
    case S5_NAME:
        if (c == 0)
            return bad(st); /* no name holds a NUL: refused, not cut short */
        add_host(st, c);
        if (--st->need == 0)
            st->step = S5_PORT1;
        return 1;
    case S5_ADDR:
        st->ip[st->iplen++] = c;
        if (--st->need == 0) {
            ip_to_host(st);
            st->step = S5_PORT1;
        }
        return 1;
    case S5_PORT1:
        st->port = c << 8;
        st->step = S5_PORT2;
        return 1;
    default: /* S5_PORT2 */
        st->port |= c;
        st->state = SG_PX_DONE;
        return 1;
    }
}

static int socks4_byte(struct sg_px_out *st, unsigned char c)
{
    switch (st->step) {
    case S4_CMD:
        st->step = S4_PORT1;
        return 1;
    case S4_PORT1:
        st->port = c << 8;
        st->step = S4_PORT2;
        return 1;
    case S4_PORT2:
        st->port |= c;
        st->step = S4_IP;
        st->need = 4;
        return 1;
    case S4_IP:
        st->ip[st->iplen++] = c;
        if (--st->need == 0) {
            st->iplen = 4;
            st->socks4a = !st->ip[0] && !st->ip[1] && !st->ip[2] && st->ip[3];
            ip_to_host(st);
            st->step = S4_USER;
            st->need = 256; /* a user id longer than this is not SOCKS4 */
        }
        return 1;
    case S4_USER:
        if (c == 0) {
            if (!st->socks4a)
                st->state = SG_PX_DONE;
            st->step = S4_HOST;
            st->hlen = 0;
            st->host[0] = 0;
            return 1;
        }
        return --st->need ? 1 : bad(st);
    default: /* S4_HOST */
        if (c == 0)
            st->state = st->hlen ? SG_PX_DONE : SG_PX_BAD;
        else if (st->hlen + 1 >= sizeof st->host)
            return bad(st);
        else
            add_host(st, c);
        return 1;
    }
}

static int http_byte(struct sg_px_out *st, unsigned char c)
{
    static const char verb[] = "CONNECT ";
    switch (st->step) {
    case H_VERB:
        if ((unsigned char)verb[st->need] != c)
            return bad(st);
        if (verb[++st->need] == 0)
            st->step = H_TARGET;
        return 1;
    case H_TARGET:
        if (c == ' ') {
            st->step = H_REST;
            st->crlf = 1; /* inside the request line */
            return http_target(st) == 0 ? 1 : bad(st);
        }
        if (c < 0x21 || c > 0x7e || st->hlen + 1 >= sizeof st->host)
            return bad(st);
        add_host(st, c);
        return 1;
    default: /* H_REST: header lines up to an empty one; crlf = length of this line */
        if (c == '\n') {
            if (st->crlf == 0)
                st->state = SG_PX_DONE;
            st->crlf = 0;
        } else if (c != '\r') {
            st->crlf++;
        }
        return 1;
    }
}

static int out_byte(struct sg_px_out *st, unsigned char c)
{
    if (!st->kind) {
        st->kind = c == 5 ? 5 : c == 4 ? 4 : c == 'C' ? 'H' : 0;
        st->step = c == 5 ? S5_NMETH : c == 4 ? S4_CMD : H_VERB;
        if (st->kind != 'H')
            return st->kind ? 1 : bad(st);
    }
    return st->kind == 5 ? socks5_byte(st, c) : st->kind == 4 ? socks4_byte(st, c)
                                                               : http_byte(st, c);
}

size_t sg_px_out_feed(struct sg_px_out *st, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    size_t i = 0;
    while (i < n && st->state == SG_PX_ACTIVE)
        out_byte(st, p[i++]);
    return i;
}

/* ---- The proxy's replies ---- */

enum { I5_VER = 1, I5_METHOD, I5_AVER, I5_ASTATUS, I5_RVER, I5_REP, I5_RSV, I5_ATYP, I5_NLEN,
       I5_ADDR, I5_PORT1, I5_PORT2 };

static void in_socks5(struct sg_px_in *st, unsigned char c)
{
    switch (st->step) {
    case I5_METHOD:
        st->auth = c == 2;
        st->step = st->auth ? I5_AVER : I5_RVER;
        return;
    case I5_ATYP:
        st->need = c == 1 ? 4 : 16;
        st->step = c == 3 ? I5_NLEN : I5_ADDR;
        if (c != 1 && c != 3 && c != 4)
            st->state = SG_PX_BAD;
        return;
    case I5_NLEN:
        st->need = c;
        st->step = c ? I5_ADDR : I5_PORT1;
        return;
    case I5_ADDR:
        if (--st->need == 0)
            st->step = I5_PORT1;
        return;
    case I5_PORT2:
        st->state = SG_PX_DONE;
        return;
    default: /* one-byte fields in order */
        st->step = st->step == I5_ASTATUS ? I5_RVER : st->step + 1;
    }
}

static void in_http(struct sg_px_in *st, unsigned char c)
{
    if (c == '\n') {
        if (st->crlf == 0 && st->step)
            st->state = SG_PX_DONE;
        st->crlf = 0;
        st->step = 1; /* past the status line */
    } else if (c != '\r') {
        st->crlf++;
    }
}

size_t sg_px_in_feed(struct sg_px_in *st, const struct sg_px_out *req, const void *buf,
                     size_t n)
{
    const unsigned char *p = buf;
    size_t i = 0;
    if (!req->kind && n)
        st->state = SG_PX_BAD; /* the "proxy" spoke first */
    for (; i < n && st->state == SG_PX_ACTIVE; i++) {
        if (req->kind == 5) {
            if (!st->step)
                st->step = I5_VER;
            in_socks5(st, p[i]);
        } else if (req->kind == 4) {
            if (++st->step == 8) /* VN, CD, port, address */
                st->state = SG_PX_DONE;
        } else {
            in_http(st, p[i]);
        }
    }
    return i;
}
