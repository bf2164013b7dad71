/* libFuzzer target: the proxy request and reply parsers (shim/proxy.c).
 *
 * Input: a split header (split.h), then a stream whose first byte B says how
 * many of the following bytes the program sends (B * len / 255); the rest is
 * what the proxy answers. Whatever the cut (write and read sizes are the
 * program's and the network's choice):
 *  - the request parser ends in the same state, kind, destination and port,
 *    and finds the end of the request at the same offset, fed whole, in
 *    pieces or byte by byte;
 *  - the destination name is always terminated inside its buffer and the port
 *    is 0..65535;
 *  - the reply parser skips the same number of bytes however they are cut. */
#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "split.h"

#define FAIL(...) (fprintf(stderr, "fuzz_proxy: " __VA_ARGS__), fputc('\n', stderr), abort())

static void check_req(const struct sg_px_out *r)
{
    if (r->hlen >= sizeof r->host || memchr(r->host, 0, sizeof r->host) == NULL ||
        strlen(r->host) != r->hlen)
        FAIL("destination name not terminated (hlen %u)", r->hlen);
    if (r->port < 0 || r->port > 65535)
        FAIL("port %d", r->port);
}

static int same_req(const struct sg_px_out *a, const struct sg_px_out *b)
{
    return a->state == b->state && a->kind == b->kind && a->port == b->port &&
           strcmp(a->host, b->host) == 0;
}

/* Feed [from, from + len) of the stream: whole (pieces = 0), by the split's
 * pieces (1) or byte by byte (2). Returns the bytes used by the parser. */
static size_t feed_out(const struct split *sp, size_t from, size_t len, int how,
                       struct sg_px_out *st)
{
    memset(st, 0, sizeof *st);
    st->state = SG_PX_ACTIVE;
    if (how == 0)
        return sg_px_out_feed(st, sp->stream + from, len);
    size_t used = 0;
    for (size_t i = 0; i < SPLIT_PIECES(sp) && st->state == SG_PX_ACTIVE; i++) {
        size_t lo = sp->cut[i] > from ? sp->cut[i] : from;
        size_t hi = sp->cut[i + 1] < from + len ? sp->cut[i + 1] : from + len;
        for (size_t at = lo; at < hi && st->state == SG_PX_ACTIVE;) {
            size_t n = how == 2 ? 1 : hi - at;
            used += sg_px_out_feed(st, sp->stream + at, n);
            at += n;
        }
    }
    return used;
}

static size_t feed_in(const struct split *sp, size_t from, size_t len, int how,
                      const struct sg_px_out *req, struct sg_px_in *st)
{
    memset(st, 0, sizeof *st);
    st->state = SG_PX_ACTIVE;
    if (how == 0)
        return sg_px_in_feed(st, req, sp->stream + from, len);
    size_t used = 0;
    for (size_t i = 0; i < SPLIT_PIECES(sp) && st->state == SG_PX_ACTIVE; i++) {
        size_t lo = sp->cut[i] > from ? sp->cut[i] : from;
        size_t hi = sp->cut[i + 1] < from + len ? sp->cut[i + 1] : from + len;
        for (size_t at = lo; at < hi && st->state == SG_PX_ACTIVE;) {
            size_t n = how == 2 ? 1 : hi - at;
            used += sg_px_in_feed(st, req, sp->stream + at, n);
            at += n;
        }
    }
    return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct split sp;
    if (!split_input(data, size, &sp) || sp.len < 1)
        return 0;
    size_t rest = sp.len - 1, out_len = (size_t)sp.stream[0] * rest / 255;
    struct sg_px_out req[3];
    size_t used[3];
    for (int how = 0; how < 3; how++) {
        used[how] = feed_out(&sp, 1, out_len, how, &req[how]);
        check_req(&req[how]);
        if (used[how] > out_len)
            FAIL("used %zu of %zu bytes", used[how], out_len);
    }
    if (!same_req(&req[0], &req[1]) || !same_req(&req[0], &req[2]) || used[0] != used[1] ||
        used[0] != used[2])
        FAIL("the request depends on the cut: state %d/%d/%d port %d/%d/%d used %zu/%zu/%zu",
             req[0].state, req[1].state, req[2].state, req[0].port, req[1].port, req[2].port,
             used[0], used[1], used[2]);
    struct sg_px_in in[3];
    size_t skipped[3];
    for (int how = 0; how < 3; how++)
        skipped[how] = feed_in(&sp, 1 + out_len, rest - out_len, how, &req[0], &in[how]);
    if (skipped[0] != skipped[1] || skipped[0] != skipped[2] || in[0].state != in[1].state ||
        in[0].state != in[2].state)
        FAIL("the replies depend on the cut: skipped %zu/%zu/%zu", skipped[0], skipped[1],
             skipped[2]);
    return 0;
}
