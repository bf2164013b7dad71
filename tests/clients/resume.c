/* A careless client that resumes its TLS session: two implicit-TLS SMTP sessions to
 * HOST PORT in one process, the second offering the first one's session (SSL_set_session,
 * so a session ticket or id), no verification. Each does greeting, EHLO, AUTH PLAIN with
 * the test credentials, QUIT, and prints "1 ok|fail reused=0|1", "2 ...". Exits 0 when
 * both authenticated. "resume HOST PORT save FILE" does one session and writes it to FILE
 * (PEM); "resume HOST PORT load FILE" does one session offering the one in FILE. Built statically (tests/clients/static.mk: resume_static) its TLS
 * is judged on the wire (tests/test_wire.py). */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* The last line of the reply: its code, or -1. */
static int reply(SSL *s)
{
    char buf[4096];
    int n = 0, r;
    while (n < (int)sizeof buf - 1 && (r = SSL_read(s, buf + n, 1)) == 1) {
        n++;
        if (buf[n - 1] == '\n') {
            buf[n] = 0;
            char *line = strrchr(buf, '\n');
            while (line > buf && line[-1] != '\n')
                line--;
            if (strlen(line) >= 4 && line[3] == ' ')
                return atoi(line);
        }
    }
    return -1;
}

static int command(SSL *s, const char *line)
{
    return SSL_write(s, line, (int)strlen(line)) == (int)strlen(line) ? reply(s) : -1;
}

static int session(SSL_CTX *ctx, const char *host, const char *port, SSL_SESSION **keep)
{
    int fd = dial(host, port), ok = 0;
    SSL *s = fd >= 0 ? SSL_new(ctx) : NULL;
    if (!s)
        return 0;
    SSL_set_fd(s, fd);
    SSL_set_tlsext_host_name(s, host);
    if (*keep)
        SSL_set_session(s, *keep);
    if (SSL_connect(s) == 1 && reply(s) == 220 && command(s, "EHLO resume.example\r\n") == 250 &&
        command(s, "AUTH PLAIN AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ==\r\n") == 235) {
        ok = 1;
        command(s, "QUIT\r\n");
    }
    printf("%s reused=%d\n", ok ? "ok" : "fail", SSL_session_reused(s));
    if (!*keep)
        *keep = SSL_get1_session(s);
    SSL_shutdown(s); /* an unclean end would make the session not resumable */
    SSL_free(s);
    close(fd);
    return ok;
}

/* One session saved to, or offered from, a file. */
static int with_file(SSL_CTX *ctx, const char *host, const char *port, const char *how,
                     const char *path)
{
    int save = !strcmp(how, "save");
    FILE *f = fopen(path, save ? "w" : "r");
    SSL_SESSION *keep = !f || save ? NULL : PEM_read_SSL_SESSION(f, NULL, NULL, NULL);
    if (!f || (!save && !keep))
        return 1;
    int ok = session(ctx, host, port, &keep);
    if (save && keep)
        PEM_write_SSL_SESSION(f, keep);
    fclose(f);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: resume HOST PORT [save|load FILE]\n");
        return 1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    SSL_SESSION *keep = NULL;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 5)
        return with_file(ctx, argv[1], argv[2], argv[3], argv[4]);
    printf("1 ");
    int first = session(ctx, argv[1], argv[2], &keep);
    printf("2 ");
    int second = session(ctx, argv[1], argv[2], &keep);
    return first && second ? 0 : 1;
}
