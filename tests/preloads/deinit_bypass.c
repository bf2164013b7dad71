/* libdeinit_bypass.so: preloaded before libsmtpguard.so, it takes GnuTLS's
 * calls to gnutls_x509_crt_deinit and makes them straight to libgnutls's own,
 * as a GnuTLS built to skip its PLT for its internal calls would: the shim
 * never sees a certificate freed (tests/test_gnutls_memo.py). */
#include <dlfcn.h>
#include <gnutls/x509.h>

void gnutls_x509_crt_deinit(gnutls_x509_crt_t crt)
{
    static void (*own)(gnutls_x509_crt_t);
    if (!own) {
        void *h = dlopen("libgnutls.so.30", RTLD_NOW | RTLD_NOLOAD);
        own = h ? (void (*)(gnutls_x509_crt_t))dlsym(h, "gnutls_x509_crt_deinit") : NULL;
    }
    if (own)
        own(crt);
}
