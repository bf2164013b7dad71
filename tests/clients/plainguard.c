/* plainguard: plaintext SMTP written the ways careless programs write it.
 *
 *   plainguard STYLE HOST PORT [ARG]
 *
 * Each STYLE puts SMTP commands on the wire before TLS in one particular way
 * (or, starttls_then_tls, the correct way, for contrast). The program does not
 * know whether smtpguard is loaded: it reports what happened, in one line
 * "plainguard STYLE: ..." on stdout.
 *
 * The dialogue (greeting, EHLO, AUTH PLAIN with the test credentials, MAIL,
 * RCPT, DATA, message, QUIT) exists once (steps[], run_steps); a STYLE picks
 * how bytes are sent and received (struct io) and what is done around it.
 *
 *   byte_at_a_time      the dialogue, one write() per byte
 *   writev_split        the dialogue, writev with the verb split: "AU"+"TH ..."
 *   sendmsg             the dialogue, sendmsg with verb, argument and CRLF apart
 *   fdopen_fprintf      the dialogue through fdopen(sock, "r+"), fprintf+fflush, fgets
 *   fdopen_early        the same with the stream made before connect()
 *       ARG "noauth" skips AUTH in these five: then MAIL is the first secret.
 *   pipelined_starttls  EHLO, then one write "STARTTLS\r\nAUTH PLAIN ...\r\n"
 *   implicit_plain      "EHLO x\r\n" in plaintext to an implicit-TLS port
 *   fork_child          greeting and EHLO, fork; the child goes on from AUTH
 *   fd_reuse            ARG = path prefix: an SMTP socket's number ends up on a
 *                       regular file PREFIX.VARIANT (close, dup2, fclose of an
 *                       fdopen stream made after / before connect) and SMTP-like
 *                       lines are written to it; they must arrive untouched
 *   threads             ARG = N (16): N threads, each an SMTP AUTH attempt and
 *                       SMTP-like lines round-tripped over its own socketpairs
 *                       and pipe
 *   starttls_then_tls   EHLO, STARTTLS, OpenSSL handshake (VERIFY_NONE, SNI =
 *                       HOST), then the dialogue from EHLO over TLS
 *
 * Exit codes:
 *   0  the dialogue completed (fd_reuse: every payload written and read back;
 *      threads: every SMTP attempt refused, every local byte round-tripped)
 *   1  any other error (connection, unexpected reply, timeout, mismatch)
 *   2  the TLS handshake failed (starttls_then_tls)
 *   3  a write was refused: -1 with EACCES, or EPIPE/ECONNRESET after the
 *      socket was shut down
 * The whole run is bounded by alarm(30); socket reads and writes time out
 * after 10 s. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define SG_USER "sguser"
#define SG_PASSWORD "Sg-S3cret-Pa55"
#define SG_FROM "sender@example.com"
#define SG_TO "rcpt@example.com"

enum { EXIT_DONE = 0, EXIT_ERROR = 1, EXIT_TLS = 2, EXIT_REFUSED = 3 };

#define TIMEOUT_TOTAL 30 /* seconds, whole run */
#define TIMEOUT_IO 10    /* seconds, one socket read or write */
#define MAX_REPLY_LINES 100
#define MAX_THREADS 64
#define WHY_LEN 200

/* What fd_reuse writes to files and threads round-trip locally: it looks
 * like SMTP, and must pass untouched. */
static const char fake_smtp[] = "MAIL FROM:<x@y>\r\nAUTH PLAIN secret\r\n";

/* ------------------------------------------------------------------------ */
/* The dialogue                                                             */

static char auth_line[128]; /* "AUTH PLAIN <base64 of \0user\0password>\r\n" */
static int skip_auth;       /* ARG "noauth" */

enum step { GREETING, EHLO, AUTH, MAIL, RCPT, DATA, BODY, QUIT, STARTTLS };

static const struct {
    const char *line; /* NULL: only a reply is read */
    int code;         /* the reply the step needs */
} steps[] = {
    [GREETING] = {NULL, 220},
    [EHLO] = {"EHLO plainguard.example\r\n", 250},
    [AUTH] = {auth_line, 235},
    [MAIL] = {"MAIL FROM:<" SG_FROM ">\r\n", 250},
    [RCPT] = {"RCPT TO:<" SG_TO ">\r\n", 250},
    [DATA] = {"DATA\r\n", 354},
    [BODY] = {"Subject: plainguard\r\n\r\nhello\r\n.\r\n", 250},
    [QUIT] = {"QUIT\r\n", 221},
    [STARTTLS] = {"STARTTLS\r\n", 220},
};

static void make_auth_line(void)
{
    static const char plain[] = "\0" SG_USER "\0" SG_PASSWORD;
    unsigned char b64[96];
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)(sizeof plain - 1));
    snprintf(auth_line, sizeof auth_line, "AUTH PLAIN %s\r\n", b64);
}

/* ------------------------------------------------------------------------ */
/* Connections and their I/O                                                */

struct conn;

enum { STDIO_NONE, STDIO_LATE, STDIO_EARLY };

struct io {
    /* Send all of buf; 0, or -1 with errno set. */
    int (*send)(struct conn *c, const char *buf, size_t len);
    /* Append what arrives to c->in: bytes added, 0 on EOF, -1 with errno. */
    ssize_t (*fill)(struct conn *c);
    int stdio; /* used through fdopen: STDIO_LATE after connect, STDIO_EARLY before */
};

struct conn {
    int fd;
    FILE *fp;
    SSL *ssl;
    const struct io *io;
    char in[4096]; /* received, not yet consumed */
    size_t len;
    char why[WHY_LEN]; /* what went wrong, or what happened */
};

/* Keep the result line (what went wrong, or what happened) and return code. */
static int say(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int say(struct conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return code;
}

/* A send failed: a refusal by the guard (EACCES), or by a socket it shut
 * down (EPIPE, ECONNRESET), or anything else. */
static int send_failed(struct conn *c, const char *line)
{
    int refused = errno == EACCES || errno == EPIPE || errno == ECONNRESET;
    return say(c, refused ? EXIT_REFUSED : EXIT_ERROR, "write %s: %s (%.*s)",
               refused ? "refused" : "failed", strerror(errno),
               (int)strcspn(line, " \r\n"), line);
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return n == 0 ? (errno = EIO, -1) : -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_write(struct conn *c, const char *buf, size_t len)
{
    return write_all(c->fd, buf, len);
}

static int send_bytes(struct conn *c, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (write(c->fd, buf + i, 1) != 1)
            return -1;
    return 0;
}

/* Send iov[0..cnt) with writev or sendmsg, resuming after short sends. */
static int send_iov(int fd, struct iovec *iov, int cnt, int use_sendmsg)
{
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t r = use_sendmsg ? sendmsg(fd, &m, 0) : writev(fd, iov, cnt);
        if (r <= 0)
            return r == 0 ? (errno = EIO, -1) : -1;
        for (; cnt > 0 && (size_t)r >= iov->iov_len; iov++, cnt--)
            r -= (ssize_t)iov->iov_len;
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

/* Cut buf at the ascending positions cuts[0..ncuts) into non-empty iovecs. */
static int split(const char *buf, size_t len, const size_t *cuts, int ncuts,
                 struct iovec *iov)
{
    int n = 0;
    size_t from = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts && cuts[i] < len ? cuts[i] : len;
        if (to > from)
            iov[n++] = (struct iovec){(char *)buf + from, to - from};
        from = to > from ? to : from;
    }
    return n;
}

/* "AU" + "TH PLAIN ...", "MA" + "IL FROM:<...>": the verb split in two. */
static int send_writev_split(struct conn *c, const char *buf, size_t len)
{
    struct iovec iov[2];
    const size_t cuts[] = {2};
    return send_iov(c->fd, iov, split(buf, len, cuts, 1, iov), 0);
}

/* Verb, argument and CRLF in three iovecs. */
static int send_sendmsg(struct conn *c, const char *buf, size_t len)
{
    struct iovec iov[3];
    const char *space = memchr(buf, ' ', len);
    const size_t cuts[] = {space ? (size_t)(space - buf) : len, len >= 2 ? len - 2 : len};
    return send_iov(c->fd, iov, split(buf, len, cuts, 2, iov), 1);
}

static int send_stdio(struct conn *c, const char *buf, size_t len)
{
    if (fprintf(c->fp, "%.*s", (int)len, buf) < 0 || fflush(c->fp) != 0)
        return -1;
    return 0;
}

static int send_ssl(struct conn *c, const char *buf, size_t len)
{
    if (len == 0)
        return 0;
    size_t done = 0;
    if (SSL_write_ex(c->ssl, buf, len, &done) != 1 || done != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static ssize_t fill_read(struct conn *c)
{
    ssize_t n = read(c->fd, c->in + c->len, sizeof c->in - c->len);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

/* One line per fgets, as stdio mailers read replies. */
static ssize_t fill_fgets(struct conn *c)
{
    if (!fgets(c->in + c->len, (int)(sizeof c->in - c->len), c->fp))
        return ferror(c->fp) ? -1 : 0;
    size_t n = strlen(c->in + c->len);
    c->len += n;
    return (ssize_t)n;
}

static ssize_t fill_ssl(struct conn *c)
{
    size_t n = 0;
    if (SSL_read_ex(c->ssl, c->in + c->len, sizeof c->in - c->len, &n) != 1)
        return SSL_get_error(c->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : (errno = EIO, -1);
    c->len += n;
    return (ssize_t)n;
}

static const struct io io_write = {send_write, fill_read, 0};
static const struct io io_bytes = {send_bytes, fill_read, 0};
static const struct io io_writev = {send_writev_split, fill_read, 0};
static const struct io io_sendmsg = {send_sendmsg, fill_read, 0};
static const struct io io_stdio = {send_stdio, fill_fgets, STDIO_LATE};
static const struct io io_stdio_early = {send_stdio, fill_fgets, STDIO_EARLY};
static const struct io io_ssl = {send_ssl, fill_ssl, 0};

/* One line (CR LF stripped) into line; 0, or an exit code with why set. */
static int read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->in, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->in) + 1;
            size_t keep = n - 1 < size - 1 ? n - 1 : size - 1;
            memcpy(line, c->in, keep);
            line[keep] = 0;
            line[strcspn(line, "\r")] = 0;
            memmove(c->in, c->in + n, c->len - n);
            c->len -= n;
            return 0;
        }
        if (c->len + 1 >= sizeof c->in)
            return say(c, EXIT_ERROR, "reply line too long");
        ssize_t r = c->io->fill(c);
        if (r == 0)
            return say(c, EXIT_ERROR, "connection closed by the server");
        if (r < 0)
            return say(c, EXIT_ERROR, "read: %s", strerror(errno));
    }
}

/* A whole (multi-line) reply: its code in *code; 0 or an exit code. */
static int read_reply(struct conn *c, int *code)
{
    char line[1024];
    for (int i = 0; i < MAX_REPLY_LINES; i++) {
        int r = read_line(c, line, sizeof line);
        if (r)
            return r;
        if (strlen(line) < 3 || strspn(line, "0123456789") < 3)
            return say(c, EXIT_ERROR, "not an SMTP reply: %.40s", line);
        if (line[3] != '-') {
            *code = atoi(line);
            return 0;
        }
    }
    return say(c, EXIT_ERROR, "reply longer than %d lines", MAX_REPLY_LINES);
}

/* Send a step's line and check the reply code; 0 or an exit code. */
static int step(struct conn *c, enum step s)
{
    const char *line = steps[s].line;
    if (line && c->io->send(c, line, strlen(line)) != 0)
        return send_failed(c, line);
    int code = 0, r = read_reply(c, &code);
    if (r)
        return r;
    if (code != steps[s].code)
        return say(c, EXIT_ERROR, "%.4s: reply %d, wanted %d", line ? line : "greeting",
                   code, steps[s].code);
    return 0;
}

static int run_steps(struct conn *c, enum step first, enum step last)
{
    for (enum step s = first; s <= last; s++) {
        int r = (s == AUTH && skip_auth) ? 0 : step(c, s);
        if (r)
            return r;
    }
    return say(c, EXIT_DONE, "dialogue completed");
}

/* ------------------------------------------------------------------------ */
/* TCP                                                                      */

struct args {
    const char *style, *host, *port, *arg;
};

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = TIMEOUT_IO};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Connect to HOST:PORT, every address getaddrinfo gives in turn. With early,
 * each socket is fdopen()ed before connect() and the stream returned there.
 * The descriptor, or -1 with why set. */
static int tcp_connect(const struct args *a, FILE **early, char *why)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int r = getaddrinfo(a->host, a->port, &hints, &res);
    if (r != 0) {
        snprintf(why, WHY_LEN, "cannot resolve %s: %s", a->host, gai_strerror(r));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        FILE *fp = early ? fdopen(fd, "r+") : NULL;
        set_timeouts(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            if (early)
                *early = fp;
            break;
        }
        err = errno;
        fp ? fclose(fp) : close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, WHY_LEN, "cannot connect to %s:%s: %s", a->host, a->port,
                 strerror(err));
    return fd;
}

/* A connection used through io; 0 or an exit code with why set. */
static int conn_open(struct conn *c, const struct args *a, const struct io *io)
{
    memset(c, 0, sizeof *c);
    c->io = io;
    c->fd = tcp_connect(a, io->stdio == STDIO_EARLY ? &c->fp : NULL, c->why);
    if (c->fd < 0)
        return EXIT_ERROR;
    if (io->stdio == STDIO_LATE && !(c->fp = fdopen(c->fd, "r+")))
        return say(c, EXIT_ERROR, "fdopen: %s", strerror(errno));
    /* Programs poll their stream's descriptor: fileno must still name the socket. */
    if (c->fp && fileno(c->fp) != c->fd)
        return say(c, EXIT_ERROR, "fileno of the stream is %d, not %d", fileno(c->fp), c->fd);
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fp)
        fclose(c->fp);
    else if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* ------------------------------------------------------------------------ */
/* Styles. Each returns the exit code; its result line is in c->why.        */

/* byte_at_a_time, writev_split, sendmsg, fdopen_fprintf, fdopen_early. */
static int style_dialogue(const struct args *a, const struct io *io, struct conn *c)
{
    int r = conn_open(c, a, io);
    return r ? r : run_steps(c, GREETING, QUIT);
}

static int style_pipelined(const struct args *a, const struct io *io, struct conn *c)
{
    char both[sizeof auth_line + 16];
    int r = conn_open(c, a, io);
    if (r || (r = run_steps(c, GREETING, EHLO)))
        return r;
    snprintf(both, sizeof both, "%s%s", steps[STARTTLS].line, auth_line);
    if (c->io->send(c, both, strlen(both)) != 0)
        return send_failed(c, both);
    int code = 0;
    if ((r = read_reply(c, &code)))
        return r;
    return say(c, EXIT_DONE, "pipelined write accepted, STARTTLS answered %d", code);
}

static int style_implicit(const struct args *a, const struct io *io, struct conn *c)
{
    static const char ehlo[] = "EHLO x\r\n";
    int r = conn_open(c, a, io);
    if (r)
        return r;
    if (c->io->send(c, ehlo, sizeof ehlo - 1) != 0)
        return send_failed(c, ehlo);
    /* Wait for the server to react (an alert, or it closes), so that it
     * has read the plaintext before we go. */
    ssize_t n = c->io->fill(c);
    return say(c, EXIT_DONE, "plaintext sent; then: %s",
               n > 0 ? "the server answered" : n == 0 ? "the server closed" : strerror(errno));
}

/* The child goes on with the dialogue and prints the result line; the
 * parent passes its exit code on, saying nothing. */
static int style_fork(const struct args *a, const struct io *io, struct conn *c)
{
    int r = conn_open(c, a, io);
    if (r || (r = run_steps(c, GREETING, EHLO)))
        return r;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return say(c, EXIT_ERROR, "fork: %s", strerror(errno));
    if (pid == 0) {
        r = run_steps(c, AUTH, QUIT);
        char said[WHY_LEN];
        snprintf(said, sizeof said, "%s", c->why);
        return say(c, r, "child: %s", said);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return say(c, EXIT_ERROR, "the child did not exit normally");
    c->why[0] = 0;
    return WEXITSTATUS(status);
}

static int style_starttls(const struct args *a, const struct io *io, struct conn *c)
{
    int r = conn_open(c, a, io);
    if (r || (r = run_steps(c, GREETING, EHLO)) || (r = step(c, STARTTLS)))
        return r;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return say(c, EXIT_TLS, "SSL_CTX_new failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* careless; the shim verifies */
    c->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return say(c, EXIT_TLS, "SSL_new/SSL_set_fd failed");
    SSL_set_tlsext_host_name(c->ssl, a->host);
    if (SSL_connect(c->ssl) != 1) {
        char err[WHY_LEN];
        ERR_error_string_n(ERR_peek_error(), err, sizeof err);
        ERR_print_errors_fp(stderr);
        return say(c, EXIT_TLS, "TLS handshake failed: %s", err);
    }
    c->io = &io_ssl;
    if ((r = run_steps(c, EHLO, QUIT)))
        return r;
    return say(c, EXIT_DONE, "delivered over %s", SSL_get_version(c->ssl));
}

/* ---- fd_reuse: an SMTP socket's number ends up on a regular file -------- */

static int open_file(const char *path, char *why)
{
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f < 0)
        snprintf(why, WHY_LEN, "open %s: %s", path, strerror(errno));
    return f;
}

/* The file on the number the socket s had, or -1. */
static int reopen_on(int s, const char *path, char *why)
{
    int f = open_file(path, why);
    if (f >= 0 && f != s) {
        snprintf(why, WHY_LEN, "%s got descriptor %d, not the socket's %d", path, f, s);
        close(f);
        return -1;
    }
    return f;
}

static int via_close(const struct args *a, const char *path, char *why)
{
    int s = tcp_connect(a, NULL, why);
    if (s < 0)
        return -1;
    close(s);
    return reopen_on(s, path, why);
}

static int via_dup2(const struct args *a, const char *path, char *why)
{
    int s = tcp_connect(a, NULL, why);
    int f = s < 0 ? -1 : open_file(path, why);
    if (f < 0 || dup2(f, s) != s) {
        if (f >= 0)
            snprintf(why, WHY_LEN, "dup2: %s", strerror(errno));
        return -1;
    }
    close(f);
    return s;
}

/* fdopen after connect: smtpguard hands out its own stream. */
static int via_fclose(const struct args *a, const char *path, char *why)
{
    int s = tcp_connect(a, NULL, why);
    FILE *fp = s < 0 ? NULL : fdopen(s, "r+");
    if (!fp)
        return -1;
    fclose(fp);
    return reopen_on(s, path, why);
}

/* fdopen before connect: glibc's own stream, whose fclose closes the socket
 * without the interposed close(). */
static int via_fclose_early(const struct args *a, const char *path, char *why)
{
    FILE *fp = NULL;
    int s = tcp_connect(a, &fp, why);
    if (s < 0)
        return -1;
    fclose(fp);
    return reopen_on(s, path, why);
}

static const struct {
    const char *name;
    int (*open)(const struct args *a, const char *path, char *why);
} reuses[] = {
    {"close", via_close},
    {"dup2", via_dup2},
    {"fclose", via_fclose},
    {"fclose_early", via_fclose_early},
};

/* Is the file exactly fake_smtp? */
static int file_holds_payload(const char *path)
{
    char buf[sizeof fake_smtp + 8];
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    return n == sizeof fake_smtp - 1 && memcmp(buf, fake_smtp, n) == 0;
}

static int reuse_one(const struct args *a, int i, struct conn *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s", a->arg, reuses[i].name);
    int f = reuses[i].open(a, path, c->why);
    if (f < 0)
        return EXIT_ERROR;
    int r = write_all(f, fake_smtp, sizeof fake_smtp - 1);
    close(f);
    if (r != 0)
        return send_failed(c, fake_smtp);
    if (!file_holds_payload(path))
        return say(c, EXIT_ERROR, "%s does not hold exactly what was written", path);
    return 0;
}

static int style_fd_reuse(const struct args *a, const struct io *io, struct conn *c)
{
    (void)io;
    memset(c, 0, sizeof *c);
    if (!a->arg)
        return say(c, EXIT_ERROR, "fd_reuse needs a path prefix");
    for (size_t i = 0; i < sizeof reuses / sizeof reuses[0]; i++) {
        int r = reuse_one(a, (int)i, c);
        if (r)
            return say(c, r, "%s: %.150s", reuses[i].name, c->why);
    }
    return say(c, EXIT_DONE, "close, dup2, fclose, fclose_early: files hold what was written");
}

/* ---- threads: SMTP and non-SMTP descriptors side by side ---------------- */

struct worker {
    const struct args *a;
    pthread_barrier_t *start;
    int smtp;     /* exit code of the AUTH attempt: 0 it went through, 3 refused */
    int local_ok; /* local round trips that came back unchanged */
    struct conn c;
};

enum { LOCAL_TRIPS = 3 };

/* Write fake_smtp line by line into w, read it all back from r. */
static int round_trip(int w, int r)
{
    char back[sizeof fake_smtp];
    const char *second = strchr(fake_smtp, '\n') + 1;
    if (write_all(w, fake_smtp, (size_t)(second - fake_smtp)) != 0 ||
        write_all(w, second, strlen(second)) != 0)
        return 0;
    size_t got = 0;
    while (got < sizeof fake_smtp - 1) {
        ssize_t n = read(r, back + got, sizeof fake_smtp - 1 - got);
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return memcmp(back, fake_smtp, got) == 0;
}

/* A socketpair or a pipe, round-tripped and closed: 1 when unchanged. */
static int local_trip(int use_pipe)
{
    int fds[2];
    if ((use_pipe ? pipe(fds) : socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) != 0)
        return 0;
    if (!use_pipe)
        set_timeouts(fds[1]);
    int ok = round_trip(fds[use_pipe ? 1 : 0], fds[use_pipe ? 0 : 1]);
    close(fds[0]);
    close(fds[1]);
    return ok;
}

static int smtp_attempt(struct worker *w)
{
    struct conn *c = &w->c;
    int r = conn_open(c, w->a, &io_write);
    if (!r && !(r = run_steps(c, GREETING, EHLO)) && !(r = step(c, AUTH)))
        step(c, QUIT); /* it went through: leave politely */
    conn_close(c);
    return r;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    int sock = local_trip(0); /* while other threads connect */
    w->smtp = smtp_attempt(w);
    /* after the SMTP socket closed: likely on a number an SMTP socket had */
    w->local_ok = sock + local_trip(1) + local_trip(0);
    return NULL;
}

static int thread_count(const char *arg)
{
    int n = arg ? atoi(arg) : 16;
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

static int style_threads(const struct args *a, const struct io *io, struct conn *c)
{
    (void)io;
    static struct worker w[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    pthread_barrier_t start;
    int n = thread_count(a->arg), started = 0, refused = 0, through = 0, local = 0;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (; started < n; started++) {
        w[started] = (struct worker){.a = a, .start = &start, .smtp = EXIT_ERROR};
        if (pthread_create(&t[started], NULL, worker_main, &w[started]) != 0)
            break;
    }
    if (started < n) {
        fprintf(stderr, "plainguard: pthread_create failed at %d\n", started);
        _exit(EXIT_ERROR); /* the others wait at the barrier forever */
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        refused += w[i].smtp == EXIT_REFUSED;
        through += w[i].smtp == EXIT_DONE;
        local += w[i].local_ok;
        if (w[i].smtp != EXIT_REFUSED)
            fprintf(stderr, "plainguard: thread %d: %s\n", i, w[i].c.why);
    }
    int ok = refused == n && local == LOCAL_TRIPS * n;
    return say(c, ok ? EXIT_DONE : EXIT_ERROR,
               "%d threads: smtp refused %d, smtp through %d, smtp errors %d; "
               "local round trips %d/%d",
               n, refused, through, n - refused - through, local, LOCAL_TRIPS * n);
}

/* ------------------------------------------------------------------------ */

static const struct style {
    const char *name;
    int (*run)(const struct args *a, const struct io *io, struct conn *c);
    const struct io *io;
} styles[] = {
    {"byte_at_a_time", style_dialogue, &io_bytes},
    {"writev_split", style_dialogue, &io_writev},
    {"sendmsg", style_dialogue, &io_sendmsg},
    {"fdopen_fprintf", style_dialogue, &io_stdio},
    {"fdopen_early", style_dialogue, &io_stdio_early},
    {"pipelined_starttls", style_pipelined, &io_write},
    {"implicit_plain", style_implicit, &io_write},
    {"fork_child", style_fork, &io_write},
    {"fd_reuse", style_fd_reuse, NULL},
    {"threads", style_threads, NULL},
    {"starttls_then_tls", style_starttls, &io_write},
};

static void on_alarm(int sig)
{
    static const char msg[] = "plainguard: timeout, giving up\n";
    (void)sig;
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    _exit(EXIT_ERROR);
}

static int usage(void)
{
    fputs("usage: plainguard STYLE HOST PORT [ARG]\nstyles:", stderr);
    for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++)
        fprintf(stderr, " %s", styles[i].name);
    fputc('\n', stderr);
    return EXIT_ERROR;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5)
        return usage();
    const struct style *st = NULL;
    for (size_t i = 0; i < sizeof styles / sizeof styles[0] && !st; i++)
        if (strcmp(argv[1], styles[i].name) == 0)
            st = &styles[i];
    if (!st)
        return usage();
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN); /* a write on a shut socket: EPIPE, not death */
    alarm(TIMEOUT_TOTAL);
    make_auth_line();
    struct args a = {argv[1], argv[2], argv[3], argc > 4 ? argv[4] : NULL};
    skip_auth = a.arg && strcmp(a.arg, "noauth") == 0;
    static struct conn c;
    int r = st->run(&a, st->io, &c);
    if (c.why[0])
        printf("plainguard %s: %s\n", a.style, c.why);
    return r;
}
