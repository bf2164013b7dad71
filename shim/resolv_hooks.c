/* The resolver interposers: every answer the program gets is remembered with
 * the name it answers (resolve.c). getaddrinfo's lists are remembered until
 * freeaddrinfo, so that a connect through one of their sockaddrs binds the
 * connection to that name; res_query and its family (Postfix, Exim) hand the
 * raw DNS answer to dns.c. None of this runs on I/O: it costs a program only
 * the resolver calls it makes. */
#include <dlfcn.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>

#include "dns.h"
#include "real.h"
#include "resolve.h"

static void remember_answer(void *ctx, const char *name, int family, const void *addr)
{
    (void)ctx;
    sg_resolve_remember(name, family, addr, NULL, NULL);
}

/* r: what the res_* call returned, the answer's length when positive. */
static int learn_answer(int r, const unsigned char *answer, int anslen)
{
    if (r > 0 && answer && anslen > 0)
        sg_dns_answer(answer, (size_t)(r < anslen ? r : anslen), remember_answer, NULL);
    return r;
}

static void remember_list(const char *node, struct addrinfo *list)
{
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
            sg_resolve_remember(node, AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
                                list, ai->ai_addr);
        else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
            sg_resolve_remember(node, AF_INET6,
                                &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, list,
                                ai->ai_addr);
    }
}

SG_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    int r = REAL(getaddrinfo)(node, service, hints, res);
    if (r == 0 && node && res)
        remember_list(node, *res);
    return r;
}

static void (*real_freeaddrinfo)(struct addrinfo *);

SG_EXPORT void freeaddrinfo(struct addrinfo *res)
{
    if (res && sg_resolve_lists_live())
        sg_resolve_forget_list(res);
    if (SG_UNLIKELY(!__atomic_load_n(&real_freeaddrinfo, __ATOMIC_ACQUIRE)))
        sg_real_bind((void **)&real_freeaddrinfo, "freeaddrinfo");
    real_freeaddrinfo(res);
}

static void remember_hostent(const char *name, const struct hostent *h)
{
    for (char **a = h ? h->h_addr_list : NULL; a && *a; a++)
        sg_resolve_remember(name, h->h_addrtype, *a, NULL, NULL);
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

/* res_query and family: glibc 2.34 exports them under their own names and
 * keeps the __res_ names older programs call only as compat versions, which
 * an unversioned dlsym does not return; before 2.34 libresolv has the __res_
 * names. Both names are one function: bind whichever the loader has. */
static void *bind_either(void **slot, const char *name, const char *other)
{
    return sg_real_bind(slot, dlsym(RTLD_NEXT, name) ? name : other);
}

#define BIND(slot, sym, other)                                                   \
    (SG_LIKELY(__atomic_load_n(&slot, __ATOMIC_ACQUIRE) != NULL)                 \
         ? slot                                                                  \
         : (__typeof__(slot))bind_either((void **)&slot, sym, other))

#define SG_RES(name, params, args, answer, anslen)                               \
    static int (*real_##name) params;                                           \
    SG_EXPORT int name params                                                   \
    {                                                                           \
        return learn_answer(BIND(real_##name, #name, "__" #name) args, answer, anslen); \
    }                                                                           \
    static int (*real___##name) params;                                         \
    SG_EXPORT int __##name params                                               \
    {                                                                           \
        return learn_answer(BIND(real___##name, "__" #name, #name) args, answer, anslen); \
    }

SG_RES(res_query, (const char *d, int c, int t, unsigned char *a, int l), (d, c, t, a, l), a, l)
SG_RES(res_search, (const char *d, int c, int t, unsigned char *a, int l), (d, c, t, a, l), a, l)
SG_RES(res_querydomain, (const char *n, const char *d, int c, int t, unsigned char *a, int l),
      (n, d, c, t, a, l), a, l)
SG_RES(res_nquery, (res_state s, const char *d, int c, int t, unsigned char *a, int l),
      (s, d, c, t, a, l), a, l)
SG_RES(res_nsearch, (res_state s, const char *d, int c, int t, unsigned char *a, int l),
      (s, d, c, t, a, l), a, l)
SG_RES(res_nquerydomain,
      (res_state s, const char *n, const char *d, int c, int t, unsigned char *a, int l),
      (s, n, d, c, t, a, l), a, l)
