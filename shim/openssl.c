/* The OpenSSL entry points that can run a handshake. Each finds the library
 * its caller really uses, passes anything that is not OpenSSL (or that we
 * cannot drive) straight through, and otherwise lets tls.c decide. */
#include "inside.h"
#include "ossl.h"
#include "real.h"
#include "ossl_tls.h"

#define CALLER __builtin_return_address(0)

/* Resolve o for this caller; calls the library itself makes while a real
 * OpenSSL call the shim made is under way (inside.h: OpenSSL's QUIC drives
 * its inner TLS object with SSL_do_handshake and SSL_read), and objects of
 * other libraries, go straight to the real function. A library function
 * that tail-calls another export (OpenSSL 3's SSL_connect ends in a jump to
 * SSL_do_handshake) has the shim's own call site as return address: that
 * call is the library's too, on the object the real call drives. Any call of
 * the program is judged, inside a real call or not, on any object: a program
 * that left a real call by a jump gets its later sessions judged, and so does
 * its retry of the very object it left (its stale mark may look live:
 * inside.h), which went direct, with no verdict, while calls on the driven
 * object were exempt by object alone. */
static inline __attribute__((always_inline)) int nested(struct sg_ossl *o, SSL *s,
                                                        const void *caller)
{
    return sg_inside() && (sg_lib_holds(&o->lib, caller) ||
                           (sg_inside_is(s) && sg_is_own_address(caller)));
}

#define ENTRY(name, fail, direct)                                              \
    struct sg_ossl *o = sg_ossl_for_caller(CALLER, #name);                     \
    if (SG_UNLIKELY(!o || !o->name))                                           \
        return fail;                                                           \
    if (SG_UNLIKELY(o->kind == SG_OSSL_FOREIGN || !o->lib.complete ||          \
                    nested(o, s, CALLER)))                                     \
        return direct;

#define IO_CALL(name, fail, call)                                              \
    ENTRY(name, fail, call)                                                    \
    int ok_ = sg_tls_before_io(o, s);                                          \
    if (SG_UNLIKELY(ok_ == SG_UNDRIVABLE))                                     \
        return call;                                                           \
    if (ok_ != 1)                                                              \
        return ok_ <= 0 && (fail) == 0 ? 0 : ok_;                              \
    struct sg_inside in_;                                                      \
    sg_inside_enter(&in_, s);                                                  \
    __typeof__(call) r_ = call;                                                \
    sg_inside_leave(&in_);                                                     \
    return r_;

SG_EXPORT int SSL_connect(SSL *s)
{
    ENTRY(SSL_connect, -1, o->SSL_connect(s))
    return sg_tls_handshake(o, s, o->SSL_connect, 1);
}

SG_EXPORT int SSL_do_handshake(SSL *s)
{
    ENTRY(SSL_do_handshake, -1, o->SSL_do_handshake(s))
    return sg_tls_handshake(o, s, o->SSL_do_handshake, 0);
}

SG_EXPORT int SSL_write(SSL *s, const void *buf, int n)
{
    IO_CALL(SSL_write, -1, o->SSL_write(s, buf, n))
}

SG_EXPORT int SSL_write_ex(SSL *s, const void *buf, size_t n, size_t *written)
{
    IO_CALL(SSL_write_ex, 0, o->SSL_write_ex(s, buf, n, written))
}

SG_EXPORT int SSL_read(SSL *s, void *buf, int n)
{
    IO_CALL(SSL_read, -1, o->SSL_read(s, buf, n))
}

SG_EXPORT int SSL_read_ex(SSL *s, void *buf, size_t n, size_t *got)
{
    IO_CALL(SSL_read_ex, 0, o->SSL_read_ex(s, buf, n, got))
}

SG_EXPORT int SSL_peek(SSL *s, void *buf, int n)
{
    IO_CALL(SSL_peek, -1, o->SSL_peek(s, buf, n))
}

SG_EXPORT int SSL_peek_ex(SSL *s, void *buf, size_t n, size_t *got)
{
    IO_CALL(SSL_peek_ex, 0, o->SSL_peek_ex(s, buf, n, got))
}
