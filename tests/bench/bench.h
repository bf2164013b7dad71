/* Helpers shared by the benchmark programs: a monotonic clock, fatal errors,
 * argument parsing and a loopback listener. Header-only so that each program
 * stays one compile of one .c (plus smtpio.c for the SMTP pair). */
#ifndef SG_BENCH_H
#define SG_BENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static inline long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (errno)
        fprintf(stderr, ": %s", strerror(errno));
    fputc('\n', stderr);
    exit(1);
}

/* A positive count from the command line, or die. */
static inline long count_arg(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || *end || n <= 0)
        die("bad %s '%s'", what, s);
    return n;
}

/* A TCP listener on 127.0.0.1 at port want, or where the kernel picks when
 * want is 0 or taken; *port gets it. */
static inline int listen_loopback_at(int want, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((unsigned short)want)};
    socklen_t len = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        die("loopback listener");
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        a.sin_port = 0;
        if (!want || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
            die("loopback listener");
    }
    if (listen(fd, 512) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("loopback listener");
    *port = ntohs(a.sin_port);
    return fd;
}

static inline int listen_loopback(int *port)
{
    return listen_loopback_at(0, port);
}

static inline struct sockaddr_in loopback_addr(int port)
{
    return (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

#endif
