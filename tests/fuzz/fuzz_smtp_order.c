/* libFuzzer target: STARTTLS reply tracking by order (shim/smtp.c, issue 11).
 *
 * The guard counts the command lines a program sends (sg_smtp_out.lines, the
 * STARTTLS line in starttls_line) and the replies it receives (the greeting is
 * reply 1, the reply to line k is reply k + 1), and finds the end of the reply
 * that answers STARTTLS with sg_smtp_in_until. Input: a split header
 * (split.h), then a stream whose first byte B says how many of the following
 * bytes the program sends (B * len / 255); the rest is what it receives.
 * Whatever the cut of either stream (write and read sizes are the program's
 * and the network's choice):
 *  - the command tracker counts the same lines and the same STARTTLS line, and
 *    starttls_line is 0 or in 1..lines + 1 (lines + 1: that line is not ended);
 *  - sg_smtp_in_until finds the end of reply `target` at the same stream offset
 *    as feeding byte by byte does, reports -1 exactly when the stream holds
 *    fewer replies, and leaves the same state;
 *  - the count of replies never goes down and no more than one reply ends per
 *    newline. */
#include <stdio.h>
#include <string.h>

#include "smtp.h"
#include "split.h"

#define FAIL(...) (fprintf(stderr, "fuzz_smtp_order: " __VA_ARGS__), fputc('\n', stderr), abort())

static int same_out(const struct sg_smtp_out *a, const struct sg_smtp_out *b)
{
    return a->lines == b->lines && a->starttls_line == b->starttls_line &&
           a->state == b->state && a->last_verb == b->last_verb;
}

static int same_in(const struct sg_smtp_in *a, const struct sg_smtp_in *b)
{
    return a->state == b->state && a->code == b->code && a->digits == b->digits &&
           a->final == b->final && a->last_code == b->last_code && a->replies == b->replies;
}

/* The non-empty pieces of [from, from + len) of the split stream. */
struct pieces {
    size_t count;
    const uint8_t *p[SPLIT_MAX + 1];
    size_t n[SPLIT_MAX + 1];
};

static void pieces_of(const struct split *sp, size_t from, size_t len, struct pieces *out)
{
    out->count = 0;
    for (size_t i = 0; i < SPLIT_PIECES(sp); i++) {
        size_t lo = sp->cut[i] > from ? sp->cut[i] : from;
        size_t hi = sp->cut[i + 1] < from + len ? sp->cut[i + 1] : from + len;
        if (lo < hi) {
            out->p[out->count] = sp->stream + lo;
            out->n[out->count++] = hi - lo;
        }
    }
}

static void check_out(const struct split *sp, size_t from, size_t len, struct sg_smtp_out *res)
{
    struct sg_smtp_out whole, pieces, bytes;
    memset(&whole, 0, sizeof whole);
    memset(&pieces, 0, sizeof pieces);
    memset(&bytes, 0, sizeof bytes);
    sg_smtp_out_feed(&whole, sp->stream + from, len);
    struct pieces pc;
    pieces_of(sp, from, len, &pc);
    for (size_t i = 0; i < pc.count; i++)
        sg_smtp_out_feed(&pieces, pc.p[i], pc.n[i]);
    unsigned lines = 0;
    for (size_t i = 0; i < len; i++) {
        sg_smtp_out_feed(&bytes, sp->stream + from + i, 1);
        if (bytes.lines < lines || bytes.lines > lines + 1)
            FAIL("lines went from %u to %u on one byte", lines, bytes.lines);
        lines = bytes.lines;
    }
    if (!same_out(&whole, &pieces) || !same_out(&whole, &bytes))
        FAIL("command count depends on the cut: %u/%u/%u lines, STARTTLS %u/%u/%u", whole.lines,
             pieces.lines, bytes.lines, whole.starttls_line, pieces.starttls_line,
             bytes.starttls_line);
    if (whole.starttls_line > whole.lines + 1)
        FAIL("STARTTLS line %u of %u", whole.starttls_line, whole.lines);
    *res = whole;
}

/* Byte by byte: the offset just after reply `target` ends, or len. */
static size_t reference_end(const uint8_t *p, size_t len, unsigned target,
                            struct sg_smtp_in *st)
{
    for (size_t i = 0; i < len; i++) {
        unsigned before = st->replies;
        sg_smtp_in_feed(st, p + i, 1, 0);
        if (st->replies < before || st->replies > before + 1 ||
            (st->replies != before && p[i] != '\n'))
            FAIL("reply count %u -> %u on byte %02x", before, st->replies, p[i]);
        if (st->replies >= target)
            return i + 1;
    }
    return len;
}

static void check_in(const struct split *sp, size_t from, size_t len, unsigned target)
{
    struct sg_smtp_in ref, pieces;
    memset(&ref, 0, sizeof ref);
    memset(&pieces, 0, sizeof pieces);
    size_t end = reference_end(sp->stream + from, len, target, &ref);
    int found = ref.replies >= target;
    size_t got = len, fed = 0;
    int done = 0;
    struct pieces pc;
    pieces_of(sp, from, len, &pc);
    for (size_t i = 0; i < pc.count && !done; i++) {
        size_t extra = sg_smtp_in_until(&pieces, pc.p[i], pc.n[i], target);
        if (extra != (size_t)-1) {
            if (extra > pc.n[i])
                FAIL("%zu bytes after the reply in a piece of %zu", extra, pc.n[i]);
            got = fed + pc.n[i] - extra;
            done = 1;
        }
        fed += pc.n[i];
    }
    if (done != found || (found && got != end))
        FAIL("reply %u: ends at %zu (found %d), byte by byte at %zu (found %d)", target, got,
             done, end, found);
    if (found && !same_in(&ref, &pieces))
        FAIL("state after reply %u depends on the cut", target);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct split sp;
    if (!split_input(data, size, &sp) || sp.len < 1)
        return 0;
    size_t rest = sp.len - 1, out_len = (size_t)sp.stream[0] * rest / 255;
    struct sg_smtp_out out;
    check_out(&sp, 1, out_len, &out);
    /* The reply that answers STARTTLS, else the one after the last line. */
    unsigned target = sg_smtp_reply_of(out.starttls_line ? out.starttls_line : out.lines);
    check_in(&sp, 1 + out_len, rest - out_len, target);
    check_in(&sp, 1 + out_len, rest - out_len, 1); /* the greeting */
    return 0;
}
