/* Buffered SMTP I/O (see smtpio.h). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "smtpio.h"

void sconn_init(struct sconn *c, int fd, int timeout_s)
{
    struct timeval tv = {.tv_sec = timeout_s};
    int one = 1;
    c->fd = fd;
    c->ssl = NULL;
    c->off = c->len = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* A lock-step dialogue: Nagle would hold the second of two small
     * writes (OpenSSL's CCS then Finished) for the peer's delayed ACK. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Refill the empty buffer: bytes read, or <= 0 at end of input or error. */
static long fill(struct sconn *c)
{
    long n;
    int one = 1;
    c->off = c->len = 0;
    /* ACK at once: a client without TCP_NODELAY (the test clients the
     * one-shot rows run) would otherwise wait 40 ms for the delayed ACK of
     * each small write it makes while another is unacknowledged. Linux
     * leaves quick-ACK mode by itself, so it is asked for before each read. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    if (c->ssl)
        n = SSL_read(c->ssl, c->buf, sizeof c->buf);
    else
        do
            n = read(c->fd, c->buf, sizeof c->buf);
        while (n < 0 && errno == EINTR);
    if (n > 0)
        c->len = (size_t)n;
    return n;
}

int sconn_getline(struct sconn *c, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        if (c->off == c->len && fill(c) <= 0)
            return -1;
        char *start = c->buf + c->off;
        char *nl = memchr(start, '\n', c->len - c->off);
        size_t take = nl ? (size_t)(nl - start) + 1 : c->len - c->off;
        if (n + take >= cap)
            return -1;
        memcpy(line + n, start, take);
        n += take;
        c->off += take;
        if (nl)
            break;
    }
    n--; /* the LF */
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = 0;
    return (int)n;
}

int sconn_write(struct sconn *c, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        long w;
        if (c->ssl)
            w = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
        else
            w = write(c->fd, p, n);
        if (w < 0 && !c->ssl && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sconn_printf(struct sconn *c, const char *fmt, ...)
{
    char line[SMTPIO_LINE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    return sconn_write(c, line, (size_t)n);
}

int sconn_reply(struct sconn *c)
{
    char line[SMTPIO_LINE];
    for (int i = 0; i < 100; i++) {
        int n = sconn_getline(c, line, sizeof line);
        if (n < 3)
            return -1;
        if (n == 3 || line[3] == ' ')
            return atoi(line);
        if (line[3] != '-')
            return -1;
    }
    return -1;
}

/* Scanning for the end of the payload: END[m] is the next byte that would
 * extend the match. DATA starts right after a CRLF, so a bare ".\r\n" ends
 * an empty message. */
static const char END[] = "\r\n.\r\n";

static int advance(int m, char ch)
{
    if (ch == END[m])
        return m + 1;
    return ch == '\r';
}

long long sconn_data(struct sconn *c)
{
    long long total = 0;
    int m = 2;
    for (;;) {
        if (c->off == c->len && fill(c) <= 0)
            return -1;
        const char *p = c->buf + c->off, *end = c->buf + c->len;
        while (p < end && m < 5) {
            if (m == 0) { /* nothing matched: skip to the next CR at memchr speed */
                const char *cr = memchr(p, '\r', (size_t)(end - p));
                p = cr ? cr : end;
                if (!cr)
                    break;
            }
            m = advance(m, *p++);
        }
        size_t used = (size_t)(p - (c->buf + c->off));
        total += (long long)used;
        c->off += used;
        if (m == 5)
            return total - 3; /* without the ".\r\n" */
    }
}

int sconn_pending(const struct sconn *c)
{
    return c->off < c->len;
}
