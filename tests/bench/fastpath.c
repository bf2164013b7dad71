/* fastpath: what the shim costs a descriptor that is not an SMTP socket.
 *
 *   fastpath pairs N     N write+read pairs of one byte on a socketpair
 *   fastpath connect N   N connect+close cycles to a loopback listener of our own
 *
 * Prints "op=OP n=N ns=NS" (NS: wall time of the loop alone) and exits 0 only
 * when every call did what it should. Each connect cycle also accepts the
 * connection and closes both ends; the client end is reset (SO_LINGER 0) so
 * that tens of thousands of cycles leave no TIME_WAIT to run out of ports. */
#include "bench.h"

static long long pairs(long n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    char out = 'x', in = 0;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (write(sv[0], &out, 1) != 1 || read(sv[1], &in, 1) != 1 || in != out)
            die("write+read pair %ld", i);
    return now_ns() - t0;
}

static long long connects(long n)
{
    int port, lfd = listen_loopback(&port);
    struct sockaddr_in a = loopback_addr(port);
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0)
            die("connect %ld", i);
        int s = accept(lfd, NULL, NULL);
        if (s < 0 || setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof reset) != 0)
            die("accept %ld", i);
        if (close(c) != 0 || close(s) != 0)
            die("close %ld", i);
    }
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die("usage: fastpath pairs|connect N");
    long n = count_arg(argv[2], "count");
    long long ns;
    if (strcmp(argv[1], "pairs") == 0)
        ns = pairs(n);
    else if (strcmp(argv[1], "connect") == 0)
        ns = connects(n);
    else
        die("unknown operation '%s'", argv[1]);
    printf("op=%s n=%ld ns=%lld\n", argv[1], n, ns);
    return 0;
}
