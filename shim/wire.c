/* The record layer of the wire reader: records split across reads, several
 * per read, handshake messages across records and several per record, the
 * SSLv2-compatible ClientHello, alerts. The messages themselves are read in
 * wire_msg.c. Everything is bounded by SG_WIRE_CAP per direction. */
#include <string.h>

#include "wire.h"
#include "wire_msg.h"

enum { CT_CCS = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23, CT_HEARTBEAT = 24 };

void sg_wire_init(struct sg_wire *w)
{
    memset(w, 0, offsetof(struct sg_wire, cli));
    memset(&w->cli, 0, offsetof(struct sg_wire_dir, buf));
    memset(&w->srv, 0, offsetof(struct sg_wire_dir, buf));
}

int sg_wire_fail(struct sg_wire *w, const char *why)
{
    if (w->state != SG_WIRE_ERROR)
        w->error = why;
    w->state = SG_WIRE_ERROR;
    return SG_WIRE_ERROR;
}

/* Nothing more to read in this direction. In SECOND only the server's
 * second flight is read; the program's bytes are no longer looked at. */
static int over(const struct sg_wire *w, int client)
{
    return w->state == SG_WIRE_SECOND ? client : w->state != SG_WIRE_HELLO &&
                                                     w->state != SG_WIRE_FLIGHT;
}

void sg_wire_follow(struct sg_wire *w)
{
    if (w->state != SG_WIRE_READY)
        return;
    /* Handshake bytes past the one that made the flight complete were kept
     * as far as the read that brought them went: drop them, as a read cut
     * elsewhere would have. The server's next flight starts a record. */
    w->srv.len = w->srv.used;
    w->state = w->srv.lost ? SG_WIRE_DONE : SG_WIRE_SECOND;
}

/* A header just completed: 0 when it starts a record that may be read. */
static const char *check_header(const struct sg_wire_frame *d, int *type, unsigned *len)
{
    if (d->v2) {
        *type = CT_HANDSHAKE;
        *len = (unsigned)(d->hdr[0] & 0x7f) << 8 | d->hdr[1];
        return *len < 3 ? "a short SSLv2-compatible ClientHello" : NULL;
    }
    *type = d->hdr[0];
    *len = (unsigned)d->hdr[3] << 8 | d->hdr[4];
    if (*type < CT_CCS || *type > CT_HEARTBEAT)
        return "a record that is not TLS";
    if (d->hdr[1] != 3)
        return "a record of an unknown protocol version";
    if (*len > SG_WIRE_RECORD_MAX)
        return "a record longer than TLS allows";
    return NULL;
}

/* A v2 hello is only the client's very first record (high bit of byte 0). */
static unsigned header_size(const struct sg_wire_frame *d, int client, unsigned char first)
{
    return client && d->records == 0 && d->hdr_have == 0 && (first & 0x80) ? 2 : 5;
}

static void read_messages(struct sg_wire *w, struct sg_wire_dir *d, int client)
{
    while (!over(w, client) && d->len - d->used >= 4) {
        const unsigned char *m = d->buf + d->used;
        size_t mlen = (size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3];
        if (mlen > SG_WIRE_CAP - 4) {
            sg_wire_fail(w, "a handshake message longer than smtpguard keeps");
            return;
        }
        if (d->len - d->used < 4 + mlen)
            return;
        d->used += 4 + mlen;
        if (client)
            sg_wire_client_msg(w, m[0], m + 4, mlen);
        else
            sg_wire_server_msg(w, m[0], m + 4, mlen, (size_t)(m + 4 - d->buf));
    }
    /* The client's messages are not needed once read: keep its room. The
     * server's stay, the verdict reads the Certificate in place. */
    if (client && d->used) {
        memmove(d->buf, d->buf + d->used, d->len - d->used);
        d->len -= d->used;
        d->used = 0;
    }
}

/* Appended as far as there is room, read, and again: where the reads cut
 * the stream never decides whether the cap is reached. */
static void handshake_bytes(struct sg_wire *w, struct sg_wire_dir *d, int client,
                            const unsigned char *p, size_t n)
{
    while (n && !over(w, client)) {
        size_t room = SG_WIRE_CAP - d->len, take = n < room ? n : room;
        if (take == 0) {
            sg_wire_fail(w, "a handshake larger than smtpguard keeps");
            return;
        }
        memcpy(d->buf + d->len, p, take);
        d->len += take;
        p += take;
        n -= take;
        if (!d->f.v2)
            read_messages(w, d, client);
    }
}

static void alert_bytes(struct sg_wire *w, struct sg_wire_dir *d, int client,
                        const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++, d->alert_have++)
        if (d->alert_have % 2 == 0)
            d->alert[0] = p[i];
        else if (!client && d->alert[0] == 2)
            w->state = SG_WIRE_FAILED; /* fatal: the handshake is over */
}

static void body_bytes(struct sg_wire *w, struct sg_wire_dir *d, int client,
                       const unsigned char *p, size_t n)
{
    switch (d->f.type) {
    case CT_HANDSHAKE:
        handshake_bytes(w, d, client, p, n);
        break;
    case CT_ALERT:
        alert_bytes(w, d, client, p, n);
        break;
    case CT_CCS:
        if (!client)
            sg_wire_server_ccs(w);
        break;
    case CT_APPDATA:
        if (w->state == SG_WIRE_SECOND)
            w->state = SG_WIRE_DONE; /* no ticket came: what follows is encrypted */
        else
            sg_wire_fail(w, client ? "application data before the handshake was judged"
                               : "application data from the server before its handshake");
        break;
    default:
        break; /* heartbeat: nothing for the verdict */
    }
}

static void record_end(struct sg_wire *w, struct sg_wire_dir *d)
{
    if (d->f.v2) {
        if (!over(w, 1))
            sg_wire_client_v2(w, d->buf, d->len);
        d->len = d->used = 0;
        d->f.v2 = 0;
    }
}

/* One step of framing: take a header byte, or say how many body bytes
 * follow (0 with *bad set when the header refuses the record). */
static size_t frame_step(struct sg_wire_frame *f, int client, const unsigned char **p, size_t *n,
                         const char **bad)
{
    unsigned size = f->hdr_have ? (f->v2 ? 2 : 5) : header_size(f, client, **p);
    if (f->hdr_have < size) {
        if (f->hdr_have == 0)
            f->v2 = size == 2;
        f->hdr[f->hdr_have++] = *(*p)++;
        (*n)--;
        if (f->hdr_have < size)
            return 0;
        if ((*bad = check_header(f, &f->type, &f->left)) != NULL)
            return 0;
        f->records++;
    }
    return *n < f->left ? *n : f->left;
}

/* Every byte goes through the record framing, also once nothing more is to
 * be read: where the reads cut the stream must not decide where records
 * begin when reading resumes (sg_wire_follow). */
static int feed(struct sg_wire *w, struct sg_wire_dir *d, int client, const unsigned char *p,
                size_t n)
{
    struct sg_wire_frame *f = &d->f;
    while (n && !d->lost) {
        const char *bad = NULL;
        unsigned had = f->hdr_have;
        size_t take = frame_step(f, client, &p, &n, &bad);
        if (bad && over(w, client)) {
            d->lost = 1; /* nothing was to be read from these bytes anyway */
            break;
        }
        if (bad)
            return sg_wire_fail(w, bad);
        unsigned size = f->v2 ? 2 : 5;
        if (f->hdr_have < size)
            continue;
        if (had < size)
            d->alert_have = 0; /* a new record begins */
        if (!over(w, client))
            body_bytes(w, d, client, p, take);
        p += take;
        n -= take;
        f->left -= (unsigned)take;
        if (f->left == 0) {
            record_end(w, d);
            f->hdr_have = 0;
        }
    }
    return w->state;
}

int sg_wire_client(struct sg_wire *w, const unsigned char *p, size_t n)
{
    return feed(w, &w->cli, 1, p, n);
}

int sg_wire_server(struct sg_wire *w, const unsigned char *p, size_t n)
{
    return feed(w, &w->srv, 0, p, n);
}

/* The client's record framing walked over p without changing w. */
/* The client's record framing walked over p on a copy of the frame. */
static int may_send(const struct sg_wire *w, struct sg_wire_frame *f, const unsigned char *p,
                    size_t n)
{
    while (n) {
        const char *bad = NULL;
        unsigned had = f->hdr_have;
        size_t take = frame_step(f, 1, &p, &n, &bad);
        if (bad)
            return 0;
        unsigned size = f->v2 ? 2 : 5;
        if (f->hdr_have < size)
            continue;
        if (had < size && (f->type == CT_APPDATA ||
                           (w->state == SG_WIRE_FLIGHT && f->type != CT_ALERT)))
            return 0;
        p += take;
        n -= take;
        f->left -= (unsigned)take;
        if (f->left == 0)
            f->hdr_have = 0;
    }
    return 1;
}

int sg_wire_may_send(const struct sg_wire *w, const struct iovec *iov, int iovcnt)
{
    struct sg_wire_frame f = w->cli.f;
    if (w->state == SG_WIRE_ERROR)
        return 0;
    if (w->state == SG_WIRE_SECOND || w->state == SG_WIRE_DONE)
        return 1; /* the verdict was given */
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len && !may_send(w, &f, iov[i].iov_base, iov[i].iov_len))
            return 0;
    return 1;
}
