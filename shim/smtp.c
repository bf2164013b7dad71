/* SMTP trackers. The outbound one follows commands and skips message bodies
 * (DATA up to the lone dot, BDAT by its size) so that a body line starting
 * with "MAIL" is not taken for a command. */
#include <string.h>

#include "smtp.h"

enum { OUT_VERB = 0, OUT_REST, OUT_DATA, OUT_BDAT_SKIP };

static const struct {
    char name[12]; /* an array, not a pointer: no relocation at every exec */
    unsigned bit;
} verbs[] = {
    {"EHLO", SG_V_EHLO}, {"HELO", SG_V_EHLO}, {"STARTTLS", SG_V_STARTTLS},
    {"AUTH", SG_V_AUTH}, {"MAIL", SG_V_MAIL}, {"RCPT", SG_V_RCPT},
    {"DATA", SG_V_DATA}, {"BDAT", SG_V_BDAT}, {"QUIT", SG_V_QUIT},
};

const char *sg_smtp_verb_name(unsigned verb)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].bit == verb)
            return verbs[i].name;
    return "command";
}

static unsigned classify(const char *v, int len)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if ((int)strlen(verbs[i].name) == len && memcmp(verbs[i].name, v, len) == 0)
            return verbs[i].bit;
    return SG_V_OTHER;
}

/* A line ended: decide what the next bytes are. Every line outside a
 * message body is answered by one reply (a command, or an AUTH answer). */
static void end_of_line(struct sg_smtp_out *st)
{
    st->lines++;
    if (st->last_verb == SG_V_DATA) {
        st->state = OUT_DATA;
        st->dot = 2; /* as if "\r\n" was just seen: a lone dot may come first */
    } else if (st->last_verb == SG_V_BDAT && st->bdat_left > 0) {
        st->state = OUT_BDAT_SKIP;
    } else {
        st->state = OUT_VERB;
    }
    st->vlen = 0;
}

/* DATA body: "\r\n.\r\n" ends it; dot counts the matched prefix. */
static void data_byte(struct sg_smtp_out *st, unsigned char c)
{
    static const char end[] = "\r\n.\r\n";
    if (c == (unsigned char)end[st->dot])
        st->dot++;
    else
        st->dot = (c == '\r') ? 1 : 0;
    if (st->dot == 5) { /* the end of the message: one reply */
        st->lines++;
        st->state = OUT_VERB;
        st->vlen = 0;
        st->last_verb = 0;
    }
}

static unsigned verb_byte(struct sg_smtp_out *st, unsigned char c)
{
    int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (letter && st->vlen < (int)sizeof st->verb) {
        st->verb[st->vlen++] = (char)(c & ~0x20);
        return 0;
    }
    st->last_verb = classify(st->verb, st->vlen);
    if (st->last_verb == SG_V_STARTTLS)
        st->starttls_line = st->lines + 1;
    st->bdat_left = 0;
    st->state = OUT_REST;
    if (c == '\n')
        end_of_line(st);
    return st->last_verb;
}

static void rest_byte(struct sg_smtp_out *st, unsigned char c)
{
    if (c == '\n') {
        end_of_line(st);
    } else if (st->last_verb == SG_V_BDAT && c >= '0' && c <= '9' &&
               st->bdat_left < 100000000000ul) {
        st->bdat_left = st->bdat_left * 10 + (c - '0');
    }
}

unsigned sg_smtp_out_feed(struct sg_smtp_out *st, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        switch (st->state) {
        case OUT_VERB:
            seen |= verb_byte(st, p[i]);
            break;
        case OUT_REST:
            rest_byte(st, p[i]);
            break;
        case OUT_DATA:
            data_byte(st, p[i]);
            break;
        default: { /* OUT_BDAT_SKIP */
            size_t skip = n - i < st->bdat_left ? n - i : st->bdat_left;
            st->bdat_left -= skip;
            i += skip - 1;
            if (st->bdat_left == 0) {
                st->state = OUT_VERB;
                st->vlen = 0;
            }
        }
        }
    }
    return seen;
}

enum { IN_CODE = 0, IN_SEP, IN_TEXT };

/* A reply line ended. Returns 1 when it was the last line of a reply. */
static int in_line_end(struct sg_smtp_in *st)
{
    int done = st->final || st->state == IN_SEP;
    if (done) {
        st->last_code = st->code;
        st->replies++;
    }
    st->state = IN_CODE;
    st->code = st->digits = st->final = 0;
    return done;
}

size_t sg_smtp_in_feed(struct sg_smtp_in *st, const void *buf, size_t n, int stop_after_reply)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\n') {
            if (in_line_end(st) && stop_after_reply)
                return n - i - 1;
            continue;
        }
        if (st->state == IN_CODE && c >= '0' && c <= '9' && st->digits < 3) {
            st->code = st->code * 10 + (c - '0');
            if (++st->digits == 3)
                st->state = IN_SEP;
        } else if (st->state == IN_SEP) {
            st->final = (c != '-');
            st->state = IN_TEXT;
        } else {
            st->state = IN_TEXT;
        }
    }
    return 0;
}

size_t sg_smtp_in_until(struct sg_smtp_in *st, const void *buf, size_t n, unsigned target)
{
    const unsigned char *p = buf;
    while (n) {
        unsigned before = st->replies;
        size_t extra = sg_smtp_in_feed(st, p, n, 1);
        if (st->replies == before)
            return (size_t)-1;
        if (st->replies >= target)
            return extra;
        p += n - extra;
        n = extra;
    }
    return (size_t)-1;
}
