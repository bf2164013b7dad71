/* libFuzzer target: the policy parser on arbitrary bytes.
 *
 * Properties beyond "no crash, no sanitizer report":
 *  - a refused file always says why (broken set, an error text naming the file);
 *  - an accepted file formats (sg_policy_format) to text that parses again without
 *    error and formats to exactly the same text (the checker's output is a policy);
 *  - every [destination] section is found again by sg_policy_match for its own
 *    host (and port), and the section found is never one for another port. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define FAIL(...) (fprintf(stderr, "fuzz_policy: " __VA_ARGS__), fputc('\n', stderr), abort())

static struct sg_policy first, again; /* about 200 KiB each: not on the stack */

/* The policy as text, in a buffer the caller frees. */
static char *format(const struct sg_policy *p, int *len)
{
    *len = sg_policy_format(p, NULL, 0);
    char *buf = malloc((size_t)*len + 1);
    if (!buf)
        abort();
    if (sg_policy_format(p, buf, (size_t)*len + 1) != *len || strlen(buf) != (size_t)*len)
        FAIL("format is not stable in length");
    return buf;
}

static void check_refusal(const struct sg_policy *p)
{
    if (!p->broken || strncmp(p->error, "fuzz", 4) != 0)
        FAIL("refused without an error naming the file: broken=%d error='%s'", p->broken,
             p->error);
}

static void check_round_trip(const struct sg_policy *p)
{
    int n1, n2;
    char *text = format(p, &n1);
    sg_policy_defaults(&again);
    if (sg_policy_parse(&again, "formatted", text, (size_t)n1) != 0)
        FAIL("formatted policy does not parse: %s\n--- text\n%s", again.error, text);
    char *text2 = format(&again, &n2);
    if (n1 != n2 || memcmp(text, text2, (size_t)n1) != 0)
        FAIL("format is not a fixpoint\n--- first\n%s\n--- second\n%s", text, text2);
    free(text);
    free(text2);
}

static void check_match(const struct sg_policy *p)
{
    for (int i = 0; i < p->ndest; i++) {
        const struct sg_dest *d = &p->dest[i];
        int port = d->port ? d->port : 2525;
        const struct sg_dest *m = sg_policy_match(p, d->host, "", port);
        if (!m || strcmp(m->host, d->host) != 0 || (m->port && m->port != port))
            FAIL("section %d (%s:%d) not matched by its own host", d->line, d->host, d->port);
        (void)sg_policy_mode(p, m);
        (void)sg_policy_ca_file(p, m);
        (void)sg_policy_ca_path(p, m);
    }
    (void)sg_policy_match(p, NULL, "127.0.0.1", 25);
    (void)sg_policy_match(p, "localhost.", "::ffff:127.0.0.1", 587);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_policy_defaults(&first);
    if (sg_policy_parse(&first, "fuzz", (const char *)data, size) != 0) {
        check_refusal(&first);
        return 0;
    }
    if (first.broken)
        FAIL("accepted but marked broken: %s", first.error);
    check_round_trip(&first);
    check_match(&first);
    return 0;
}
