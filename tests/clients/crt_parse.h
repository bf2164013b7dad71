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

#endif
