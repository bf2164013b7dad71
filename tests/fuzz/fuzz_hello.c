/* libFuzzer target: the ClientHello reader (shim/hello.c), which takes the
 * client random from the bytes leaving a socket however the program cuts its
 * writes and however the TLS library cuts the message into records.
 *  - fed at once, in fuzzer-chosen pieces or byte by byte, it ends in the same
 *    state with the same random;
 *  - it agrees with a plain reading of the whole stream: the record payloads
 *    (type 0x16, major version 3, no empty record) joined, a handshake message
 *    of type 1 with major version 3 whose random is bytes 6..37. */
#include <stdio.h>
#include <string.h>

#include "hello.h"
#include "split.h"

#define FAIL(...) (fprintf(stderr, "fuzz_hello: " __VA_ARGS__), fputc('\n', stderr), abort())

/* The reference: 0 more, 1 done (random in out), 2 bad. */
static int plain_read(const uint8_t *p, size_t len, uint8_t out[SG_RANDOM_LEN])
{
    uint8_t hs[38];
    size_t got = 0, pos = 0;
    while (pos + 5 <= len) {
        size_t rec = (size_t)p[pos + 3] << 8 | p[pos + 4];
        if (p[pos] != 0x16 || p[pos + 1] != 3 || rec == 0)
            return 2;
        pos += 5;
        for (size_t i = 0; i < rec && pos < len; i++, pos++)
            if (got < sizeof hs) {
                hs[got++] = p[pos];
                if (got == sizeof hs) {
                    memcpy(out, hs + 6, SG_RANDOM_LEN);
                    return hs[0] == 1 && hs[4] == 3 ? 1 : 2;
                }
            }
    }
    return 0;
}

static void same(const struct sg_hello *a, const struct sg_hello *b, const char *what)
{
    if (a->state != b->state ||
        (a->state == SG_HELLO_DONE &&
         memcmp(sg_hello_random(a), sg_hello_random(b), SG_RANDOM_LEN) != 0))
        FAIL("%s: state %d vs %d: the result depends on the cut", what, a->state, b->state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct split sp;
    if (!split_input(data, size, &sp))
        return 0;
    struct sg_hello whole = {0}, pieces = {0}, bytes = {0};
    sg_hello_feed(&whole, sp.stream, sp.len);
    for (size_t i = 0; i < SPLIT_PIECES(&sp); i++)
        sg_hello_feed(&pieces, PIECE(&sp, i), PIECE_LEN(&sp, i));
    for (size_t i = 0; i < sp.len; i++)
        sg_hello_feed(&bytes, sp.stream + i, 1);
    same(&whole, &pieces, "pieces");
    same(&whole, &bytes, "bytes");
    uint8_t random[SG_RANDOM_LEN];
    int ref = plain_read(sp.stream, sp.len, random);
    int want = ref == 1 ? SG_HELLO_DONE : ref == 2 ? SG_HELLO_BAD : SG_HELLO_MORE;
    if (whole.state != want)
        FAIL("state %d, the plain reading says %d", whole.state, want);
    if (ref == 1 && memcmp(random, sg_hello_random(&whole), SG_RANDOM_LEN) != 0)
        FAIL("a different random than the plain reading");
    return 0;
}
