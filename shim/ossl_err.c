/* Error codes are packed differently by OpenSSL 1.1 and 3; the library
 * number comes from ERR_get_next_error_library so we clash with nobody. */
#include <pthread.h>

#include "ossl_err.h"

static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned long pack(const struct sg_ossl *o, int lib, int reason)
{
    if (o->kind == SG_OSSL_3)
        return ((unsigned long)(lib & 0x7FFFFF) << 23) | (reason & 0x7FFFFF);
    return ((unsigned long)(lib & 0xFF) << 24) | (reason & 0xFFF);
}

static void errors_init(struct sg_ossl *o)
{
    int lib = o->ERR_get_next_error_library();
    if (lib <= 0)
        return;
    /* The library's own name cannot go through the patching call (an entry
     * of 0 ends the list), so it is loaded packed, with library 0. */
    ERR_STRING_DATA *s = o->strings;
    s[0] = (ERR_STRING_DATA){pack(o, lib, 0), "smtpguard"};
    s[1] = (ERR_STRING_DATA){0, NULL};
    o->ERR_load_strings(0, s);
    for (int r = 1; r < SG_R_COUNT; r++)
        s[r + 1] = (ERR_STRING_DATA){(unsigned long)r, sg_reason_text(r)};
    s[SG_R_COUNT + 1] = (ERR_STRING_DATA){0, NULL};
    o->ERR_load_strings(lib, s + 2);
    o->err_lib = lib;
}

/* Our strings are loaded at the first error we raise in this library, not
 * when it is bound (~30,000 instructions): most processes never raise one.
 * Its own lock: OpenSSL's error functions never call back into us. */
static void errors_once(struct sg_ossl *o)
{
    if (__atomic_load_n(&o->err_ready, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&err_lock);
    if (!o->err_ready) {
        errors_init(o);
        __atomic_store_n(&o->err_ready, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&err_lock);
}

void sg_ossl_error(struct sg_ossl *o, int reason, const char *detail)
{
    errors_once(o);
    int lib = o->err_lib ? o->err_lib : ERR_LIB_SSL;
    int code = o->err_lib ? reason : SSL_R_CERTIFICATE_VERIFY_FAILED;
    if (o->kind == SG_OSSL_3) {
        o->err_new();
        o->err_set_debug("smtpguard", 0, "smtpguard");
        o->err_set_error(lib, code, "%s", detail);
    } else {
        o->err_put_error(lib, 0, code, "smtpguard", 0);
        o->err_add_error_data(1, detail);
    }
}
