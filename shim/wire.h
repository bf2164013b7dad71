/* Reading a TLS handshake off the wire, for sockets whose TLS no hooked
 * library drives (Java, OpenSSL linked into the executable, Go, NSS...).
 * Pure parsing, no I/O and no allocation: the caller feeds the bytes the
 * program sent and received, in order, and acts on the state. */
#ifndef SG_WIRE_H
#define SG_WIRE_H

#include <stddef.h>
#include <sys/uio.h>

#define SG_WIRE_CAP (64 * 1024)   /* handshake bytes kept per direction: past it, refuse */
#define SG_WIRE_RECORD_MAX (16384 + 2048)
#define SG_WIRE_MAX_CERTS 16
#define SG_WIRE_TOKEN_MAX 1024 /* a longer session ticket is never matched */

enum sg_wire_state {
    SG_WIRE_HELLO = 0, /* waiting for the server's (real) ServerHello */
    SG_WIRE_FLIGHT,    /* TLS 1.2 ServerHello seen: collecting up to ServerHelloDone */
    SG_WIRE_READY,     /* the server's flight is complete: the verdict is due */
    SG_WIRE_FAILED,    /* the server sent a fatal alert: no session will come of it */
    SG_WIRE_ERROR,     /* not TLS as it may be, or past the cap: refuse */
    SG_WIRE_SECOND,    /* accepted TLS 1.2: reading the server's NewSessionTicket */
    SG_WIRE_DONE,      /* the server's ChangeCipherSpec after SECOND: nothing more */
};

/* A session id or ticket; len 0: none, SG_WIRE_TOKEN_MAX + 1: too long to keep. */
struct sg_wire_token {
    size_t len;
    unsigned char data[SG_WIRE_TOKEN_MAX];
};

/* Record framing of one direction. */
struct sg_wire_frame {
    unsigned char hdr[5];
    unsigned hdr_have;     /* header bytes of the current record seen */
    unsigned left;         /* body bytes of the current record to come */
    int type;              /* content type of the current record */
    int v2;                /* the current record is an SSLv2-compatible ClientHello */
    unsigned records;      /* records begun in this direction */
};

struct sg_wire_dir {
    struct sg_wire_frame f;
    unsigned char alert[2];
    unsigned alert_have;
    int lost;              /* records no longer followed (not TLS after the verdict) */
    size_t len;            /* handshake bytes in buf */
    size_t used;           /* of which whole messages were read */
    unsigned char buf[SG_WIRE_CAP];
};

struct sg_wire {
    int state;             /* enum sg_wire_state */
    const char *error;     /* why SG_WIRE_ERROR, static words */
    int client_hellos;
    int offered_max;       /* highest version the client offered */
    char sni[256];         /* host_name the client sent, "" if none */
    int hrr;               /* HelloRetryRequests seen */
    int version;           /* negotiated, wire numbering (0x0303 TLS 1.2) */
    int cipher;            /* negotiated suite, IANA number */
    int resumed;           /* TLS 1.2 flight ended without Certificate (abbreviated) */
    size_t cert_off, cert_len; /* TLS 1.2 Certificate message body in srv.buf */
    struct sg_wire_token client_sid, client_ticket; /* offered in the last ClientHello */
    struct sg_wire_token server_sid, new_ticket;    /* ServerHello's, NewSessionTicket's */
    struct sg_wire_dir cli, srv;
};

void sg_wire_init(struct sg_wire *w);
/* Mark w as unreadable (why: static words); returns SG_WIRE_ERROR. */
int sg_wire_fail(struct sg_wire *w, const char *why);
/* Bytes the program sent / received. Return the state after them. Once the
 * state is READY, FAILED or ERROR further bytes are not read. */
int sg_wire_client(struct sg_wire *w, const unsigned char *p, size_t n);
int sg_wire_server(struct sg_wire *w, const unsigned char *p, size_t n);
/* The verdict accepted a full TLS 1.2 handshake: go on reading the server's
 * bytes up to its ChangeCipherSpec (state SECOND, then DONE) for the ticket. */
void sg_wire_follow(struct sg_wire *w);
/* May the program send these bytes now, before a verdict? Not application
 * data, nothing that is not TLS, and after the ServerHello of a TLS 1.2
 * flight only alerts (its next flight waits for the verdict). */
int sg_wire_may_send(const struct sg_wire *w, const struct iovec *iov, int iovcnt);
/* The DER certificates of the TLS 1.2 Certificate message, leaf first:
 * their number (at most max), 0 when there is none. */
int sg_wire_certs(const struct sg_wire *w, const unsigned char **der, size_t *len, int max);
/* "TLSv1.2" and the like; the suite's OpenSSL name or "0xC02F". */
const char *sg_wire_version_name(int version);
const char *sg_wire_cipher_name(int cipher, char *buf, size_t len);
/* A TLS 1.3 suite, or a TLS 1.2 ECDHE/DHE suite with GCM, CCM or ChaCha20-Poly1305. */
int sg_wire_fs_aead(int cipher);

#endif
