/* libFuzzer target: the plaintext guard's decisions (shim/guard.c over the real
 * fdstate, smtp and policy code), on a socketpair standing in for the SMTP socket.
 *
 * The input is a flag byte (implicit port, require_tls, audit, broken policy,
 * inside a TLS library) and a script of operations: send LEN bytes of which the
 * kernel takes some, receive into a buffer of which the kernel filled some, a
 * passed handshake, a question about injection. The script runs twice: once with
 * each buffer as one iovec and the unfilled part of receive buffers holding the
 * script's bytes, once with the buffers cut into several iovecs (empty ones
 * among them) and the unfilled part holding other bytes. Properties:
 *  - both runs decide the same at every step and end in the same state (how a
 *    program cuts its I/O, and bytes the kernel did not fill, change nothing);
 *  - with require_tls (or a broken policy) and not audit, the bytes committed in
 *    the plaintext phase never contain AUTH, MAIL, RCPT, DATA or BDAT;
 *  - on an implicit-TLS port no plaintext byte leaves before the first TLS record;
 *  - once a send is refused, every later send is refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "fdstate.h"
#include "guard.h"
#include "inside.h"
#include "smtp.h"

#define FAIL(...) (fprintf(stderr, "fuzz_guard: " __VA_ARGS__), fputc('\n', stderr), abort())
#define MAX_OPS 64
#define MAX_IOV 6

extern struct sg_policy fuzz_policy;

enum { OP_SEND, OP_RECV, OP_TLS_OK, OP_INJECTED };
enum { F_IMPLICIT = 1, F_REQUIRE = 2, F_AUDIT = 4, F_BROKEN = 8, F_INSIDE = 16 };

struct op {
    int kind;
    unsigned cuts;          /* second run: the buffer in cuts+1 iovecs */
    int empty_first;        /* second run: an empty iovec first */
    const unsigned char *data;
    size_t len, done;       /* done: bytes the kernel took or filled */
};

struct outcome {
    int result[MAX_OPS], err[MAX_OPS], phase[MAX_OPS];
    struct sg_conn end;
};

static size_t parse_ops(const unsigned char *p, size_t n, struct op *ops)
{
    size_t count = 0, i = 0;
    while (i + 2 < n && count < MAX_OPS) {
        struct op *o = &ops[count++];
        unsigned char h = p[i], t = p[i + 1];
        o->kind = h & 3;
        o->cuts = (h >> 2) % MAX_IOV;
        o->empty_first = h >> 7;
        o->len = p[i + 2] % 64;
        i += 3;
        if (o->len > n - i)
            o->len = n - i;
        o->data = p + i;
        o->done = t % (o->len + 1);
        i += o->len;
    }
    return count;
}

/* The iovecs of one buffer: one, or cut evenly with an optional empty one first. */
static int make_iov(const struct op *o, unsigned char *buf, int cut, struct iovec *iov)
{
    int n = 0;
    if (!cut) {
        iov[0] = (struct iovec){buf, o->len};
        return 1;
    }
    if (o->empty_first)
        iov[n++] = (struct iovec){buf, 0};
    size_t pieces = o->cuts + 1, at = 0;
    for (size_t k = 1; k <= pieces; k++) {
        size_t end = o->len * k / pieces;
        iov[n++] = (struct iovec){buf + at, end - at};
        at = end;
    }
    return n;
}

static int one_op(int fd, const struct op *o, int cut, unsigned char *buf)
{
    struct iovec iov[MAX_IOV + 1];
    memcpy(buf, o->data, o->len);
    int n = make_iov(o, buf, cut, iov);
    switch (o->kind) {
    case OP_SEND:
        if (sg_guard_before_send(fd, iov, n) != 0)
            return -1;
        sg_guard_sent(fd, iov, n, o->done);
        return 0;
    case OP_RECV:
        /* What the kernel did not fill is not data: the runs hold different bytes there. */
        memset(buf + o->done, cut ? '\n' : 'X', o->len - o->done);
        return sg_guard_received(fd, iov, n, o->done);
    case OP_TLS_OK:
        sg_guard_tls_ok(fd);
        return 0;
    default:
        return sg_guard_injected(fd);
    }
}

static void run(const struct op *ops, size_t nops, int flags, int cut, struct outcome *out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(2525)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!sg_conn_open(sv[0], (struct sockaddr *)&sin, sizeof sin, 2525))
        FAIL("no connection record");
    sg_guard_connected(sv[0], flags & F_IMPLICIT);
    struct sg_inside in; /* the guard runs below this frame, as in a real call */
    if (flags & F_INSIDE)
        sg_inside_enter(&in, NULL);
    for (size_t i = 0; i < nops; i++) {
        unsigned char buf[64];
        errno = 0;
        out->result[i] = one_op(sv[0], &ops[i], cut, buf);
        out->err[i] = out->result[i] < 0 ? errno : 0;
        out->phase[i] = sg_conn_peek(sv[0])->phase;
    }
    out->end = *sg_conn_peek(sv[0]);
    if (flags & F_INSIDE)
        sg_inside_leave(&in);
    sg_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

static int same_end(const struct sg_conn *a, const struct sg_conn *b)
{
    return a->phase == b->phase && a->implicit == b->implicit &&
           a->starttls_sent == b->starttls_sent && a->injected == b->injected &&
           memcmp(&a->out, &b->out, sizeof a->out) == 0 && memcmp(&a->in, &b->in, sizeof a->in) == 0;
}

static void compare(const struct outcome *a, const struct outcome *b, size_t nops)
{
    for (size_t i = 0; i < nops; i++)
        if (a->result[i] != b->result[i] || a->err[i] != b->err[i] || a->phase[i] != b->phase[i])
            FAIL("step %zu differs with iovec cuts: result %d/%d errno %d/%d phase %d/%d", i,
                 a->result[i], b->result[i], a->err[i], b->err[i], a->phase[i], b->phase[i]);
    if (!same_end(&a->end, &b->end))
        FAIL("the final state differs with iovec cuts: phase %d/%d injected %d/%d",
             a->end.phase, b->end.phase, a->end.injected, b->end.injected);
}

/* The fail-closed properties, on the first run. */
static void check_policy(const struct op *ops, size_t nops, int flags, const struct outcome *o)
{
    int strict = (flags & F_BROKEN) || !(flags & F_AUDIT);
    int no_secret = strict && (flags & (F_REQUIRE | F_BROKEN));
    struct sg_smtp_out ref;
    unsigned seen = 0;
    int refused = 0, tls_seen = 0;
    memset(&ref, 0, sizeof ref);
    for (size_t i = 0; i < nops; i++) {
        const struct op *op = &ops[i];
        if (op->kind == OP_TLS_OK)
            tls_seen = 1;
        if (op->kind != OP_SEND || op->len == 0)
            continue;
        if (refused && o->result[i] != -1)
            FAIL("step %zu: a send after a refusal went through", i);
        if (o->result[i] == -1) {
            refused = strict;
            continue;
        }
        if (op->data[0] == 0x16)
            tls_seen = 1;
        if ((flags & F_IMPLICIT) && strict && !tls_seen)
            FAIL("step %zu: plaintext went to an implicit-TLS port", i);
        if (o->phase[i] == SG_PLAIN)
            seen |= sg_smtp_out_feed(&ref, op->data, op->done);
    }
    if (no_secret && (seen & SG_V_SECRET))
        FAIL("%s left in plaintext", sg_smtp_verb_name(seen & SG_V_SECRET & -(seen & SG_V_SECRET)));
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static struct outcome a, b;
    struct op ops[MAX_OPS];
    if (size < 1)
        return 0;
    int flags = data[0];
    size_t nops = parse_ops(data + 1, size - 1, ops);

    sg_policy_defaults(&fuzz_policy);
    fuzz_policy.require_tls = (flags & F_REQUIRE) != 0;
    fuzz_policy.mode = flags & F_AUDIT ? SG_MODE_AUDIT : SG_MODE_ENFORCE;
    fuzz_policy.broken = (flags & F_BROKEN) != 0;

    run(ops, nops, flags, 0, &a);
    run(ops, nops, flags, 1, &b);
    compare(&a, &b, nops);
    check_policy(ops, nops, flags, &a);
    return 0;
}
