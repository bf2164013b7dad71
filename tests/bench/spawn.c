/* spawn: what preloading the shim adds to starting a process.
 *
 *   spawn N PRELOAD PROG [ARG...]
 *   spawn --pairs N PRELOAD PROG [ARG...]
 *
 * Runs PROG N times, one after another, with fork + execve + wait4. The
 * child's environment is ours without LD_PRELOAD, plus LD_PRELOAD=PRELOAD
 * when PRELOAD is not empty: spawn itself is never preloaded, so only the
 * child's start differs between the two sides. Prints "execs=N ok=OK ns=NS"
 * and exits 0 only when every child exited 0.
 *
 * With --pairs, N pairs of one child without PRELOAD and one with it, their
 * order swapped every pair: a machine whose speed drifts (other work, CPU
 * frequency) then slows both sides alike, which batches of one side at a
 * time do not. Prints "pairs=N ok=OK base_ns= shim_ns= base_cpu_ns=
 * shim_cpu_ns=": each side's wall-clock and CPU time (the children's own,
 * from wait4) summed over its N children. */
#include <sys/resource.h>
#include <sys/wait.h>

#include "bench.h"

static char **child_env(const char *preload)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; env && i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    if (env && *preload && asprintf(&env[k], "LD_PRELOAD=%s", preload) < 0)
        env = NULL;
    if (!env)
        die("out of memory");
    return env;
}

struct side {
    char **env;
    long long ns, cpu_ns;
};

static long long tv_ns(struct timeval t)
{
    return t.tv_sec * 1000000000LL + t.tv_usec * 1000LL;
}

/* One child of side s: 1 when it exited 0. */
static int run_once(char **argv, struct side *s)
{
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execve(argv[0], argv, s->env);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        die("wait4");
    s->ns += now_ns() - t0;
    s->cpu_ns += tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int pairs(long n, const char *preload, char **argv)
{
    struct side base = {child_env(""), 0, 0}, shim = {child_env(preload), 0, 0};
    long ok = 0;
    for (long i = 0; i < n; i++) {
        struct side *first = i % 2 ? &shim : &base, *second = i % 2 ? &base : &shim;
        ok += run_once(argv, first) & run_once(argv, second);
    }
    printf("pairs=%ld ok=%ld base_ns=%lld shim_ns=%lld base_cpu_ns=%lld shim_cpu_ns=%lld\n", n,
           ok, base.ns, shim.ns, base.cpu_ns, shim.cpu_ns);
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "--pairs") == 0)
        return pairs(count_arg(argv[2], "count"), argv[3], argv + 4);
    if (argc < 4)
        die("usage: spawn [--pairs] N PRELOAD PROG [ARG...]");
    long n = count_arg(argv[1], "count"), ok = 0;
    struct side s = {child_env(argv[2]), 0, 0};
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        ok += run_once(argv + 3, &s);
    long long ns = now_ns() - t0;
    printf("execs=%ld ok=%ld ns=%lld\n", n, ok, ns);
    return ok == n ? 0 : 1;
}
