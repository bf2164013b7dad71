/* roads: a careless SMTP client that takes one unusual road per STYLE.
 *
 *   roads STYLE HOST PORT plain|starttls
 *   roads many HOST PORT COUNT
 *
 * One session: greeting, EHLO, (starttls: STARTTLS and a handshake that
 * verifies nothing), AUTH PLAIN with the test credentials, MAIL, RCPT, DATA,
 * QUIT. Exit 0 when the server accepted the message, 1 on any failure (the
 * reason on stderr), 3 when bytes followed the 220 reply to STARTTLS.
 *
 * Byte paths (every plaintext line goes out this way): write, sendfile, sendfile64,
 * splice (a pipe filled by write), vmsplice (a pipe filled by vmsplice),
 * pwritev2 (offset -1), sendmmsg, dprintf, aio (aio_write).
 * Connection roads (the lines go out with write): tfo (sendto MSG_FASTOPEN,
 * length 0), tfo_msg (sendmsg with msg_name + MSG_FASTOPEN carrying EHLO),
 * raw (the connect syscall, not the libc function), scm (a child process
 * connects and hands the socket over SCM_RIGHTS).
 * Reused numbers: stale_tfo, stale_raw (an SMTP socket is closed by closefrom,
 * which glibc does without the interposed close; the new socket gets the same
 * number and is connected by TCP Fast Open or the raw syscall), stale_rawsock
 * (closed, made and connected by raw syscalls: the shim sees none of it), highdup (the
 * connected socket dup2'd to descriptor 70000, past the shim's table, the
 * dialogue on the copy).
 * Read path: recvmmsg (replies read with recvmmsg; an injection must show).
 * Dialogue: pipeline (EHLO and STARTTLS in one write), pipe_connect (EHLO and
 * STARTTLS before the greeting), inject_wait (after the 220 to STARTTLS it
 * reads on, waiting for more, before any handshake).
 * many: COUNT connections held open at once, then on each the greeting is
 * read and AUTH PLAIN sent; prints "sent S refused R" (refused: connect or
 * write failed with EACCES). */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* base64("\0sguser\0Sg-S3cret-Pa55") */
#define AUTH_LINE "AUTH PLAIN AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ==\r\n"
#define MESSAGE "Subject: roads\r\n\r\nHello from the roads client.\r\n.\r\n"

static const char *style;
static SSL *ssl;
static char rbuf[8192];
static size_t rlen;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "roads %s: ", style);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int is(const char *s)
{
    return strcmp(style, s) == 0;
}

/* ---- byte paths ---------------------------------------------------------- */

static ssize_t via_sendfile(int fd, const char *s, size_t n, int large)
{
    char path[] = "/tmp/roads-XXXXXX";
    int f = mkstemp(path);
    if (f < 0 || write(f, s, n) != (ssize_t)n)
        fail("temp file: %s", strerror(errno));
    unlink(path);
    off_t off = 0;
    off64_t off64 = 0;
    ssize_t r = large ? sendfile64(fd, f, &off64, n) : sendfile(fd, f, &off, n);
    close(f);
    return r;
}

static ssize_t via_splice(int fd, const char *s, size_t n, int vm)
{
    int p[2];
    if (pipe(p) != 0)
        fail("pipe: %s", strerror(errno));
    struct iovec iov = {(void *)s, n};
    ssize_t in = vm ? vmsplice(p[1], &iov, 1, 0) : write(p[1], s, n);
    if (in != (ssize_t)n)
        fail("filling the pipe: %s", strerror(errno));
    ssize_t r = splice(p[0], NULL, fd, NULL, n, 0);
    close(p[0]);
    close(p[1]);
    return r;
}

static ssize_t via_sendmmsg(int fd, const char *s, size_t n)
{
    struct iovec iov = {(void *)s, n};
    struct mmsghdr m = {.msg_hdr = {.msg_iov = &iov, .msg_iovlen = 1}};
    int r = sendmmsg(fd, &m, 1, 0);
    return r == 1 ? (ssize_t)m.msg_len : -1;
}

/* POSIX AIO: glibc writes from a thread of its own with internal calls. */
static ssize_t via_aio(int fd, const char *s, size_t n)
{
    struct aiocb cb = {.aio_fildes = fd, .aio_buf = (void *)s, .aio_nbytes = n};
    const struct aiocb *list[1] = {&cb};
    struct timespec limit = {10, 0};
    if (aio_write(&cb) != 0)
        return -1;
    while (aio_error(&cb) == EINPROGRESS)
        if (aio_suspend(list, 1, &limit) != 0 && errno != EINTR)
            return -1;
    return aio_return(&cb);
}

static ssize_t send_plain(int fd, const char *s, size_t n)
{
    struct iovec iov = {(void *)s, n};
    if (is("sendfile") || is("sendfile64"))
        return via_sendfile(fd, s, n, is("sendfile64"));
    if (is("splice"))
        return via_splice(fd, s, n, 0);
    if (is("vmsplice"))
        return via_splice(fd, s, n, 1);
    if (is("pwritev2"))
        return pwritev2(fd, &iov, 1, -1, 0);
    if (is("sendmmsg"))
        return via_sendmmsg(fd, s, n);
    if (is("dprintf"))
        return dprintf(fd, "%.*s", (int)n, s);
    if (is("aio"))
        return via_aio(fd, s, n);
    return write(fd, s, n);
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    if (ssl) {
        if (SSL_write(ssl, s, (int)n) != (int)n)
            fail("SSL_write failed");
        return;
    }
    ssize_t r = send_plain(fd, s, n);
    if (r != (ssize_t)n)
        fail("sending %.4s: %s", s, r < 0 ? strerror(errno) : "short write");
}

/* ---- replies --------------------------------------------------------------- */

static void fill(int fd)
{
    if (rlen == sizeof rbuf)
        fail("reply too long");
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (!ssl && poll(&p, 1, 10000) != 1)
        fail("timeout waiting for a reply");
    /* Into an array of known size with a length that is not a constant:
     * under _FORTIFY_SOURCE (roads_fortify) this read() is __read_chk. */
    char got[sizeof rbuf];
    size_t room = sizeof rbuf - rlen;
    ssize_t r;
    if (ssl) {
        r = SSL_read(ssl, got, (int)room);
    } else if (is("recvmmsg")) { /* replies read with recvmmsg, one message */
        struct iovec iov = {got, room};
        struct mmsghdr m = {.msg_hdr = {.msg_iov = &iov, .msg_iovlen = 1}};
        r = recvmmsg(fd, &m, 1, 0, NULL) == 1 ? (ssize_t)m.msg_len : -1;
    } else {
        r = read(fd, got, room);
    }
    if (r <= 0)
        fail("reading a reply: %s", r < 0 ? strerror(errno) : "closed");
    memcpy(rbuf + rlen, got, (size_t)r);
    rlen += (size_t)r;
}

/* One whole reply; its code. */
static int reply(int fd)
{
    for (;;) {
        char *nl;
        while (!(nl = memchr(rbuf, '\n', rlen)))
            fill(fd);
        size_t len = (size_t)(nl - rbuf) + 1;
        int last = len >= 4 && rbuf[3] != '-';
        int code = atoi(rbuf);
        memmove(rbuf, rbuf + len, rlen - len);
        rlen -= len;
        if (last)
            return code;
    }
}

static void expect(int fd, int want, const char *what)
{
    int code = reply(fd);
    if (code != want)
        fail("%s: %d", what, code);
}

/* ---- connecting ------------------------------------------------------------ */

static struct sockaddr_in target(const char *host, const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        fail("HOST must be an IPv4 address");
    return sa;
}

static int hand_over(struct sockaddr_in sa)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        fail("socketpair: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) { /* the privileged half: connect, send the socket, exit */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            _exit(1);
        char cbuf[CMSG_SPACE(sizeof fd)] = {0}, one = 'x';
        struct iovec iov = {&one, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                           .msg_controllen = sizeof cbuf};
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof fd);
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
        _exit(sendmsg(sv[0], &m, 0) == 1 ? 0 : 1);
    }
    char cbuf[CMSG_SPACE(sizeof(int))] = {0}, one;
    struct iovec iov = {&one, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    if (recvmsg(sv[1], &m, 0) != 1 || !CMSG_FIRSTHDR(&m))
        fail("no socket received");
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
    waitpid(pid, NULL, 0);
    return fd;
}

/* An SMTP socket closed where no close() is seen: its number comes back next. */
static void leave_stale(struct sockaddr_in sa)
{
    int old = socket(AF_INET, SOCK_STREAM, 0);
    if (old < 0 || connect(old, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail("first connection: %s", strerror(errno));
    closefrom(old);
}

/* The connected socket as descriptor 70000 (ROADS_HIGH_FD), the limits raised for it. */
static int high_copy(int fd)
{
    const char *want = getenv("ROADS_HIGH_FD"); /* a smaller table in a test build */
    int to = want ? atoi(want) : 70000;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        fail("getrlimit: %s", strerror(errno));
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)to + 1)
        rl.rlim_max = (rlim_t)to + 1; /* root may raise it */
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fail("setrlimit: %s", strerror(errno));
    int high = dup2(fd, to);
    if (high != to)
        fail("dup2 to %d: %s", to, strerror(errno));
    close(fd);
    return high;
}

/* The same, closed by the raw syscall: not even closefrom is seen. */
static void leave_stale_raw(struct sockaddr_in sa)
{
    int old = socket(AF_INET, SOCK_STREAM, 0);
    if (old < 0 || connect(old, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail("first connection: %s", strerror(errno));
    syscall(SYS_close, old);
}

static int open_conn(const char *host, const char *port)
{
    struct sockaddr_in sa = target(host, port);
    if (is("scm"))
        return hand_over(sa);
    if (is("stale_tfo") || is("stale_raw"))
        leave_stale(sa);
    if (is("stale_rawsock"))
        leave_stale_raw(sa);
    int fd = is("stale_rawsock") ? (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0)
                                 : socket(AF_INET, SOCK_STREAM, 0);
    int r;
    if (is("tfo") || is("stale_tfo")) {
        r = (int)sendto(fd, NULL, 0, MSG_FASTOPEN, (struct sockaddr *)&sa, sizeof sa);
    } else if (is("tfo_msg")) {
        static const char ehlo[] = "EHLO roads.example\r\n";
        struct iovec iov = {(void *)ehlo, sizeof ehlo - 1};
        struct msghdr m = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov,
                           .msg_iovlen = 1};
        r = sendmsg(fd, &m, MSG_FASTOPEN) == (ssize_t)iov.iov_len ? 0 : -1;
    } else if (is("raw") || is("stale_raw") || is("stale_rawsock")) {
        r = (int)syscall(SYS_connect, fd, (struct sockaddr *)&sa, sizeof sa);
    } else {
        r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (r != 0)
        fail("connecting: %s", strerror(errno));
    return is("highdup") ? high_copy(fd) : fd;
}

/* ---- the dialogue ------------------------------------------------------------ */

static void start_tls(int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* careless */
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    const char *sni = getenv("ROADS_SNI"); /* e.g. mail.x.org: 0x0a, then "mail" */
    SSL_set_tlsext_host_name(ssl, (char *)(sni ? sni : "localhost"));
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        fail("TLS handshake failed");
    }
}

/* Up to STARTTLS's 220 (or none), in the order this style sends things. */
static void opening(int fd, int tls)
{
    static const char ehlo[] = "EHLO roads.example\r\n";
    if (is("pipe_connect")) {
        put(fd, "EHLO roads.example\r\nSTARTTLS\r\n");
        expect(fd, 220, "greeting");
        expect(fd, 250, "EHLO");
        expect(fd, 220, "STARTTLS");
        return;
    }
    expect(fd, 220, "greeting");
    if (is("pipeline")) {
        put(fd, "EHLO roads.example\r\nSTARTTLS\r\n");
        expect(fd, 250, "EHLO");
        expect(fd, 220, "STARTTLS");
        return;
    }
    if (!is("tfo_msg"))
        put(fd, ehlo);
    expect(fd, 250, "EHLO");
    if (!tls)
        return;
    put(fd, "STARTTLS\r\n");
    expect(fd, 220, "STARTTLS");
    if (is("inject_wait")) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) == 1) { /* a buffered reader reads on */
            fill(fd);
            fprintf(stderr, "roads %s: injected %zu bytes\n", style, rlen);
            exit(3);
        }
    }
}

static int session(const char *host, const char *port, int tls)
{
    int fd = open_conn(host, port);
    opening(fd, tls || is("pipeline") || is("pipe_connect"));
    if (tls || is("pipeline") || is("pipe_connect")) {
        if (rlen) { /* bytes came with the 220: a careless reader would use them */
            fprintf(stderr, "roads %s: injected %zu bytes\n", style, rlen);
            exit(3);
        }
        start_tls(fd);
        put(fd, "EHLO roads.example\r\n");
        expect(fd, 250, "EHLO after TLS");
    }
    put(fd, AUTH_LINE);
    expect(fd, 235, "AUTH");
    put(fd, "MAIL FROM:<sender@example.com>\r\n");
    expect(fd, 250, "MAIL");
    put(fd, "RCPT TO:<rcpt@example.com>\r\n");
    expect(fd, 250, "RCPT");
    put(fd, "DATA\r\n");
    expect(fd, 354, "DATA");
    put(fd, MESSAGE);
    expect(fd, 250, "message");
    put(fd, "QUIT\r\n");
    printf("roads %s: delivered\n", style);
    return 0;
}

/* ---- many connections at once ---------------------------------------------- */

static int many(const char *host, const char *port, int count)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    struct sockaddr_in sa = target(host, port);
    int *fds = calloc((size_t)count, sizeof *fds);
    int sent = 0, refused = 0, other = 0;
    for (int i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0)
            fail("socket %d: %s", i, strerror(errno));
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0) {
            if (errno != EACCES)
                fail("connect %d: %s", i, strerror(errno));
            refused++;
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (int i = 0; i < count; i++) {
        if (fds[i] < 0)
            continue;
        char buf[512];
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        if (poll(&p, 1, 10000) != 1 || read(fds[i], buf, sizeof buf) <= 0) {
            other++; /* refused by reading (shut) or no greeting */
            continue;
        }
        if (write(fds[i], AUTH_LINE, sizeof AUTH_LINE - 1) == (ssize_t)sizeof AUTH_LINE - 1)
            sent++;
        else if (errno == EACCES)
            refused++;
        else
            other++;
    }
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("sent %d refused %d other %d\n", sent, refused, other);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(60);
    if (argc != 5)
        return fprintf(stderr, "usage: roads STYLE HOST PORT plain|starttls|COUNT\n"), 2;
    style = argv[1];
    if (is("many"))
        return many(argv[2], argv[3], atoi(argv[4]));
    return session(argv[2], argv[3], strcmp(argv[4], "starttls") == 0);
}
