/* Reading a DNS response (RFC 1035 section 4) for the addresses it gives and
 * the names they answer. Only records that follow from the question count:
 * A/AAAA owned by the question name or by a name it is a CNAME of (then the
 * question name is the identity, not the alias target), and A/AAAA owned by
 * an MX target of the question (that target is the identity, RFC 7672 and
 * RFC 8461). Anything else in the message (unrelated additional records a
 * resolver or an attacker put there) is ignored. */
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dns.h"

#define T_A_ 1
#define T_CNAME_ 5
#define T_MX_ 15
#define T_AAAA_ 28
#define C_IN_ 1
#define MAX_NAMES 8    /* the question, its aliases and its MX targets */
#define MAX_RECORDS 64 /* records read per section */

struct msg {
    const unsigned char *p;
    size_t len;
};

struct names {
    int n;
    char name[MAX_NAMES][SG_DNS_NAME_MAX];
    int ref[MAX_NAMES]; /* index of the name that is the identity for this one */
};

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

/* Decompress the name at *off into out (lower case, dotted, no final dot).
 * Returns 0 and moves *off past it, or -1. Pointers may only go backwards,
 * which bounds the walk. */
static int read_name(const struct msg *m, size_t *off, char *out)
{
    size_t at = *off, used = 0, end = 0, limit = at;
    int jumped = 0;
    for (int steps = 0; steps < 128; steps++) {
        if (at >= m->len)
            return -1;
        unsigned c = m->p[at];
        if (c == 0) {
            out[used ? used - 1 : 0] = 0;
            *off = jumped ? end : at + 1;
            return 0;
        }
        if ((c & 0xC0) == 0xC0) {
            if (at + 1 >= m->len)
                return -1;
            size_t to = get16(m->p + at) & 0x3FFF;
            if (to >= limit)
                return -1;
            if (!jumped)
                end = at + 2;
            jumped = 1;
            at = limit = to;
            continue;
        }
        if (c & 0xC0 || at + 1 + c > m->len || used + c + 1 >= SG_DNS_NAME_MAX)
            return -1;
        for (unsigned i = 0; i < c; i++) {
            unsigned char ch = m->p[at + 1 + i];
            /* A dot or NUL inside a label, or a control byte, would make a
             * presentation name that is not what the program asked for. */
            if (ch <= ' ' || ch >= 0x7F || ch == '.')
                return -1;
            out[used++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        out[used++] = '.';
        at += 1 + c;
    }
    return -1;
}

static int find(const struct names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return i;
    return -1;
}

/* ref < 0: the name is its own identity. */
static void add(struct names *s, const char *name, int ref)
{
    /* The root is no host: a null MX (RFC 7505) says "no mail here". */
    if (name[0] && s->n < MAX_NAMES && find(s, name) < 0) {
        strcpy(s->name[s->n], name);
        s->ref[s->n] = ref < 0 ? s->n : ref;
        s->n++;
    }
}

struct rr {
    char owner[SG_DNS_NAME_MAX];
    unsigned type, class;
    size_t rdata, rdlen;
};

static int read_rr(const struct msg *m, size_t *off, struct rr *r)
{
    if (read_name(m, off, r->owner) != 0 || *off + 10 > m->len)
        return -1;
    r->type = get16(m->p + *off);
    r->class = get16(m->p + *off + 2);
    r->rdlen = get16(m->p + *off + 8);
    r->rdata = *off + 10;
    if (r->rdata + r->rdlen > m->len)
        return -1;
    *off = r->rdata + r->rdlen;
    return 0;
}

/* CNAME and MX records extend the set of names; repeated passes let records
 * come in any order (bounded: each pass that adds nothing ends it). */
static int grow(const struct msg *m, size_t first, int count, struct names *s)
{
    for (int pass = 0; pass < MAX_NAMES; pass++) {
        int before = s->n;
        size_t off = first;
        for (int i = 0; i < count; i++) {
            struct rr r;
            char target[SG_DNS_NAME_MAX];
            if (read_rr(m, &off, &r) != 0)
                return -1;
            int owner = find(s, r.owner);
            if (owner < 0 || r.class != C_IN_)
                continue;
            size_t at = r.rdata + (r.type == T_MX_ ? 2 : 0);
            if ((r.type != T_CNAME_ && r.type != T_MX_) || r.rdlen < at - r.rdata + 1 ||
                read_name(m, &at, target) != 0 || at > r.rdata + r.rdlen)
                continue;
            /* An alias answers for the name it aliases; an MX target for itself. */
            add(s, target, r.type == T_CNAME_ ? s->ref[owner] : -1);
        }
        if (s->n == before)
            break;
    }
    return 0;
}

static int emit(const struct msg *m, size_t first, int count, const struct names *s,
                sg_dns_sink sink, void *ctx)
{
    int learned = 0;
    size_t off = first;
    for (int i = 0; i < count; i++) {
        struct rr r;
        if (read_rr(m, &off, &r) != 0)
            return -1;
        int owner = find(s, r.owner);
        if (owner < 0 || r.class != C_IN_)
            continue;
        if (r.type == T_A_ && r.rdlen == 4)
            sink(ctx, s->name[s->ref[owner]], AF_INET, m->p + r.rdata), learned++;
        else if (r.type == T_AAAA_ && r.rdlen == 16)
            sink(ctx, s->name[s->ref[owner]], AF_INET6, m->p + r.rdata), learned++;
    }
    return learned;
}

/* Walk once to check every record is well formed and find where the answer
 * section starts and how many records follow it. */
static int layout(const struct msg *m, char *qname, size_t *answers, int *count)
{
    if (m->len < 12 || !(m->p[2] & 0x80) || (m->p[3] & 0x0F) != 0 || get16(m->p + 4) != 1)
        return -1;
    size_t off = 12;
    if (read_name(m, &off, qname) != 0 || off + 4 > m->len)
        return -1;
    off += 4;
    *answers = off;
    unsigned total = get16(m->p + 6) + get16(m->p + 8) + get16(m->p + 10);
    if (total > MAX_RECORDS)
        total = MAX_RECORDS;
    for (unsigned i = 0; i < total; i++) {
        struct rr r;
        if (read_rr(m, &off, &r) != 0)
            return -1;
    }
    *count = (int)total;
    return 0;
}

int sg_dns_answer(const unsigned char *msg, size_t len, sg_dns_sink sink, void *ctx)
{
    struct msg m = {msg, len};
    struct names s;
    char qname[SG_DNS_NAME_MAX];
    size_t answers;
    int count;
    if (!msg || layout(&m, qname, &answers, &count) != 0 || !qname[0])
        return -1;
    s.n = 0;
    add(&s, qname, -1);
    if (grow(&m, answers, count, &s) != 0)
        return -1;
    return emit(&m, answers, count, &s, sink, ctx);
}
