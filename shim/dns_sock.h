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
#include <arpa/inet.h>
#include <netinet/in.h>

#define SG_DNS_PORT 53
#define SG_FD_DNS 0xFFFEu /* a reserved marker (fdstate.h): a socket to port 53 */

/* connect(fd, sa) to port 53: the real connect, and the marker when it took. */
int sg_dns_sock_connect(int fd, const struct sockaddr *sa, socklen_t len);
/* n bytes just read from a descriptor with no connection record: if it is a
 * DNS socket, learn what the answer says. Always 0 (reads are never refused). */
int sg_dns_sock_received(int fd, const struct iovec *iov, int iovcnt, size_t n);

/* A resolver that never connects its UDP socket (sendto to port 53, then
 * recvfrom): the datagram sent marks the socket, and the answers are read
 * with their source address, so only those from port 53 teach anything. */
void sg_dns_sock_sent_to(int fd, const struct sockaddr *to, socklen_t len);
ssize_t sg_dns_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                        socklen_t *fromlen);
ssize_t sg_dns_recvmsg(int fd, struct msghdr *msg, int flags);

static inline int sg_dns_port_of(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

#endif
