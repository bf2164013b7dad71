/* A DNS message reader: which name each address of an answer belongs to, as
 * the program that asked would see it. Pure (no I/O, no allocation, no
 * state), so it is fuzzed alone (tests/fuzz/fuzz_dns.c). */
#ifndef SG_DNS_H
#define SG_DNS_H

#include <stddef.h>

#define SG_DNS_NAME_MAX 256 /* a presentation name with its NUL, no trailing dot */

/* Called once per address learned: name is the reference identifier (the
 * name asked for, through any CNAME chain, or an MX target of it), family is
 * AF_INET or AF_INET6, addr 4 or 16 bytes in network order. */
typedef void (*sg_dns_sink)(void *ctx, const char *name, int family, const void *addr);

/* Read a response of len bytes. Returns the count of addresses passed to
 * sink, or -1 when msg is not a well-formed response (nothing is passed
 * then: a half-read answer teaches nothing). */
int sg_dns_answer(const unsigned char *msg, size_t len, sg_dns_sink sink, void *ctx);

#endif
