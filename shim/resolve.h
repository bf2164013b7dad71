/* Which name the program resolved to which address: the host name a TLS
 * connection to that address is expected to prove. */
#ifndef SG_RESOLVE_H
#define SG_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

void sg_resolve_remember(const char *name, int family, const void *addr);
/* The most recent name resolved to the numeric address addr ("127.0.0.1"). */
int sg_resolve_lookup(const char *addr, char *name, size_t len);

#endif
