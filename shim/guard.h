/* The SMTP plaintext guard: follows the dialogue on SMTP sockets until TLS
 * is up, refuses what would leak, spots STARTTLS response injection. */
#ifndef SG_GUARD_H
#define SG_GUARD_H

#include <sys/uio.h>

struct sg_conn;

/* fd may be -1 in these. */
void sg_guard_tls_ok(int fd);
void sg_guard_refused(int fd);
/* Did plaintext arrive after the 220 reply to STARTTLS (or is some pending)? */
int sg_guard_injected(int fd);
/* The same, as recorded by the guard only (no peek: after a handshake the
 * kernel may rightly hold TLS records). */
int sg_guard_injection_seen(int fd);
/* A new SMTP connection on this thread (connect). */
void sg_guard_connected(int fd, int implicit);
/* An SMTP socket this process got across exec, in an unknown phase. */
void sg_guard_inherited(int fd, int implicit);

/* For the interposers of guard_io.c. Before sending: 0 to go on, -1 with
 * errno set to refuse. After: account for the n bytes really sent. */
int sg_guard_before_send(int fd, const struct iovec *iov, int iovcnt);
void sg_guard_sent(int fd, const struct iovec *iov, int iovcnt, size_t n);
/* After receiving n bytes; -1 with errno set when they must not be delivered. */
int sg_guard_received(int fd, const struct iovec *iov, int iovcnt, size_t n);

/* guard_hello.c: a TLS record starts leaving a socket that waits for a
 * ClientHello (phase SG_TLS_HELLO from here); before each send of it, the
 * random decides once it is complete; after, the bytes really sent. */
void sg_guard_hello_start(struct sg_conn *c);
void sg_guard_hello_before(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt);
void sg_guard_hello_sent(struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n);

#endif
