/* gnutls_memo_check: what gnutls_x509_rdn_get2, the authority's and the
 * subject's key identifiers, the validity bounds, basic constraints, key
 * usage and extension identities answer, and how fast a repeated call is.
 *
 *   gnutls_memo_check [--smtp PORT] CERT_FILE...
 *
 * Each PEM file is parsed twice, and a third copy is modified (its version
 * set again: GnuTLS encodes it anew). First REPS calls of both functions on
 * the first object are timed; then --smtp PORT makes an SMTP connection
 * (smtp_gate.h), after which the shim answers repeated calls from its memo
 * (shim/gnutls_memo.c). Then, twice over, every object's answers are printed:
 * the subject and issuer names as strings (flags 0 and COMPAT), the names cut
 * short by a byte, each key identifier asked four ways (room enough, no
 * criticality wanted, one byte of room, no buffer), the validity bounds,
 * basic constraints, key usage and extensions; before the second time, the
 * modified copies' expiry is set anew (NEW_UTC, NEW_GENERAL). Last the same calls are
 * timed again: "speedup" is the first time over the second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "crt_parse.h"
#include "smtp_gate.h"

#define MAX 30
#define REPS 200
/* New expiry dates of the type each had (GnuTLS cannot change it): 2033-05-18
 * as a UTCTime, 2052-05-22 as a GeneralizedTime (from 2050 on). */
#define NEW_UTC 2000000000
#define NEW_GENERAL 2600000000LL
#define GENERAL_FROM 2524608000LL

static void print_name(const char *what, gnutls_datum_t dn, unsigned flags)
{
    gnutls_datum_t s = {NULL, 0};
    int r = gnutls_x509_rdn_get2(&dn, &s, flags);
    printf(" %s/%u=%d:%.*s:%u", what, flags, r, r == 0 ? (int)s.size : 0,
           r == 0 ? (const char *)s.data : "", r == 0 ? (unsigned)strlen((char *)s.data) : 0);
    gnutls_free(s.data);
}

static void print_names(const char *what, gnutls_datum_t dn)
{
    print_name(what, dn, 0);
    print_name(what, dn, GNUTLS_X509_DN_FLAG_COMPAT);
    if (dn.size > 1) { /* a prefix of a name must not be answered as the name */
        dn.size--;
        print_name("short", dn, 0);
    }
}

typedef int key_id_fn(gnutls_x509_crt_t, void *, size_t *, unsigned *);

/* A key identifier (the authority's or the subject's) asked four ways. */
static void print_one_key_id(const char *what, key_id_fn *get, gnutls_x509_crt_t c)
{
    unsigned char id[64];
    size_t size = sizeof id;
    unsigned crit = 7;
    int r = get(c, id, &size, &crit);
    printf(" %s=%d/%zu/%u:", what, r, size, crit);
    for (size_t i = 0; r == 0 && i < size; i++)
        printf("%02x", id[i]);
    size = sizeof id;
    r = get(c, id, &size, NULL);
    printf(" %s_nocrit=%d/%zu", what, r, size);
    size = 1;
    r = get(c, id, &size, NULL);
    printf(" %s_short=%d/%zu", what, r, size);
    size = 0;
    r = get(c, NULL, &size, NULL);
    printf(" %s_null=%d/%zu", what, r, size);
}

static void print_key_id(gnutls_x509_crt_t c)
{
    print_one_key_id("aki", gnutls_x509_crt_get_authority_key_id, c);
    print_one_key_id("ski", gnutls_x509_crt_get_subject_key_id, c);
}

/* The validity bounds, as numbers. */
static void print_times(gnutls_x509_crt_t c)
{
    printf(" not_before=%lld not_after=%lld", (long long)gnutls_x509_crt_get_activation_time(c),
           (long long)gnutls_x509_crt_get_expiration_time(c));
}

/* Basic constraints and key usage: outputs start as sentinels (what GnuTLS
 * leaves alone shows), and each NULL in turn (but key usage's usage:
 * GnuTLS itself does not check it). */
static void print_usage(gnutls_x509_crt_t c)
{
    unsigned crit = 7, ca = 7, ku = 7;
    int path = 77;
    int r = gnutls_x509_crt_get_basic_constraints(c, &crit, &ca, &path);
    printf(" bc=%d/%u/%u/%d", r, crit, ca, path);
    crit = 9, ca = 9, path = 99;
    r = gnutls_x509_crt_get_basic_constraints(c, NULL, &ca, NULL);
    printf(" bc_ca=%d/%u/%u/%d", r, crit, ca, path);
    r = gnutls_x509_crt_get_basic_constraints(c, &crit, NULL, &path);
    printf(" bc_nca=%d/%u/%u/%d", r, crit, ca, path);
    crit = 7;
    r = gnutls_x509_crt_get_key_usage(c, &ku, &crit);
    printf(" ku=%d/%u/%u", r, ku, crit);
    ku = 9, crit = 9;
    r = gnutls_x509_crt_get_key_usage(c, &ku, NULL);
    printf(" ku_nocrit=%d/%u/%u", r, ku, crit);
}

/* Each extension's identity (OID and criticality) with room enough, room
 * for the OID and its NUL exactly, one byte less, no buffer, no critical. */
static void print_extensions(gnutls_x509_crt_t c)
{
    for (unsigned i = 0; i < 12; i++) {
        char oid[128];
        memset(oid, 'x', sizeof oid);
        size_t size = sizeof oid;
        unsigned crit = 7;
        int r = gnutls_x509_crt_get_extension_info(c, i, oid, &size, &crit);
        printf(" ext%u=%d/%zu/%u:%.*s:%d", i, r, size, crit, r == 0 ? (int)size : 0, oid,
               r == 0 ? oid[size] * 256 + oid[size + 1] : -1); /* the NUL, the byte after */
        if (r != 0)
            break;
        size_t need = size + 1;
        size = need;
        memset(oid, 'x', sizeof oid);
        r = gnutls_x509_crt_get_extension_info(c, i, oid, &size, NULL);
        printf(" exact=%d/%zu:%.*s:%d", r, size, (int)size, oid, oid[need - 1] * 256 + oid[need]);
        size = need - 1;
        memset(oid, 'x', sizeof oid);
        r = gnutls_x509_crt_get_extension_info(c, i, oid, &size, &crit);
        printf(" short=%d/%zu/%u:%.4s", r, size, crit, oid);
        size = 0;
        r = gnutls_x509_crt_get_extension_info(c, i, NULL, &size, &crit);
        printf(" null=%d/%zu", r, size);
    }
}

static void print_answers(gnutls_x509_crt_t *c, int n, int round)
{
    for (int i = 0; i < n; i++) {
        gnutls_datum_t subject, issuer;
        printf("%d %d", round, i);
        if (gnutls_x509_crt_get_raw_dn(c[i], &subject) == 0) {
            print_names("subject", subject);
            gnutls_free(subject.data);
        }
        if (gnutls_x509_crt_get_raw_issuer_dn(c[i], &issuer) == 0) {
            print_names("issuer", issuer);
            gnutls_free(issuer.data);
        }
        print_key_id(c[i]);
        print_times(c[i]);
        print_usage(c[i]);
        print_extensions(c[i]);
        printf("\n");
    }
}

static double timed(gnutls_x509_crt_t c)
{
    struct timespec a, b;
    gnutls_datum_t dn, s;
    unsigned char id[64];
    if (gnutls_x509_crt_get_raw_issuer_dn(c, &dn) != 0)
        exit(1);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < REPS; i++) {
        size_t size = sizeof id;
        if (gnutls_x509_rdn_get2(&dn, &s, 0) == 0)
            gnutls_free(s.data);
        gnutls_x509_crt_get_authority_key_id(c, id, &size, NULL);
        size = sizeof id;
        gnutls_x509_crt_get_subject_key_id(c, id, &size, NULL);
        gnutls_x509_crt_get_activation_time(c);
        gnutls_x509_crt_get_expiration_time(c);
        unsigned crit, ca, ku;
        gnutls_x509_crt_get_basic_constraints(c, &crit, &ca, NULL);
        gnutls_x509_crt_get_key_usage(c, &ku, &crit);
        char oid[128];
        size_t oid_size = sizeof oid;
        gnutls_x509_crt_get_extension_info(c, 0, oid, &oid_size, &crit);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    gnutls_free(dn.data);
    return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

int main(int argc, char **argv)
{
    int first = 1, port = 0;
    if (argc >= 3 && !strcmp(argv[1], "--smtp")) {
        port = atoi(argv[2]);
        first = 3;
    }
    gnutls_x509_crt_t c[MAX];
    int n = crt_parse_files(argv + first, argc - first, c, MAX);
    if (n == 0)
        return 1;
    double before = timed(c[0]);
    if (port)
        smtp_gate(port);
    print_answers(c, n, 0);
    /* The modified copies change again after the memo answered for them: the
     * second round must show the new bound, not a kept one. */
    for (int i = 2; i < n; i += 3) {
        time_t t = gnutls_x509_crt_get_expiration_time(c[i]);
        if (gnutls_x509_crt_set_expiration_time(c[i], t < GENERAL_FROM ? NEW_UTC : NEW_GENERAL) < 0)
            return 1;
    }
    print_answers(c, n, 1);
    double after = timed(c[0]);
    printf("speedup %.2f\n", before / after);
    for (int i = 0; i < n; i++)
        gnutls_x509_crt_deinit(c[i]);
    return 0;
}
