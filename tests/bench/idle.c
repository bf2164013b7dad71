/* idle: a process that does nothing, to measure the memory the shim adds.
 *
 *   idle [connect]
 *
 * With "connect" it first makes one connection to a loopback listener of its
 * own (not an SMTP port), which makes the shim load its policy. Then it
 * prints "ready" and waits for end of input (at most 120 s) while the caller
 * reads /proc/PID/status and /proc/PID/smaps_rollup. */
#include "bench.h"

static void one_connection(void)
{
    int port, lfd = listen_loopback(&port);
    struct sockaddr_in a = loopback_addr(port);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    int s = accept(lfd, NULL, NULL);
    if (s < 0)
        die("accept");
    close(s);
    close(c);
    close(lfd);
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "connect") != 0))
        die("usage: idle [connect]");
    if (argc == 2)
        one_connection();
    alarm(120);
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    return 0;
}
