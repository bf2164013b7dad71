/* libFuzzer target: the DNS answer reader (shim/dns.c), which reads whatever a
 * program's resolver socket or res_query hands it.
 *
 * Properties:
 *  - it never reads outside the message (ASan) and ends (the walk is bounded);
 *  - -1 means nothing was passed to the sink; otherwise the count returned is
 *    the count of calls;
 *  - every name passed is a presentation name the shim can compare: non-empty,
 *    shorter than SG_DNS_NAME_MAX, lower case, printable, no empty label, no
 *    final dot; the family is AF_INET or AF_INET6;
 *  - the answer is a function of the bytes: a second read gives the same calls;
 *  - a name passed is the question name or a name some record of the message
 *    points to (it appears in the message, label by label). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"

#define FAIL(...) (fprintf(stderr, "fuzz_dns: " __VA_ARGS__), fputc('\n', stderr), abort())
#define MAX_CALLS 256

struct seen {
    int n;
    char name[MAX_CALLS][SG_DNS_NAME_MAX];
    int family[MAX_CALLS];
    unsigned char addr[MAX_CALLS][16];
};

static void sink(void *ctx, const char *name, int family, const void *addr)
{
    struct seen *s = ctx;
    size_t len = strnlen(name, SG_DNS_NAME_MAX);
    if (len == 0 || len >= SG_DNS_NAME_MAX)
        FAIL("name of length %zu", len);
    if (name[0] == '.' || name[len - 1] == '.' || strstr(name, ".."))
        FAIL("empty label in '%s'", name);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7F ||
            (name[i] >= 'A' && name[i] <= 'Z'))
            FAIL("byte 0x%02x in a name", (unsigned char)name[i]);
    if (family != AF_INET && family != AF_INET6)
        FAIL("family %d", family);
    if (s->n < MAX_CALLS) {
        memcpy(s->name[s->n], name, len + 1);
        s->family[s->n] = family;
        memcpy(s->addr[s->n], addr, family == AF_INET ? 4 : 16);
    }
    s->n++;
}

/* Each label of name occurs in msg, case-insensitively, with its length byte. */
static int labels_in(const uint8_t *msg, size_t size, const char *name)
{
    char copy[SG_DNS_NAME_MAX];
    strcpy(copy, name);
    for (char *save = NULL, *l = strtok_r(copy, ".", &save); l; l = strtok_r(NULL, ".", &save)) {
        size_t n = strlen(l), found = 0;
        for (size_t i = 0; i + 1 + n <= size && !found; i++)
            found = msg[i] == n && strncasecmp((const char *)msg + i + 1, l, n) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct seen a, b;
    a.n = b.n = 0;
    int r = sg_dns_answer(data, size, sink, &a);
    if (r < 0 && a.n != 0)
        FAIL("-1 after %d names were passed", a.n);
    if (r >= 0 && r != a.n)
        FAIL("returned %d after %d calls", r, a.n);
    int r2 = sg_dns_answer(data, size, sink, &b);
    if (r2 != r || b.n != a.n)
        FAIL("a second read differs: %d/%d then %d/%d", r, a.n, r2, b.n);
    for (int i = 0; i < a.n && i < MAX_CALLS; i++) {
        if (strcmp(a.name[i], b.name[i]) || a.family[i] != b.family[i] ||
            memcmp(a.addr[i], b.addr[i], a.family[i] == AF_INET ? 4 : 16))
            FAIL("a second read differs at call %d", i);
        if (!labels_in(data, size, a.name[i]))
            FAIL("'%s' is not in the message", a.name[i]);
    }
    return 0;
}
