/* The "inside a real TLS call" mark (inside.h): when a check believes it.
 *
 * Live: the check runs below the anchor (deeper: nested in the real call),
 * less than SG_INSIDE_REACH below it, and the anchor still holds its seal.
 * Stale: the check runs on the anchor's stack (within SG_INSIDE_REACH) at or
 * above it, or below it where the seal was overwritten: the call was left
 * without returning through the shim (longjmp, siglongjmp, an exception).
 * The mark is cleared, and the caller is judged as any outside caller.
 * Farther away, the check runs on another stack (a signal's alternate stack,
 * another coroutine): not inside, but the mark stays for the call it marks.
 * Entry points also need their object to be the one the real call drives (or
 * the library to be calling itself, openssl.c).
 *
 * Limits, and what was chosen:
 * - A jump out of a real call is not seen when it happens (jumps are not
 *   interposed: __builtin_longjmp and C++ exceptions would escape that
 *   anyway); the next check finds it. A later call made from deeper on the
 *   stack than the abandoned anchor, over stack no frame since has written
 *   where the seal lies (a large uninitialised buffer across it), finds the
 *   mark live. An entry point still judges every call of the program, on
 *   any object, the abandoned one included (a retry of a handshake left by
 *   a timeout: tests/test_inside.py); only the library's own calls go
 *   direct. What the live mark changes is the guard's view for the meantime
 *   (a TLS record on a socket in its plaintext phase is read as a
 *   ClientHello; an inherited socket's TLS is not handed to the wire).
 *   The injection check after a 220 to STARTTLS does not ask it. The first
 *   check made at or above the anchor clears the mark for good.
 * - Coroutines (swapcontext, fibers): a real call suspended inside a callback
 *   while another context of the thread uses the library: that context's
 *   calls are judged; for the guard, they are taken as nested when its
 *   stack lies within
 *   SG_INSIDE_REACH below the anchor with the seal intact (as the old
 *   per-thread counter did, for every context). A context within
 *   SG_INSIDE_REACH above the anchor clears the mark: when the suspended call
 *   resumes, its own re-entries are judged as top-level calls (the object's
 *   state in the shim keeps that consistent). Contexts on stacks farther
 *   away are judged and leave the mark alone.
 * - sigaltstack: a handler on an alternate stack farther than
 *   SG_INSIDE_REACH from the anchor is judged and leaves the mark to the
 *   call it interrupted. A handler that jumps out of the call is the first
 *   case; the check after the jump runs back on the anchor's stack.
 * - The seal is read at the anchor's address: mapped whenever the anchor is
 *   on the checking stack (it is above the checking frame). A stale anchor
 *   on another stack that was unmapped since (a coroutine's, freed) and lies
 *   within SG_INSIDE_REACH above the checking frame would fault: it takes a
 *   real call left by a jump on a coroutine stack, that stack freed, and a
 *   check from a stack mapped right below it.
 * - pthread_cancel ends the thread and the mark with it (a new thread's
 *   static TLS starts zeroed, cached stacks included). Its cleanup handlers
 *   and TLS destructors run above the anchor, so they are judged. */
#include "inside.h"

/* Deeper than any real call nests its own calls and the program's callbacks
 * (OpenSSL's and GnuTLS's handshakes take tens of KiB); far less than the
 * gap between unrelated stacks (threads', heap-allocated alternate stacks). */
#define SG_INSIDE_REACH ((uintptr_t)1 << 20)

__thread struct sg_inside_thread sg_inside_now __attribute__((tls_model("initial-exec")));

__attribute__((noinline, no_sanitize_address)) int sg_inside_at(uintptr_t here)
{
    uintptr_t a = sg_inside_now.anchor;
    if (a > here && a - here < SG_INSIDE_REACH) {
        if (((const volatile struct sg_inside *)a)->seal == (a ^ SG_INSIDE_SALT))
            return 1;
    } else if (here - a >= SG_INSIDE_REACH) {
        return 0; /* another stack: not inside, and not ours to clear */
    }
    sg_inside_now.anchor = 0; /* left without returning through the shim */
    return 0;
}

__attribute__((noinline)) int sg_inside_check(void)
{
    return sg_inside_at((uintptr_t)__builtin_frame_address(0));
}
