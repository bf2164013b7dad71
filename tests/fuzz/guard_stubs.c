/* What shim/guard.c needs besides fdstate, smtp and the policy, for the guard
 * fuzz target: a policy the target sets per input, and a log that only checks
 * what it is given (a refusal always carries a reason; no line carries bytes of
 * the program's data, which the target makes sure contain no '\x01'). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns_sock.h"
#include "inside.h"
#include "log.h"
#include "real.h"
#include "tlsbind.h"
#include "wire_io.h"

/* guard.c's REAL(recv) (its MSG_PEEK injection check): libc's own, bound as
 * shim/real.c binds it. */
struct sg_libc sg_libc;

void *sg_real_bind(void **slot, const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    return fn;
}

struct sg_policy fuzz_policy;
const struct sg_policy *sg_config_loaded = &fuzz_policy;

const struct sg_policy *sg_config(void)
{
    return &fuzz_policy;
}

int sg_config_smtp_port(int port)
{
    return sg_port_in(fuzz_policy.smtp_ports, fuzz_policy.smtp_blocks, port);
}

void sg_config_rule(const struct sg_dest *d, char *out, size_t len)
{
    snprintf(out, len, "fuzz:%d", d ? d->line : 0);
}

void sg_log_event(const struct sg_policy *p, const struct sg_event *e)
{
    (void)p;
    if (e->verdict != SG_ACCEPTED && (!e->reason || !e->check)) {
        fprintf(stderr, "fuzz_guard: a refusal without check or reason\n");
        abort();
    }
}

void sg_log_note(const struct sg_policy *p, const char *fmt, ...)
{
    (void)p;
    (void)fmt;
}

/* A hooked session claims every ClientHello sent from inside a TLS library. */
int sg_bind_claimed(const unsigned char random[SG_RANDOM_LEN], int fd)
{
    (void)random;
    (void)fd;
    return sg_inside();
}

/* A program's own DNS sockets (shim/dns_sock.c) are not part of this target. */
int sg_dns_sock_received(int fd, const struct iovec *iov, int iovcnt, size_t n)
{
    (void)fd;
    (void)iov;
    (void)iovcnt;
    (void)n;
    return 0;
}

/* The wire reader has its own target (fuzz_wire): here TLS no hook drives
 * passes unjudged, as the guard alone leaves it. */
int sg_wire_before_send(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt)
{
    (void)fd, (void)c, (void)iov, (void)iovcnt;
    return 0;
}

void sg_wire_sent(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    (void)fd, (void)c, (void)iov, (void)iovcnt, (void)n;
}

int sg_wire_received(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    (void)fd, (void)c, (void)iov, (void)iovcnt, (void)n;
    return 0;
}

void sg_wire_hello_sent(struct sg_conn *c, const struct iovec *iov, int iovcnt, size_t n)
{
    (void)c, (void)iov, (void)iovcnt, (void)n;
}

void sg_wire_release(struct sg_conn *c)
{
    c->wire = NULL;
}

/* locks.c's fork-child handler resets the handshake table (shim/tlsbind.c),
 * which is not part of this target. */
void sg_bind_forked(void)
{
}

/* A record found stale is re-classified by its peer (shim/classify.c): here
 * no descriptor names a real socket, so there is nothing to adopt. */
void sg_adopt(int fd)
{
    (void)fd;
}
