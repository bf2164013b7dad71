/* cancel_read PORT: a thread blocked in read() on a socket to 127.0.0.1:PORT
 * (a listener of its own; an SMTP port of the policy, so the shim's guard
 * runs below read()) is cancelled, and its cleanup handler must run: the
 * unwinder walks through the shim's frames, so their unwind tables must be
 * there and findable (tests/test_build.py). Built with -fexceptions
 * (cancel.mk): the handler runs by unwinding, not by longjmp. Exit 0 and
 * "cancelled cleaned" when it did. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int fds[2]; /* fds[0]: the connected socket the thread reads */
static volatile int cleaned;

static void cleanup(void *arg)
{
    (void)arg;
    cleaned = 1;
}

static void *reader(void *arg)
{
    char b[8];
    (void)arg;
    pthread_cleanup_push(cleanup, NULL);
    if (read(fds[0], b, sizeof b) < 0)
        perror("read");
    pthread_cleanup_pop(0);
    return NULL;
}

/* fds[0] connected to a listener on PORT, fds[1] its accepted end. */
static int connect_pair(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0)
        return -1;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    fds[1] = accept(l, NULL, NULL);
    return fds[1] < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    pthread_t t;
    void *r = NULL;
    alarm(10);
    if (argc != 2 || connect_pair(atoi(argv[1])) != 0) {
        perror("cancel_read: usage: cancel_read PORT; setup");
        return 2;
    }
    if (pthread_create(&t, NULL, reader, NULL) != 0)
        return 2;
    usleep(100 * 1000); /* blocked in read() by now, most likely; either way it is cancelled */
    pthread_cancel(t);
    pthread_join(t, &r);
    printf("%s %s\n", r == PTHREAD_CANCELED ? "cancelled" : "finished",
           cleaned ? "cleaned" : "not-cleaned");
    return !(r == PTHREAD_CANCELED && cleaned);
}
