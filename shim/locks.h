/* Every mutex of the shim, in one place so that one pthread_atfork handler
 * can keep a forked child from inheriting one held by another thread. */
#ifndef SG_LOCKS_H
#define SG_LOCKS_H

#include <pthread.h>

extern pthread_mutex_t sg_lock_fd;      /* descriptor table writers */
extern pthread_mutex_t sg_lock_resolve; /* name memory */
extern pthread_mutex_t sg_lock_tls;    /* TLS library bindings and stores */
extern pthread_mutex_t sg_lock_bind;   /* sessions in handshake (tlsbind.c); never
                                          held around the loader */
extern pthread_mutex_t sg_lock_wire;   /* links to wire readers (after sg_lock_fd) */

#endif
