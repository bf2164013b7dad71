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

#define SG_CALLSITES 512

/* Call site -> value, read without a lock; sg_callsite_put under the
 * caller's own lock. A full neighbourhood just means no caching. */
struct sg_callsites {
    const void *ret[SG_CALLSITES];
    void *val[SG_CALLSITES];
};
void *sg_callsite_get(struct sg_callsites *c, const void *ret);
void sg_callsite_put(struct sg_callsites *c, const void *ret, void *val);

#endif
