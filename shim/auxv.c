/* The auxiliary vector the ELF ABI places after the environment's
 * terminating NULL on the initial stack, found by the first constructor
 * (glibc passes argc, argv and envp to a library's constructors). Only when
 * envp is still that initial array (it is when the library is preloaded; a
 * dlopen later may pass a copied environ) and the vector is well formed
 * (small types, an AT_NULL end) is it trusted; otherwise /proc/self/auxv,
 * read with raw system calls, answers. */
#include <elf.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "auxv.h"
#include "rawsys.h"

#define MAX_ENTRIES 64

static const unsigned long *initial; /* the vector on the stack, or NULL */

__attribute__((constructor(101))) static void auxv_capture(int argc, char **argv, char **envp)
{
    if (argc < 0 || !argv || envp != argv + argc + 1)
        return;
    char **e = envp;
    while (*e)
        e++;
    const unsigned long *a = (const unsigned long *)(e + 1);
    for (int i = 0; i < MAX_ENTRIES && a[2 * i] < MAX_ENTRIES; i++)
        if (a[2 * i] == AT_NULL) {
            initial = a;
            return;
        }
}

static int find(const unsigned long *a, int n, unsigned long type, unsigned long *value)
{
    for (int i = 0; i < n && a[2 * i] != AT_NULL; i++)
        if (a[2 * i] == type) {
            *value = a[2 * i + 1];
            return 1;
        }
    return 0;
}

static int from_proc(unsigned long type, unsigned long *value)
{
    unsigned long a[2 * MAX_ENTRIES] = {0};
    int fd = sg_sys_open("/proc/self/auxv", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    long got = sg_sys_read(fd, a, sizeof a - 2 * sizeof a[0]);
    sg_sys_close(fd);
    return got > 0 && find(a, (int)(got / (2 * sizeof a[0])), type, value);
}

int sg_auxval(unsigned long type, unsigned long *value)
{
    if (initial)
        return find(initial, MAX_ENTRIES, type, value);
    return from_proc(type, value);
}
