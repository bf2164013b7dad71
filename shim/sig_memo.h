/* The table of accepted signature checks that nettle_memo.c and ossl_memo.c
 * keep: a few byte strings, each the whole input of one check the library
 * answered 1 for, compared whole, replaced round-robin. Each entry and each
 * query is a struct sg_blob of the caller's size (stride bytes). Taken under
 * sg_lock_memo. The caller passes its own array so that the library carries
 * no pointer to relocate at exec. */
#ifndef SG_SIG_MEMO_H
#define SG_SIG_MEMO_H

#include <stddef.h>
#include <stdint.h>

struct sg_blob {
    size_t len;
    uint8_t b[];
};

struct sg_memo {
    unsigned count, next;
};

/* Append n bytes at p to x, which holds at most max; 0 when they do not fit. */
int sg_blob_put(struct sg_blob *x, size_t max, const void *p, size_t n);

/* Is x one of the count entries of entries (slots of stride bytes)? */
int sg_memo_has(struct sg_memo *m, const void *entries, size_t stride, const struct sg_blob *x);
/* Keep x, over the oldest when all slots are used. */
void sg_memo_add(struct sg_memo *m, void *entries, size_t stride, unsigned slots,
                 const struct sg_blob *x);

#endif
