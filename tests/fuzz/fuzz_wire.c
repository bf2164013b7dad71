/* libFuzzer target: the wire reader (shim/wire.c, wire_msg.c, wire_names.c), the
 * parser of TLS handshakes the shim reads off an SMTP socket it does not drive.
 *
 * The input is a script of operations, each a header byte (bit 7: the server's
 * bytes, else the program's; bits 0-6: how many pieces to cut it in), a 16-bit
 * length and the bytes. The script runs twice, once with each operation fed
 * whole and once cut in pieces (a record across reads, several per read).
 * After an operation that completes a full TLS 1.2 flight the script follows the
 * server's second flight, as the shim does after accepting it (sg_wire_follow).
 * Properties:
 *  - both runs end in the same state with the same version, suite, SNI, hello
 *    count, HelloRetryRequest count and certificates (how reads cut the stream
 *    changes nothing);
 *  - sg_wire_may_send answers the same for the bytes as one iovec and cut in
 *    several, and says no once the state is ERROR;
 *  - the SNI is a NUL-terminated name of letters, digits, '.', '-', '_';
 *  - the certificates lie inside the bytes the server sent and never exceed
 *    SG_WIRE_MAX_CERTS; nothing reads past a buffer (ASan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define FAIL(...) (fprintf(stderr, "fuzz_wire: " __VA_ARGS__), fputc('\n', stderr), abort())
#define MAX_OPS 64
#define MAX_IOV 8

struct op {
    int server;
    unsigned cuts;
    const unsigned char *data;
    size_t len;
};

static struct sg_wire runs[2];

static size_t parse_ops(const unsigned char *p, size_t n, struct op *ops)
{
    size_t count = 0, i = 0;
    while (i + 3 <= n && count < MAX_OPS) {
        struct op *o = &ops[count++];
        o->server = p[i] >> 7;
        o->cuts = p[i] & 0x7f;
        size_t len = (size_t)p[i + 1] << 8 | p[i + 2];
        i += 3;
        o->data = p + i;
        o->len = len < n - i ? len : n - i;
        i += o->len;
    }
    return count;
}

static void check_may_send(const struct sg_wire *w, const struct op *o)
{
    struct iovec one = {(void *)o->data, o->len}, many[MAX_IOV];
    int k = 0;
    size_t step = o->len / MAX_IOV + 1, at = 0;
    while (at < o->len && k < MAX_IOV) {
        size_t len = o->len - at < step ? o->len - at : step;
        if (k == MAX_IOV - 1)
            len = o->len - at;
        many[k++] = (struct iovec){(void *)(o->data + at), len};
        at += len;
    }
    int a = sg_wire_may_send(w, &one, 1), b = sg_wire_may_send(w, many, k);
    if (a != b)
        FAIL("may_send differs with the iovecs cut: %d vs %d", a, b);
    if (a && w->state == SG_WIRE_ERROR)
        FAIL("may_send says yes after an error");
}

static void feed(struct sg_wire *w, const struct op *o, int cut)
{
    size_t pieces = cut ? o->cuts + 1 : 1, step = o->len / pieces + 1;
    for (size_t at = 0; at < o->len;) {
        size_t len = cut && o->cuts == 127 ? 1 : (o->len - at < step ? o->len - at : step);
        if (o->server)
            sg_wire_server(w, o->data + at, len);
        else
            sg_wire_client(w, o->data + at, len);
        at += len;
    }
}

static int certs(const struct sg_wire *w, const unsigned char **der, size_t *len)
{
    int n = sg_wire_certs(w, der, len, SG_WIRE_MAX_CERTS);
    if (n < 0 || n > SG_WIRE_MAX_CERTS)
        FAIL("%d certificates", n);
    for (int i = 0; i < n; i++)
        if (der[i] < w->srv.buf || der[i] + len[i] > w->srv.buf + w->srv.len)
            FAIL("certificate %d outside the server's bytes", i);
    return n;
}

static int same_token(const struct sg_wire_token *a, const struct sg_wire_token *b)
{
    if (a->len > SG_WIRE_TOKEN_MAX + 1 || b->len > SG_WIRE_TOKEN_MAX + 1)
        FAIL("token length %zu/%zu", a->len, b->len);
    return a->len == b->len &&
           (a->len > SG_WIRE_TOKEN_MAX || memcmp(a->data, b->data, a->len) == 0);
}

static void check_same(const struct sg_wire *a, const struct sg_wire *b)
{
    if (a->state != b->state || a->version != b->version || a->cipher != b->cipher ||
        a->client_hellos != b->client_hellos || a->hrr != b->hrr ||
        a->resumed != b->resumed || a->offered_max != b->offered_max ||
        strcmp(a->sni, b->sni) != 0 || !same_token(&a->client_sid, &b->client_sid) ||
        !same_token(&a->client_ticket, &b->client_ticket) ||
        !same_token(&a->server_sid, &b->server_sid) ||
        !same_token(&a->new_ticket, &b->new_ticket))
        FAIL("cutting the reads changed the outcome: state %d/%d version %x/%x", a->state,
             b->state, a->version, b->version);
    const unsigned char *da[SG_WIRE_MAX_CERTS], *db[SG_WIRE_MAX_CERTS];
    size_t la[SG_WIRE_MAX_CERTS], lb[SG_WIRE_MAX_CERTS];
    int na = certs(a, da, la), nb = certs(b, db, lb);
    if (na != nb)
        FAIL("certificates %d vs %d", na, nb);
    for (int i = 0; i < na; i++)
        if (la[i] != lb[i] || memcmp(da[i], db[i], la[i]) != 0)
            FAIL("certificate %d differs", i);
}

static void check_sni(const struct sg_wire *w)
{
    size_t n = strnlen(w->sni, sizeof w->sni);
    if (n == sizeof w->sni)
        FAIL("SNI not terminated");
    if (strspn(w->sni, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
        FAIL("SNI with a character that may not be logged");
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct op ops[MAX_OPS];
    size_t n = parse_ops(data, size, ops);
    char buf[16];
    for (int run = 0; run < 2; run++) {
        sg_wire_init(&runs[run]);
        for (size_t i = 0; i < n; i++) {
            if (!ops[i].server && run == 0)
                check_may_send(&runs[run], &ops[i]);
            feed(&runs[run], &ops[i], run);
            struct sg_wire *w = &runs[run];
            if (w->state == SG_WIRE_READY && w->version == 0x0303 && !w->resumed)
                sg_wire_follow(w);
        }
        check_sni(&runs[run]);
    }
    check_same(&runs[0], &runs[1]);
    sg_wire_version_name(runs[0].version);
    sg_wire_cipher_name(runs[0].cipher, buf, sizeof buf);
    sg_wire_fs_aead(runs[0].cipher);
    return 0;
}
