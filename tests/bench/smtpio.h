/* Buffered SMTP I/O over a socket, plaintext or TLS, shared by the benchmark
 * server (smtpd.c) and client (smtpc.c). Blocking I/O with socket timeouts:
 * a stuck peer ends in an error, never a hang. */
#ifndef SG_SMTPIO_H
#define SG_SMTPIO_H

#include <stddef.h>

#include <openssl/ssl.h>

#define SMTPIO_BUF (64 * 1024)
#define SMTPIO_LINE 1024

struct sconn {
    int fd;
    SSL *ssl;             /* NULL while plaintext */
    size_t off, len;      /* unread bytes are buf[off..len) */
    char buf[SMTPIO_BUF];
};

void sconn_init(struct sconn *c, int fd, int timeout_s);
/* One line without its CRLF into line (NUL-terminated): its length, or -1 on
 * end of input, error or an over-long line. */
int sconn_getline(struct sconn *c, char *line, size_t cap);
/* Write all n bytes: 0, or -1. */
int sconn_write(struct sconn *c, const void *buf, size_t n);
int sconn_printf(struct sconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The code of the next reply (continuation lines skipped), or -1. */
int sconn_reply(struct sconn *c);
/* Consume a DATA payload through its "CRLF.CRLF" end: the payload's size
 * (through the CRLF before the dot), or -1. */
long long sconn_data(struct sconn *c);
/* Unread bytes in the buffer: must be none when TLS starts (RFC 3207). */
int sconn_pending(const struct sconn *c);

#endif
