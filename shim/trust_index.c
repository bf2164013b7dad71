/* Indexing a PEM bundle costs a pass over its lines (memchr) and, per
 * certificate, decoding the few hundred base64 characters that reach the end
 * of its subject: about 2,000 instructions per certificate, against about
 * 170,000 for parsing one (OpenSSL 3). Only the anchors a chain names are
 * decoded in full, by the caller, when it needs them. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "name_key.h"
#include "rawsys.h" /* the bundle's own reads: no lazy bindings, no detour */
#include "trust_cache.h"
#include "trust_index.h"

#define MAX_FILE (16u << 20) /* larger bundles go the eager way */
#define HEAD_MAX 4096        /* DER bytes that must reach the end of the subject */

static const char BEGIN[] = "-----BEGIN ", LABEL[] = "CERTIFICATE-----",
                  END[] = "-----END CERTIFICATE-----";


/* In memory: pem holds the bundle's text. File-backed (pem NULL): the
 * entries come from a prepared cache and each anchor is read from path when
 * asked for, only while the file is still the one st describes. */
struct sg_trust_index {
    char *pem;
    size_t len;
    int n;
    struct sg_trust_entry *a;
    char *path;
    struct stat st;
};

/* ------------------------------------------------------------ base64 */

/* The base64 value of each byte; above 63: BAD, PAD ('='), EOL (CR, LF).
 * Any of them has bit 7 set, so four characters are checked by one test. */
enum { BAD = 0xff, PAD = 0xc0, EOL = 0x81 };
static const unsigned char B64[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0xff, 0xff, 0x81, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xc0, 0xff, 0xff,
    0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* Decode text[*pos, end) into out until cap bytes are out or the text ends;
 * line breaks are skipped. Returns the bytes out, or -1 on a bad character. */
static long decode(const char *text, size_t *pos, size_t end, unsigned char *out, size_t cap)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t o = 0, i = *pos;
    while (i < end && o + 3 <= cap) {
        /* The common case first: four characters of one line, no padding. */
        if (end - i >= 4) {
            unsigned a = B64[t[i]], b = B64[t[i + 1]], c = B64[t[i + 2]], d = B64[t[i + 3]];
            if (!((a | b | c | d) & 0x80)) {
                unsigned v = a << 18 | b << 12 | c << 6 | d;
                out[o] = (unsigned char)(v >> 16);
                out[o + 1] = (unsigned char)(v >> 8);
                out[o + 2] = (unsigned char)v;
                o += 3, i += 4;
                continue;
            }
        }
        /* A line break within or before the quantum, or the padded end. */
        unsigned q[4], k = 0;
        while (k < 4 && i < end) {
            unsigned c = B64[t[i++]];
            if (c == BAD)
                return -1;
            if (c != EOL)
                q[k++] = c;
        }
        if (k == 0)
            break;
        if (k < 4 || q[0] == PAD || q[1] == PAD || (q[2] == PAD && q[3] != PAD))
            return -1;
        unsigned v = q[0] << 18 | q[1] << 12 | (q[2] & 63) << 6 | (q[3] & 63);
        out[o++] = (unsigned char)(v >> 16);
        if (q[2] != PAD)
            out[o++] = (unsigned char)(v >> 8);
        if (q[3] != PAD)
            out[o++] = (unsigned char)v;
        if (q[3] == PAD) { /* padding ends the data: only line breaks may follow */
            while (i < end && B64[t[i]] == EOL)
                i++;
            if (i < end)
                return -1;
        }
    }
    *pos = i;
    return (long)o;
}

/* ------------------------------------------------------------ scanning */

/* The base64 characters from body to the END line (found line by line with
 * memchr, not byte by byte); 0 when a line starts with '-' other than END. */
static size_t count_chars(const char *pem, size_t len, size_t body, size_t *end)
{
    size_t chars = 0, i = body;
    while (i < len) {
        if (pem[i] == '-') {
            if (len - i < sizeof END - 1 || memcmp(pem + i, END, sizeof END - 1) != 0)
                return 0;
            *end = i;
            return chars;
        }
        const char *nl = memchr(pem + i, '\n', len - i);
        size_t line = nl ? (size_t)(nl - pem) - i : len - i;
        chars += line - (line && pem[i + line - 1] == '\r');
        i += line + 1;
    }
    return 0;
}

/* Bytes of the DER at any offset, straight from the text, when every line
 * but the last has the same length (a multiple of 4, as PEM writers make
 * them): the header of each field, then the subject, are all that is read. */
struct reader {
    const char *pem;
    size_t body, width, stride; /* characters per line, bytes per line */
    size_t at, have;            /* DER bytes [at, at + have) are in window */
    unsigned char window[48];   /* the headers near each other: one decode */
};

static int reader_init(struct reader *r, const char *pem, size_t len, size_t body)
{
    const char *nl = memchr(pem + body, '\n', len - body);
    if (!nl)
        return -1;
    size_t line = (size_t)(nl - pem) - body, cr = line && nl[-1] == '\r';
    r->pem = pem, r->body = body, r->width = line - cr, r->stride = line + 1;
    r->at = r->have = 0;
    return r->width && r->width % 4 == 0 ? 0 : -1;
}

/* DER bytes [off, off + n) into out (n <= 1023). */
static int fetch(const struct reader *r, size_t end, size_t off, size_t n, unsigned char *out)
{
    unsigned char tmp[1032];
    size_t q = off / 3, c = q * 4, cap = ((off + n + 2) / 3 - q) * 3;
    size_t pos = r->body + c / r->width * r->stride + c % r->width;
    if (n > 1023 || pos >= end)
        return -1;
    long got = decode(r->pem, &pos, end, tmp, cap);
    if (got < (long)(off % 3 + n))
        return -1;
    memcpy(out, tmp + off % 3, n);
    return 0;
}

/* The DER header at off: its tag, its length and the contents' length. */
static int header(struct reader *r, size_t end, size_t off, unsigned *tag, size_t *hlen,
                  size_t *clen)
{
    if (off < r->at || off + 5 > r->at + r->have) {
        size_t n = sizeof r->window;
        while (n > 5 && fetch(r, end, off, n, r->window))
            n -= 3; /* near the end of a small certificate */
        if (n <= 5 && fetch(r, end, off, 2, r->window))
            return -1;
        r->at = off, r->have = n > 5 ? n : 2;
    }
    const unsigned char *h = r->window + (off - r->at);
    size_t k = h[1] & 0x80 ? h[1] & 0x7fu : 0;
    if (k > 3 || off + 2 + k > r->at + r->have)
        return -1;
    *tag = h[0], *hlen = 2 + k, *clen = k ? 0 : h[1];
    for (size_t i = 0; i < k; i++)
        *clen = *clen << 8 | h[2 + i];
    return 0;
}

/* Where the END line of a certificate of total DER bytes must be. */
static int end_at(const struct reader *r, const char *pem, size_t len, size_t total, size_t *end)
{
    size_t chars = (total + 2) / 3 * 4, lines = (chars + r->width - 1) / r->width;
    size_t at = r->body + chars + lines * (r->stride - r->width);
    if (at >= len || len - at < sizeof END - 1 || pem[at - 1] != '\n' ||
        memcmp(pem + at, END, sizeof END - 1) != 0)
        return -1;
    *end = at;
    return 0;
}

/* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
 * serialNumber, signature, issuer, validity, subject, ... }, ... } */
static int scan_fast(const char *pem, size_t len, size_t body, struct sg_trust_entry *a)
{
    struct reader r;
    unsigned tag;
    size_t h, n, off, end = len;
    if (reader_init(&r, pem, len, body) || header(&r, end, 0, &tag, &h, &n) || tag != 0x30 ||
        end_at(&r, pem, len, h + n, &end) || header(&r, end, h, &tag, &off, &n) || tag != 0x30)
        return -1;
    off += h;
    for (int field = 0; field < 6; field++) {
        if (header(&r, end, off, &tag, &h, &n))
            return -1;
        if (field == 0 && tag != 0xa0)
            field++; /* no version: this is the serial number */
        if (field == 5)
            break;
        off += h + n;
    }
    unsigned char name[1023];
    if (tag != 0x30 || h + n > sizeof name || fetch(&r, end, off, h + n, name) ||
        sg_name_key(name, h + n, &a->subject))
        return -1;
    a->body = body;
    a->end = end;
    return 0;
}

/* The same by decoding from the start, for lines of uneven length. */
static int scan_slow(const char *pem, size_t len, size_t body, struct sg_trust_entry *a)
{
    unsigned char head[HEAD_MAX];
    size_t pos = body, total = 0, end = 0, got = 0;
    size_t chars = count_chars(pem, len, body, &end);
    uint64_t issuer;
    int r = -1;
    for (size_t want = 384; chars; want = want + 192 < HEAD_MAX ? want + 192 : HEAD_MAX) {
        long more = decode(pem, &pos, end, head + got, want - got);
        if (more < 0)
            return -1;
        got += (size_t)more;
        r = sg_cert_name_keys(head, got, &issuer, &a->subject, &total);
        if (r != 1 || pos >= end || want == HEAD_MAX)
            break;
    }
    if (r != 0 || chars != (total + 2) / 3 * 4)
        return -1;
    a->body = body;
    a->end = end;
    return 0;
}

/* One CERTIFICATE block whose base64 starts at body: its key and extent.
 * 0 when it is indexed, -1 when this scan cannot vouch for it. */
static int scan_one(const char *pem, size_t len, size_t body, struct sg_trust_entry *a)
{
    return scan_fast(pem, len, body, a) == 0 ? 0 : scan_slow(pem, len, body, a);
}

static int add(struct sg_trust_index *x, const struct sg_trust_entry *a, int *cap)
{
    if (x->n == *cap) {
        int more = *cap ? *cap * 2 : 256;
        struct sg_trust_entry *b = realloc(x->a, (size_t)more * sizeof *b);
        if (!b)
            return -1;
        x->a = b, *cap = more;
    }
    x->a[x->n++] = *a;
    return 0;
}

static int scan(struct sg_trust_index *x)
{
    const char *pem = x->pem, *b;
    size_t p = 0;
    int cap = 0;
    while ((b = memmem(pem + p, x->len - p, BEGIN, sizeof BEGIN - 1)) != NULL) {
        size_t at = (size_t)(b - pem) + sizeof BEGIN - 1;
        if (x->len - at < sizeof LABEL - 1 || memcmp(pem + at, LABEL, sizeof LABEL - 1) != 0)
            return -1; /* TRUSTED CERTIFICATE, X509 CRL, ...: the library's business */
        at += sizeof LABEL - 1;
        at += at < x->len && pem[at] == '\r';
        if (at >= x->len || pem[at] != '\n')
            return -1;
        struct sg_trust_entry a;
        if (scan_one(pem, x->len, at + 1, &a) || add(x, &a, &cap))
            return -1;
        p = a.end + sizeof END - 1;
    }
    return x->n > 0 ? 0 : -1;
}

/* ------------------------------------------------------------ loading */

static char *read_file(const char *path, size_t *len, struct stat *st)
{
    int fd = sg_sys_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
    char *buf = NULL;
    if (fd < 0)
        return NULL;
    if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_size > 0 &&
        (size_t)st->st_size <= MAX_FILE && (buf = malloc((size_t)st->st_size + 1)) != NULL) {
        size_t got = 0;
        ssize_t r = 1;
        while (got < (size_t)st->st_size && r > 0)
            if ((r = sg_sys_read(fd, buf + got, (size_t)st->st_size - got)) > 0)
                got += (size_t)r;
        *len = got;
        /* Changed while we read: what we hold may be neither version. */
        struct stat after;
        if (r < 0 || got != (size_t)st->st_size || fstat(fd, &after) != 0 ||
            !sg_same_file(&after, st)) {
            free(buf);
            buf = NULL;
        }
    }
    sg_sys_close(fd);
    return buf;
}

/* Where a cached entry may point: after a BEGIN line's end, before an END
 * line, in file order, within the file. The marker bytes themselves are
 * checked against the text (in memory: here; file-backed: when read). */
static int placed(const struct sg_trust_entry *e, int n, size_t len)
{
    uint64_t prev = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].body <= prev || e[i].body >= e[i].end || e[i].end >= len ||
            len - e[i].end < sizeof END - 1)
            return 0;
        prev = e[i].end;
    }
    return 1;
}

static int markers(const char *pem, const struct sg_trust_entry *e)
{
    return pem[e->body - 1] == '\n' && memcmp(pem + e->end, END, sizeof END - 1) == 0;
}

/* The cached index (trust_cache.c) when it describes exactly this file:
 * with the text (x->pem set), every entry is checked now; without it, the
 * file is not read at all and each entry is checked when it is read. */
static int from_cache(struct sg_trust_index *x, const char *ca_file, const struct stat *st)
{
    struct sg_trust_entry *e = NULL;
    int n = sg_trust_cache_read(ca_file, st, &e);
    if (n > 0 && !placed(e, n, (size_t)st->st_size))
        n = -1;
    for (int i = 0; i < n && x->pem; i++)
        if (!markers(x->pem, &e[i]))
            n = -1;
    if (n <= 0) {
        free(e);
        return -1;
    }
    x->a = e, x->n = n;
    return 0;
}

void sg_trust_index_free(struct sg_trust_index *x)
{
    if (x) {
        free(x->pem);
        free(x->a);
        free(x->path);
        free(x);
    }
}

struct sg_trust_index *sg_trust_index_from_text(char *pem, size_t len)
{
    struct sg_trust_index *x = calloc(1, sizeof *x);
    if (!x) {
        free(pem);
        return NULL;
    }
    x->pem = pem, x->len = len;
    if (scan(x)) {
        sg_trust_index_free(x);
        return NULL;
    }
    return x;
}

/* strdup, without its lazy binding (malloc is bound by then). */
static char *copy_of(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    return c ? memcpy(c, s, n) : NULL;
}

/* A prepared cache that matches the file: keep its entries and the file's
 * identity, read nothing of the bundle (a 220 KB read is about 50 page
 * faults, 190 us per process, for the one or two anchors a chain needs).
 * The identity is st when the caller has just taken it (trust_follow.c: the
 * stat that follows the file is the one the index describes), else a stat. */
static int file_backed(struct sg_trust_index *x, const char *ca_file, const struct stat *st)
{
    if (st)
        x->st = *st;
    return (st || stat(ca_file, &x->st) == 0) && S_ISREG(x->st.st_mode) && x->st.st_size > 0 &&
           (size_t)x->st.st_size <= MAX_FILE && (x->path = copy_of(ca_file)) != NULL &&
           from_cache(x, ca_file, &x->st) == 0;
}

struct sg_trust_index *sg_trust_index_open(const char *ca_file, int in_memory,
                                           const struct stat *st)
{
    struct sg_trust_index *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    if (!in_memory && file_backed(x, ca_file, st))
        return x;
    free(x->path);
    x->path = NULL;
    if (!(x->pem = read_file(ca_file, &x->len, &x->st)) ||
        (from_cache(x, ca_file, &x->st) && scan(x))) {
        sg_trust_index_free(x);
        return NULL;
    }
    return x;
}

int sg_trust_index_same_text(const struct sg_trust_index *x, const char *path, struct stat *st)
{
    size_t len = 0;
    char *text = x && x->pem ? read_file(path, &len, st) : NULL;
    int same = text && len == x->len && memcmp(text, x->pem, len) == 0;
    free(text);
    return same;
}

int sg_trust_index_entries(const char *ca_file, struct sg_trust_entry **out, struct stat *st)
{
    struct sg_trust_index x = {0};
    if (!(x.pem = read_file(ca_file, &x.len, st)) || scan(&x)) {
        free(x.pem);
        free(x.a);
        return -1;
    }
    free(x.pem);
    *out = x.a;
    return x.n;
}

/* ------------------------------------------------------------ queries */

int sg_trust_index_find_key(const struct sg_trust_index *x, uint64_t subject, int from)
{
    for (int i = from + 1; i < x->n; i++)
        if (x->a[i].subject == subject)
            return i;
    return -1;
}

int sg_trust_index_find(const struct sg_trust_index *x, const unsigned char *name, size_t len,
                        int from)
{
    uint64_t key;
    return sg_name_key(name, len, &key) ? -1 : sg_trust_index_find_key(x, key, from);
}

int sg_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int full_pread(int fd, char *buf, size_t n, size_t off)
{
    size_t got = 0;
    ssize_t r = 1;
    while (got < n && (r = sg_sys_pread(fd, buf + got, n - got, (off_t)(off + got))) > 0)
        got += (size_t)r;
    return got == n ? 0 : -1;
}

/* The bytes of entry e, from the line end before its base64 to the END
 * marker after it, into buf (e->end - e->body + MARKED bytes), while the
 * file is the very one indexed: else nothing (the anchor is unavailable).
 * One fstat, after the read: the descriptor's file then still has the
 * indexed identity (device, inode, size, modification time), so it was that
 * file when opened (an inode never takes another identity back but by
 * setting its times, which a stat before the read would not see either) and
 * no write reached it before or during the read (a write moves the
 * modification time). */
#define MARKED (sizeof END) /* the '\n' before, the END marker after */
static int read_entry(const struct sg_trust_index *x, const struct sg_trust_entry *e, char *buf)
{
    struct stat after;
    int fd = sg_sys_open(x->path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
    if (fd < 0)
        return -1;
    int ok = full_pread(fd, buf, e->end - e->body + MARKED, e->body - 1) == 0 &&
             fstat(fd, &after) == 0 && sg_same_file(&after, &x->st);
    sg_sys_close(fd);
    return ok ? 0 : -1;
}

static size_t der_from_file(const struct sg_trust_index *x, const struct sg_trust_entry *e,
                            unsigned char *out, size_t cap)
{
    size_t span = e->end - e->body, n = 0;
    char *buf = malloc(span + MARKED);
    if (buf && read_entry(x, e, buf) == 0) {
        struct sg_trust_entry rel = {e->subject, 1, 1 + span}; /* offsets in buf */
        size_t pos = 1;
        long got = markers(buf, &rel) ? decode(buf, &pos, 1 + span, out, cap) : -1;
        n = got > 0 && pos == 1 + span ? (size_t)got : 0;
    }
    free(buf);
    return n;
}

size_t sg_trust_index_der(const struct sg_trust_index *x, int i, unsigned char *out, size_t cap)
{
    if (i < 0 || i >= x->n)
        return 0;
    if (!x->pem)
        return der_from_file(x, &x->a[i], out, cap);
    size_t pos = x->a[i].body;
    long n = decode(x->pem, &pos, x->a[i].end, out, cap);
    return n > 0 && pos == x->a[i].end ? (size_t)n : 0;
}

unsigned char *sg_trust_index_der_alloc(const struct sg_trust_index *x, int i, size_t *len)
{
    size_t cap = i >= 0 && i < x->n ? (x->a[i].end - x->a[i].body) / 4 * 3 + 3 : 0;
    unsigned char *der = cap ? malloc(cap) : NULL;
    if (der && !(*len = sg_trust_index_der(x, i, der, cap))) {
        free(der);
        der = NULL;
    }
    return der;
}

int sg_trust_index_count(const struct sg_trust_index *x)
{
    return x->n;
}

static int member(const uint64_t *set, int n, uint64_t key)
{
    for (int i = 0; i < n; i++)
        if (set[i] == key)
            return 1;
    return 0;
}

/* A set of name keys with a one-word filter (a bit per key's low six bits):
 * most anchors of a bundle are told apart by one test, not by comparing
 * with every name. The keys are hashes (name_key.h). */
#define NAMES 64 /* the names a selection follows: the chain's, then anchors' issuers */
struct names {
    uint64_t key[NAMES], filter;
    int n;
};

static int names_has(const struct names *s, uint64_t key)
{
    return (s->filter >> (key & 63) & 1) && member(s->key, s->n, key);
}

static void names_add(struct names *s, uint64_t key)
{
    s->key[s->n++] = key;
    s->filter |= 1ull << (key & 63);
}

/* The issuer key of a selected anchor, from its DER. 0 when unknown (no name
 * has key 0 in practice; if one did, an anchor's issuer would only be looked
 * for in vain). */
static uint64_t issuer_key(const unsigned char *der, size_t n)
{
    uint64_t issuer = 0, subject;
    size_t total;
    if (der && sg_cert_name_keys(der, n, &issuer, &subject, &total) != 0)
        issuer = 0;
    return issuer;
}

int sg_trust_index_select(const struct sg_trust_index *x, const unsigned char *const *der,
                          const size_t *len, int n, int *out, struct sg_der *got, int max)
{
    struct names names = {.n = 0};
    int found = 0;
    for (int i = 0; i < n && names.n + 2 <= NAMES; i++) {
        size_t total;
        uint64_t issuer, subject;
        if (sg_cert_name_keys(der[i], len[i], &issuer, &subject, &total) == 0)
            names_add(&names, issuer), names_add(&names, subject);
    }
    /* Each pass takes the anchors that answer a name seen so far; their
     * issuers are new names. Ends when a pass adds no name: it has weighed
     * every anchor against every name there is, so another would take
     * none (a self-signed anchor adds none: its issuer is its subject). */
    for (int grew = 1; grew && found < max;) {
        grew = 0;
        for (int i = 0; i < x->n && found < max; i++) {
            if (!names_has(&names, x->a[i].subject))
                continue;
            int dup = 0;
            for (int k = 0; k < found && !dup; k++)
                dup = out[k] == i;
            if (dup)
                continue;
            size_t dn = 0;
            unsigned char *d = sg_trust_index_der_alloc(x, i, &dn);
            uint64_t issuer = issuer_key(d, dn);
            if (got) /* read once: the caller parses these very bytes */
                got[found] = (struct sg_der){d, d ? dn : 0};
            else
                free(d);
            out[found++] = i;
            if (names.n < NAMES && issuer && !names_has(&names, issuer))
                names_add(&names, issuer), grew = 1;
        }
    }
    return found;
}
