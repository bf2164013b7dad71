#include <string.h>

#include "locks.h"
#include "sig_memo.h"

static const struct sg_blob *entry(const void *entries, size_t stride, unsigned i)
{
    return (const struct sg_blob *)((const char *)entries + (size_t)i * stride);
}

int sg_blob_put(struct sg_blob *x, size_t max, const void *p, size_t n)
{
    if (n > max - x->len)
        return 0;
    memmove(x->b + x->len, p, n);
    x->len += n;
    return 1;
}

int sg_memo_has(struct sg_memo *m, const void *entries, size_t stride, const struct sg_blob *x)
{
    int found = 0;
    pthread_mutex_lock(&sg_lock_memo);
    for (unsigned i = 0; i < m->count && !found; i++) {
        const struct sg_blob *e = entry(entries, stride, i);
        found = e->len == x->len && memcmp(e->b, x->b, x->len) == 0;
    }
    pthread_mutex_unlock(&sg_lock_memo);
    return found;
}

void sg_memo_add(struct sg_memo *m, void *entries, size_t stride, unsigned slots,
                 const struct sg_blob *x)
{
    pthread_mutex_lock(&sg_lock_memo);
    struct sg_blob *e = (struct sg_blob *)entry(entries, stride, m->next);
    e->len = x->len;
    memmove(e->b, x->b, x->len);
    m->next = (m->next + 1) % slots;
    if (m->count < slots)
        m->count++;
    pthread_mutex_unlock(&sg_lock_memo);
}
