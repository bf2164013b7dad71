/* Resolver interposers and the name memory. A fixed ring of recent answers,
 * under a mutex: resolving is slow anyway, and only SMTP connections look. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <string.h>

#include "locks.h"
#include "policy.h"
#include "real.h"
#include "resolve.h"

#define MEMORY 128

static struct {
    char addr[INET6_ADDRSTRLEN];
    char name[SG_HOST_MAX];
} memory[MEMORY];
static unsigned next;
#define lock sg_lock_resolve

void sg_resolve_remember(const char *name, int family, const void *addr)
{
    char text[INET6_ADDRSTRLEN];
    if (!name || !*name || strlen(name) >= SG_HOST_MAX ||
        !inet_ntop(family, addr, text, sizeof text))
        return;
    pthread_mutex_lock(&lock);
    unsigned i = next++ % MEMORY;
    strcpy(memory[i].addr, text);
    strcpy(memory[i].name, name);
    pthread_mutex_unlock(&lock);
}

int sg_resolve_lookup(const char *addr, char *name, size_t len)
{
    int found = 0;
    pthread_mutex_lock(&lock);
    for (unsigned k = 1; k <= MEMORY && !found; k++) {
        unsigned i = (next - k) % MEMORY;
        if (memory[i].name[0] && strcmp(memory[i].addr, addr) == 0 &&
            strlen(memory[i].name) < len) {
            strcpy(name, memory[i].name);
            found = 1;
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}

static void remember_hostent(const char *name, const struct hostent *h)
{
    for (char **a = h ? h->h_addr_list : NULL; a && *a; a++)
        sg_resolve_remember(name, h->h_addrtype, *a);
}

SG_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    int r = REAL(getaddrinfo)(node, service, hints, res);
    if (r == 0 && node)
        for (struct addrinfo *ai = *res; ai; ai = ai->ai_next) {
            if (ai->ai_family == AF_INET)
                sg_resolve_remember(node, AF_INET,
                                    &((struct sockaddr_in *)ai->ai_addr)->sin_addr);
            else if (ai->ai_family == AF_INET6)
                sg_resolve_remember(node, AF_INET6,
                                    &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
        }
    return r;
}

SG_EXPORT struct hostent *gethostbyname(const char *name)
{
    struct hostent *h = REAL(gethostbyname)(name);
    remember_hostent(name, h);
    return h;
}

SG_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
    struct hostent *h = REAL(gethostbyname2)(name, af);
    remember_hostent(name, h);
    return h;
}

SG_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t len,
                              struct hostent **result, int *err)
{
    int r = REAL(gethostbyname_r)(name, ret, buf, len, result, err);
    if (r == 0 && result)
        remember_hostent(name, *result);
    return r;
}

SG_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                               size_t len, struct hostent **result, int *err)
{
    int r = REAL(gethostbyname2_r)(name, af, ret, buf, len, result, err);
    if (r == 0 && result)
        remember_hostent(name, *result);
    return r;
}
