/* Fuzzer-chosen split points for the piecewise properties of the SMTP trackers.
 * The input is: one byte K, then K little-endian 16-bit cut positions, then the
 * stream. Cuts are taken modulo the stream length plus one, sorted; repeats make
 * empty pieces, which the trackers must also accept. */
#ifndef FUZZ_SPLIT_H
#define FUZZ_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define SPLIT_MAX 15

struct split {
    const uint8_t *stream;
    size_t len;
    size_t ncuts;
    size_t cut[SPLIT_MAX + 2]; /* 0, the cuts, len: piece i is [cut[i], cut[i+1]) */
};

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* 0 when the input is too short to hold its own header. */
static inline int split_input(const uint8_t *data, size_t size, struct split *s)
{
    if (size < 1)
        return 0;
    size_t k = data[0] % (SPLIT_MAX + 1);
    if (size < 1 + 2 * k)
        return 0;
    s->stream = data + 1 + 2 * k;
    s->len = size - 1 - 2 * k;
    s->ncuts = k;
    s->cut[0] = 0;
    for (size_t i = 0; i < k; i++)
        s->cut[i + 1] = (data[1 + 2 * i] | (size_t)data[2 + 2 * i] << 8) % (s->len + 1);
    qsort(s->cut + 1, k, sizeof s->cut[0], cmp_size);
    s->cut[k + 1] = s->len;
    return 1;
}

#define SPLIT_PIECES(s) ((s)->ncuts + 1)
#define PIECE(s, i) ((s)->stream + (s)->cut[i])
#define PIECE_LEN(s, i) ((s)->cut[(i) + 1] - (s)->cut[i])

#endif
