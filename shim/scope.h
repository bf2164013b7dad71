/* Finding the real function behind an interposed TLS name, for the caller
 * that reached us, and remembering the answer per call site. */
#ifndef SG_SCOPE_H
#define SG_SCOPE_H

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
    struct sg_symtab t[SG_SEARCH_MAX];
};
void sg_scope_search_init(struct sg_search *s, void *h);
void *sg_scope_sym(struct sg_search *s, const char *name);

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

#endif
