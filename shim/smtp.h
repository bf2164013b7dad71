/* Pure SMTP dialogue trackers, fed with the bytes a program writes and reads
 * on a plaintext SMTP socket. No I/O, no allocation: fuzzable on their own. */
#ifndef SG_SMTP_H
#define SG_SMTP_H

#include <stddef.h>

/* Verbs the guard cares about, as bits of a mask. */
enum {
    SG_V_OTHER = 1u << 0,
    SG_V_EHLO = 1u << 1, /* EHLO or HELO */
    SG_V_STARTTLS = 1u << 2,
    SG_V_AUTH = 1u << 3,
    SG_V_MAIL = 1u << 4,
    SG_V_RCPT = 1u << 5,
    SG_V_DATA = 1u << 6,
    SG_V_BDAT = 1u << 7,
    SG_V_QUIT = 1u << 8,
    SG_V_SECRET = SG_V_AUTH | SG_V_MAIL | SG_V_RCPT | SG_V_DATA | SG_V_BDAT,
};

struct sg_smtp_out {
    int state;              /* where in a line or message we are */
    char verb[12];          /* the verb being read, upper case */
    int vlen;
    unsigned last_verb;     /* the verb of the current line */
    unsigned long bdat_left;/* BDAT: size being parsed, then bytes to skip */
    int dot;                /* DATA body: progress through "\r\n.\r\n" */
    unsigned lines;         /* command lines (and message ends) sent: each gets a reply */
    unsigned starttls_line; /* number of the last STARTTLS line (lines counts from 1), 0 none */
};

/* Feed n bytes the program sends. Returns the mask of verbs that start in
 * them (a verb counts where its name is complete: at the space or line end,
 * or at its last letter for an exact known verb). */
unsigned sg_smtp_out_feed(struct sg_smtp_out *st, const void *buf, size_t n);
/* Name of a single-bit verb, for logs ("AUTH", ...). */
const char *sg_smtp_verb_name(unsigned verb);

struct sg_smtp_in {
    int state;          /* position in a reply line */
    int code;           /* the 3-digit code being read */
    int digits;
    int final;          /* this line ends the reply (space after the code) */
    int last_code;      /* code of the last complete reply */
    unsigned replies;   /* complete replies seen */
};

/* Replies that answer the command lines sent: the greeting is reply 1, the
 * reply to command line k is reply k + 1 (RFC 2920 pipelining, PIPE_CONNECT). */
static inline unsigned sg_smtp_reply_of(unsigned line)
{
    return line + 1;
}

/* Feed n bytes the program received. Returns how many bytes of buf came
 * after the end of the first complete reply that ended in this call
 * (stop_after_reply != 0), or 0. */
size_t sg_smtp_in_feed(struct sg_smtp_in *st, const void *buf, size_t n, int stop_after_reply);
/* Feed until reply number `target` is complete. Returns how many bytes of buf
 * came after its end, or (size_t)-1 when it did not end in buf (all fed). */
size_t sg_smtp_in_until(struct sg_smtp_in *st, const void *buf, size_t n, unsigned target);

#endif
