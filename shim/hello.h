/* The first bytes of a TLS ClientHello as they leave a socket: enough to
 * read its client random, whether it comes in one write or in many, in one
 * record or in several. Pure logic: no I/O, no lock. */
#ifndef SG_HELLO_H
#define SG_HELLO_H

#include <stddef.h>

#define SG_RANDOM_LEN 32

enum sg_hello_state { SG_HELLO_MORE = 0, SG_HELLO_DONE, SG_HELLO_BAD };

struct sg_hello {
    unsigned char state;     /* enum sg_hello_state */
    unsigned char hpos;      /* bytes of the current record header seen */
    unsigned char got;       /* handshake bytes collected in hs */
    unsigned short left;     /* payload bytes left in the current record */
    unsigned char hdr[5];    /* record header: type, version, length */
    unsigned char hs[38];    /* handshake type, length, client_version, random */
};

/* Feed the next n bytes of the stream; returns the state. Bytes after the
 * random are ignored. */
int sg_hello_feed(struct sg_hello *h, const unsigned char *p, size_t n);

/* The client random of a DONE parse. */
static inline const unsigned char *sg_hello_random(const struct sg_hello *h)
{
    return h->hs + 6;
}

#endif
