#include "locks.h"
#include "tlsbind.h"

pthread_mutex_t sg_lock_fd = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t sg_lock_resolve = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t sg_lock_tls = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t sg_lock_bind = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t sg_lock_wire = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t *const all[] = {&sg_lock_tls, &sg_lock_bind, &sg_lock_fd, &sg_lock_wire,
                                       &sg_lock_resolve};
#define NLOCKS (sizeof all / sizeof all[0])

static void prepare(void)
{
    for (unsigned i = 0; i < NLOCKS; i++)
        pthread_mutex_lock(all[i]);
}

static void parent(void)
{
    for (unsigned i = NLOCKS; i-- > 0;)
        pthread_mutex_unlock(all[i]);
}

static void child(void)
{
    for (unsigned i = 0; i < NLOCKS; i++)
        pthread_mutex_init(all[i], NULL);
    sg_bind_forked();
}

/* Registering allocates nothing and reads no file: cheap at load. */
__attribute__((constructor)) static void locks_init(void)
{
    pthread_atfork(prepare, parent, child);
}
