/* Finding the real function behind an interposed TLS name, for the caller
 * that reached us, and remembering the answer per call site. */
#ifndef SG_SCOPE_H
#define SG_SCOPE_H

#include <string.h>

/* Whether s starts with prefix: strncmp(s, prefix, strlen(prefix)) == 0
 * without the lazy binding of strncmp, which the first TLS call of every
 * process would pay for (issue 15); the prefixes are short. */
static inline int sg_starts(const char *s, const char *prefix)
{
    while (*prefix && *s == *prefix)
        s++, prefix++;
    return !*prefix;
}

/* Whether the file name of path (after its last '/') starts with prefix. */
static inline int sg_basename_starts(const char *path, const char *prefix)
{
    const char *base = strrchr(path, '/');
    return sg_starts(base ? base + 1 : path, prefix);
}

/* The function sym the caller at ret would have reached without us: its own
 * scope first (a library loaded with RTLD_LOCAL: Python's _ssl, Perl's
 * Net::SSLeay), then the global scope after us, then any loaded library
 * whose file name starts with prefix. NULL when there is none. */
void *sg_scope_next(const void *ret, const char *sym, const char *prefix);
/* The loaded object that holds fn: its mapped range [base, end) (end ==
 * base for the main program, which is named but given no range) and its
 * path as the loader knows it; returns a handle on it, NULL if none. */
struct sg_object {
    const void *base, *end;
    const char *path;
};
void *sg_scope_owner(const void *fn, struct sg_object *obj);

/* dlsym(h, name) for many names of one handle, faster (scope_sym.c). */
#include <link.h>
#include <stdint.h>
#define SG_SEARCH_MAX 8
struct sg_symtab {
    ElfW(Addr) base;
    const ElfW(Sym) *syms;
    const char *strs;
    const ElfW(Half) *versym;
    const uint32_t *gnu;
    ElfW(Addr) soname; /* offset in strs, 0 if none */
    int checked;       /* a name found here was the one dlsym finds */
};
struct sg_search {
    void *h;
    int n;
    const struct link_map *pending; /* whose needed libraries are not in t yet */
    struct sg_symtab t[SG_SEARCH_MAX];
};
void sg_scope_search_init(struct sg_search *s, void *h);
void *sg_scope_sym(struct sg_search *s, const char *name);
/* The same with the name's GNU hash given. SG_SCOPE_SYM(s, "literal")
 * computes it when compiling (hashing was ~40% of a lookup at run time,
 * issue 15): the closed form of h = h * 33 + c, 33^k taken from a table the
 * compiler folds; a name longer than 64 bytes does not compile. */
void *sg_scope_sym_h(struct sg_search *s, const char *name, uint32_t hash);
static const uint32_t sg_pow33[64] __attribute__((unused)) = {
    0x00000001, 0x00000021, 0x00000441, 0x00008c61, 0x00121881, 0x025528a1,
    0x4cfa3cc1, 0xec41d4e1, 0x747c7101, 0x040a9121, 0x855cb541, 0x30f35d61,
    0x4f5f0981, 0x3b4039a1, 0xa3476dc1, 0x0c3525e1, 0x92d9e201, 0xee162221,
    0xb0da6641, 0xcc272e61, 0x510cfa81, 0x72ac4aa1, 0xc8359ec1, 0xcee976e1,
    0xac185301, 0x2f22b321, 0x13791741, 0x829bff61, 0xd61beb81, 0x99995ba1,
    0xccc4cfc1, 0x655ec7e1, 0x1137c401, 0x38304421, 0x3e38c841, 0x0551d061,
    0xaf8bdc81, 0xa1076ca1, 0xc1f500c1, 0x009518e1, 0x13383501, 0x7a3ed521,
    0xc2197941, 0x0548a161, 0xae5ccd81, 0x79f67da1, 0xb8c631c1, 0xd18c69e1,
    0x0319a601, 0x664e6621, 0x301b2a41, 0x33807261, 0xa38ebe81, 0x15668ea1,
    0xc23862c1, 0x0944bae1, 0x31dc1701, 0x6d5ef721, 0x193ddb41, 0x40f94361,
    0x6021af81, 0x64579fa1, 0xef4b93c1, 0xd8be0be1,
};
#define SG_HASH_AT(lit, i)                                                              \
    ((i) + 1 < sizeof(lit) ? (uint32_t)(unsigned char)(lit)[(i) + 1 < sizeof(lit) ? (i) : 0] * \
                                 sg_pow33[(sizeof(lit) - 2 - (i)) & 63]                 \
                           : 0u)
#define SG_HASH_8(lit, i)                                                               \
    (SG_HASH_AT(lit, i) + SG_HASH_AT(lit, i + 1) + SG_HASH_AT(lit, i + 2) +              \
     SG_HASH_AT(lit, i + 3) + SG_HASH_AT(lit, i + 4) + SG_HASH_AT(lit, i + 5) +          \
     SG_HASH_AT(lit, i + 6) + SG_HASH_AT(lit, i + 7))
#define SG_GNU_HASH(lit)                                                                \
    ((uint32_t)(0 * sizeof(char[sizeof(lit) <= 65 ? 1 : -1])) +                          \
     5381u * sg_pow33[(sizeof(lit) - 1) & 63] + SG_HASH_8(lit, 0) + SG_HASH_8(lit, 8) +   \
     SG_HASH_8(lit, 16) + SG_HASH_8(lit, 24) + SG_HASH_8(lit, 32) + SG_HASH_8(lit, 40) +  \
     SG_HASH_8(lit, 48) + SG_HASH_8(lit, 56))
#define SG_SCOPE_SYM(s, lit) sg_scope_sym_h(s, lit, SG_GNU_HASH(lit))

#define SG_CALLSITES 256

/* Call site -> value, read without a lock; sg_callsite_put under the
 * caller's own lock. A full neighbourhood just means no caching. A table is
 * one page, and a call site and its value share a slot: a first touch of a
 * page costs a page fault (about 1.6 us here), the table's first lookups
 * one, not two. */
struct sg_callsites {
    struct {
        const void *ret;
        void *val;
    } slot[SG_CALLSITES];
} __attribute__((aligned(4096)));
void *sg_callsite_get(struct sg_callsites *c, const void *ret);
void sg_callsite_put(struct sg_callsites *c, const void *ret, void *val);

/* The same for a table asked before anything else guards it: its page is not
 * read before its first put (a read maps the page as zero, and that put would
 * fault on it a second time). *used, a variable of the caller's apart from the
 * table, is set once a call site was put; remember under the caller's lock. */
void *sg_callsite_recall(struct sg_callsites *c, const int *used, const void *ret);
void sg_callsite_remember(struct sg_callsites *c, int *used, const void *ret, void *val);

#endif
