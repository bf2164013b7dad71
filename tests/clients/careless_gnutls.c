/* careless_gnutls: an SMTP client that uses the GnuTLS API carelessly.
 *
 *   careless_gnutls STYLE HOST PORT starttls|implicit [MESSAGE_FILE]
 *
 * One SMTP session: greeting, EHLO, STARTTLS (starttls mode), TLS handshake,
 * EHLO, AUTH PLAIN with the test credentials, MAIL, RCPT, DATA of
 * MESSAGE_FILE (or the built-in test message), QUIT. Exit 0 only when the
 * server accepted the message; 2 on a TLS failure (gnutls_strerror printed);
 * 1 on anything else. The whole run is bounded by alarm(30).
 *
 * STYLE decides how the credentials and the session are set up; the dialogue
 * is the same for all of them:
 *   accept_all      a verify function that accepts every certificate, SNI
 *   tls10_priority  TLS 1.0/1.1 and RSA key exchange with CBC ciphers enabled
 *                   in the priority string, no verification, SNI
 *   no_verify       credentials without any trust, no verification call, SNI
 *   no_sni          as no_verify, without gnutls_server_name_set
 *   nonblocking     as no_verify on an O_NONBLOCK socket: the handshake and
 *                   the record I/O loop on GNUTLS_E_AGAIN with poll
 *   callbacks       as no_verify, the transport a pointer to the program's own
 *                   transport object with push/pull functions (no descriptor
 *                   given to GnuTLS); the object lives in an arena at a fixed
 *                   address whose low 32 bits are a positive number, as they are
 *                   for half of all heap addresses (fixed: the same every run)
 *   good            a correct client: trusts the CA file named by env
 *                   SG_CA_FILE, gnutls_session_set_verify_cert(HOST), SNI
 *   decoy           trusts the CA file named by env SG_DECOY and verifies
 *                   the server in its verify function, then ignores the
 *                   result: GnuTLS parses and frees copies of the server's
 *                   certificate and of that CA during the handshake, which
 *                   must not be taken for the ones the server presented or
 *                   for the policy's anchor (a CA of the same name)
 *
 * Env SG_PRIORITY=STRING: the styles that use GnuTLS's default priority set
 * STRING instead, as SG_PRIORITY_API says (direct, cache, shared or append; see
 * set_knob_priority). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <gnutls/gnutls.h>

#define USER "sguser"
#define PASSWORD "Sg-S3cret-Pa55"
#define FROM "sender@example.com"
#define TO "rcpt@example.com"
#define EHLO_NAME "careless-gnutls.example"
#define RUN_SECONDS 30
#define POLL_MS 20000
#define REPLY_LINE_MAX 1024
#define MESSAGE_MAX (1 << 24)

/* tests/lib/constants.py MESSAGE, byte for byte. */
static const char test_message[] =
    "From: <" FROM ">\r\nTo: <" TO ">\r\nSubject: smtpguard test\r\n"
    "Message-ID: <smtpguard-test@example.com>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Hello from the smtpguard tests.\r\n"
    ".a line that starts with a dot\r\n"
    "..and one that starts with two\r\n"
    "Non-ASCII: Gr\xc3\xbc\xc3\x9f" "e, na\xc3\xaf" "ve caf\xc3\xa9, "
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n"
    "The end.\r\n";

/* After the server took the message, nothing (QUIT) turns the run into a failure. */
static int accepted;

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("careless_gnutls: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(accepted ? 0 : code);
}

/* A GnuTLS call failed: say what GnuTLS (or whoever answers gnutls_strerror) says. */
static void tls_die(const char *what, int r) __attribute__((noreturn));

static void tls_die(const char *what, int r)
{
    die(2, "TLS failure: %s: %s (%d)", what, gnutls_strerror(r), r);
}

static void on_alarm(int sig)
{
    static const char msg[] = "careless_gnutls: timeout\n";
    (void)sig;
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

/* ------------------------------------------------------------------------ */
/* Styles                                                                   */

struct style {
    const char *name;
    void (*credentials)(gnutls_certificate_credentials_t cred);
    void (*session)(gnutls_session_t s, const char *host);
    int nonblocking;
    int callbacks; /* the transport is a struct transport *, not the descriptor */
};

static int accept_everything(gnutls_session_t s)
{
    (void)s;
    return 0; /* 0: go on with the handshake */
}

static int verify_and_ignore(gnutls_session_t s)
{
    unsigned status = 0;
    gnutls_typed_vdata_st host = {GNUTLS_DT_DNS_HOSTNAME, (unsigned char *)"localhost", 0};
    gnutls_certificate_verify_peers(s, &host, 1, &status); /* its verdict, ignored */
    return accept_everything(s);
}

static void cred_decoy(gnutls_certificate_credentials_t cred)
{
    const char *ca = getenv("SG_DECOY");
    if (!ca || gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM) <= 0)
        die(2, "TLS failure: no CA certificate loaded from SG_DECOY");
    gnutls_certificate_set_verify_function(cred, verify_and_ignore);
}

static void cred_none(gnutls_certificate_credentials_t cred)
{
    (void)cred;
}

static void cred_accept_all(gnutls_certificate_credentials_t cred)
{
    int r = gnutls_certificate_set_x509_system_trust(cred);
    if (r < 0)
        tls_die("gnutls_certificate_set_x509_system_trust", r);
    gnutls_certificate_set_verify_function(cred, accept_everything);
}

static void cred_good(gnutls_certificate_credentials_t cred)
{
    const char *ca = getenv("SG_CA_FILE");
    int r = ca && *ca ? gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM)
                      : gnutls_certificate_set_x509_system_trust(cred);
    if (r <= 0)
        die(2, "TLS failure: no CA certificate loaded from %s (%d)", ca ? ca : "system", r);
}

static int is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* SG_PRIORITY (tests/test_gnutls_priority.py): the program's own priority
 * string where a style uses the default, set the way SG_PRIORITY_API says:
 * direct (gnutls_priority_set_direct, the default), cache (gnutls_priority_init,
 * gnutls_priority_set, gnutls_priority_deinit), shared (a cache kept and used
 * by an earlier session, freed, first) or append
 * (gnutls_set_default_priority_append: the string is appended to the default). */
static int set_knob_priority(gnutls_session_t s, const char *priority, const char **where)
{
    const char *api = getenv("SG_PRIORITY_API");
    if (api && strcmp(api, "append") == 0)
        return gnutls_set_default_priority_append(s, priority, where, 0);
    if (api && strcmp(api, "shared") == 0) {
        /* A server's way: one cache for every session, kept; an earlier
         * session that used it is freed first (GnuTLS drops its reference). */
        static gnutls_priority_t shared;
        gnutls_session_t earlier;
        int r = gnutls_priority_init(&shared, priority, where);
        if (r == 0 && (r = gnutls_init(&earlier, GNUTLS_CLIENT)) == 0) {
            r = gnutls_priority_set(earlier, shared);
            gnutls_deinit(earlier);
        }
        return r < 0 ? r : gnutls_priority_set(s, shared);
    }
    if (api && strcmp(api, "cache") == 0) {
        gnutls_priority_t cache;
        int r = gnutls_priority_init(&cache, priority, where);
        if (r < 0)
            return r;
        r = gnutls_priority_set(s, cache);
        gnutls_priority_deinit(cache); /* the session keeps its own reference */
        return r;
    }
    return gnutls_priority_set_direct(s, priority, where);
}

static void set_priority(gnutls_session_t s, const char *priority)
{
    const char *where = NULL;
    int knob = !priority && getenv("SG_PRIORITY");
    if (knob)
        priority = getenv("SG_PRIORITY");
    int r = knob ? set_knob_priority(s, priority, &where)
            : priority ? gnutls_priority_set_direct(s, priority, &where)
                       : gnutls_set_default_priority(s);
    if (r < 0)
        die(2, "TLS failure: priority \"%s\" at \"%s\": %s", priority ? priority : "default",
            where ? where : "", gnutls_strerror(r));
}

/* SG_SNI (tests/test_identity.py): the name to set instead of HOST, which is
 * then only where to connect (an address, say). */
static void set_sni(gnutls_session_t s, const char *host)
{
    if (getenv("SG_SNI"))
        host = getenv("SG_SNI");
    if (is_ip(host)) /* RFC 6066: no address literals in SNI */
        return;
    int r = gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, strlen(host));
    if (r < 0)
        tls_die("gnutls_server_name_set", r);
}

static void sess_default(gnutls_session_t s, const char *host)
{
    set_priority(s, NULL);
    set_sni(s, host);
}

static void sess_no_sni(gnutls_session_t s, const char *host)
{
    (void)host;
    set_priority(s, NULL);
}

static void sess_tls10(gnutls_session_t s, const char *host)
{
    set_priority(s, "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0:+RSA:+AES-128-CBC:+AES-256-CBC:+SHA1:"
                    "%COMPAT:%VERIFY_ALLOW_SIGN_WITH_SHA1");
    set_sni(s, host);
}

static void sess_good(gnutls_session_t s, const char *host)
{
    sess_default(s, host);
    gnutls_session_set_verify_cert(s, host, 0);
}

static const struct style styles[] = {
    {.name = "accept_all", .credentials = cred_accept_all, .session = sess_default},
    {.name = "tls10_priority", .credentials = cred_none, .session = sess_tls10},
    {.name = "no_verify", .credentials = cred_none, .session = sess_default},
    {.name = "no_sni", .credentials = cred_none, .session = sess_no_sni},
    {.name = "nonblocking", .credentials = cred_none, .session = sess_default, .nonblocking = 1},
    {.name = "callbacks", .credentials = cred_none, .session = sess_default, .callbacks = 1},
    {.name = "good", .credentials = cred_good, .session = sess_good},
    {.name = "decoy", .credentials = cred_decoy, .session = sess_default},
};

/* ------------------------------------------------------------------------ */
/* The connection: plaintext until tls_start, then GnuTLS records           */

struct conn {
    const char *host, *port;
    const struct style *style;
    int fd;
    gnutls_certificate_credentials_t cred;
    gnutls_session_t tls; /* NULL while plaintext */
    char in[4096];
    size_t have, used;    /* bytes in `in`, bytes of them consumed */
};

static void await(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    while ((r = poll(&p, 1, POLL_MS)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        die(1, "timeout waiting for the server");
    if (r < 0)
        die(1, "poll: %s", strerror(errno));
}

/* Waits for what an interrupted GnuTLS call needs (non-blocking sockets). */
static void await_tls(struct conn *c)
{
    if (c->style->nonblocking)
        await(c->fd, gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN);
}

static int again(int r)
{
    return r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
}

static size_t conn_read(struct conn *c, char *buf, size_t len)
{
    for (;;) {
        if (c->tls) {
            ssize_t n = gnutls_record_recv(c->tls, buf, len);
            if (n >= 0)
                return (size_t)n;
            if (!again((int)n))
                tls_die("gnutls_record_recv", (int)n);
            await_tls(c);
            continue;
        }
        await(c->fd, POLLIN);
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return (size_t)n;
        if (errno != EINTR && errno != EAGAIN)
            die(1, "recv: %s", strerror(errno));
    }
}

static void conn_write(struct conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (c->tls) {
            n = gnutls_record_send(c->tls, buf, len);
            if (n < 0 && !again((int)n))
                tls_die("gnutls_record_send", (int)n);
            if (n < 0) {
                await_tls(c);
                continue;
            }
        } else {
            await(c->fd, POLLOUT);
            n = send(c->fd, buf, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                die(1, "send: %s", strerror(errno));
            if (n < 0)
                continue;
        }
        buf += n;
        len -= (size_t)n;
    }
}

#include "addr_knobs.h"

static int dial(const struct addrinfo *ai, int nonblocking)
{
    struct sockaddr_storage ss;
    socklen_t alen;
    int family;
    const struct sockaddr *addr = knob_addr(ai, &ss, &alen, &family);
    int fd = socket(family, ai->ai_socktype | SOCK_CLOEXEC |
                    (nonblocking ? SOCK_NONBLOCK : 0), ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, addr, alen) == 0)
        return fd;
    if (errno == EINPROGRESS) {
        int err = 0;
        socklen_t len = sizeof err;
        await(fd, POLLOUT);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
            return fd;
        errno = err;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static void conn_open(struct conn *c)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int r = getaddrinfo(c->host, c->port, &hints, &res);
    if (r)
        die(1, "%s: %s", c->host, gai_strerror(r));
    also_resolve(c->port);
    int err = 0;
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next)
        if ((c->fd = dial(ai, c->style->nonblocking)) < 0)
            err = errno;
    freeaddrinfo(res);
    if (c->fd < 0)
        die(1, "connect to %s port %s: %s", c->host, c->port, strerror(err));
}

/* The callbacks style: GnuTLS sees only the program's transport object. */
struct transport {
    int fd;
    gnutls_session_t tls;
};

/* Low 32 bits 0x1000: what gnutls_transport_get_int() makes of the pointer is a
 * positive number, descriptor 4096, that is not open. */
#define ARENA ((void *)0x6a0000001000UL)

static struct transport *new_transport(void)
{
    size_t size = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(ARENA, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        die(1, "mmap of the transport arena: %s", strerror(errno));
    return p;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    struct transport *t = p;
    ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0)
        gnutls_transport_set_errno(t->tls, errno);
    return n;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    struct transport *t = p;
    ssize_t n = recv(t->fd, buf, len, 0);
    if (n < 0)
        gnutls_transport_set_errno(t->tls, errno);
    return n;
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    struct transport *t = p;
    struct pollfd fd = {.fd = t->fd, .events = POLLIN};
    return poll(&fd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static void use_callbacks(struct conn *c)
{
    struct transport *t = new_transport();
    t->fd = c->fd;
    t->tls = c->tls;
    gnutls_transport_set_ptr(c->tls, t);
    gnutls_transport_set_push_function(c->tls, push);
    gnutls_transport_set_pull_function(c->tls, pull);
    gnutls_transport_set_pull_timeout_function(c->tls, pull_timeout);
}

static void tls_start(struct conn *c)
{
    int r = gnutls_init(&c->tls, GNUTLS_CLIENT | (c->style->nonblocking ? GNUTLS_NONBLOCK : 0));
    if (r < 0)
        tls_die("gnutls_init", r);
    r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
    if (r < 0)
        tls_die("gnutls_credentials_set", r);
    c->style->session(c->tls, c->host);
    if (c->style->callbacks)
        use_callbacks(c);
    else
        gnutls_transport_set_int(c->tls, c->fd);
    gnutls_handshake_set_timeout(c->tls, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
    c->have = c->used = 0; /* nothing read in plaintext counts after the upgrade */
    while ((r = gnutls_handshake(c->tls)) < 0) {
        if (gnutls_error_is_fatal(r))
            tls_die("gnutls_handshake", r);
        await_tls(c);
    }
    char *desc = gnutls_session_get_desc(c->tls);
    fprintf(stderr, "careless_gnutls: TLS %s\n", desc ? desc : "?");
    gnutls_free(desc);
}

static void conn_close(struct conn *c)
{
    if (c->tls) {
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
        gnutls_deinit(c->tls);
    }
    close(c->fd);
}

/* ------------------------------------------------------------------------ */
/* SMTP                                                                     */

static int next_byte(struct conn *c)
{
    if (c->used == c->have) {
        c->have = conn_read(c, c->in, sizeof c->in);
        c->used = 0;
        if (c->have == 0)
            die(1, "the server closed the connection");
    }
    return (unsigned char)c->in[c->used++];
}

/* One reply, all its lines; returns the code of the last. */
static int reply(struct conn *c)
{
    char line[REPLY_LINE_MAX];
    for (int lines = 0; lines < 100; lines++) {
        size_t n = 0;
        int ch;
        while ((ch = next_byte(c)) != '\n')
            if (n < sizeof line - 1)
                line[n++] = (char)ch;
        line[n && line[n - 1] == '\r' ? n - 1 : n] = 0;
        fprintf(stderr, "S: %s\n", line);
        if (strlen(line) < 3 || !strchr("2345", line[0]))
            die(1, "not an SMTP reply: %s", line);
        if (line[3] != '-')
            return atoi(line);
    }
    die(1, "endless reply");
}

static void command(struct conn *c, int want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends one command line and insists on the reply code `want` (its first digit if < 10). */
static void command(struct conn *c, int want, const char *fmt, ...)
{
    char line[REPLY_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof line - 2)
        die(1, "command too long");
    fprintf(stderr, "C: %s\n", strncmp(line, "AUTH", 4) ? line : "AUTH ...");
    memcpy(line + n, "\r\n", 2);
    conn_write(c, line, (size_t)n + 2);
    int code = reply(c);
    if (want < 10 ? code / 100 != want : code != want)
        die(1, "reply %d to %.4s", code, line);
}

/* The message with CRLF line ends, dot-stuffed, then the final dot. */
static void send_body(struct conn *c, const char *msg, size_t len)
{
    char out[4096];
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int line_start = i == 0 || msg[i - 1] == '\n';
        if (o + 3 > sizeof out) {
            conn_write(c, out, o);
            o = 0;
        }
        if (line_start && msg[i] == '.')
            out[o++] = '.';
        if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = msg[i];
    }
    conn_write(c, out, o);
    if (len && msg[len - 1] != '\n')
        conn_write(c, "\r\n", 2);
    fprintf(stderr, "C: <%zu bytes>\n", len);
    command(c, 250, ".");
}

static void smtp_session(struct conn *c, int implicit, const char *msg, size_t len)
{
    conn_open(c);
    if (implicit)
        tls_start(c);
    if (reply(c) != 220)
        die(1, "no 220 greeting");
    command(c, 250, "EHLO %s", EHLO_NAME);
    if (!implicit) {
        command(c, 220, "STARTTLS");
        tls_start(c);
        command(c, 250, "EHLO %s", EHLO_NAME);
    }
    static const char plain[] = "\0" USER "\0" PASSWORD;
    gnutls_datum_t in = {(unsigned char *)plain, sizeof plain - 1}, b64;
    if (gnutls_base64_encode2(&in, &b64) < 0)
        die(1, "base64");
    command(c, 235, "AUTH PLAIN %.*s", (int)b64.size, (char *)b64.data);
    gnutls_free(b64.data);
    command(c, 250, "MAIL FROM:<%s>", FROM);
    command(c, 2, "RCPT TO:<%s>", TO);
    command(c, 354, "DATA");
    send_body(c, msg, len);
    accepted = 1;
    puts("careless_gnutls: delivered");
    fflush(stdout);
    command(c, 2, "QUIT");
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(1, "%s: %s", path, strerror(errno));
    char *buf = malloc(MESSAGE_MAX);
    if (!buf)
        die(1, "out of memory");
    *len = fread(buf, 1, MESSAGE_MAX, f);
    if (ferror(f) || !feof(f))
        die(1, "%s: unreadable or larger than %d bytes", path, MESSAGE_MAX);
    fclose(f);
    return buf;
}

static const struct style *style_named(const char *name)
{
    for (size_t i = 0; i < sizeof styles / sizeof *styles; i++)
        if (!strcmp(name, styles[i].name))
            return &styles[i];
    return NULL;
}

static void usage(void)
{
    fputs("usage: careless_gnutls STYLE HOST PORT starttls|implicit [MESSAGE_FILE]\nstyles:",
          stderr);
    for (size_t i = 0; i < sizeof styles / sizeof *styles; i++)
        fprintf(stderr, " %s", styles[i].name);
    fputc('\n', stderr);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6)
        usage();
    struct conn c = {.host = argv[2], .port = argv[3], .style = style_named(argv[1]), .fd = -1};
    int implicit = !strcmp(argv[4], "implicit");
    if (!c.style || (!implicit && strcmp(argv[4], "starttls")))
        usage();

    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(RUN_SECONDS);

    size_t len = sizeof test_message - 1;
    char *file = argc == 6 ? slurp(argv[5], &len) : NULL;

    int r = gnutls_certificate_allocate_credentials(&c.cred);
    if (r < 0)
        tls_die("gnutls_certificate_allocate_credentials", r);
    c.style->credentials(c.cred);

    smtp_session(&c, implicit, file ? file : test_message, len);

    conn_close(&c);
    gnutls_certificate_free_credentials(c.cred);
    free(file);
    return 0;
}
