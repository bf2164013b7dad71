/* crt_equals: gnutls_x509_crt_equals on every ordered pair of certificates.
 *
 *   crt_equals [--smtp PORT] CERT_FILE...
 *
 * Each PEM file is parsed twice, and a third copy is modified (its version
 * set again, which makes GnuTLS re-encode it). For every ordered pair of
 * these objects it prints "I J ANSWER", then "dn_strings N": how many times
 * GnuTLS rendered a name as a string meanwhile (this program defines
 * gnutls_x509_rdn_get2 to count the calls libgnutls makes to it; built with
 * -rdynamic). --smtp PORT: first an SMTP connection (smtp_gate.h), after
 * which the shim compares certificates itself (shim/gnutls_equals.c). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "crt_parse.h"
#include "smtp_gate.h"

#define MAX 30

static unsigned long dn_strings;

int gnutls_x509_rdn_get2(const gnutls_datum_t *idn, gnutls_datum_t *str, unsigned flags)
{
    static int (*real)(const gnutls_datum_t *, gnutls_datum_t *, unsigned);
    if (!real)
        real = (int (*)(const gnutls_datum_t *, gnutls_datum_t *, unsigned))dlsym(
            RTLD_NEXT, "gnutls_x509_rdn_get2");
    dn_strings++;
    return real(idn, str, flags);
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc >= 3 && !strcmp(argv[1], "--smtp")) {
        smtp_gate(atoi(argv[2]));
        first = 3;
    }
    gnutls_x509_crt_t c[MAX];
    int n = crt_parse_files(argv + first, argc - first, c, MAX);
    dn_strings = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            printf("%d %d %u\n", i, j, gnutls_x509_crt_equals(c[i], c[j]));
    printf("dn_strings %lu\n", dn_strings);
    for (int i = 0; i < n; i++)
        gnutls_x509_crt_deinit(c[i]);
    return 0;
}
