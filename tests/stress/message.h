/* The stress messages. Message N is a pure function of N, so the server checks
 * every byte it receives: headers with the id, then 0..39 body lines of varied
 * length, some starting with '.' (dot-stuffing) and some looking like SMTP
 * commands (a body line is never a command). CRLF line ends. */
#ifndef STRESS_MESSAGE_H
#define STRESS_MESSAGE_H

#include <stdio.h>
#include <string.h>

#define STRESS_MESSAGE_MAX 8192

static const char *const stress_starts[] = {".", "..", "MAIL FROM:<x@example.com>", "AUTH PLAIN ",
                                            "", "Lorem ", "DATA", "\t"};

/* Writes message id into buf (STRESS_MESSAGE_MAX bytes); returns its length. */
static inline size_t stress_message(unsigned id, char *buf)
{
    size_t n = (size_t)snprintf(buf, STRESS_MESSAGE_MAX,
                                "From: <load@example.com>\r\nTo: <sink@example.com>\r\n"
                                "Subject: stress %u\r\nMessage-ID: <stress-%u@example.com>\r\n\r\n",
                                id, id);
    unsigned seed = id * 2654435761u + 1;
    for (unsigned line = 0; line < id % 40; line++) {
        seed = seed * 1103515245u + 12345u;
        const char *start = stress_starts[(seed >> 8) % (sizeof stress_starts / sizeof *stress_starts)];
        size_t len = strlen(start), fill = (seed >> 16) % 120;
        memcpy(buf + n, start, len);
        n += len;
        for (size_t i = 0; i < fill; i++)
            buf[n++] = (char)(' ' + (seed + i * 7) % 95);
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    return n;
}

/* The id in a message's Message-ID header, or -1. */
static inline long stress_message_id(const char *msg, size_t len)
{
    const char *tag = "Message-ID: <stress-";
    const char *p = memmem(msg, len, tag, strlen(tag));
    unsigned id;
    return p && sscanf(p + strlen(tag), "%u@", &id) == 1 ? (long)id : -1;
}

#endif
