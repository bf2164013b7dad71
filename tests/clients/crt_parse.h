/* crt_parse: a certificate from a PEM file for the GnuTLS test clients, the
 * third copy of each modified (its version set again, which makes GnuTLS
 * encode it anew). Exits 1 when it cannot. */
#ifndef CRT_PARSE_H
#define CRT_PARSE_H

#include <stdio.h>
#include <stdlib.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

static gnutls_x509_crt_t crt_parse(const char *path, int modify)
{
    gnutls_datum_t pem;
    gnutls_x509_crt_t c;
    if (gnutls_load_file(path, &pem) < 0 || gnutls_x509_crt_init(&c) < 0 ||
        gnutls_x509_crt_import(c, &pem, GNUTLS_X509_FMT_PEM) < 0) {
        fprintf(stderr, "cannot parse %s\n", path);
        exit(1);
    }
    gnutls_free(pem.data);
    if (modify && gnutls_x509_crt_set_version(c, (unsigned)gnutls_x509_crt_get_version(c)) < 0) {
        fprintf(stderr, "cannot modify %s\n", path);
        exit(1);
    }
    return c;
}

/* Each of the files parsed twice and once modified, into c (at most max):
 * how many. */
static int crt_parse_files(char **files, int nfiles, gnutls_x509_crt_t *c, int max)
{
    int n = 0;
    for (int i = 0; i < nfiles && n + 3 <= max; i++)
        for (int copy = 0; copy < 3; copy++)
            c[n++] = crt_parse(files[i], copy == 2);
    return n;
}

#endif
