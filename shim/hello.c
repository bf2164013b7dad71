/* A record is type 0x16 (handshake), a 2-byte version and a 2-byte length;
 * the handshake message inside starts with type 1 (ClientHello), a 3-byte
 * length, the 2-byte client_version and the 32-byte random. A message may be
 * split over records (RFC 8446 5.1), so only record payloads are collected. */
#include <string.h>

#include "hello.h"

int sg_hello_feed(struct sg_hello *h, const unsigned char *p, size_t n)
{
    while (n && h->state == SG_HELLO_MORE) {
        if (h->left == 0) {
            h->hdr[h->hpos++] = *p++;
            n--;
            if (h->hpos < sizeof h->hdr)
                continue;
            h->hpos = 0;
            h->left = (unsigned short)(h->hdr[3] << 8 | h->hdr[4]);
            if (h->hdr[0] != 0x16 || h->hdr[1] != 3 || h->left == 0)
                h->state = SG_HELLO_BAD;
            continue;
        }
        size_t k = sizeof h->hs - h->got;
        if (k > h->left)
            k = h->left;
        if (k > n)
            k = n;
        memcpy(h->hs + h->got, p, k);
        h->got = (unsigned char)(h->got + k);
        h->left = (unsigned short)(h->left - k);
        p += k;
        n -= k;
        if (h->got == sizeof h->hs)
            h->state = h->hs[0] == 1 && h->hs[4] == 3 ? SG_HELLO_DONE : SG_HELLO_BAD;
    }
    return h->state;
}
