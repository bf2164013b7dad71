/* "This thread is inside a real TLS library call the shim made." While it is,
 * the library's calls of its own exported functions on the object it drives
 * (which land in our wrappers through the PLT: SSL_connect calls
 * SSL_do_handshake) go straight to the real functions (the program's own
 * calls are judged, on any object: a mark left stale by a jump can look
 * live), and the guard takes the records written meanwhile for a handshake
 * the shim drives.
 *
 * A program can leave the real call without returning through the shim
 * (siglongjmp out of a SIGALRM timeout, longjmp out of a verify callback, a
 * C++ exception): the mark must not outlive the call, or later SMTP sessions
 * on the thread would escape the policy. So the mark is an anchor, a small
 * struct on the stack of the shim function that makes the real call, sealed
 * with a value derived from its own address, and it names the object that
 * call drives. A check believes it only when it runs deeper on the stack than
 * the anchor (the stack grows down on x86-64 and aarch64), not too far below
 * it, and the anchor still holds its seal (a later call run deeper over the
 * abandoned frame usually rewrote it); otherwise the mark is stale and is
 * cleared. An entry point also requires the object to be the one the real
 * call drives: a new session is never taken for a nested call, however the
 * stack lies. inside.c says the limits.
 *
 *     struct sg_inside m;
 *     sg_inside_enter(&m, s);   r = real(s);   sg_inside_leave(&m);
 *     if (sg_inside_on(s)) ...  // an entry point, nested on s: go direct
 *     if (sg_inside() && (sg_inside_is(s) || the caller is the library)) ...
 *     if (sg_inside()) ...      // the guard: some real call is under way
 *
 * Nested real calls keep the outermost anchor; the object is the innermost's. */
#ifndef SG_INSIDE_H
#define SG_INSIDE_H

#include <stdint.h>

/* Lives in the frame that makes the real call; its address is the anchor
 * when no live mark was there before. */
struct sg_inside {
    uintptr_t seal;        /* its address ^ SG_INSIDE_SALT while it anchors */
    uintptr_t prev_anchor; /* the thread's mark before, put back on leaving */
    const void *prev_obj;
};

#define SG_INSIDE_SALT ((uintptr_t)0x5347a11ce5ea1ed5ULL) /* unlike stack data */

struct sg_inside_thread {
    uintptr_t anchor; /* the outermost mark's address, 0 outside */
    const void *obj;  /* the object the innermost real call drives */
};
extern __thread struct sg_inside_thread sg_inside_now __attribute__((tls_model("initial-exec")));

/* The slow part: the anchor is set; is it live, seen from here (an address
 * in the checking frame)? Clears it when stale. */
int sg_inside_at(uintptr_t here);
int sg_inside_check(void); /* sg_inside_at its own frame */

/* Outside: one load and a branch. */
static inline __attribute__((always_inline)) int sg_inside(void)
{
    return __builtin_expect(sg_inside_now.anchor != 0, 0) && sg_inside_check();
}

/* After a true sg_inside(): whether the innermost real call drives obj. */
static inline __attribute__((always_inline)) int sg_inside_is(const void *obj)
{
    return sg_inside_now.obj == obj;
}

/* Every entry point pays this: one load and a branch when outside. */
static inline __attribute__((always_inline)) int sg_inside_on(const void *obj)
{
    return sg_inside() && sg_inside_is(obj);
}

/* Nested in a live mark: the anchor stays, the object is this call's. Else
 * m becomes the anchor. What was there before (0, a live mark, or one of
 * another stack: a suspended coroutine's) is put back by sg_inside_leave. */
static inline __attribute__((always_inline)) void sg_inside_enter(struct sg_inside *m,
                                                                  const void *obj)
{
    uintptr_t a = (uintptr_t)m;
    /* Seen from m itself: an anchor at or below m is a frame left for good. */
    int nested = __builtin_expect(sg_inside_now.anchor != 0, 0) && sg_inside_at(a);
    m->prev_anchor = sg_inside_now.anchor;
    m->prev_obj = sg_inside_now.obj;
    if (!nested) {
        *(volatile uintptr_t *)&m->seal = a ^ SG_INSIDE_SALT;
        sg_inside_now.anchor = a;
    }
    sg_inside_now.obj = obj;
}

static inline __attribute__((always_inline)) void sg_inside_leave(struct sg_inside *m)
{
    sg_inside_now.anchor = m->prev_anchor;
    sg_inside_now.obj = m->prev_obj;
}

#endif
