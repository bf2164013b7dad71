/* OpenSSL compares names in a canonical form (text types as UTF-8, ASCII
 * lower-cased, runs of spaces folded, multi-valued RDNs as sets); GnuTLS
 * compares the raw bytes. The key keeps less than either: per attribute its
 * type and, for text, only its ASCII letters and digits lower-cased (the
 * same in every encoding of a string), summed over the attributes so that
 * their grouping and order do not count. Any two names either library takes
 * for the same get the same key. */
#include <string.h>

#include "name_key.h"

#define T_SEQ 0x30
#define T_SET 0x31
#define T_OID 0x06

/* One DER element at *p: its tag, contents and the position after it. */
static int tlv(const unsigned char **p, const unsigned char *end, unsigned *tag,
               const unsigned char **val, size_t *len)
{
    const unsigned char *q = *p;
    if (end - q < 2)
        return -1;
    *tag = *q++;
    size_t n = *q++;
    if (n & 0x80) {
        int k = (int)(n & 0x7f);
        if (k < 1 || k > 3 || end - q < k)
            return -1;
        for (n = 0; k-- > 0;)
            n = n << 8 | *q++;
    }
    if ((size_t)(end - q) < n)
        return -1;
    *val = q;
    *len = n;
    *p = q + n;
    return 0;
}

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t mix(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* Width of one character of a text type OpenSSL canonicalises; 0 if the
 * type is compared as raw bytes. T61 counts as Latin-1, as in OpenSSL. */
static int text_width(unsigned tag)
{
    switch (tag) {
    case 0x0c: /* UTF8String */
    case 0x13: /* PrintableString */
    case 0x14: /* T61String */
    case 0x16: /* IA5String */
    case 0x1a: /* VisibleString */
        return 1;
    case 0x1e: /* BMPString */
        return 2;
    case 0x1c: /* UniversalString */
        return 4;
    default:
        return 0;
    }
}

/* What a character of text adds to the key: its ASCII letter or digit,
 * lower-cased; 0 for anything else. */
static const unsigned char KEEP[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 0, 0, 0, 0, 0, 0,
    0, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 0, 0, 0, 0, 0,
    0, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static uint64_t fold_text(uint64_t h, const unsigned char *v, size_t n, int w)
{
    if (w == 1) { /* nearly every name: one table look-up per character */
        for (size_t i = 0; i < n; i++)
            if (KEEP[v[i]])
                h = mix(h, KEEP[v[i]]);
        return h;
    }
    for (size_t i = 0; i + (size_t)w <= n; i += (size_t)w) {
        unsigned c = 0;
        for (int k = 0; k < w; k++)
            c = c << 8 | v[i + (size_t)k];
        if (c < 256 && KEEP[c])
            h = mix(h, KEEP[c]);
    }
    return h;
}

static int attribute_key(const unsigned char *p, const unsigned char *end, uint64_t *key)
{
    unsigned tag;
    const unsigned char *oid, *v;
    size_t oid_len, n;
    if (tlv(&p, end, &tag, &oid, &oid_len) || tag != T_OID || tlv(&p, end, &tag, &v, &n) ||
        p != end)
        return -1;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < oid_len; i++)
        h = mix(h, oid[i]);
    int w = text_width(tag);
    h = mix(h, w ? 0 : (unsigned char)tag);
    if (w)
        h = fold_text(h, v, n, w);
    else
        for (size_t i = 0; i < n; i++)
            h = mix(h, v[i]);
    *key = h;
    return 0;
}

int sg_name_key(const unsigned char *der, size_t len, uint64_t *key)
{
    const unsigned char *p = der, *end = der + len, *rdns, *set, *atv;
    unsigned tag;
    size_t n, m, k;
    if (tlv(&p, end, &tag, &rdns, &n) || tag != T_SEQ || p != end)
        return -1;
    uint64_t sum = 0;
    for (const unsigned char *r = rdns; r < rdns + n;) {
        if (tlv(&r, rdns + n, &tag, &set, &m) || tag != T_SET)
            return -1;
        for (const unsigned char *a = set; a < set + m;) {
            uint64_t h;
            if (tlv(&a, set + m, &tag, &atv, &k) || tag != T_SEQ ||
                attribute_key(atv, atv + k, &h))
                return -1;
            sum += h;
        }
    }
    *key = sum;
    return 0;
}

/* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
 * serialNumber, signature, issuer, validity, subject, ... }, ... }
 * The fields are located first and keyed only once both names are whole:
 * a caller that decodes a certificate piece by piece asks again cheaply. */
int sg_cert_name_keys(const unsigned char *der, size_t len, uint64_t *issuer,
                      uint64_t *subject, size_t *total)
{
    const unsigned char *p, *end, *v, *at[5];
    unsigned tag;
    size_t n;
    if (len < 4 || der[0] != T_SEQ || (der[1] & 0x7f) > 3 || (der[1] & 0x80 && der[1] == 0x80))
        return -1;
    size_t hdr = der[1] & 0x80 ? 2 + (der[1] & 0x7fu) : 2, whole = 0;
    if (len < hdr + 2)
        return 1;
    for (size_t i = 2; i < hdr; i++)
        whole = whole << 8 | der[i];
    *total = hdr + (der[1] & 0x80 ? whole : der[1]);
    int more = len < *total; /* what is missing may yet come */
    end = der + (more ? len : *total);
    p = der + hdr;
    /* The tbsCertificate's own length may exceed what we hold: walk its
     * contents as far as they go. */
    if (p[0] != T_SEQ || (p[1] & 0x7f) > 3)
        return -1;
    p += p[1] & 0x80 ? 2 + (p[1] & 0x7fu) : 2;
    if (p < end && *p == 0xa0 && tlv(&p, end, &tag, &v, &n))
        return more ? 1 : -1;
    for (int field = 0; field < 5; field++) {
        at[field] = p;
        if (tlv(&p, end, &tag, &v, &n))
            return more ? 1 : -1;
        if ((field == 2 || field == 4) && tag != T_SEQ)
            return -1;
    }
    size_t ilen = (size_t)(at[3] - at[2]), slen = (size_t)(p - at[4]);
    if (sg_name_key(at[4], slen, subject))
        return -1;
    /* Most anchors are self-issued: the same bytes, the same key. */
    if (ilen == slen && memcmp(at[2], at[4], slen) == 0)
        *issuer = *subject;
    else if (sg_name_key(at[2], ilen, issuer))
        return -1;
    return 0;
}
