/* The name memory: a fixed ring of recent answers under a mutex. Resolving
 * is slow anyway, and only SMTP connections look. An entry made from a
 * getaddrinfo list also keeps the list and the sockaddr, so a connect through
 * that very sockaddr is bound to that name whatever else resolved to the
 * same address (a later lookup must not steer it, DESIGN.md pitfall 8). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "locks.h"
#include "policy.h"
#include "resolve.h"
#include "ring.h"

#define MEMORY 128

static struct entry {
    unsigned char addr[16]; /* IPv4 as IPv4-mapped IPv6 */
    char name[SG_HOST_MAX];
    int literal;            /* the "name" was an address literal */
    const void *list, *sa;  /* getaddrinfo's, until freeaddrinfo */
} memory[MEMORY] SG_TABLE;
static struct sg_ring ring; /* of memory */
static int lists; /* entries with a list */
#define lock sg_lock_resolve

/* A name pushed out of the memory is not "no name": a connection to its
 * address would then be taken as one by address (its IP SAN proves it), or
 * bound to whichever other name is still remembered for it, and a busy
 * program (or answers its own resolver reads and throws away) pushes names
 * out at will. So the last copy of an (address, name) leaving the memory is
 * noted here, by a hash of the name; a name resolved again answers its own
 * note. When this ring too overwrites a note, the address's bit in lost[]
 * stays set: such an address has a name that can no longer be told (its
 * connections need SNI or verify_name; a false bit only refuses). */
#define FORGOTTEN 512
static struct forgotten {
    unsigned char addr[16];
    unsigned long long name; /* 0: free */
} forgotten[FORGOTTEN] SG_TABLE;
static struct sg_ring forgotten_ring;
static unsigned char lost[4096 / 8];

static int is_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int to16(int family, const void *addr, unsigned char out[16])
{
    if (family == AF_INET6) {
        memcpy(out, addr, 16);
        return 1;
    }
    if (family != AF_INET)
        return 0;
    memset(out, 0, 10);
    out[10] = out[11] = 0xFF;
    memcpy(out + 12, addr, 4);
    return 1;
}

void sg_name_normalise(char *name)
{
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.' && name[n - 2] != '.')
        name[n - 1] = 0;
}

void sg_addr_normalise(char *addr, size_t cap)
{
    struct in6_addr a;
    if (inet_pton(AF_INET6, addr, &a) == 1 && IN6_IS_ADDR_V4MAPPED(&a))
        inet_ntop(AF_INET, &a.s6_addr[12], addr, (socklen_t)cap);
}

static unsigned long long name_hash(const char *name)
{
    unsigned long long h = 0xcbf29ce484222325ull; /* FNV-1a, case folded */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p)) * 0x100000001b3ull;
    return h ? h : 1;
}

static unsigned addr_bit(const unsigned char a[16])
{
    unsigned h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h % (sizeof lost * 8);
}

/* Under the lock: entry e is about to be overwritten. */
static void note_forgotten(const struct entry *e)
{
    if (!e->name[0] || e->literal)
        return;
    for (unsigned i = 0; i < ring.filled; i++)
        if (&memory[i] != e && !memory[i].literal && memcmp(memory[i].addr, e->addr, 16) == 0 &&
            strcasecmp(memory[i].name, e->name) == 0)
            return; /* still remembered */
    unsigned long long h = name_hash(e->name);
    for (unsigned i = 0; i < forgotten_ring.filled; i++)
        if (forgotten[i].name == h && memcmp(forgotten[i].addr, e->addr, 16) == 0)
            return;
    struct forgotten *f = &forgotten[sg_ring_take(&forgotten_ring, FORGOTTEN)];
    if (f->name) {
        unsigned bit = addr_bit(f->addr);
        lost[bit / 8] |= (unsigned char)(1u << (bit % 8));
    }
    memcpy(f->addr, e->addr, 16);
    f->name = h;
}

/* Under the lock: does address a have a forgotten name other than the n
 * names in c? */
static int forgot_other(const unsigned char a[16], const char *const *c, int n)
{
    unsigned bit = addr_bit(a);
    if (lost[bit / 8] >> (bit % 8) & 1)
        return 1;
    for (unsigned i = 0; i < forgotten_ring.filled; i++) {
        if (!forgotten[i].name || memcmp(forgotten[i].addr, a, 16) != 0)
            continue;
        int known = 0;
        for (int j = 0; j < n && !known; j++)
            known = name_hash(c[j]) == forgotten[i].name;
        if (!known)
            return 1;
    }
    return 0;
}

void sg_resolve_remember(const char *name, int family, const void *addr, const void *list,
                         const void *sa)
{
    char clean[SG_HOST_MAX];
    unsigned char a[16];
    size_t n = name ? strlen(name) : 0;
    if (!n || n >= SG_HOST_MAX || !to16(family, addr, a))
        return;
    int literal = is_literal(name);
    if (literal && !list)
        return;
    /* memcpy, not strcpy: two lazy bindings fewer (the length is known; a
     * normalised name is no longer, its end within the n + 1 bytes). */
    memcpy(clean, name, n + 1);
    sg_name_normalise(clean);
    pthread_mutex_lock(&lock);
    /* A slot never written holds nothing to forget and is not read: its page
     * is first touched by the write below (one page fault, not two). */
    int reused = ring.filled == MEMORY;
    struct entry *e = &memory[sg_ring_take(&ring, MEMORY)];
    if (reused)
        note_forgotten(e);
    lists += (list != NULL) - (reused && e->list != NULL);
    memcpy(e->addr, a, 16);
    memcpy(e->name, clean, n + 1);
    e->literal = literal;
    e->list = list;
    e->sa = sa;
    pthread_mutex_unlock(&lock);
}

int sg_resolve_lists_live(void)
{
    return __atomic_load_n(&lists, __ATOMIC_RELAXED) != 0;
}

void sg_resolve_forget_list(const void *list)
{
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < ring.filled; i++)
        if (memory[i].list == list) {
            memory[i].list = memory[i].sa = NULL;
            lists--;
        }
    pthread_mutex_unlock(&lock);
}

static int sockaddr16(const struct sockaddr *sa, socklen_t len, unsigned char out[16])
{
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return to16(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out);
    if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return to16(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out);
    return 0;
}

static void add_candidate(char *cands, size_t clen, const char *name)
{
    size_t used = strlen(cands);
    snprintf(cands + used, clen - used, "%s%s", used ? ", " : "", name);
}

#define MAX_CANDS 8

/* Under the lock: the distinct names remembered for a, newest first; more
 * than MAX_CANDS counts as MAX_CANDS + 1. */
static int collect(const unsigned char a[16], const char *out[MAX_CANDS])
{
    int n = 0;
    for (unsigned k = 1; k <= ring.filled; k++) {
        const struct entry *e = &memory[sg_ring_back(&ring, k, MEMORY)];
        if (!e->name[0] || e->literal || memcmp(e->addr, a, 16) != 0)
            continue;
        int seen = 0;
        for (int j = 0; j < n && !seen; j++)
            seen = strcasecmp(out[j], e->name) == 0;
        if (seen)
            continue;
        if (n == MAX_CANDS)
            return n + 1;
        out[n++] = e->name;
    }
    return n;
}

/* The machine's own name (a program looks it up for EHLO, and it often maps
 * to a loopback address) names the client, not the server: among several
 * candidates it does not count. Only the exact name: a prefix match would let
 * "mail" drop "mail.victim.example" and leave a steered name alone. */
static int is_own_host(const char *name)
{
    char h[SG_HOST_MAX];
    if (gethostname(h, sizeof h) != 0)
        return 0;
    h[sizeof h - 1] = 0;
    return h[0] && strcasecmp(name, h) == 0;
}

static int drop_own_host(const char *c[MAX_CANDS], int n)
{
    int kept = 0;
    const char *keep[MAX_CANDS];
    for (int i = 0; i < n; i++)
        if (!is_own_host(c[i]))
            keep[kept++] = c[i];
    if (kept == 0 || kept == n)
        return n;
    memcpy(c, keep, sizeof keep[0] * (size_t)kept);
    return kept;
}

/* Under the lock: the name for address a, when exactly one applies. Which
 * name came last is no evidence (a later lookup must not steer), so several
 * stay several, with one exception that cannot be steered from outside. */
static int by_address(const unsigned char a[16], char *name, size_t nlen, char *cands,
                      size_t clen)
{
    const char *c[MAX_CANDS];
    int n = collect(a, c);
    if (n > 1 && n <= MAX_CANDS)
        n = drop_own_host(c, n);
    int forgot = n <= 1 && forgot_other(a, c, n);
    if (cands && clen) {
        cands[0] = 0;
        for (int i = 0; i < n && i < MAX_CANDS; i++)
            add_candidate(cands, clen, c[i]);
        if (n > MAX_CANDS)
            add_candidate(cands, clen, "...");
        if (forgot)
            add_candidate(cands, clen, "a name resolved earlier and no longer remembered");
    }
    if (forgot)
        return SG_NAME_SEVERAL;
    if (n == 1 && strlen(c[0]) < nlen)
        strcpy(name, c[0]);
    return n == 0 ? SG_NAME_NONE : n == 1 ? SG_NAME_ONE : SG_NAME_SEVERAL;
}

int sg_resolve_bind(const struct sockaddr *sa, socklen_t len, char *name, size_t nlen,
                    char *cands, size_t clen)
{
    unsigned char a[16];
    int r = SG_NAME_NONE;
    name[0] = 0;
    if (cands && clen)
        cands[0] = 0;
    if (!sockaddr16(sa, len, a))
        return r;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < ring.filled && r == SG_NAME_NONE; i++)
        if (memory[i].sa == sa && memcmp(memory[i].addr, a, 16) == 0 &&
            strlen(memory[i].name) < nlen) {
            strcpy(name, memory[i].name);
            r = SG_NAME_ONE;
        }
    if (r == SG_NAME_NONE)
        r = by_address(a, name, nlen, cands, clen);
    pthread_mutex_unlock(&lock);
    return r;
}
