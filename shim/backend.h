/* The TLS libraries loaded in this process, one record each, bound once and
 * shared by every call site that reaches them. Each backend (OpenSSL,
 * GnuTLS) describes its kind of library; this file does the rest. */
#ifndef SG_BACKEND_H
#define SG_BACKEND_H

#include <stddef.h>

#include "scope.h"

#define SG_STORES 8
#define SG_RECORD_MAX 2048 /* the largest backend record, bound on the stack first */

/* What every backend's record starts with. */
struct sg_lib {
    const void *base;      /* load address of the owning library */
    const void *end;       /* the end of its mapped range: [base, end) is it */
    int complete;          /* every function the shim needs was found */
    struct {
        const char *ca_file, *ca_path; /* policy strings: frozen, compared by address */
        void *obj;
        unsigned gen; /* of the files it was built from (trust_follow.h) */
    } stores[SG_STORES];
};

/* Whether addr lies in the library of rec (a caller inside it, say). */
static inline int sg_lib_holds(const struct sg_lib *rec, const void *addr)
{
    return (const char *)addr >= (const char *)rec->base &&
           (const char *)addr < (const char *)rec->end;
}

/* What changes as libraries are bound: apart from the description below, so
 * that it can be const (relro) and a process that never binds a TLS library
 * writes no page of either (issue 15, memory). The count is a small variable:
 * while it is 0 the call-site table is empty and is not read, so its page is
 * first touched by a write (one page fault, not two). */
struct sg_backend_state {
    int *n;                       /* records bound, published with release */
    struct sg_callsites *sites;
};

struct sg_backend {
    const char *prefix;    /* file name of the library: "libssl.so" */
    const char *probe;     /* a function each such library has: "SSL_connect" */
    void *records;         /* array of max records of size bytes, each starting with sg_lib */
    size_t size;
    int max;
    struct sg_backend_state state;
    /* Fill a new record for the library behind handle h; 0 refuses it.
     * Runs without our lock held: it asks the loader (dlsym). */
    int (*bind)(struct sg_lib *rec, void *h, const char *path);
    /* Optional: finish a bound record at its final address, under our lock,
     * before any other thread can see it. Must not call the loader. */
    void (*init)(struct sg_lib *rec);
    /* A trust store for the policy paths, or NULL when they cannot be read. */
    void *(*build_store)(struct sg_lib *rec, const char *ca_file, const char *ca_path);
};

/* The record of the library the caller at ret would reach for sym. */
struct sg_lib *sg_backend_for_caller(const struct sg_backend *b, const void *ret, const char *sym);
/* The trust store for these policy paths, built again when the files
 * changed (trust_follow.h); NULL if unreadable. */
void *sg_backend_store(const struct sg_backend *b, struct sg_lib *rec, const char *ca_file,
                       const char *ca_path);
/* Bind every loaded library of this kind and build the stores the policy
 * names, before a chroot hides them. */
void sg_backend_prepare(const struct sg_backend *b);

#endif
