#include "locks.h"
#include "tlsbind.h"

pthread_mutex_t sg_locks[6] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                               PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                               PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
#define NLOCKS (sizeof sg_locks / sizeof sg_locks[0])

static void prepare(void)
{
    for (unsigned i = 0; i < NLOCKS; i++)
        pthread_mutex_lock(&sg_locks[i]);
}

static void parent(void)
{
    for (unsigned i = NLOCKS; i-- > 0;)
        pthread_mutex_unlock(&sg_locks[i]);
}

static void child(void)
{
    for (unsigned i = 0; i < NLOCKS; i++)
        pthread_mutex_init(&sg_locks[i], NULL);
    sg_bind_forked();
}

/* Registering allocates nothing and reads no file: cheap at load. */
__attribute__((constructor)) static void locks_init(void)
{
    pthread_atfork(prepare, parent, child);
}
