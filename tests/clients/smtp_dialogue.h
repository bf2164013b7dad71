/* The SMTP dialogue of the memory-transport test clients (membio.c,
 * pushpull_gnutls.c), over whatever moves their bytes: a socket before TLS,
 * a TLS session after. Included, not built on its own. */
#ifndef SMTP_DIALOGUE_H
#define SMTP_DIALOGUE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netdb.h>
#include <unistd.h>

#define DLG_FROM "sender@example.com"
#define DLG_TO "rcpt@example.com"
/* base64 of "\0sguser\0Sg-S3cret-Pa55" (tests/lib/constants.py) */
#define DLG_AUTH "AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ=="

struct dlg {
    void *ctx;
    /* Send all n bytes: 0, or -1. Receive: > 0 bytes, 0 at the end, -1 error. */
    int (*send)(void *ctx, const void *buf, size_t n);
    ssize_t (*recv)(void *ctx, void *buf, size_t n);
    const char *who;
    char in[4096];
    size_t have, used;
};

/* All of buf to a pipe or socket (the record pumps of the memory clients). */
static int dlg_write_all(int fd, const void *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = write(fd, (const char *)buf + done, n - done);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static int dlg_fd_send(void *ctx, const void *buf, size_t n)
{
    int fd = *(int *)ctx;
    for (size_t done = 0; done < n;) {
        ssize_t k = send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static ssize_t dlg_fd_recv(void *ctx, void *buf, size_t n)
{
    return recv(*(int *)ctx, buf, n, 0);
}

static int dlg_byte(struct dlg *d)
{
    if (d->used == d->have) {
        ssize_t n = d->recv(d->ctx, d->in, sizeof d->in);
        if (n <= 0)
            return -1;
        d->have = (size_t)n;
        d->used = 0;
    }
    return (unsigned char)d->in[d->used++];
}

/* The code of the next (multi-line) reply, or -1. */
static int dlg_reply(struct dlg *d)
{
    for (int lines = 0; lines < 100; lines++) {
        char line[1024];
        size_t n = 0;
        int ch;
        while ((ch = dlg_byte(d)) >= 0 && ch != '\n')
            if (n < sizeof line - 1)
                line[n++] = (char)ch;
        if (ch < 0)
            return -1;
        line[n] = 0;
        if (n < 4 || line[3] != '-')
            return n >= 3 ? atoi(line) : -1;
    }
    return -1;
}

static int dlg_cmd(struct dlg *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int dlg_cmd(struct dlg *d, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    memcpy(line + n, "\r\n", 2);
    if (d->send(d->ctx, line, (size_t)n + 2) != 0)
        return -1;
    return dlg_reply(d);
}

static int dlg_expect(struct dlg *d, int got, int want, const char *what)
{
    if (got == want)
        return 0;
    fprintf(stderr, "%s: %s: got %d, wanted %d\n", d->who, what, got, want);
    return -1;
}

/* Plaintext part of a STARTTLS session: greeting, EHLO, STARTTLS, 220. */
static int dlg_starttls(struct dlg *d)
{
    if (dlg_expect(d, dlg_reply(d), 220, "greeting") ||
        dlg_expect(d, dlg_cmd(d, "EHLO membio.example"), 250, "EHLO") ||
        dlg_expect(d, dlg_cmd(d, "STARTTLS"), 220, "STARTTLS"))
        return -1;
    d->have = d->used = 0;
    return 0;
}

/* The message, dot-stuffed, then "." */
static int dlg_data(struct dlg *d, const char *msg, size_t len)
{
    char buf[8192];
    size_t n = 0;
    int bol = 1;
    for (size_t i = 0; i < len; i++) {
        if (n > sizeof buf - 4) {
            if (d->send(d->ctx, buf, n) != 0)
                return -1;
            n = 0;
        }
        if (bol && msg[i] == '.')
            buf[n++] = '.';
        buf[n++] = msg[i];
        bol = msg[i] == '\n';
    }
    if (d->send(d->ctx, buf, n) != 0)
        return -1;
    return dlg_expect(d, dlg_cmd(d, "."), 250, "end of DATA");
}

/* Over TLS: (greeting on implicit TLS), EHLO, AUTH, MAIL, RCPT, DATA, QUIT.
 * 0 when the server took the message. */
static int dlg_mail(struct dlg *d, int implicit, const char *msg, size_t len)
{
    if ((implicit && dlg_expect(d, dlg_reply(d), 220, "greeting")) ||
        dlg_expect(d, dlg_cmd(d, "EHLO membio.example"), 250, "EHLO") ||
        dlg_expect(d, dlg_cmd(d, "AUTH PLAIN %s", DLG_AUTH), 235, "AUTH") ||
        dlg_expect(d, dlg_cmd(d, "MAIL FROM:<%s>", DLG_FROM), 250, "MAIL") ||
        dlg_expect(d, dlg_cmd(d, "RCPT TO:<%s>", DLG_TO), 250, "RCPT") ||
        dlg_expect(d, dlg_cmd(d, "DATA"), 354, "DATA") || dlg_data(d, msg, len))
        return -1;
    dlg_cmd(d, "QUIT");
    return 0;
}

/* A TCP connection to host:port (IPv4), or -1. */
static int dlg_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* The whole file, or NULL. */
static char *dlg_load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    if (!f)
        return NULL;
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

#endif
