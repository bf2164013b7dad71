/* Fixed rings of remembered things (names, sessions). A page of a ring that
 * was never written costs nothing, and a page first touched costs a fault
 * (about 2 us on a VM): so scans stop at the slots filled so far, and a
 * process that remembers one thing touches one page, not the whole ring. */
#ifndef SG_RING_H
#define SG_RING_H

struct sg_ring {
    unsigned next;   /* total taken; slot = next % cap */
    unsigned filled; /* slots ever written, at most cap */
};

/* The slot to write next. The caller holds the ring's lock. */
static inline unsigned sg_ring_take(struct sg_ring *r, unsigned cap)
{
    if (r->filled < cap)
        r->filled++;
    return r->next++ % cap; /* cap divides 2^32: no jump at the wrap */
}

/* The slot k-th newest (k = 1 the newest), for k <= filled. */
static inline unsigned sg_ring_back(const struct sg_ring *r, unsigned k, unsigned cap)
{
    return (r->next - k) % cap;
}

#endif
