/* Guard decisions. A send is judged whole before any of it leaves: the
 * tracker runs over a copy of its state, and only bytes the kernel took
 * advance the real state. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "classify.h"
#include "config.h"
#include "dns_sock.h"
#include "fdstate.h"
#include "guard.h"
#include "inside.h"
#include "log.h"
#include "real.h"
#include "decision.h"
#include "wire_io.h"

static void set_phase(struct sg_conn *c, int phase)
{
    __atomic_store_n(&c->phase, phase, __ATOMIC_RELEASE);
}

void sg_guard_connected(int fd, int implicit)
{
    struct sg_conn *c = sg_conn_peek(fd);
    const struct sg_policy *p = sg_config();
    if (!c)
        return;
    if (sg_port_in(p->proxy_ports, p->proxy_blocks, c->port)) {
        /* A proxy: its request names the destination (proxy_learned). */
        c->px_out.state = c->px_in.state = SG_PX_ACTIVE;
        return;
    }
    c->implicit = implicit;
    if (implicit)
        set_phase(c, SG_TLS_WANTED);
}

void sg_guard_inherited(int fd, int implicit)
{
    struct sg_conn *c = sg_conn_peek(fd);
    if (c) {
        c->implicit = implicit;
        set_phase(c, SG_INHERITED);
    }
}

void sg_guard_tls_ok(int fd)
{
    struct sg_conn *c = sg_conn_get(fd);
    if (c && c->phase != SG_DEAD)
        set_phase(c, SG_TLS_OK);
}

void sg_guard_refused(int fd)
{
    struct sg_conn *c = sg_conn_get(fd);
    if (c)
        set_phase(c, SG_DEAD);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

int sg_guard_injection_seen(int fd)
{
    struct sg_conn *c = sg_conn_get(fd);
    return c && !c->implicit && c->injected;
}

int sg_guard_injected(int fd)
{
    struct sg_conn *c = sg_conn_get(fd);
    if (!c || c->implicit)
        return 0;
    char byte;
    /* REAL: what our recv() does with MSG_PEEK, without binding to itself. */
    return c->injected || REAL(recv)(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void log_plain(struct sg_conn *c, int verdict, const char *check, const char *reason)
{
    char rule[SG_PATH_MAX + SG_HOST_MAX + 32];
    const struct sg_policy *p = sg_config();
    sg_config_rule(sg_policy_match(p, c->host, c->addr, c->port), rule, sizeof rule);
    struct sg_event e = {.verdict = verdict, .what = "plaintext", .host = c->host,
                         .addr = c->addr, .port = c->port, .check = check,
                         .reason = reason, .rule = rule};
    sg_log_event(p, &e);
}

static int refuse(int fd, struct sg_conn *c, const char *check, const char *reason)
{
    const struct sg_policy *p = sg_config();
    int mode = sg_policy_mode(p, sg_policy_match(p, c->host, c->addr, c->port));
    if (mode == SG_MODE_AUDIT && !p->broken) {
        /* One line per session: MAIL, RCPT and DATA are one decision. */
        if (!__atomic_exchange_n(&c->audit_logged, 1, __ATOMIC_RELAXED))
            log_plain(c, SG_WOULD_REFUSE, check, reason);
        return 0;
    }
    log_plain(c, SG_REFUSED, check, reason);
    sg_guard_refused(fd);
    errno = EACCES;
    return -1;
}

/* The first byte of the data, or -1 when there is none. */
static int first_byte(const struct iovec *iov, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len)
            return ((const unsigned char *)iov[i].iov_base)[0];
    return -1;
}

static int is_tls_record(const struct iovec *iov, int iovcnt)
{
    return first_byte(iov, iovcnt) == 0x16;
}

static unsigned scan(struct sg_smtp_out *st, const struct iovec *iov, int iovcnt, size_t limit)
{
    unsigned seen = 0;
    for (int i = 0; i < iovcnt && limit; i++) {
        size_t n = iov[i].iov_len < limit ? iov[i].iov_len : limit;
        seen |= sg_smtp_out_feed(st, iov[i].iov_base, n);
        limit -= n;
    }
    return seen;
}

static int check_plaintext(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt)
{
    const struct sg_policy *p = sg_config();
    struct sg_smtp_out probe = c->out;
    unsigned seen = scan(&probe, iov, iovcnt, (size_t)-1);
    unsigned secret = seen & SG_V_SECRET;
    if (!secret || (!p->require_tls && !p->broken))
        return 0;
    char reason[128];
    snprintf(reason, sizeof reason, "%s before TLS was established (require_tls = yes)",
             sg_smtp_verb_name(secret & -secret));
    return refuse(fd, c, "plaintext", reason);
}

/* Once the client random is complete, a ClientHello no hooked session
 * claims goes to the wire reader, these very bytes included. */
static int after_hello(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt)
{
    if (__atomic_load_n(&c->phase, __ATOMIC_ACQUIRE) != SG_TLS_FOREIGN)
        return 0;
    return sg_wire_before_send(fd, c, iov, iovcnt);
}

/* ---- Proxies (proxy_ports): the request names the real destination ---- */

static size_t iov_total(const struct iovec *iov, int iovcnt, size_t limit)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt && n < limit; i++)
        n += iov[i].iov_len < limit - n ? iov[i].iov_len : limit - n;
    return n;
}

static size_t px_out_scan(struct sg_px_out *st, const struct iovec *iov, int iovcnt,
                          size_t limit)
{
    size_t used = 0;
    for (int i = 0; i < iovcnt && limit && st->state == SG_PX_ACTIVE; i++) {
        size_t n = iov[i].iov_len < limit ? iov[i].iov_len : limit;
        used += sg_px_out_feed(st, iov[i].iov_base, n);
        limit -= n;
    }
    return used;
}

/* Judged on a copy: the request must be one this parser knows, and nothing
 * for the tunnel may ride along with it (it could not be judged). */
static int proxy_before_send(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt)
{
    struct sg_px_out probe = c->px_out;
    size_t used = px_out_scan(&probe, iov, iovcnt, (size_t)-1);
    if (probe.state == SG_PX_BAD)
        return refuse(fd, c, "proxy", "not a SOCKS or HTTP CONNECT request on a proxy port");
    if (probe.state == SG_PX_DONE && used < iov_total(iov, iovcnt, (size_t)-1))
        return refuse(fd, c, "proxy", "bytes for the tunnel sent with the proxy request");
    return 0;
}

/* The request is complete: an SMTP destination makes this an SMTP connection
 * to it (the proxy's replies are skipped on the way in); any other is let go. */
static void proxy_learned(int fd, struct sg_conn *c)
{
    const struct sg_policy *p = sg_config();
    struct sg_px_out *r = &c->px_out;
    int port = r->port;
    if (!sg_port_in(p->smtp_ports, p->smtp_blocks, port) ||
        sg_port_in(p->proxy_ports, p->proxy_blocks, port)) {
        sg_fd_forget(fd);
        return;
    }
    unsigned char ip[16];
    int literal = inet_pton(AF_INET, r->host, ip) == 1 || inet_pton(AF_INET6, r->host, ip) == 1;
    c->addr[0] = c->host[0] = 0;
    if (literal) /* inet_pton accepted it: it fits */
        inet_ntop(strchr(r->host, ':') ? AF_INET6 : AF_INET, ip, c->addr, sizeof c->addr);
    else
        snprintf(c->host, sizeof c->host, "%s", r->host);
    c->port = port;
    r->state = SG_PX_OFF;
    sg_guard_connected(fd, sg_port_in(p->implicit_ports, p->implicit_blocks, port));
}

int sg_guard_before_send(int fd, const struct iovec *iov, int iovcnt)
{
    struct sg_conn *c = sg_conn_peek(fd);
    int phase = c ? __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE) : SG_TLS_OK;
    if (phase == SG_TLS_FOREIGN)
        return sg_wire_before_send(fd, c, iov, iovcnt); /* TLS judged on the wire */
    if (phase == SG_TLS_HANDSHAKE || phase == SG_TLS_OK)
        return 0; /* nothing to judge, so no identity check (an fstat per TLS record) */
    c = sg_conn_get(fd);
    if (!c) { /* the number names another socket now (closed where no hook saw it) */
        sg_adopt(fd);
        c = sg_conn_get(fd);
    }
    if (!c || first_byte(iov, iovcnt) < 0)
        return 0;
    if (c->px_out.state == SG_PX_ACTIVE)
        return proxy_before_send(fd, c, iov, iovcnt);
    if (sg_inside() && is_tls_record(iov, iovcnt) &&
        __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE) == SG_PLAIN)
        /* A handshake the shim drives (the 220 to STARTTLS went by unseen): its
         * records are never SMTP text; its ClientHello is read as below. */
        set_phase(c, SG_TLS_WANTED);
    switch (__atomic_load_n(&c->phase, __ATOMIC_ACQUIRE)) {
    case SG_TLS_HANDSHAKE:
    case SG_TLS_OK:
        return 0;
    case SG_TLS_FOREIGN:
        return sg_wire_before_send(fd, c, iov, iovcnt);
    case SG_DEAD:
        errno = EACCES;
        return -1;
    case SG_TLS_HELLO:
        sg_guard_hello_before(fd, c, iov, iovcnt);
        return after_hello(fd, c, iov, iovcnt);
    case SG_INHERITED:
        if (first_byte(iov, iovcnt) >= 0x14 && first_byte(iov, iovcnt) <= 0x17 &&
            !is_tls_record(iov, iovcnt)) { /* TLS under way: no ClientHello to come */
            int inside = sg_inside();
            set_phase(c, inside ? SG_TLS_HANDSHAKE : SG_TLS_FOREIGN);
            return inside ? 0 : sg_wire_before_send(fd, c, iov, iovcnt);
        }
        /* A plaintext dialogue, judged like any other. Its greeting and any
         * earlier replies were read before: count them as answered. */
        c->in.replies = sg_smtp_reply_of(c->out.lines);
        __attribute__((fallthrough));
    case SG_TLS_WANTED:
        if (is_tls_record(iov, iovcnt)) { /* its random tells who drives it */
            /* Before any TLS library drives it, whatever its binding. */
            if (c->phase == SG_TLS_WANTED && sg_guard_injected(fd) &&
                refuse(fd, c, "injection", "bytes arrived after the 220 reply to STARTTLS, "
                       "before the ClientHello") != 0)
                return -1;
            sg_guard_hello_start(c);
            sg_guard_hello_before(fd, c, iov, iovcnt);
            return after_hello(fd, c, iov, iovcnt);
        }
        if (c->implicit)
            return refuse(fd, c, "plaintext", "plaintext on an implicit-TLS port");
        set_phase(c, SG_PLAIN); /* the program went on without TLS */
        break;
    }
    return check_plaintext(fd, c, iov, iovcnt);
}

void sg_guard_sent(int fd, const struct iovec *iov, int iovcnt, size_t n)
{
    struct sg_conn *c = sg_conn_peek(fd);
    int phase = c ? __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE) : SG_TLS_OK;
    if (phase == SG_TLS_HELLO) {
        sg_guard_hello_sent(c, iov, iovcnt, n);
        sg_wire_hello_sent(c, iov, iovcnt, n); /* the wire reader may need them */
    }
    if (phase == SG_TLS_FOREIGN)
        sg_wire_sent(fd, c, iov, iovcnt, n);
    if (phase != SG_PLAIN)
        return;
    if (c->px_out.state == SG_PX_ACTIVE) {
        px_out_scan(&c->px_out, iov, iovcnt, n);
        if (c->px_out.state == SG_PX_DONE)
            proxy_learned(fd, c);
        return;
    }
    if (scan(&c->out, iov, iovcnt, n) & SG_V_STARTTLS) {
        c->starttls_sent = 1; /* its reply is sg_smtp_reply_of(c->out.starttls_line) */
    }
}

/* Plaintext where the server's TLS handshake belongs: refused at once, the
 * read fails and the socket is shut (audit: logged, the handshake refuses). */
static int injected(int fd, struct sg_conn *c)
{
    c->injected = 1;
    return refuse(fd, c, "injection", "bytes arrived after the 220 reply to STARTTLS");
}

/* Replies are counted from the greeting; the one that answers the STARTTLS
 * line decides: 220 and the handshake comes next, nothing may follow it. */
static int follow_replies(int fd, struct sg_conn *c, const struct iovec *iov, int iovcnt,
                          size_t n)
{
    for (int i = 0; i < iovcnt && n; i++) {
        const unsigned char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;
        n -= len;
        if (!c->starttls_sent) {
            sg_smtp_in_feed(&c->in, p, len, 0);
            continue;
        }
        size_t extra =
            sg_smtp_in_until(&c->in, p, len, sg_smtp_reply_of(c->out.starttls_line));
        if (extra == (size_t)-1)
            continue;
        c->starttls_sent = 0;
        if (c->in.last_code == 220) {
            set_phase(c, SG_TLS_WANTED);
            return extra > 0 || n > 0 ? injected(fd, c) : 0;
        }
        sg_smtp_in_feed(&c->in, p + len - extra, extra, 0); /* STARTTLS refused */
    }
    return 0;
}

/* The proxy's replies come first: skip them, then go on with what follows
 * (iov trimmed into out, at most 8 pieces). */
static int proxy_replies(int fd, struct sg_conn *c, const struct iovec **iov, int *iovcnt,
                         size_t *n, struct iovec *out)
{
    size_t skip = 0;
    for (int i = 0; i < *iovcnt && skip < *n && c->px_in.state == SG_PX_ACTIVE; i++) {
        size_t len = (*iov)[i].iov_len < *n - skip ? (*iov)[i].iov_len : *n - skip;
        size_t used = sg_px_in_feed(&c->px_in, &c->px_out, (*iov)[i].iov_base, len);
        skip += used;
        if (used < len)
            break;
    }
    if (c->px_in.state == SG_PX_BAD)
        return refuse(fd, c, "proxy", "the proxy's reply is not SOCKS or HTTP");
    if (c->px_in.state == SG_PX_DONE)
        c->px_in.state = SG_PX_OFF;
    int k = 0;
    size_t left = *n - skip, at = skip;
    for (int i = 0; i < *iovcnt && left && k < 8; i++) {
        size_t len = (*iov)[i].iov_len;
        if (at >= len) {
            at -= len;
            continue;
        }
        size_t take = len - at < left ? len - at : left;
        out[k++] = (struct iovec){(char *)(*iov)[i].iov_base + at, take};
        left -= take;
        at = 0;
    }
    *n -= skip + left; /* what does not fit in 8 pieces is not looked at */
    *iov = out;
    *iovcnt = k;
    return 0;
}

int sg_guard_received(int fd, const struct iovec *iov, int iovcnt, size_t n)
{
    struct sg_conn *c = sg_conn_peek(fd);
    if (!c)
        return sg_dns_sock_received(fd, iov, iovcnt, n); /* a marker, maybe DNS */
    struct iovec rest[8];
    if (c->px_in.state == SG_PX_ACTIVE && proxy_replies(fd, c, &iov, &iovcnt, &n, rest) != 0)
        return -1;
    if (c->px_out.state == SG_PX_ACTIVE || n == 0)
        return 0;
    int phase = __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE);
    if (phase == SG_TLS_FOREIGN)
        return sg_wire_received(fd, c, iov, iovcnt, n);
    /* No exemption for a real TLS call under way: in SG_TLS_WANTED no
     * ClientHello has left (sending it moves the phase on), so no handshake
     * reads yet; and a mark left live by a call abandoned with a jump (inside.h
     * says when the seal survives) must not switch this check off. */
    if (phase == SG_TLS_WANTED && !c->implicit && n && !is_tls_record(iov, iovcnt))
        return injected(fd, c);
    if (phase != SG_PLAIN)
        return 0;
    return follow_replies(fd, c, iov, iovcnt, n);
}
