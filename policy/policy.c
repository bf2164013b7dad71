/* The smtpguard policy parser. It runs inside arbitrary host processes (from an
 * LD_PRELOAD library), so it allocates nothing, uses no stdio and no locale-dependent
 * calls: only open/fstat/read/close, fixed buffers and plain ASCII helpers. */
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rawsys.h" /* the policy file's own reads: no lazy bindings, no detour */

#define DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
#define DEFAULT_SUITES "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
#define DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/* ---- ASCII helpers: the host's locale must not change how a policy reads. ---- */

static int is_blank(int ch) { return ch == ' ' || ch == '\t'; }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static int lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }
static int is_alnum(int ch) { return is_digit(ch) || (lower(ch) >= 'a' && lower(ch) <= 'z'); }

static int ieq(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b))
        a++, b++;
    return *a == *b;
}

/* Index of v in a NULL-terminated word list (case-insensitive), or -1. */
#define MODE_WORDS "enforce\0audit\0off\0" /* in enum sg_mode order */

/* words: "a\0b\0c\0", one string, not a table of pointers: the shim links this
 * file, and every pointer in a table is a relocation at every exec. */
static int pick(const char *v, const char *words)
{
    for (int i = 0; *words; i++, words += strlen(words) + 1)
        if (ieq(v, words))
            return i;
    return -1;
}

/* strtok_r, strspn and strncmp would each make a process that never calls
 * them map another 64 KiB of libc's text (the kernel maps file pages around
 * each fault, issue 15): the parse does with these few loops. */
static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static int in_set(int ch, const char *set)
{
    for (; *set; set++)
        if (*set == ch)
            return 1;
    return 0;
}

/* The next token of *rest between separators, NUL-terminated in place, or
 * NULL when there is none; *rest moves past it. */
static char *next_token(char **rest, const char *sep)
{
    char *t = *rest, *e;
    while (*t && in_set(*t, sep))
        t++;
    if (!*t) {
        *rest = t;
        return NULL;
    }
    for (e = t; *e && !in_set(*e, sep); e++)
        ;
    if (*e)
        *e++ = '\0';
    *rest = e;
    return t;
}

static char *trim(char *s)
{
    char *e = s + strlen(s);
    while (is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        *--e = '\0';
    return s;
}


/* The shim's policy is a static, all zero until loaded: a page it never
 * writes stays the kernel's shared zero page (issue 15, memory). So large
 * areas are cleared and merged in blocks, writing only blocks that change. */
#define BLOCK SG_PORT_BLOCK

static int all_zero(const unsigned char *a, size_t n)
{
    uint64_t any = 0, w;
    size_t i = 0;
    for (; i + sizeof w <= n; i += sizeof w) { /* a word at a time: 8 KiB bitmaps */
        __builtin_memcpy(&w, a + i, sizeof w);
        any |= w;
    }
    for (; i < n; i++)
        any |= a[i];
    return !any;
}

static void clear(void *area, size_t n)
{
    unsigned char *a = area;
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t k = n - i < BLOCK ? n - i : BLOCK;
        if (!all_zero(a + i, k))
            memset(a + i, 0, k);
    }
}

/* Port bitmaps: only the blocks their mask names are read or written, so a
 * bitmap that holds no port is never touched (its pages stay unmapped). */
_Static_assert(65536 / 8 / BLOCK <= 32, "a block mask is an unsigned");

static void set_port(unsigned char *bitmap, unsigned *blocks, int port)
{
    bitmap[port >> 3] |= 1 << (port & 7);
    *blocks |= 1u << ((port >> 3) / BLOCK);
}

static void clear_ports(unsigned char *bitmap, unsigned *blocks)
{
    for (unsigned m = *blocks; m; m &= m - 1)
        memset(bitmap + (size_t)__builtin_ctz(m) * BLOCK, 0, BLOCK);
    *blocks = 0;
}

/* dst |= src */
static void merge_ports(unsigned char *dst, unsigned *dst_blocks, const unsigned char *src,
                        unsigned src_blocks)
{
    for (unsigned m = src_blocks; m; m &= m - 1)
        for (size_t j = (size_t)__builtin_ctz(m) * BLOCK, end = j + BLOCK; j < end; j++)
            dst[j] |= src[j];
    *dst_blocks |= src_blocks;
}

/* Digits only, 1..65535; no sign, no overflow. Returns the port or -1. */
static int parse_port(const char *s)
{
    long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++)
        if (!is_digit(*s) || (v = v * 10 + (*s - '0')) > 65535)
            return -1;
    return v > 0 ? (int)v : -1;
}

/* ---- A bounded string builder: truncates, always NUL-terminates, counts the full length. ---- */

struct sb {
    char *s;
    size_t cap;
    size_t n; /* length wanted; may exceed cap - 1 */
};

static void sb_mem(struct sb *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++, b->n++)
        if (b->n + 1 < b->cap)
            b->s[b->n] = s[i];
    if (b->cap)
        b->s[b->n < b->cap ? b->n : b->cap - 1] = '\0';
}

static void sb_str(struct sb *b, const char *s) { sb_mem(b, s, strlen(s)); }

static void sb_int(struct sb *b, long v)
{
    char d[24], *p = d + sizeof d;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    do
        *--p = '0' + u % 10;
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    sb_mem(b, p, d + sizeof d - p);
}

/* A user's value inside a message: quoted and shortened so the message stays readable. */
static void sb_quote(struct sb *b, const char *s)
{
    size_t n = strlen(s);
    sb_str(b, "'");
    sb_mem(b, s, n > 60 ? 60 : n);
    sb_str(b, n > 60 ? "...'" : "'");
}

/* A tiny printf: %s string, %q quoted user value, %d int, %% percent. */
static void sb_vfmt(struct sb *b, const char *fmt, va_list ap)
{
    for (const char *f = fmt; *f; f++) {
        if (*f != '%' || !f[1]) {
            sb_mem(b, f, 1);
            continue;
        }
        switch (*++f) {
        case 's': sb_str(b, va_arg(ap, const char *)); break;
        case 'q': sb_quote(b, va_arg(ap, const char *)); break;
        case 'd': sb_int(b, va_arg(ap, int)); break;
        default: sb_mem(b, f, 1);
        }
    }
}

static void sb_fmt(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vfmt(b, fmt, ap);
    va_end(ap);
}

static void copy(char *dst, size_t size, const char *src)
{
    struct sb b = { dst, size, 0 };
    sb_str(&b, src);
}

/* ---- Defaults ---- */

void sg_policy_defaults(struct sg_policy *p)
{
    sg_policy_init_zeroed(p, 0);
}

void sg_policy_default_ports(struct sg_policy *p)
{
    static const int smtp[] = { 25, 465, 587, 2525 };

    for (size_t i = 0; i < sizeof smtp / sizeof smtp[0]; i++)
        set_port(p->smtp_ports, &p->smtp_blocks, smtp[i]);
    set_port(p->implicit_ports, &p->implicit_blocks, 465);
}

/* Defaults on a policy known to be all zero (a static one): writing zeros
 * would make its ~195 KiB resident in every process. */
void sg_policy_init_zeroed(struct sg_policy *p, int zeroed)
{
    if (!zeroed)
        memset(p, 0, sizeof *p);
    p->mode = SG_MODE_ENFORCE;
    sg_policy_default_ports(p);
    p->min_protocol = SG_TLS12;
    copy(p->ciphers, sizeof p->ciphers, DEFAULT_CIPHERS);
    copy(p->ciphersuites, sizeof p->ciphersuites, DEFAULT_SUITES);
    copy(p->ca_file, sizeof p->ca_file, DEFAULT_CA_FILE);
    p->require_tls = 1;
    p->log_kind = SG_LOG_SYSLOG;
    copy(p->source, sizeof p->source, "built-in defaults");
}

/* ---- Parser state and errors ---- */

#define MAX_KEYS 16

struct ctx {
    struct sg_policy *p;
    const char *name;     /* file name for messages */
    int line;             /* 0: the message is about the whole file */
    struct sg_dest *dest; /* current [destination] section, NULL at global level */
    struct sg_prog *prog; /* current [program] section, NULL elsewhere */
    int seen[MAX_KEYS];   /* line where each key was set in this section, for duplicates */
};

/* Record "NAME:LINE: message" (the first error only) and mark the policy broken. */
static int fail(struct ctx *c, const char *fmt, ...)
{
    struct sb b = { c->p->error, sizeof c->p->error, 0 };
    va_list ap;

    if (c->p->broken)
        return -1;
    sb_str(&b, c->name);
    if (c->line)
        sb_fmt(&b, ":%d", c->line);
    sb_str(&b, ": ");
    va_start(ap, fmt);
    sb_vfmt(&b, fmt, ap);
    va_end(ap);
    c->p->broken = 1;
    return -1;
}

/* ---- Value checkers and setters ---- */

struct key;
typedef int setter(struct ctx *c, const struct key *k, char *v);

enum scope { GLOBAL = 1, SECTION = 2, BOTH = 3 };

struct key {
    char name[20];
    enum scope scope;
    setter *set;
    size_t goff, doff, size; /* string field: offset in sg_policy / sg_dest, and its size */
};

/* The field a string key writes: the current section's, or the global one. */
static char *field(struct ctx *c, const struct key *k)
{
    return c->dest ? (char *)c->dest + k->doff : (char *)c->p + k->goff;
}

static int put(struct ctx *c, const struct key *k, char *dst, const char *v)
{
    if (strlen(v) >= k->size)
        return fail(c, "value for %s is too long (max %d bytes)", k->name, (int)k->size - 1);
    copy(dst, k->size, v);
    return 0;
}

/* A DNS name: labels of letters, digits, '-' or '_', 1..63 bytes; one trailing dot allowed. */
static int valid_name(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n && s[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && label == 0)
            return 0;
        if (s[i] != '.' && !is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
        label = s[i] == '.' ? 0 : label + 1;
        if (label > 63)
            return 0;
    }
    return label > 0;
}

/* Lower-case copy of a valid name without its trailing dot (dst has SG_HOST_MAX bytes). */
static void put_name(char *dst, const char *s)
{
    size_t i;
    for (i = 0; s[i] && !(s[i] == '.' && !s[i + 1]); i++)
        dst[i] = lower(s[i]);
    dst[i] = '\0';
}

/* An address literal in its canonical text form (so "::0:1" matches "::1", and an
 * IPv4-mapped IPv6 peer matches its IPv4 section), or s itself for a name. */
static const char *canon_addr(const char *s, char *buf, size_t n)
{
    struct in6_addr a; /* also holds an IPv4 address in its first 4 bytes */
    if (s && inet_pton(AF_INET, s, &a) == 1)
        return inet_ntop(AF_INET, &a, buf, n);
    if (!s || inet_pton(AF_INET6, s, &a) != 1)
        return s;
    if (IN6_IS_ADDR_V4MAPPED(&a))
        return inet_ntop(AF_INET, &a.s6_addr[12], buf, n);
    return inet_ntop(AF_INET6, &a, buf, n);
}

static int set_mode(struct ctx *c, const struct key *k, char *v)
{
    int m = pick(v, MODE_WORDS);
    (void)k;
    if (m < 0)
        return fail(c, "bad value %q for mode: expected enforce, audit or off", v);
    *(c->prog ? &c->prog->mode : c->dest ? &c->dest->mode : &c->p->mode) = m;
    return 0;
}

/* The block mask of bitmap, one of the current section's. */
static unsigned *blocks_of(struct ctx *c, const unsigned char *bitmap)
{
    struct sg_policy *p = c->p;
    return c->prog ? &c->prog->smtp_blocks
           : bitmap == p->smtp_ports ? &p->smtp_blocks
           : bitmap == p->implicit_ports ? &p->implicit_blocks : &p->proxy_blocks;
}

static int set_ports(struct ctx *c, const struct key *k, char *v)
{
    unsigned char *bitmap = c->prog ? c->prog->smtp_ports : (unsigned char *)c->p + k->goff;
    unsigned *blocks = blocks_of(c, bitmap);
    char *rest = v;

    if (c->prog)
        c->prog->has_ports = 1;
    clear_ports(bitmap, blocks); /* the list replaces the default set */
    if (ieq(v, "none"))
        return 0;
    for (char *tok = next_token(&rest, " \t,"); tok; tok = next_token(&rest, " \t,")) {
        int port = parse_port(tok);
        if (port < 0)
            return fail(c, "bad port %q in %s: expected numbers 1..65535 separated by spaces or commas, or none",
                        tok, k->name);
        set_port(bitmap, blocks, port);
    }
    return 0;
}

static int set_protocol(struct ctx *c, const struct key *k, char *v)
{
    int i = pick(v, "TLSv1.2\0TLSv1.3\0");
    (void)k;
    if (pick(v, "SSLv2\0SSLv3\0TLSv1\0TLSv1.0\0TLSv1.1\0") >= 0)
        return fail(c, "min_protocol %s is below the floor TLSv1.2", v);
    if (i < 0)
        return fail(c, "bad value %q for min_protocol: expected TLSv1.2 or TLSv1.3", v);
    c->p->min_protocol = i ? SG_TLS13 : SG_TLS12;
    return 0;
}

static int set_ciphers(struct ctx *c, const struct key *k, char *v)
{
    size_t bad = 0;
    while (v[bad] && (is_alnum(v[bad]) || in_set(v[bad], "_+:!@=.-")))
        bad++;
    char ch[2] = { v[bad], '\0' };
    if (v[bad])
        return fail(c, "bad character %q in %s: use letters, digits and _+:!@=.- (separate entries with ':')",
                    ch, k->name);
    return put(c, k, field(c, k), v);
}

static int set_path(struct ctx *c, const struct key *k, char *v)
{
    if (v[0] != '/')
        return fail(c, "%s must be an absolute path, got %q", k->name, v);
    return put(c, k, field(c, k), v);
}

static int set_require_tls(struct ctx *c, const struct key *k, char *v)
{
    int i = pick(v, "no\0yes\0");
    (void)k;
    if (i < 0)
        return fail(c, "bad value %q for require_tls: expected yes or no", v);
    *(c->prog ? &c->prog->require_tls : &c->p->require_tls) = i;
    return 0;
}

static int set_unverified(struct ctx *c, const struct key *k, char *v)
{
    int i = pick(v, "refuse\0allow\0");
    (void)k;
    if (i < 0)
        return fail(c, "bad value %q for unverified_tls: expected refuse or allow", v);
    *(c->dest ? &c->dest->unverified_tls
      : c->prog ? &c->prog->unverified_tls : &c->p->unverified_tls) = i;
    return 0;
}

static int set_log(struct ctx *c, const struct key *k, char *v)
{
    int i = pick(v, "syslog\0stderr\0");

    if (i >= 0) {
        c->p->log_kind = i;
        return 0;
    }
    if (!starts_with(v, "file:"))
        return fail(c, "bad value %q for log: expected syslog, stderr or file:/absolute/path", v);
    if (v[5] != '/')
        return fail(c, "log file must be an absolute path, got %q", v + 5);
    c->p->log_kind = SG_LOG_FILE;
    return put(c, k, c->p->log_path, v + 5);
}

static int set_log_format(struct ctx *c, const struct key *k, char *v)
{
    int i = pick(v, "text\0json\0");
    (void)k;
    if (i < 0)
        return fail(c, "bad value %q for log_format: expected text or json", v);
    c->p->log_json = i;
    return 0;
}

static int set_verify_name(struct ctx *c, const struct key *k, char *v)
{
    (void)k;
    if (!valid_name(v))
        return fail(c, "bad value %q for verify_name: expected a DNS name", v);
    put_name(c->dest->verify_name, v);
    return 0;
}

/* Canonical padded base64 of exactly 32 bytes: 43 symbols, '=', unused bits zero. */
static int decode_pin(const char *s, unsigned char out[32])
{
    unsigned acc = 0, bits = 0, n = 0;
    if (strlen(s) != 44 || s[43] != '=')
        return -1;
    for (int i = 0; i < 43; i++) {
        const char *q = strchr(B64, s[i]);
        if (!q)
            return -1;
        acc = acc << 6 | (unsigned)(q - B64);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[n++] = acc >> bits;
            acc &= (1u << bits) - 1;
        }
    }
    return n == 32 && acc == 0 ? 0 : -1;
}

static int set_pin(struct ctx *c, const struct key *k, char *v)
{
    struct sg_dest *d = c->dest;
    (void)k;
    if (d->npins == SG_MAX_PINS)
        return fail(c, "too many pin_sha256 in one section (max %d)", SG_MAX_PINS);
    if (decode_pin(v, d->pins[d->npins]) < 0)
        return fail(c, "pin_sha256 is not base64 of 32 bytes (the SHA-256 of the server's public key), got %q", v);
    d->npins++;
    return 0;
}

#define G(f) offsetof(struct sg_policy, f)
#define D(f) offsetof(struct sg_dest, f)
static const struct key keys[] = {
    { "mode", BOTH, set_mode, 0, 0, 0 },
    { "smtp_ports", GLOBAL, set_ports, G(smtp_ports), 0, 0 },
    { "implicit_tls_ports", GLOBAL, set_ports, G(implicit_ports), 0, 0 },
    { "proxy_ports", GLOBAL, set_ports, G(proxy_ports), 0, 0 },
    { "min_protocol", GLOBAL, set_protocol, 0, 0, 0 },
    { "ciphers", GLOBAL, set_ciphers, G(ciphers), 0, SG_CIPHERS_MAX },
    { "ciphersuites", GLOBAL, set_ciphers, G(ciphersuites), 0, SG_CIPHERS_MAX },
    { "ca_file", BOTH, set_path, G(ca_file), D(ca_file), SG_PATH_MAX },
    { "ca_path", BOTH, set_path, G(ca_path), D(ca_path), SG_PATH_MAX },
    { "require_tls", GLOBAL, set_require_tls, 0, 0, 0 },
    { "unverified_tls", BOTH, set_unverified, 0, 0, 0 },
    { "log", GLOBAL, set_log, 0, 0, SG_PATH_MAX },
    { "log_format", GLOBAL, set_log_format, 0, 0, 0 },
    { "verify_name", SECTION, set_verify_name, 0, 0, 0 },
    { "pin_sha256", SECTION, set_pin, 0, 0, 0 },
};
#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= MAX_KEYS, "struct ctx seen[] too small");

/* Levenshtein distance (ASCII case-insensitive) for "did you mean"; long words: no guess. */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int row[33];

    if (la > 32 || lb > 32)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (lower((unsigned char)a[i - 1]) != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int unknown_key(struct ctx *c, const char *name)
{
    const char *guess = NULL;
    int best = strlen(name) < 4 ? 2 : 3; /* suggest only close misspellings */
    for (size_t i = 0; i < NKEYS; i++) {
        int d = distance(name, keys[i].name);
        if (d < best)
            best = d, guess = keys[i].name;
    }
    if (guess)
        return fail(c, "unknown key %q (did you mean '%s'?)", name, guess);
    return fail(c, "unknown key %q", name);
}

/* The keys a [program ...] section may set. */
static int program_key(const char *name)
{
    static const char ok[] = "mode\0smtp_ports\0require_tls\0unverified_tls\0";
    for (const char *w = ok; *w; w += strlen(w) + 1)
        if (!strcmp(name, w))
            return 1;
    return 0;
}

static int set_key(struct ctx *c, const char *name, char *v)
{
    size_t i;
    for (i = 0; i < NKEYS && strcmp(name, keys[i].name) != 0; i++)
        ;
    if (i == NKEYS)
        return unknown_key(c, name);
    if (c->prog && !program_key(name))
        return fail(c, "'%s' cannot be set in a [program ...] section (mode, smtp_ports, "
                    "require_tls and unverified_tls can); global keys go above the first section", name);
    if (c->dest && !(keys[i].scope & SECTION))
        return fail(c, "'%s' is a global key: move it above the first [destination ...] section", name);
    if (!c->dest && !c->prog && !(keys[i].scope & GLOBAL))
        return fail(c, "'%s' is only valid inside a [destination ...] section", name);
    if (c->seen[i] && keys[i].set != set_pin)
        return fail(c, "duplicate key '%s' (first set at line %d)", name, c->seen[i]);
    c->seen[i] = c->line;
    return keys[i].set(c, &keys[i], v);
}

/* ---- [destination ...] sections ---- */

/* HOST, HOST:PORT, IPV6, [IPV6] or [IPV6]:PORT into d->host and d->port. */
static int parse_target(struct ctx *c, char *t, struct sg_dest *d)
{
    char *host = t, *port = NULL, *colon = strchr(t, ':'), buf[INET6_ADDRSTRLEN];
    const char *addr;

    if (*t == '[') {
        char *close = strchr(t, ']');
        if (!close || (close[1] && close[1] != ':'))
            return fail(c, "bad destination %q: expected [IPV6] or [IPV6]:PORT", t);
        *close = '\0';
        host = t + 1;
        port = close[1] ? close + 2 : NULL;
    } else if (colon && !strchr(colon + 1, ':')) { /* one colon: HOST:PORT; more: bare IPv6 */
        *colon = '\0';
        port = colon + 1;
    }
    if (port && (d->port = parse_port(port)) < 0)
        return fail(c, "bad port %q in section header: expected 1..65535", port);
    addr = canon_addr(host, buf, sizeof buf);
    if ((host != t || strchr(host, ':')) && addr == host) /* brackets or colons: must be IPv6 */
        return fail(c, "bad IPv6 address %q in section header", host);
    if (addr == host && !valid_name(host))
        return fail(c, "bad host name %q in section header", host);
    put_name(d->host, addr);
    return 0;
}

/* [program PATH]: an absolute path of an executable or a script. */
static int program_section(struct ctx *c, const char *path)
{
    struct sg_prog *pr = &c->p->prog[c->p->nprog];

    if (!*path)
        return fail(c, "[program] needs a path: [program /usr/bin/NAME] (the executable, or the script an interpreter runs)");
    if (path[0] != '/')
        return fail(c, "[program %q] needs an absolute path", path);
    if (strlen(path) >= sizeof pr->path)
        return fail(c, "program path too long (max %d bytes)", (int)sizeof pr->path - 1);
    if (c->p->nprog == SG_MAX_PROG)
        return fail(c, "too many [program] sections (max %d)", SG_MAX_PROG);
    for (int i = 0; i < c->p->nprog; i++)
        if (strcmp(c->p->prog[i].path, path) == 0)
            return fail(c, "duplicate section: the same program as line %d", c->p->prog[i].line);
    clear(pr, sizeof *pr);
    copy(pr->path, sizeof pr->path, path);
    pr->line = c->line;
    pr->mode = SG_MODE_INHERIT;
    pr->require_tls = -1;
    pr->unverified_tls = SG_UNVERIFIED_INHERIT;
    c->p->nprog++;
    c->prog = pr;
    c->dest = NULL;
    memset(c->seen, 0, sizeof c->seen);
    return 0;
}

static int section(struct ctx *c, char *s)
{
    size_t n = strlen(s);
    struct sg_dest *d = &c->p->dest[c->p->ndest];
    char *t;

    if (s[n - 1] != ']')
        return fail(c, "section header %q does not end with ']'", s);
    s[n - 1] = '\0';
    t = trim(s + 1);
    if (starts_with(t, "program") && (!t[7] || is_blank(t[7])))
        return program_section(c, trim(t + 7));
    if (!starts_with(t, "destination") || (t[11] && !is_blank(t[11])))
        return fail(c, "unknown section '[%s]': expected [destination HOST], [destination HOST:PORT] or [program PATH]", t);
    if (!*(t = trim(t + 11)))
        return fail(c, "[destination] needs a host: [destination HOST] or [destination HOST:PORT]");
    if (c->p->ndest == SG_MAX_DEST)
        return fail(c, "too many destinations (max %d)", SG_MAX_DEST);
    clear(d, sizeof *d);
    d->mode = SG_MODE_INHERIT;
    d->unverified_tls = SG_UNVERIFIED_INHERIT;
    d->line = c->line;
    if (parse_target(c, t, d) < 0)
        return -1;
    for (int i = 0; i < c->p->ndest; i++)
        if (c->p->dest[i].port == d->port && strcmp(c->p->dest[i].host, d->host) == 0)
            return fail(c, "duplicate section: the same destination as line %d", c->p->dest[i].line);
    c->p->ndest++;
    c->dest = d;
    c->prog = NULL;
    memset(c->seen, 0, sizeof c->seen);
    return 0;
}

/* ---- Lines ---- */

/* One line into buf, NUL-terminated, without its CR; rejects long lines and binary data. */
static int copy_line(struct ctx *c, char *buf, const char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (n > SG_LINE_MAX)
        return fail(c, "line too long (over %d bytes)", SG_LINE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch == 0)
            return fail(c, "binary data (NUL byte)");
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(c, "binary data (control character)");
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

/* A '#' at the start or after a blank starts a comment; elsewhere it is data. */
static void strip_comment(char *s)
{
    const char *end = s + strlen(s); /* memchr, not strchr: one lazy binding fewer */
    for (char *h = s; (h = memchr(h, '#', (size_t)(end - h))); h++)
        if (h == s || is_blank(h[-1])) {
            *h = '\0';
            return;
        }
}

static int parse_line(struct ctx *c, char *s)
{
    char *eq, *name, *v;

    strip_comment(s);
    s = trim(s);
    if (!*s)
        return 0;
    if (*s == '[')
        return section(c, s);
    if (!(eq = memchr(s, '=', strlen(s))) || eq == s)
        return fail(c, "expected 'key = value', got %q", s);
    *eq = '\0';
    name = trim(s);
    v = trim(eq + 1);
    if (!*v)
        return fail(c, "missing value for '%s' (expected 'key = value')", name);
    return set_key(c, name, v);
}

int sg_policy_parse(struct sg_policy *p, const char *name, const char *text, size_t len)
{
    struct ctx c = { .p = p, .name = name };
    char line[SG_LINE_MAX + 1]; /* 4 KiB: modest even on a small host thread stack */
    size_t pos = 0;
    int r = 0;

    if (len > SG_FILE_MAX)
        return fail(&c, "file too large (over %d bytes)", SG_FILE_MAX);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* a UTF-8 byte order mark some editors write */
    while (pos < len && r == 0) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - text) - pos : len - pos;
        c.line++;
        if (copy_line(&c, line, text + pos, n) < 0 || parse_line(&c, line) < 0)
            r = -1;
        pos += n + 1;
    }
    /* Every implicit TLS port is an SMTP port, also in a broken file: the ports it
     * named before the error must fail closed like the others. */
    /* A proxy port is watched like an SMTP port until its request names the
     * real destination (shim/proxy.c). */
    merge_ports(p->smtp_ports, &p->smtp_blocks, p->implicit_ports, p->implicit_blocks);
    merge_ports(p->smtp_ports, &p->smtp_blocks, p->proxy_ports, p->proxy_blocks);
    return r;
}

/* ---- Files ---- */

/* The AT_SECURE rule first (a file nobody trusted may not even break a privileged
 * process), then type and size. Called before open (a device may react to being
 * opened) and again on the open descriptor (the path may have changed in between). */
static int check_stat(struct ctx *c, const struct stat *st, int privileged)
{
    if (privileged && (st->st_uid != 0 || (st->st_mode & 022))) {
        fail(c, "ignored for a privileged process: not owned by root or writable by group/others");
        c->p->broken = 0;
        return SG_LOAD_UNTRUSTED;
    }
    if (!S_ISREG(st->st_mode))
        return fail(c, "not a regular file"), SG_LOAD_ERROR;
    if (st->st_size > SG_FILE_MAX)
        return fail(c, "file too large (over %d bytes)", SG_FILE_MAX), SG_LOAD_ERROR;
    return SG_LOAD_OK;
}

static int open_error(struct ctx *c)
{
    if (errno == ENOENT)
        return SG_LOAD_ABSENT;
    fail(c, "cannot open: %s", strerror(errno));
    return SG_LOAD_ERROR;
}

/* Read to EOF or until buf is full; EINTR/EAGAIN retried a bounded number of times. */
static long read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    int retries = 0;

    while (got < cap) {
        ssize_t n = sg_sys_read(fd, buf + got, cap - got);
        if (n > 0)
            got += n;
        else if (n == 0)
            break;
        else if ((errno != EINTR && errno != EAGAIN) || ++retries > 100)
            return -1;
    }
    return got;
}

/* *got: the bytes read into buf (0 when none). */
static int load_file(struct ctx *c, const char *path, int privileged, char *buf, size_t cap,
                     long *got)
{
    struct stat st;
    long n = 0;
    int fd, r;

    if (stat(path, &st) != 0)
        return open_error(c);
    if ((r = check_stat(c, &st, privileged)) != SG_LOAD_OK)
        return r;
    /* O_NONBLOCK: a FIFO swapped in after the stat cannot block the open. */
    if ((fd = sg_sys_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0)) < 0)
        return open_error(c);
    /* The size fstat gives is read, no more: no read to find the end of a
     * regular file (a writer that swaps files atomically is read whole
     * either way). A file that tells no size (0: /proc) is read to its end,
     * up to cap, whose one byte beyond SG_FILE_MAX tells "too large". */
    if (fstat(fd, &st) != 0)
        r = (fail(c, "cannot stat: %s", strerror(errno)), SG_LOAD_ERROR);
    else if ((r = check_stat(c, &st, privileged)) == SG_LOAD_OK &&
             (n = read_all(fd, buf, st.st_size > 0 ? (size_t)st.st_size : cap)) < 0)
        r = (fail(c, "read error: %s", strerror(errno)), SG_LOAD_ERROR);
    sg_sys_close(fd);
    *got = n > 0 ? n : 0;
    if (r != SG_LOAD_OK)
        return r;
    if (sg_policy_parse(c->p, path, buf, n) < 0)
        return SG_LOAD_ERROR;
    copy(c->p->source, sizeof c->p->source, path);
    return SG_LOAD_OK;
}

int sg_policy_load(struct sg_policy *p, const char *path, int privileged)
{
    /* Static: no heap here, and 256 KiB is too much for a host thread's stack. The shim
     * loads once under pthread_once; the flag turns any concurrent misuse into a
     * fail-closed error instead of a torn buffer. One byte more detects "too large". */
    static char buf[SG_FILE_MAX + 1] SG_TABLE __attribute__((aligned(4096)));
    _Static_assert(SG_FILE_MAX % (64 * 1024) == 0, "madvise below clears only buf's pages");
    static int busy;
    struct ctx c = { .p = p, .name = path };
    long got = 0;
    int r;

    if (__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE))
        return fail(&c, "policy loaded concurrently (internal error)"), SG_LOAD_ERROR;
    r = load_file(&c, path, privileged, buf, sizeof buf, &got);
    /* The text is parsed (nothing points into it): its pages beyond the first
     * go back to the kernel, or every process would keep them (issue 15,
     * memory). The first, which any policy touches, stays: 4 KiB against a
     * madvise per process (the call and its TLB flush: about 3 us of a
     * one-message process, issue 15); a policy of one page (the shipped one
     * is 2.6 KiB) makes none. Only whole pages of buf: it starts on a page
     * (where pages are larger than 4 KiB, madvise refuses and nothing
     * happens) and SG_FILE_MAX is a multiple of them, so no neighbour's page
     * is cleared with them. */
    if (got > 4096)
        madvise(buf + 4096, SG_FILE_MAX - 4096, MADV_DONTNEED);
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    return r;
}

/* ---- Queries ---- */

/* Case-insensitive; a trailing dot on the connection's name is ignored. */
static int host_eq(const char *want, const char *have)
{
    size_t n;
    if (!have || !*have)
        return 0;
    n = strlen(have);
    if (have[n - 1] == '.')
        n--;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)have[i]) != want[i])
            return 0;
    return want[n] == '\0';
}

const struct sg_dest *sg_policy_match(const struct sg_policy *p, const char *host,
                                      const char *addr, int port)
{
    char hb[INET6_ADDRSTRLEN], ab[INET6_ADDRSTRLEN];
    const struct sg_dest *best = NULL;
    int best_score = -1;

    host = canon_addr(host, hb, sizeof hb);
    addr = canon_addr(addr, ab, sizeof ab);
    for (int i = 0; i < p->ndest; i++) {
        const struct sg_dest *d = &p->dest[i];
        /* Host match 2, address match 0; a specific port adds 1. */
        int score = host_eq(d->host, host) ? 2 : host_eq(d->host, addr) ? 0 : -1;
        if (score < 0 || (d->port && d->port != port))
            continue;
        score += d->port != 0;
        if (score > best_score)
            best = d, best_score = score;
    }
    return best;
}

const struct sg_prog *sg_policy_program(const struct sg_policy *p, const char *exe,
                                        const char *script,
                                        const char *(*canon)(const char *path, char *buf))
{
    static char buf[4096] SG_TABLE; /* PATH_MAX; loaded once, under the caller's once-lock */
    const struct sg_prog *by_exe = NULL;

    for (int i = 0; i < p->nprog; i++) {
        const char *path = canon ? canon(p->prog[i].path, buf) : p->prog[i].path;
        if (!path)
            continue;
        if (script && *script && !strcmp(path, script))
            return &p->prog[i];
        if (!by_exe && exe && *exe && !strcmp(path, exe))
            by_exe = &p->prog[i];
    }
    return by_exe;
}

void sg_policy_apply_program(struct sg_policy *p, const struct sg_prog *pr)
{
    if (!pr)
        return;
    p->program = pr;
    if (pr->mode != SG_MODE_INHERIT)
        p->mode = pr->mode;
    if (pr->require_tls >= 0)
        p->require_tls = pr->require_tls;
    if (pr->unverified_tls != SG_UNVERIFIED_INHERIT)
        p->unverified_tls = pr->unverified_tls;
    if (pr->has_ports) { /* implicit TLS and proxy ports stay watched, as in the global list */
        clear_ports(p->smtp_ports, &p->smtp_blocks);
        merge_ports(p->smtp_ports, &p->smtp_blocks, pr->smtp_ports, pr->smtp_blocks);
        merge_ports(p->smtp_ports, &p->smtp_blocks, p->implicit_ports, p->implicit_blocks);
        merge_ports(p->smtp_ports, &p->smtp_blocks, p->proxy_ports, p->proxy_blocks);
    }
}

int sg_policy_mode(const struct sg_policy *p, const struct sg_dest *d)
{
    return d && d->mode != SG_MODE_INHERIT ? d->mode : p->mode;
}

int sg_policy_unverified(const struct sg_policy *p, const struct sg_dest *d)
{
    return d && d->unverified_tls != SG_UNVERIFIED_INHERIT ? d->unverified_tls
                                                           : p->unverified_tls;
}

/* A section that names a trust store replaces the global one entirely: a private CA
 * for one relay must not quietly be widened by the global public bundle. */
static int own_store(const struct sg_dest *d) { return d && (d->ca_file[0] || d->ca_path[0]); }

const char *sg_policy_ca_file(const struct sg_policy *p, const struct sg_dest *d)
{
    return own_store(d) ? d->ca_file : p->ca_file;
}

const char *sg_policy_ca_path(const struct sg_policy *p, const struct sg_dest *d)
{
    return own_store(d) ? d->ca_path : p->ca_path;
}

const char *sg_mode_name(int mode)
{
    static const char names[][8] = { "enforce", "audit", "off" };
    if (mode == SG_MODE_INHERIT)
        return "inherit";
    return mode >= 0 && mode <= SG_MODE_OFF ? names[mode] : "unknown";
}

int sg_mode_from_name(const char *name)
{
    return name ? pick(name, MODE_WORDS) : -1;
}

/* ---- Formatting the effective policy as a policy file ---- */

static void fmt_ports(struct sb *b, const char *key, const unsigned char *bitmap)
{
    const char *sep = "";
    sb_fmt(b, "%s = ", key);
    for (int port = 1; port < 65536; port++)
        if (sg_port_in(bitmap, ~0u, port)) { /* every block: printing reads all */
            sb_fmt(b, "%s%d", sep, port);
            sep = " ";
        }
    sb_str(b, *sep ? "\n" : "none\n");
}

static void fmt_b64(struct sb *b, const unsigned char *in, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        char q[4] = { B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=',
                      i + 2 < n ? B64[v & 63] : '=' };
        sb_mem(b, q, 4);
    }
}

/* "key = value", or a comment when the value is unset (an empty value is not valid). */
static void fmt_opt(struct sb *b, const char *key, const char *v)
{
    sb_fmt(b, *v ? "%s = %s\n" : "# %s is not set\n", key, v);
}

static void fmt_dest(struct sb *b, const struct sg_dest *d)
{
    int v6 = strchr(d->host, ':') != NULL;
    sb_fmt(b, "\n[destination %s%s%s", v6 && d->port ? "[" : "", d->host, v6 && d->port ? "]" : "");
    if (d->port)
        sb_fmt(b, ":%d", d->port);
    sb_str(b, "]\n");
    if (d->mode != SG_MODE_INHERIT)
        sb_fmt(b, "mode = %s\n", sg_mode_name(d->mode));
    if (d->ca_file[0])
        sb_fmt(b, "ca_file = %s\n", d->ca_file);
    if (d->ca_path[0])
        sb_fmt(b, "ca_path = %s\n", d->ca_path);
    if (d->verify_name[0])
        sb_fmt(b, "verify_name = %s\n", d->verify_name);
    if (d->unverified_tls != SG_UNVERIFIED_INHERIT)
        sb_fmt(b, "unverified_tls = %s\n", d->unverified_tls ? "allow" : "refuse");
    for (int i = 0; i < d->npins; i++) {
        sb_str(b, "pin_sha256 = ");
        fmt_b64(b, d->pins[i], 32);
        sb_str(b, "\n");
    }
}

static void fmt_prog(struct sb *b, const struct sg_prog *pr)
{
    sb_fmt(b, "\n[program %s]\n", pr->path);
    if (pr->mode != SG_MODE_INHERIT)
        sb_fmt(b, "mode = %s\n", sg_mode_name(pr->mode));
    if (pr->has_ports)
        fmt_ports(b, "smtp_ports", pr->smtp_ports);
    if (pr->require_tls >= 0)
        sb_fmt(b, "require_tls = %s\n", pr->require_tls ? "yes" : "no");
    if (pr->unverified_tls != SG_UNVERIFIED_INHERIT)
        sb_fmt(b, "unverified_tls = %s\n", pr->unverified_tls ? "allow" : "refuse");
}

int sg_policy_format(const struct sg_policy *p, char *buf, size_t len)
{
    struct sb b = { buf, len, 0 };

    sb_fmt(&b, "mode = %s\n", sg_mode_name(p->mode));
    fmt_ports(&b, "smtp_ports", p->smtp_ports);
    fmt_ports(&b, "implicit_tls_ports", p->implicit_ports);
    for (size_t i = 0; i < sizeof p->proxy_ports; i++)
        if (p->proxy_ports[i]) { /* printed only when set: most policies have none */
            fmt_ports(&b, "proxy_ports", p->proxy_ports);
            break;
        }
    sb_fmt(&b, "min_protocol = %s\n", p->min_protocol == SG_TLS13 ? "TLSv1.3" : "TLSv1.2");
    sb_fmt(&b, "ciphers = %s\nciphersuites = %s\n", p->ciphers, p->ciphersuites);
    fmt_opt(&b, "ca_file", p->ca_file);
    fmt_opt(&b, "ca_path", p->ca_path);
    sb_fmt(&b, "require_tls = %s\n", p->require_tls ? "yes" : "no");
    sb_fmt(&b, "unverified_tls = %s\n", p->unverified_tls ? "allow" : "refuse");
    sb_fmt(&b, "log = %s%s\n", p->log_kind == SG_LOG_SYSLOG ? "syslog" : p->log_kind == SG_LOG_STDERR ? "stderr" : "file:",
           p->log_kind == SG_LOG_FILE ? p->log_path : "");
    sb_fmt(&b, "log_format = %s\n", p->log_json ? "json" : "text");
    for (int i = 0; i < p->ndest; i++)
        fmt_dest(&b, &p->dest[i]);
    for (int i = 0; i < p->nprog; i++)
        fmt_prog(&b, &p->prog[i]);
    return b.n > 0x7fffffff ? 0x7fffffff : (int)b.n;
}
