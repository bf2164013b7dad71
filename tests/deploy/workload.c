/* workload: everyday non-mail work, for "the preload changes nothing" tests.
 *
 *   workload threads    THREADS threads, each ROUNDS times: a socketpair, a pipe and a
 *                       TCP connection to its own listener on 127.0.0.1 (not an SMTP
 *                       port), data written, read back and checked, descriptors closed
 *   workload forkexec   the same threads keep running while the main thread forks and
 *                       execs /bin/echo CHILDREN times and reads each child's output
 *
 * The output is the same on every run; exit 0 on success, 1 on any failure. A lock held
 * by another thread at fork time (no pthread_atfork) hangs the child: the caller's
 * timeout catches it. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 100
#define CHILDREN 20
#define CHUNK 64

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Writes a CHUNK on wfd, reads it back on rfd, closes both; returns the byte sum. */
static unsigned roundtrip(int wfd, int rfd, int seed)
{
    char out[CHUNK], in[CHUNK];
    unsigned sum = 0;
    for (int i = 0; i < CHUNK; i++)
        out[i] = (char)(seed + i);
    if (write(wfd, out, CHUNK) != CHUNK)
        die("write");
    for (size_t got = 0; got < CHUNK;) {
        ssize_t n = read(rfd, in + got, CHUNK - got);
        if (n <= 0)
            die("read");
        got += (size_t)n;
    }
    if (memcmp(in, out, CHUNK) != 0) {
        fputs("workload: data corrupted\n", stderr);
        exit(1);
    }
    for (int i = 0; i < CHUNK; i++)
        sum += (unsigned char)in[i];
    close(wfd);
    close(rfd);
    return sum;
}

static int listener(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) < 0)
        die("listener");
    return fd;
}

static unsigned tcp_round(int lfd, const struct sockaddr_in *addr, int seed)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)addr, sizeof *addr) < 0)
        die("connect");
    int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0)
        die("accept");
    return roundtrip(c, s, seed);
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    unsigned long sum = 0;
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    for (int r = 0; r < ROUNDS; r++) {
        int sp[2], pp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || pipe2(pp, O_CLOEXEC) < 0)
            die("socketpair/pipe");
        sum += roundtrip(sp[0], sp[1], id + r);
        sum += roundtrip(pp[1], pp[0], id * r);
        sum += tcp_round(lfd, &addr, id - r);
    }
    close(lfd);
    return (void *)sum;
}

/* Runs /bin/echo child N with its output on a pipe; prints what it said. */
static void fork_exec(int n)
{
    int p[2];
    char arg[16], buf[64];
    if (pipe(p) < 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        snprintf(arg, sizeof arg, "%d", n);
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl("/bin/echo", "echo", "child", arg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    ssize_t len = 0, r;
    while (len < (ssize_t)sizeof buf - 1 && (r = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += r;
    buf[len] = 0;
    close(p[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("child");
    fputs(buf, stdout);
}

int main(int argc, char **argv)
{
    int forking = argc == 2 && strcmp(argv[1], "forkexec") == 0;
    if (argc != 2 || (!forking && strcmp(argv[1], "threads") != 0)) {
        fputs("usage: workload threads|forkexec\n", stderr);
        return 1;
    }
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            die("pthread_create");
    for (int n = 0; forking && n < CHILDREN; n++)
        fork_exec(n);
    unsigned long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *sum;
        pthread_join(t[i], &sum);
        total += (unsigned long)sum;
    }
    printf("%d threads x %d rounds: checksum %lu\n", THREADS, ROUNDS, total);
    return fflush(stdout) == 0 ? 0 : 1;
}
