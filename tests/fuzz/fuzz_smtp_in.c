/* libFuzzer target: the inbound SMTP reply tracker (shim/smtp.c).
 *
 * Whatever the cut of the stream (read sizes are the network's choice):
 *  - without stopping, fed at once, in fuzzer-chosen pieces or byte by byte, it
 *    ends in the same state;
 *  - stopping after the first complete reply (what the guard does after STARTTLS),
 *    the pieces must find the reply at the same stream offset as the whole, so the
 *    count of bytes after it (response injection) is the same, and the state too. */
#include <stdio.h>
#include <string.h>

#include "smtp.h"
#include "split.h"

#define FAIL(...) (fprintf(stderr, "fuzz_smtp_in: " __VA_ARGS__), fputc('\n', stderr), abort())

static int same_state(const struct sg_smtp_in *a, const struct sg_smtp_in *b)
{
    return a->state == b->state && a->code == b->code && a->digits == b->digits &&
           a->final == b->final && a->last_code == b->last_code && a->replies == b->replies;
}

static void show(const char *what, const struct sg_smtp_in *s, size_t after)
{
    fprintf(stderr, "%s: after=%zu state=%d code=%d digits=%d final=%d last_code=%d replies=%u\n",
            what, after, s->state, s->code, s->digits, s->final, s->last_code, s->replies);
}

static void check_unstopped(const struct split *sp)
{
    struct sg_smtp_in whole, pieces, bytes;
    memset(&whole, 0, sizeof whole);
    memset(&pieces, 0, sizeof pieces);
    memset(&bytes, 0, sizeof bytes);
    if (sg_smtp_in_feed(&whole, sp->stream, sp->len, 0) != 0)
        FAIL("bytes after a reply reported without stop_after_reply");
    for (size_t i = 0; i < SPLIT_PIECES(sp); i++)
        sg_smtp_in_feed(&pieces, PIECE(sp, i), PIECE_LEN(sp, i), 0);
    for (size_t i = 0; i < sp->len; i++)
        sg_smtp_in_feed(&bytes, sp->stream + i, 1, 0);
    if (!same_state(&whole, &pieces) || !same_state(&whole, &bytes)) {
        show("whole", &whole, 0);
        show("pieces", &pieces, 0);
        show("bytes", &bytes, 0);
        FAIL("the final state depends on how the stream is cut");
    }
}

/* As sg_guard_received does over an iovec: feed until a reply is complete, then
 * count what is left in this piece and in the later ones. */
static void check_stopped(const struct split *sp)
{
    struct sg_smtp_in whole, pieces;
    memset(&whole, 0, sizeof whole);
    memset(&pieces, 0, sizeof pieces);
    size_t after_whole = sg_smtp_in_feed(&whole, sp->stream, sp->len, 1), after_pieces = 0;
    size_t left = sp->len;
    for (size_t i = 0; i < SPLIT_PIECES(sp); i++) {
        size_t extra = sg_smtp_in_feed(&pieces, PIECE(sp, i), PIECE_LEN(sp, i), 1);
        left -= PIECE_LEN(sp, i);
        if (pieces.replies) {
            after_pieces = extra + left;
            break;
        }
    }
    if (after_whole > sp->len || (whole.replies == 0 && after_whole != 0))
        FAIL("bytes after the reply out of range: %zu of %zu", after_whole, sp->len);
    if (after_whole != after_pieces || !same_state(&whole, &pieces)) {
        show("whole", &whole, after_whole);
        show("pieces", &pieces, after_pieces);
        FAIL("the end of the first reply depends on how the stream is cut");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct split sp;
    if (!split_input(data, size, &sp))
        return 0;
    check_unstopped(&sp);
    check_stopped(&sp);
    return 0;
}
