/* The policy narrows a GnuTLS program's priority, it does not replace it:
 * a program that limits itself (Exim's tls_require_ciphers, msmtp's
 * tls_priorities, TLS 1.3 only, one cipher) keeps its limits, and the
 * handshake offers what the program's priority offers minus what the
 * policy's string excludes. Where nothing would remain (a program asking
 * only for TLS 1.0, or only for CBC ciphers) the policy's own string is set,
 * so careless programs keep working with strong ciphers.
 *
 * How: the program's priority (gnutls_prio.c) is made into a cache, what it
 * enables that the policy's string does not (versions; under a TLS 1.2
 * minimum also key exchanges, ciphers, MACs) is appended as removals, and
 * GnuTLS says whether a version and a cipher suite remain. Removals only:
 * nothing the program left out comes back. Names are GnuTLS's own
 * (gnutls_*_get_name), so any GnuTLS version parses them.
 *
 * A session whose priority the shim did not see (set through a cache made
 * before the shim could see it, a string too long to keep, a full table)
 * gets the policy's string: it may have narrowed in a way the shim cannot
 * know, and the policy's string is the narrowest the policy allows. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gnutls_prio.h"

#define REMOVALS_MAX 1536 /* about 70 names; more: the policy's string */
#define SUITES_MAX 4096   /* a bound on GnuTLS's suite list */

struct removals {
    char text[REMOVALS_MAX];
    size_t len;
    int overflow; /* a name that did not fit or has none: not narrowable */
};

static void remove_name(struct removals *r, const char *prefix, const char *name)
{
    int n = name ? snprintf(r->text + r->len, sizeof r->text - r->len, "%s-%s%s",
                            r->len ? ":" : "", prefix, name)
                 : -1;
    if (n < 0 || (size_t)n >= sizeof r->text - r->len)
        r->overflow = 1;
    else
        r->len += (size_t)n;
}

/* What the policy's strings allow (gnutls.c priority()): TLS 1.3, and
 * TLS 1.2 with ECDHE, AES-GCM or ChaCha20-Poly1305 and AEAD records. */
static int version_ok(unsigned v, int tls13_only)
{
    return v == GNUTLS_TLS1_3 || (v == GNUTLS_TLS1_2 && !tls13_only);
}

static int kx_ok(unsigned k)
{
    return k == GNUTLS_KX_ECDHE_RSA || k == GNUTLS_KX_ECDHE_ECDSA;
}

static int cipher_ok(unsigned c)
{
    return c == GNUTLS_CIPHER_AES_256_GCM || c == GNUTLS_CIPHER_CHACHA20_POLY1305 ||
           c == GNUTLS_CIPHER_AES_128_GCM;
}

static int mac_ok(unsigned m)
{
    return m == GNUTLS_MAC_AEAD;
}

/* Everything c enables that the policy excludes, as removals. The TLS 1.3
 * string limits versions only (its suites are all forward-secret AEAD). */
static void removals_for(struct sg_gnutls *g, gnutls_priority_t c, int tls13_only,
                         struct removals *r)
{
    const unsigned *list;
    int n = g->gnutls_priority_protocol_list(c, &list);
    for (int i = 0; i < n; i++)
        if (!version_ok(list[i], tls13_only))
            remove_name(r, "VERS-", g->gnutls_protocol_get_name(list[i]));
    if (tls13_only)
        return;
    n = g->gnutls_priority_kx_list(c, &list);
    for (int i = 0; i < n; i++)
        if (!kx_ok(list[i]))
            remove_name(r, "", g->gnutls_kx_get_name(list[i]));
    n = g->gnutls_priority_cipher_list(c, &list);
    for (int i = 0; i < n; i++)
        if (!cipher_ok(list[i]))
            remove_name(r, "", g->gnutls_cipher_get_name(list[i]));
    n = g->gnutls_priority_mac_list(c, &list);
    for (int i = 0; i < n; i++)
        if (!mac_ok(list[i]))
            remove_name(r, "", g->gnutls_mac_get_name(list[i]));
}

/* The program's priority with extra appended, as a cache in *c. */
static int init_as(struct sg_gnutls *g, const struct sg_gnutls_prio *p, const char *extra,
                   gnutls_priority_t *c)
{
    char s[SG_PRIO_MAX + REMOVALS_MAX + 16];
    const char *err = NULL;
    size_t n = strlen(p->text);
    while (n > 0 && p->text[n - 1] == ':') /* "NORMAL:" + ":-X" would be an empty item */
        n--;
    const char *base = p->def && !g->gnutls_priority_init2 ? "NORMAL:" : ""; /* before 3.6.3 */
    snprintf(s, sizeof s, "%s%.*s%s%s", base, (int)n, p->text, n && *extra ? ":" : "", extra);
    size_t len = strlen(s);
    if (len && s[len - 1] == ':')
        s[len - 1] = 0;
    if (p->def && !*s)
        return g->gnutls_priority_init(c, NULL, &err); /* the library's default */
    if (p->def && g->gnutls_priority_init2)
        return g->gnutls_priority_init2(c, s, &err, GNUTLS_PRIORITY_INIT_DEF_APPEND);
    return g->gnutls_priority_init(c, s, &err);
}

/* A version and a cipher suite for it remain (GnuTLS 3.7 refuses an empty
 * cache itself; a suite no enabled version can use is not counted). */
static int usable(struct sg_gnutls *g, gnutls_priority_t c)
{
    const unsigned *versions;
    if (g->gnutls_priority_protocol_list(c, &versions) <= 0)
        return 0;
    for (unsigned i = 0; i < SUITES_MAX; i++) {
        unsigned index;
        int r = g->gnutls_priority_get_cipher_suite_index(c, i, &index);
        if (r == 0)
            return 1;
        if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
    }
    return 0;
}

static gnutls_priority_t keep_if_usable(struct sg_gnutls *g, gnutls_priority_t c)
{
    if (usable(g, c))
        return c;
    g->gnutls_priority_deinit(c);
    return NULL;
}

int sg_gnutls_suite_allowed(unsigned version, unsigned kx, unsigned cipher, int tls13_only)
{
    return version_ok(version, tls13_only) &&
           (tls13_only || (cipher_ok(cipher) && (version == GNUTLS_TLS1_3 || kx_ok(kx))));
}

/* 1 when this GnuTLS's default priority is NORMAL: no system priority file
 * (GnuTLS then takes its built-in default, NORMAL in Debian's build, which
 * tests/test_gnutls_priority.py checks). NORMAL narrowed by the policy is
 * the policy's own string (gnutls.c priority()), so a program that kept
 * GnuTLS's default gets that string at once: its priority is not built twice
 * to learn what to remove (~110,000 instructions a process, issue 15). A
 * system file, or a GnuTLS that cannot say where it is, is narrowed as any
 * other priority. Asked once a process (the file is read once by GnuTLS too). */
static int default_is_normal(struct sg_gnutls *g)
{
    static int known; /* 0 not asked, 1 NORMAL, -1 not known to be */
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (!k) {
        const char *f =
            g->gnutls_get_system_config_file ? g->gnutls_get_system_config_file() : NULL;
        struct stat st;
        k = f && stat(f, &st) != 0 && errno == ENOENT ? 1 : -1;
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k > 0;
}

/* The program's priority narrowed by the policy, or NULL. */
static gnutls_priority_t narrowed(struct sg_gnutls *g, gnutls_session_t s, int tls13_only)
{
    struct sg_gnutls_prio mine;
    struct removals r = {.len = 0};
    gnutls_priority_t c;
    if (!sg_gnutls_prio_of(s, &mine) || (mine.def && !mine.text[0] && default_is_normal(g)) ||
        init_as(g, &mine, "", &c) < 0)
        return NULL; /* the policy's string */
    removals_for(g, c, tls13_only, &r);
    if (!r.len && !r.overflow) /* already within the policy */
        return keep_if_usable(g, c);
    g->gnutls_priority_deinit(c);
    if (r.overflow || init_as(g, &mine, r.text, &c) < 0)
        return NULL;
    return keep_if_usable(g, c);
}

int sg_gnutls_narrow(struct sg_gnutls *g, gnutls_session_t s, int tls13_only, const char *policy)
{
    gnutls_priority_t c = narrowed(g, s, tls13_only);
    if (c) {
        int r = g->gnutls_priority_set(s, c);
        g->gnutls_priority_deinit(c); /* the session keeps its own reference or copy */
        if (r == 0)
            return 0;
    }
    return g->gnutls_priority_set_direct(s, policy, NULL);
}
