/* The wire reader on SMTP sockets in SG_TLS_FOREIGN: what guard.c calls
 * with the bytes the program sends and receives until the verdict. */
#ifndef SG_WIRE_IO_H
#define SG_WIRE_IO_H

#include <sys/uio.h>

#include "fdstate.h"

/* Before a send: 0 to go on, -1 with errno set (and the socket refused). */
int sg_wire_before_send(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt);
/* The n bytes the kernel took. */
void sg_wire_sent(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n);
/* The n bytes received: 0 to hand them to the program, -1 with errno set
 * when the verdict refuses them. */
int sg_wire_received(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n);
/* Bytes of a ClientHello that leave while its random is incomplete
 * (SG_TLS_HELLO): kept on the record for the reader, should it be foreign. */
void sg_wire_hello_sent(struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n);
/* sg_wire_release(c) (fdstate.h) frees a record's reader. */

#endif
