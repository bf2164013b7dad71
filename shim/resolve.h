/* Which name the program resolved to which address: the host name a TLS
 * connection to that address is expected to prove. */
#ifndef SG_RESOLVE_H
#define SG_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#define SG_CANDS_MAX 256 /* "a.example, b.example" */

/* name answered with addr (AF_INET/AF_INET6 bytes). list and sa: the
 * getaddrinfo result list and the sockaddr in it that holds addr (NULL for
 * other resolvers). An address literal is remembered only with a list: a
 * connect through it means "by address", but it names nothing. */
void sg_resolve_remember(const char *name, int family, const void *addr, const void *list,
                         const void *sa);
/* freeaddrinfo(list): its sockaddrs may be reused memory from now on. */
void sg_resolve_forget_list(const void *list);
/* Is any list remembered? (freeaddrinfo's fast path) */
int sg_resolve_lists_live(void);

enum { SG_NAME_NONE, SG_NAME_ONE, SG_NAME_SEVERAL };
/* The name bound to a connection to sa: the name whose getaddrinfo list holds
 * this very sockaddr; else the one name resolved to its address (SG_NAME_ONE,
 * in name; among several, the machine's own host name does not count); else
 * SG_NAME_SEVERAL with the names in cands, or SG_NAME_NONE. Which name came
 * last never decides. */
int sg_resolve_bind(const struct sockaddr *sa, socklen_t len, char *name, size_t nlen,
                    char *cands, size_t clen);
/* Spellings: "::ffff:192.0.2.1" -> "192.0.2.1" (an IPv4-mapped peer is the
 * IPv4 host); "smtp.example." -> "smtp.example" (one final dot). In place. */
void sg_addr_normalise(char *addr, size_t cap);
void sg_name_normalise(char *name);

#endif
