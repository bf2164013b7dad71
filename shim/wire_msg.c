/* The handshake messages the wire verdict needs: ClientHello (SNI, offered
 * versions), ServerHello (version, also from supported_versions, suite,
 * HelloRetryRequest), TLS 1.2 Certificate and ServerHelloDone. Every length
 * is checked against what is left; a malformed message refuses. */
#include <stdio.h>
#include <string.h>

#include "wire_msg.h"

enum { HS_HELLO_REQUEST = 0, HS_CLIENT_HELLO = 1, HS_SERVER_HELLO = 2,
       HS_NEW_SESSION_TICKET = 4, HS_CERTIFICATE = 11, HS_SERVER_HELLO_DONE = 14 };
enum { EXT_SNI = 0, EXT_SESSION_TICKET = 35, EXT_SUPPORTED_VERSIONS = 43 };

/* SHA-256 of "HelloRetryRequest": the random of a HelloRetryRequest (RFC 8446 4.1.3). */
static const unsigned char hrr_random[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

struct cur {
    const unsigned char *p;
    size_t n;
    int bad;
};

static unsigned get(struct cur *c, size_t bytes)
{
    unsigned v = 0;
    if (c->bad || bytes > c->n) {
        c->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < bytes; i++)
        v = v << 8 | c->p[i];
    c->p += bytes;
    c->n -= bytes;
    return v;
}

/* A sub-cursor over the next len bytes (length-prefixed vectors). */
static struct cur sub(struct cur *c, size_t len)
{
    struct cur s = {c->p, len, c->bad || len > c->n};
    if (s.bad) {
        c->bad = 1;
        s.n = 0;
    } else {
        c->p += len;
        c->n -= len;
    }
    return s;
}

static struct cur vec(struct cur *c, size_t prefix)
{
    return sub(c, get(c, prefix));
}

static void keep(struct sg_wire_token *t, struct cur c)
{
    t->len = c.bad ? 0 : c.n > SG_WIRE_TOKEN_MAX ? SG_WIRE_TOKEN_MAX + 1 : c.n;
    if (t->len <= SG_WIRE_TOKEN_MAX)
        memcpy(t->data, c.p, t->len);
}

static int grease(unsigned v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* Only names that are safe to log and to verify: letters, digits, . - _ */
static void take_sni(struct sg_wire *w, struct cur names)
{
    while (names.n && !names.bad) {
        unsigned type = get(&names, 1);
        struct cur name = vec(&names, 2);
        if (names.bad || type != 0 || w->sni[0])
            continue;
        if (name.n == 0 || name.n >= sizeof w->sni) {
            sg_wire_fail(w, "a ClientHello with an unusable server name");
            return;
        }
        for (size_t i = 0; i < name.n; i++) {
            unsigned char ch = name.p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_')) {
                sg_wire_fail(w, "a ClientHello with an unusable server name");
                return;
            }
        }
        memcpy(w->sni, name.p, name.n);
        w->sni[name.n] = 0;
    }
}

static void client_extension(struct sg_wire *w, unsigned type, struct cur e)
{
    if (type == EXT_SNI) {
        take_sni(w, vec(&e, 2));
    } else if (type == EXT_SESSION_TICKET) {
        keep(&w->client_ticket, e);
    } else if (type == EXT_SUPPORTED_VERSIONS) {
        struct cur v = vec(&e, 1);
        while (v.n >= 2) {
            unsigned version = get(&v, 2);
            if (!grease(version) && (int)version > w->offered_max)
                w->offered_max = (int)version;
        }
    }
}

static void client_hello(struct sg_wire *w, struct cur c)
{
    int legacy = (int)get(&c, 2);
    get(&c, 32);   /* random */
    keep(&w->client_sid, vec(&c, 1));
    w->client_ticket.len = 0;
    vec(&c, 2);    /* cipher suites */
    vec(&c, 1);    /* compression methods */
    if (c.bad)
        goto bad;
    if (legacy > w->offered_max)
        w->offered_max = legacy;
    if (c.n) {
        struct cur exts = vec(&c, 2);
        while (exts.n && !exts.bad && w->state != SG_WIRE_ERROR) {
            unsigned type = get(&exts, 2);
            struct cur e = vec(&exts, 2);
            if (!exts.bad)
                client_extension(w, type, e);
        }
        if (exts.bad)
            goto bad;
    }
    w->client_hellos++;
    return;
bad:
    sg_wire_fail(w, "a malformed ClientHello");
}

void sg_wire_client_msg(struct sg_wire *w, int type, const unsigned char *m, size_t len)
{
    if (type == HS_CLIENT_HELLO)
        client_hello(w, (struct cur){m, len, 0});
    else if (w->client_hellos == 0)
        sg_wire_fail(w, "a client handshake that does not start with a ClientHello");
}

void sg_wire_client_v2(struct sg_wire *w, const unsigned char *m, size_t len)
{
    if (len < 3 || m[0] != HS_CLIENT_HELLO) {
        sg_wire_fail(w, "an SSLv2 record that is not a ClientHello");
        return;
    }
    int version = m[1] << 8 | m[2];
    if (version > w->offered_max)
        w->offered_max = version;
    w->client_hellos++;
}

static void server_hello(struct sg_wire *w, struct cur c)
{
    int version = (int)get(&c, 2);
    const unsigned char *random = c.p;
    get(&c, 32);
    keep(&w->server_sid, vec(&c, 1));
    int cipher = (int)get(&c, 2);
    get(&c, 1); /* compression */
    if (!c.bad && c.n) {
        struct cur exts = vec(&c, 2);
        while (exts.n && !exts.bad) {
            unsigned type = get(&exts, 2);
            struct cur e = vec(&exts, 2);
            if (type == EXT_SUPPORTED_VERSIONS && !exts.bad)
                version = (int)get(&e, 2);
            if (e.bad)
                exts.bad = 1;
        }
        c.bad |= exts.bad;
    }
    if (c.bad || w->client_hellos == 0) {
        sg_wire_fail(w, "a malformed ServerHello");
        return;
    }
    w->version = version;
    w->cipher = cipher;
    if (memcmp(random, hrr_random, 32) == 0) {
        /* The real ServerHello follows the client's second hello. */
        if (++w->hrr > 1 || version != 0x0304)
            sg_wire_fail(w, "a second or pre-TLS 1.3 HelloRetryRequest");
        return;
    }
    w->state = version == 0x0303 ? SG_WIRE_FLIGHT : SG_WIRE_READY;
}

/* TLS 1.2 Certificate: a 24-bit vector of 24-bit vectors. */
static void certificate(struct sg_wire *w, struct cur c, size_t off)
{
    struct cur list = vec(&c, 3);
    int count = 0;
    while (list.n && !list.bad) {
        struct cur der = vec(&list, 3);
        count += !der.bad;
    }
    if (list.bad || c.bad || c.n || count > SG_WIRE_MAX_CERTS) {
        sg_wire_fail(w, "a malformed or too long Certificate message");
        return;
    }
    w->cert_off = off;
    w->cert_len = (size_t)(list.p - (w->srv.buf + off));
}

void sg_wire_server_msg(struct sg_wire *w, int type, const unsigned char *m, size_t len,
                        size_t off)
{
    struct cur c = {m, len, 0};
    if (w->state == SG_WIRE_HELLO) {
        if (type == HS_SERVER_HELLO)
            server_hello(w, c);
        else if (type != HS_HELLO_REQUEST)
            sg_wire_fail(w, "a server handshake that does not start with a ServerHello");
    } else if (w->state == SG_WIRE_SECOND) {
        if (type == HS_NEW_SESSION_TICKET) {
            get(&c, 4); /* lifetime hint */
            keep(&w->new_ticket, vec(&c, 2));
        }
    } else if (w->state == SG_WIRE_FLIGHT) {
        if (type == HS_CERTIFICATE && !w->cert_len)
            certificate(w, c, off);
        else if (type == HS_SERVER_HELLO_DONE)
            w->state = SG_WIRE_READY;
        else if (type == HS_SERVER_HELLO || type == HS_CLIENT_HELLO || type == HS_CERTIFICATE)
            sg_wire_fail(w, "a repeated hello or certificate in the server's flight");
    }
}

/* In TLS 1.2 a ChangeCipherSpec after the ServerHello is an abbreviated
 * (resumed) handshake: no certificate on the wire. Before it, TLS 1.3's
 * middlebox-compatibility dummy after a HelloRetryRequest. */
void sg_wire_server_ccs(struct sg_wire *w)
{
    if (w->state == SG_WIRE_FLIGHT) {
        w->resumed = 1;
        w->state = SG_WIRE_READY;
    } else if (w->state == SG_WIRE_SECOND) {
        w->state = SG_WIRE_DONE;
    } else if (w->state == SG_WIRE_HELLO && !w->hrr) {
        sg_wire_fail(w, "a ChangeCipherSpec before the ServerHello");
    }
}

int sg_wire_certs(const struct sg_wire *w, const unsigned char **der, size_t *len, int max)
{
    if (!w->cert_len || w->cert_off + w->cert_len > w->srv.len)
        return 0;
    struct cur c = {w->srv.buf + w->cert_off, w->cert_len, 0};
    struct cur list = vec(&c, 3);
    int n = 0;
    while (list.n && !list.bad && n < max) {
        struct cur d = vec(&list, 3);
        if (d.bad)
            break;
        der[n] = d.p;
        len[n++] = d.n;
    }
    return n;
}
