/* Every mutex of the shim, in one place so that one pthread_atfork handler
 * can keep a forked child from inheriting one held by another thread. */
#ifndef SG_LOCKS_H
#define SG_LOCKS_H

#include <pthread.h>

/* One array, in the order they are taken: the fork handlers walk it with no
 * table of pointers (a relocation each at every exec). */
extern pthread_mutex_t sg_locks[6];
#define sg_lock_tls (sg_locks[0])     /* TLS library bindings and stores */
#define sg_lock_bind (sg_locks[1])    /* sessions in handshake (tlsbind.c); never
                                         held around the loader */
#define sg_lock_fd (sg_locks[2])      /* descriptor table writers */
#define sg_lock_wire (sg_locks[3])    /* links to wire readers (after sg_lock_fd) */
#define sg_lock_resolve (sg_locks[4]) /* name memory */
#define sg_lock_memo (sg_locks[5])    /* signature checks (sig_memo.c, ossl_memo.c): last, a leaf,
                                         taken inside a TLS library's verification */

#endif
