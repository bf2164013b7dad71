/* gnutls_x509_crt_equals as the byte comparison it amounts to.
 *
 * Why: GnuTLS 3.7 first compares the two subjects, and when their DER
 * differs it renders both as RFC 4514 strings to compare those (about 80,000
 * instructions), before comparing the certificates' DER. Each verification
 * of a chain against a trust list compares the server's certificate with the
 * anchor this way: once in the program's own check, once in the shim's
 * verdict (issue 15).
 *
 * Why the answer is the same: GnuTLS answers 1 only when the two DER
 * encodings are equal byte for byte (re-encoding a modified certificate); the
 * subject comparison can only answer 0 earlier, for certificates whose DER
 * differs anyway. Here: the DER of the second (gnutls_x509_crt_export2, a
 * copy of what was parsed, or the re-encoding) compared with the first's by
 * gnutls_x509_crt_equals2. Where that could differ, GnuTLS answers: a failed
 * export (memory), a NULL, and GnuTLS before 3.6.3, whose export2 re-encodes
 * what it parsed (a certificate not in canonical DER then differs from its
 * own copy).
 *
 * Only after the process has had an SMTP connection (smtp_seen.h): before,
 * GnuTLS's own function answers. */
#include "gnutls_api.h"
#include "real.h"
#include "smtp_seen.h"

#define CALLER __builtin_return_address(0)

SG_EXPORT unsigned gnutls_x509_crt_equals(gnutls_x509_crt_t a, gnutls_x509_crt_t b)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_x509_crt_equals");
    if (SG_UNLIKELY(!g || !g->gnutls_x509_crt_equals))
        SG_GNUTLS_PASS_ON(gnutls_x509_crt_equals, 0, a, b);
    gnutls_datum_t der;
    if (!sg_smtp_ever() || !a || !sg_gnutls_der(g, b, &der))
        return g->gnutls_x509_crt_equals(a, b);
    unsigned same = g->gnutls_x509_crt_equals2(a, &der);
    (*g->free_fn)(der.data);
    return same;
}
