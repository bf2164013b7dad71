/* Line I/O over a socket, in plaintext or through an SSL object once TLS is up:
 * shared by the stress load generator and its servers. Socket timeouts (set by
 * the caller) bound every call. */
#ifndef STRESS_LINEIO_H
#define STRESS_LINEIO_H

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

struct lio {
    int fd;
    SSL *ssl;        /* NULL in plaintext */
    char buf[4096];
    size_t len, pos;
};

static inline void lio_init(struct lio *l, int fd)
{
    memset(l, 0, sizeof *l);
    l->fd = fd;
}

static inline long lio_raw_read(struct lio *l, void *p, size_t n)
{
    if (l->ssl)
        return SSL_read(l->ssl, p, (int)n);
    ssize_t r;
    while ((r = read(l->fd, p, n)) < 0 && errno == EINTR)
        ;
    return r;
}

/* Writes all of p; 0 or -1. */
static inline int lio_write(struct lio *l, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        long r = l->ssl ? SSL_write(l->ssl, c, (int)n) : write(l->fd, c, n);
        if (r <= 0) {
            if (!l->ssl && r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static inline int lio_puts(struct lio *l, const char *s)
{
    return lio_write(l, s, strlen(s));
}

/* One line without its CRLF into out (NUL-terminated); its length, or -1 on
 * end of stream, error or a line longer than cap - 1. */
static inline long lio_line(struct lio *l, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        if (l->pos == l->len) {
            long r = lio_raw_read(l, l->buf, sizeof l->buf);
            if (r <= 0)
                return -1;
            l->len = (size_t)r;
            l->pos = 0;
        }
        char c = l->buf[l->pos++];
        if (c == '\n')
            break;
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    if (n && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return (long)n;
}

/* TLS from now on; what was read ahead in plaintext is dropped (RFC 3207). */
static inline void lio_tls(struct lio *l, SSL *ssl)
{
    l->ssl = ssl;
    l->len = l->pos = 0;
}

#endif
