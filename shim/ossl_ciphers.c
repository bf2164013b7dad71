/* The policy's ciphers as a restriction of the program's own choice: the
 * program may add strictness, never lose it. An SMTP client's ClientHello
 * offers the program's TLS 1.2 ciphers and TLS 1.3 suites that the policy
 * allows, in the program's order; where the policy allows none of a part
 * (a program that names only AES128-SHA, say), that part gets the policy's
 * list, so a careless program still speaks with strong ciphers.
 *
 * Replacing the program's list with SSL_set_cipher_list both widened a
 * program that had narrowed its own and rebuilt OpenSSL's whole cipher table
 * (~127,000 instructions a process, issue 15). Instead a security callback,
 * chained to the one the SSL had, refuses a cipher the policy does not allow
 * where OpenSSL asks about one: building the ClientHello
 * (SSL_SECOP_CIPHER_SUPPORTED), checking the server's choice
 * (SSL_SECOP_CIPHER_CHECK), choosing (SSL_SECOP_CIPHER_SHARED). Every other
 * question the previous callback answers: the security level stays in force.
 *
 * OpenSSL hands a callback no data of ours (the security ex data is the
 * program's), so each distinct (library, previous callback) pair gets one of
 * a few trampolines of a process-wide table, filled once and never changed:
 * nothing is allocated per SSL. When the table is full the policy's lists
 * replace the program's, as they always did. */
#include <string.h>

#include "config.h"
#include "locks.h"
#include "ossl_ciphers.h"
#include "scope.h"

/* The policy's default TLS 1.2 rule, which the predicate below answers for
 * without OpenSSL's rule parser (tests/test_cipher_rule.py proves it selects
 * the same ciphers, OpenSSL 3 and 1.1). Another rule replaces the program's
 * TLS 1.2 list as written: only OpenSSL's parser knows what it selects. */
#define DEFAULT_RULE "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
/* The default rule spelled as the names it selects, in the order OpenSSL
 * 1.1.1 and 3 rank them, for a program of which the policy allows no TLS 1.2
 * cipher: the same list, ~26,000 of the ~175,000 instructions of
 * SSL_set_cipher_list fewer (each rule is a pass over OpenSSL's whole cipher
 * table). Names a build lacks are skipped, as the rule would skip them.
 * tests/test_cipher_names.py shows both spellings offer the same ClientHello. */
#define DEFAULT_NAMES                                                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                        \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

typedef int (*sec_cb)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

/* Set before any callback is installed, the same every time (the policy is
 * frozen): 1 when the policy's ciphers are the default rule. */
static int rule_default;

static int is_default(const struct sg_policy *p)
{
    return strcmp(p->ciphers, DEFAULT_RULE) == 0;
}

/* "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL" as a question about one cipher. */
static int default_rule_selects(struct sg_ossl *o, const SSL_CIPHER *c)
{
    if (o->SSL_CIPHER_get_kx_nid(c) != NID_kx_ecdhe)
        return 0;
    int enc = o->SSL_CIPHER_get_cipher_nid(c);
    return (enc == NID_aes_128_gcm || enc == NID_aes_256_gcm || enc == NID_chacha20_poly1305) &&
           o->SSL_CIPHER_get_auth_nid(c) != NID_auth_null;
}

/* A TLS 1.3 suite's name (OpenSSL names them by their standard names) is an
 * entry of the policy's colon-separated ciphersuites. (memchr and sg_starts:
 * strcspn, a libc function the library did not import, cost every exec ~650
 * more instructions in the loader, callgrind on /bin/true; strchr and
 * strncmp a lazy binding each in every OpenSSL process.) */
static int in_suites(const char *list, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    const char *end = list + strlen(list);
    for (const char *e = list; n && e; e = memchr(e, ':', (size_t)(end - e)), e = e ? e + 1 : NULL)
        if (sg_starts(e, name) && (e[n] == ':' || e[n] == 0))
            return 1;
    return 0;
}

static int is_tls13(struct sg_ossl *o, const SSL_CIPHER *c)
{
    return o->SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

/* Does the policy allow c? TLS 1.2 ciphers are judged only under the
 * default rule (another rule's list replaced the program's). */
static int allowed(struct sg_ossl *o, const SSL_CIPHER *c, const struct sg_policy *p,
                   int deflt)
{
    if (is_tls13(o, c))
        return in_suites(p->ciphersuites, o->SSL_CIPHER_get_name(c));
    return !deflt || default_rule_selects(o, c);
}

/* ------------------------------------------------------------------ */
/* The trampolines                                                    */

#define SLOTS 8
static struct slot {
    struct sg_ossl *o;
    sec_cb prev;
} slots[SLOTS];
static int used; /* slots filled, published with release */

static int judge(const struct slot *w, const SSL *s, const SSL_CTX *ctx, int op, int bits,
                 int nid, void *other, void *ex)
{
    if ((op == SSL_SECOP_CIPHER_SUPPORTED || op == SSL_SECOP_CIPHER_SHARED ||
         op == SSL_SECOP_CIPHER_CHECK) && other &&
        !allowed(w->o, other, sg_config(), __atomic_load_n(&rule_default, __ATOMIC_RELAXED)))
        return 0;
    return w->prev(s, ctx, op, bits, nid, other, ex);
}

#define SG_TRAMPOLINE(i)                                                                   \
    static int trampoline##i(const SSL *s, const SSL_CTX *ctx, int op, int bits, int nid,  \
                             void *other, void *ex)                                        \
    {                                                                                      \
        return judge(&slots[i], s, ctx, op, bits, nid, other, ex);                         \
    }
SG_TRAMPOLINE(0) SG_TRAMPOLINE(1) SG_TRAMPOLINE(2) SG_TRAMPOLINE(3)
SG_TRAMPOLINE(4) SG_TRAMPOLINE(5) SG_TRAMPOLINE(6) SG_TRAMPOLINE(7)
_Static_assert(SLOTS == 8, "one trampoline a slot");

/* A switch, not a table of pointers: a table would cost a relocation each
 * at every exec of every program. */
static sec_cb trampoline(int i)
{
    switch (i) {
    case 0: return trampoline0;
    case 1: return trampoline1;
    case 2: return trampoline2;
    case 3: return trampoline3;
    case 4: return trampoline4;
    case 5: return trampoline5;
    case 6: return trampoline6;
    default: return trampoline7;
    }
}

static int is_ours(sec_cb cb)
{
    for (int i = 0; i < SLOTS; i++)
        if (cb == trampoline(i))
            return 1;
    return 0;
}

static int find(struct sg_ossl *o, sec_cb prev)
{
    int n = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (slots[i].o == o && slots[i].prev == prev)
            return i;
    return -1;
}

/* The slot chaining prev for library o, made when new; -1 when full. */
static int slot_for(struct sg_ossl *o, sec_cb prev)
{
    int i = find(o, prev);
    if (i >= 0)
        return i;
    pthread_mutex_lock(&sg_lock_tls);
    i = find(o, prev);
    if (i < 0 && used < SLOTS) {
        i = used;
        slots[i] = (struct slot){o, prev};
        __atomic_store_n(&used, i + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sg_lock_tls);
    return i;
}

/* 1 when s's security callback now refuses what the policy does not allow. */
static int chain(struct sg_ossl *o, SSL *s)
{
    sec_cb prev = o->SSL_get_security_callback(s);
    if (is_ours(prev)) /* a second handshake of the same SSL */
        return 1;
    int i = prev ? slot_for(o, prev) : -1;
    if (i < 0)
        return 0;
    o->SSL_set_security_callback(s, trampoline(i));
    return 1;
}

/* ------------------------------------------------------------------ */

/* Does the program's list hold a TLS 1.2 cipher (*any12) and a TLS 1.3
 * suite (*any13) that the policy allows? Stops at the first of each. */
static void program_allows(struct sg_ossl *o, SSL *s, const struct sg_policy *p, int deflt,
                           int *any12, int *any13)
{
    *any12 = *any13 = 0;
    if (!deflt)
        *any12 = -1; /* not asked: the rule replaces the program's TLS 1.2 list */
    OPENSSL_STACK *sk = (OPENSSL_STACK *)o->SSL_get_ciphers(s);
    int n = sk ? o->OPENSSL_sk_num(sk) : 0;
    for (int i = 0; i < n && (!*any12 || !*any13); i++) {
        const SSL_CIPHER *c = o->OPENSSL_sk_value(sk, i);
        int *any = is_tls13(o, c) ? any13 : any12;
        if (!*any && allowed(o, c, p, deflt))
            *any = 1;
    }
}

int sg_ossl_cipher_allowed(struct sg_ossl *o, const SSL_CIPHER *c, const struct sg_policy *p)
{
    return allowed(o, c, p, is_default(p));
}

int sg_ossl_apply_ciphers(struct sg_ossl *o, SSL *s, const struct sg_policy *p)
{
    int deflt = is_default(p), keep12, keep13;
    __atomic_store_n(&rule_default, deflt, __ATOMIC_RELAXED);
    program_allows(o, s, p, deflt, &keep12, &keep13);
    keep12 = keep12 > 0;
    if ((keep12 || keep13) && !chain(o, s))
        keep12 = keep13 = 0; /* no trampoline left: the policy's lists, as before */
    if (!keep12 && o->SSL_set_cipher_list(s, deflt ? DEFAULT_NAMES : p->ciphers) != 1)
        return 0;
    return keep13 || o->SSL_set_ciphersuites(s, p->ciphersuites) == 1;
}
