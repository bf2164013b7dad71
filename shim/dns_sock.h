/* DNS answers a program's own resolver receives (c-ares, OpenSMTPD's asr):
 * a UDP or TCP socket connected to port 53 carries the marker SG_FD_DNS in
 * the descriptor table, so its reads leave the fast path and each answer read
 * from it teaches the name memory (resolve.c) what it maps. glibc's own
 * resolver calls connect and recv inside libc, where no preload sees them:
 * its answers are learned at getaddrinfo and res_query instead. */
#ifndef SG_DNS_SOCK_H
#define SG_DNS_SOCK_H

#include <sys/socket.h>
#include <sys/uio.h>

#define SG_DNS_PORT 53
#define SG_FD_DNS 0xFFFEu /* a reserved marker (fdstate.h): a socket to port 53 */

/* connect(fd, sa) to port 53: the real connect, and the marker when it took. */
int sg_dns_sock_connect(int fd, const struct sockaddr *sa, socklen_t len);
/* n bytes just read from a descriptor with no connection record: if it is a
 * DNS socket, learn what the answer says. Always 0 (reads are never refused). */
int sg_dns_sock_received(int fd, const struct iovec *iov, int iovcnt, size_t n);

#endif
