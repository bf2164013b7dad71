/* libFuzzer target: the outbound SMTP command tracker (shim/smtp.c).
 *
 * The guard feeds it whatever chunks the program writes, so the result must not
 * depend on how the stream is cut: fed at once, in fuzzer-chosen pieces (empty
 * ones included) and one byte at a time, it must report the same union of verbs
 * and end in the same state. */
#include <stdio.h>
#include <string.h>

#include "smtp.h"
#include "split.h"

#define FAIL(...) (fprintf(stderr, "fuzz_smtp_out: " __VA_ARGS__), fputc('\n', stderr), abort())
#define KNOWN_VERBS (SG_V_OTHER | SG_V_EHLO | SG_V_STARTTLS | SG_V_SECRET | SG_V_QUIT)

static int same_state(const struct sg_smtp_out *a, const struct sg_smtp_out *b)
{
    return a->state == b->state && a->vlen == b->vlen &&
           memcmp(a->verb, b->verb, sizeof a->verb) == 0 && a->last_verb == b->last_verb &&
           a->bdat_left == b->bdat_left && a->dot == b->dot;
}

static void show(const char *what, const struct sg_smtp_out *s, unsigned mask)
{
    fprintf(stderr, "%s: mask=%#x state=%d vlen=%d verb=%.12s last_verb=%#x bdat_left=%lu dot=%d\n",
            what, mask, s->state, s->vlen, s->verb, s->last_verb, s->bdat_left, s->dot);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct split sp;
    if (!split_input(data, size, &sp))
        return 0;
    struct sg_smtp_out whole, pieces, bytes;
    memset(&whole, 0, sizeof whole);
    memset(&pieces, 0, sizeof pieces);
    memset(&bytes, 0, sizeof bytes);

    unsigned m_whole = sg_smtp_out_feed(&whole, sp.stream, sp.len), m_pieces = 0, m_bytes = 0;
    for (size_t i = 0; i < SPLIT_PIECES(&sp); i++)
        m_pieces |= sg_smtp_out_feed(&pieces, PIECE(&sp, i), PIECE_LEN(&sp, i));
    for (size_t i = 0; i < sp.len; i++)
        m_bytes |= sg_smtp_out_feed(&bytes, sp.stream + i, 1);

    if (m_whole & ~KNOWN_VERBS)
        FAIL("unknown verb bits %#x", m_whole);
    for (unsigned bit = 1; bit <= SG_V_QUIT; bit <<= 1)
        if ((m_whole & bit) && !sg_smtp_verb_name(bit))
            FAIL("no name for verb %#x", bit);
    if (m_whole != m_pieces || m_whole != m_bytes || !same_state(&whole, &pieces) ||
        !same_state(&whole, &bytes)) {
        show("whole", &whole, m_whole);
        show("pieces", &pieces, m_pieces);
        show("bytes", &bytes, m_bytes);
        FAIL("the result depends on how the stream is cut");
    }
    return 0;
}
