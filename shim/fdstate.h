/* Per-descriptor SMTP state. The table is indexed by descriptor and read
 * without a lock: a zero entry (every non-SMTP descriptor) is the fast path.
 * Connection records live in a fixed pool; only SMTP sockets reach it. */
#ifndef SG_FDSTATE_H
#define SG_FDSTATE_H

#include <netinet/in.h>
#include <sys/types.h>

#include "hello.h"
#include "policy.h"
#include "proxy.h"
#include "resolve.h"
#include "smtp.h"

#define SG_FD_CAP 65536
#define SG_CONN_MAX 1024
#define SG_WIRE_PRE 160 /* a ClientHello's header and random, in up to ~20 records */

/* sg_fdtab values: 0 untracked, 1..SG_CONN_MAX a connection slot + 1, from
 * SG_FD_MARKER up reserved markers that carry no connection record. Every
 * slow path classifies a marker first; sg_conn_peek returns NULL for one. */
#define SG_FD_MARKER 0xFF00u
/* An AF_INET/AF_INET6 stream socket made by socket(), not connected by any
 * call the shim saw: classified by its peer at its first interposed I/O. */
#define SG_FD_UNCLASSIFIED 0xFFFFu

enum sg_phase {
    SG_PLAIN = 0,     /* plaintext SMTP dialogue */
    SG_TLS_WANTED,    /* STARTTLS sent, or an implicit-TLS port: the handshake comes next */
    SG_TLS_HANDSHAKE, /* OpenSSL is running the handshake; the verdict comes next */
    SG_TLS_OK,        /* a handshake passed the verdict */
    SG_TLS_FOREIGN,   /* a ClientHello no hooked session claims (or a TLS record on an
                         inherited socket outside one): a library the shim does not drive */
    SG_DEAD,          /* refused: nothing more may be sent */
    SG_INHERITED,     /* came across exec: plaintext or TLS, its first send tells */
    SG_TLS_HELLO,     /* a ClientHello is leaving: its client random tells whose it is */
};

struct sg_conn {
    int refs;                   /* descriptors pointing here; 0 = free */
    dev_t dev;                  /* identity of the socket, to catch a number */
    ino_t ino;                  /* reused behind our back (fclose of fdopen) */
    int port;
    int implicit;               /* implicit-TLS port: no plaintext at all */
    int phase;                  /* enum sg_phase, atomic */
    char host[SG_HOST_MAX];     /* the name the program meant, "" if unknown */
    char candidates[SG_CANDS_MAX]; /* several names could apply: which (resolve.h) */
    char addr[INET6_ADDRSTRLEN];
    int starttls_sent;          /* awaiting the reply to STARTTLS */
    int injected;               /* bytes came after the 220 reply to STARTTLS */
    int audit_logged;           /* audit: the plaintext decision was logged once */
    struct sg_smtp_out out;     /* outbound command tracker */
    struct sg_smtp_in in;       /* inbound reply tracker */
    struct sg_hello hello;      /* the ClientHello sent on it (tlsbind.c) */
    int hello_fd;               /* the descriptor it left through */
    struct sg_px_out px_out;    /* on a proxy port: the request, until it names the */
    struct sg_px_in px_in;      /* destination; the proxy's replies, skipped */
    void *wire;                 /* the wire reader (wire_io.c) while it reads, or NULL */
    /* ClientHello bytes that left before its random told whose it is: the
     * wire reader starts from them (SG_WIRE_PRE + 1: more than that) */
    unsigned short wire_pre_len;
    unsigned char wire_pre[SG_WIRE_PRE];
};

extern unsigned short sg_fdtab[SG_FD_CAP];
extern struct sg_conn sg_conn_pool[SG_CONN_MAX];
extern int sg_conn_active; /* records in use: 0 lets close_range skip the scan */

/* Frees the wire reader of a record being released (wire_io.c). */
void sg_wire_release(struct sg_conn *c);

/* The fast path: is this descriptor an SMTP socket we track? */
static inline int sg_fd_tracked(int fd)
{
    return (unsigned)fd < SG_FD_CAP && __atomic_load_n(&sg_fdtab[fd], __ATOMIC_RELAXED);
}

/* Start tracking fd as a connection to addr:port. Returns the record or NULL
 * (pool or table exhausted: the caller must refuse). Replaces whatever fd had. */
struct sg_conn *sg_conn_open(int fd, const struct sockaddr *addr, socklen_t len, int port);
/* The record behind fd without the identity check, or NULL. */
static inline struct sg_conn *sg_conn_peek(int fd);
/* The record behind fd, or NULL; checks the socket is still the one tracked. */
struct sg_conn *sg_conn_get(int fd);
/* fd is gone (closed, or about to be overwritten by dup2). */
void sg_fd_forget(int fd);
/* newfd now refers to the same socket as oldfd. */
void sg_fd_copy(int oldfd, int newfd);
void sg_fd_forget_range(unsigned first, unsigned last);
/* Put a marker (SG_FD_UNCLASSIFIED) on an untracked fd; drop SG_FD_UNCLASSIFIED
 * (back to 0; other markers stay). */
void sg_fd_mark(int fd, unsigned short marker);
void sg_fd_unmark(int fd);

static inline struct sg_conn *sg_conn_peek(int fd)
{
    unsigned short slot =
        (unsigned)fd < SG_FD_CAP ? __atomic_load_n(&sg_fdtab[fd], __ATOMIC_ACQUIRE) : 0;
    return slot && slot < SG_FD_MARKER ? &sg_conn_pool[slot - 1] : NULL;
}

#endif
