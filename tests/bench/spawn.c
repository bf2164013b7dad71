/* spawn: what preloading the shim adds to starting a process.
 *
 *   spawn N PRELOAD PROG [ARG...]
 *
 * Runs PROG N times, one after another, with fork + execve + waitpid. The
 * child's environment is ours without LD_PRELOAD, plus LD_PRELOAD=PRELOAD
 * when PRELOAD is not empty: spawn itself is never preloaded, so only the
 * child's start differs between the two sides. Prints "execs=N ok=OK ns=NS"
 * and exits 0 only when every child exited 0. */
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

static int run_once(char **argv, char **env)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execve(argv[0], argv, env);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        die("usage: spawn N PRELOAD PROG [ARG...]");
    long n = count_arg(argv[1], "count"), ok = 0;
    char **env = child_env(argv[2]);
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        ok += run_once(argv + 3, env);
    long long ns = now_ns() - t0;
    printf("execs=%ld ok=%ld ns=%lld\n", n, ok, ns);
    return ok == n ? 0 : 1;
}
