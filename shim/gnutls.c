/* The GnuTLS handshake driver, the counterpart of ossl_tls.c: before the
 * first handshake step of a client session on an SMTP socket, the program's
 * priority narrowed by the policy (or the policy's string) and SNI; after
 * the handshake, the shared verdict. A refused session returns a fatal
 * error, its socket is shut down (so later record I/O fails) and
 * gnutls_strerror gives the program smtpguard's words. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "config.h"
#include "fdstate.h"
#include "gnutls_keep.h"
#include "gnutls_prio.h"
#include "gnutls_sni.h"
#include "gnutls_verdict.h"
#include "guard.h"
#include "inside.h"
#include "locks.h"
#include "rawsys.h"
#include "real.h"
#include "smtp_seen.h"
#include "tlsbind.h"

#define CALLER __builtin_return_address(0)
#define PENDING 64

/* Sessions whose handshake is under way (non-blocking loops): the policy is
 * applied once. A fixed ring; an entry ends with the verdict. */
static gnutls_session_t pending[PENDING];
static unsigned next_pending;

static int pending_slot(gnutls_session_t s)
{
    for (int i = 0; i < PENDING; i++)
        if (pending[i] == s)
            return i;
    return -1;
}

static int mark_pending(gnutls_session_t s, int on)
{
    pthread_mutex_lock(&sg_lock_tls);
    int i = pending_slot(s), was = i >= 0;
    if (on && !was)
        pending[next_pending++ % PENDING] = s;
    if (!on && was)
        pending[i] = NULL;
    pthread_mutex_unlock(&sg_lock_tls);
    return was;
}

/* Words for the program's gnutls_strerror of the code we returned. */
static __thread int refused_code __attribute__((tls_model("initial-exec")));
static __thread const char *refused_text __attribute__((tls_model("initial-exec")));

/* A server's socket has the SMTP port on its own side. */
static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (sg_sys_getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static int client_random(void *lib, void *session, unsigned char out[SG_RANDOM_LEN])
{
    struct sg_gnutls *g = lib;
    gnutls_datum_t mine = {NULL, 0}, theirs = {NULL, 0};
    g->gnutls_session_get_random(session, &mine, &theirs);
    if (!mine.data || mine.size != SG_RANDOM_LEN)
        return 0;
    memcpy(out, mine.data, SG_RANDOM_LEN);
    return 1;
}

static int is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The socket: the SMTP socket whose ClientHello carried this session's
 * random, else its descriptor. With a transport pointer and push/pull
 * functions of the program's own (GIO), the "descriptor" is the low half of
 * a pointer: only a socket counts. 1: an SMTP target in t; 0: not SMTP (a
 * server, another socket); -1: no socket known yet. */
static int target_of(struct sg_gnutls *g, gnutls_session_t s, struct sg_target *t)
{
    char sni[SG_HOST_MAX] = "";
    if (!sg_gnutls_sni(s, sni, sizeof sni))
        sni[0] = 0;
    unsigned char random[SG_RANDOM_LEN];
    int fd = sg_bind_session_socket(s);
    if (fd < 0 && client_random(g, s, random))
        fd = sg_bind_socket(random);
    if (fd < 0 && (fd = g->gnutls_transport_get_int(s)) >= 0 && !is_socket(fd))
        fd = -1;
    if (fd < 0) {
        memset(t, 0, sizeof *t);
        t->fd = -1;
        return -1;
    }
    const struct sg_policy *p = sg_config();
    if (sg_port_in(p->smtp_ports, p->smtp_blocks, local_port(fd)))
        return 0;
    return sg_target_socket(fd, sni, t);
}

static int error_code(int reason)
{
    switch (reason) {
    case SG_R_PROTOCOL:
        return GNUTLS_E_UNSUPPORTED_VERSION_PACKET;
    case SG_R_CIPHER:
        return GNUTLS_E_INSUFFICIENT_SECURITY;
    default:
        return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
    }
}

static int conclude(struct sg_gnutls *g, gnutls_session_t s, const struct sg_target *t,
                    int reason, const char *detail, int handshook)
{
    struct sg_gnutls_session x = {g, s};
    mark_pending(s, 0);
    sg_bind_end(s); /* the handshake is over either way */
    if (sg_conclude(t, reason, detail, handshook ? sg_gnutls_checks.version_name(&x) : NULL,
                    handshook ? sg_gnutls_checks.cipher_name(&x) : NULL))
        return 0;
    refused_code = error_code(reason);
    refused_text = sg_reason_text(reason);
    return refused_code;
}

/* What the policy allows, as GnuTLS priorities: a program's own priority is
 * narrowed to it (gnutls_narrow.c, which mirrors these), and a session that
 * would keep nothing, or whose priority is unknown, gets the string itself. */
static const char *priority(const struct sg_policy *p)
{
    return p->min_protocol == SG_TLS13
               ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
               : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
                 "-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:-MAC-ALL:+AEAD";
}

static int apply(struct sg_gnutls *g, gnutls_session_t s, const struct sg_target *t,
                 char *detail, size_t len)
{
    const struct sg_policy *p = sg_config();
    int reason = sg_before_handshake(t, detail, len);
    if (reason || t->mode != SG_MODE_ENFORCE)
        return reason;
    char sni[SG_HOST_MAX];
    if (!t->ip_literal && !sg_gnutls_sni(s, sni, sizeof sni))
        g->gnutls_server_name_set(s, GNUTLS_NAME_DNS, t->host, strlen(t->host));
    /* The program's own priority, narrowed: the policy adds strictness, never removes it. */
    if (sg_gnutls_narrow(g, s, p->min_protocol == SG_TLS13, priority(p)) < 0) {
        snprintf(detail, len, "GnuTLS rejected the policy's priority string");
        return SG_R_APPLY;
    }
    return 0;
}

/* Which policy requirement a failed handshake most likely comes from. */
static int failure_reason(struct sg_gnutls *g, gnutls_session_t s, int r)
{
    int alert = r == GNUTLS_E_FATAL_ALERT_RECEIVED ? (int)g->gnutls_alert_get(s) : -1;
    if (r == GNUTLS_E_UNSUPPORTED_VERSION_PACKET || alert == GNUTLS_A_PROTOCOL_VERSION)
        return SG_R_PROTOCOL;
    if (r == GNUTLS_E_NO_CIPHER_SUITES || alert == GNUTLS_A_HANDSHAKE_FAILURE ||
        alert == GNUTLS_A_INSUFFICIENT_SECURITY)
        return SG_R_CIPHER;
    return SG_R_HANDSHAKE;
}

static int explain_failure(struct sg_gnutls *g, gnutls_session_t s, const struct sg_target *t,
                           int r)
{
    if (!g->gnutls_error_is_fatal(r))
        return r;
    mark_pending(s, 0);
    sg_bind_end(s);
    char detail[512];
    if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || r == GNUTLS_E_CERTIFICATE_ERROR) {
        /* The shim never verifies inside GnuTLS's handshake: this is the
         * program's own check. Logged as such in every mode, its code kept. */
        snprintf(detail, sizeof detail, "%s (the program verifies with its own trust "
                 "settings; the policy expects %s)", g->gnutls_strerror(r), t->host);
        if (t->mode != SG_MODE_ENFORCE) {
            sg_conclude(t, SG_R_OWN_VERIFY, detail, NULL, NULL);
            return r;
        }
        int code = conclude(g, s, t, SG_R_OWN_VERIFY, detail, 0);
        return code ? code : r;
    }
    if (t->mode != SG_MODE_ENFORCE)
        return r;
    if (r == GNUTLS_E_PUSH_ERROR || r == GNUTLS_E_PULL_ERROR ||
        r == GNUTLS_E_PREMATURE_TERMINATION) { /* the peer went away: no plaintext after it */
        sg_guard_refused(t->fd);
        return r;
    }
    snprintf(detail, sizeof detail, "%s; the policy requires TLS 1.2 or newer with a "
             "forward-secret AEAD cipher", g->gnutls_strerror(r));
    int code = conclude(g, s, t, failure_reason(g, s, r), detail, 0);
    return code ? code : r;
}

static int run_real(struct sg_gnutls *g, gnutls_session_t s)
{
    struct sg_inside in;
    sg_inside_enter(&in, s);
    int r = g->gnutls_handshake(s);
    sg_inside_leave(&in);
    return r;
}

/* The session is not (or no longer) one to guard. */
static int leave_alone(gnutls_session_t s)
{
    if (sg_bind_end(s))
        mark_pending(s, 0);
    return 0;
}

/* A session the policy leaves alone on an SMTP socket (mode off) still
 * claims its random while its handshake runs: its ClientHello is not taken
 * for TLS that no hook drives. */
static int run_off(struct sg_gnutls *g, gnutls_session_t s)
{
    int slot = sg_bind_enter(s, g, client_random, 0);
    int r = run_real(g, s);
    sg_bind_leave(slot, s);
    if (r == 0 || g->gnutls_error_is_fatal(r))
        sg_bind_end(s);
    return r;
}

/* A handshake completed and no SMTP socket carried its ClientHello. */
static int unidentified(struct sg_gnutls *g, gnutls_session_t s)
{
    struct sg_target w;
    char detail[512];
    int untouched = sg_bind_unidentified(s, &w, detail, sizeof detail);
    leave_alone(s);
    if (untouched)
        return 0; /* not an SMTP session */
    return conclude(g, s, &w, SG_R_UNBOUND, detail, 1);
}

/* Fail closed: the session cannot claim its random, so its socket could
 * not be told. Unless no SMTP connection waits for a handshake, refuse. */
static int claims_full(struct sg_gnutls *g, gnutls_session_t s, struct sg_target *t, int where)
{
    char detail[512];
    if (where < 0 && sg_bind_unidentified(s, t, detail, sizeof detail))
        return run_real(g, s);
    snprintf(detail, sizeof detail, "more TLS handshakes under way at once than the shim "
             "can tell apart by their ClientHello%s",
             where < 0 ? "; this SMTP connection waits for one" : "");
    int code = conclude(g, s, t, SG_R_UNBOUND, detail, 0);
    return code ? code : run_real(g, s);
}

static int judge(struct sg_gnutls *g, gnutls_session_t s, const struct sg_target *t)
{
    char detail[512];
    struct sg_gnutls_session x = {g, s};
    int reason = sg_decide_hooked(&sg_gnutls_checks, &x, t, detail, sizeof detail);
    return conclude(g, s, t, reason, detail, 1);
}

/* The step ended: the session's SMTP socket is the one its ClientHello left
 * by, if that differs from what was known before (where as in handshake). */
static int after_step(struct sg_gnutls *g, gnutls_session_t s, struct sg_target *t, int where,
                      int r)
{
    struct sg_target now;
    int bound = sg_bind_session_socket(s);
    if ((where < 0 || (bound >= 0 && sg_conn_peek(bound) != sg_conn_peek(t->fd))) &&
        target_of(g, s, &now) > 0 && (where < 0 || sg_conn_peek(now.fd) != sg_conn_peek(t->fd))) {
        *t = now; /* its ClientHello left by this socket */
        where = 1;
        if (t->mode == SG_MODE_OFF)
            return leave_alone(s), r;
    }
    if (where < 0) {
        if (r == 0)
            return unidentified(g, s);
        if (g->gnutls_error_is_fatal(r))
            leave_alone(s);
        return r;
    }
    if (r < 0)
        return explain_failure(g, s, t, r);
    return judge(g, s, t);
}

/* where: 1 an SMTP socket known before the step (by descriptor, or by a
 * ClientHello already seen), -1 none yet (push/pull functions): then the
 * session claims its random and the step's ClientHello names its socket,
 * whichever thread moves the bytes. */
static int handshake(struct sg_gnutls *g, gnutls_session_t s)
{
    struct sg_target t;
    char detail[512];
    /* where < 0 even when the process has no SMTP connection yet: a program
     * may make its ClientHello first (push/pull over buffers) and connect after. */
    int where = target_of(g, s, &t);
    if (where == 0)
        return leave_alone(s), run_real(g, s);
    if (where > 0 && t.mode == SG_MODE_OFF)
        return run_off(g, s);
    /* Applied before the first step only: later it would change a handshake under way. */
    if (!mark_pending(s, 1) && where > 0) {
        int reason = apply(g, s, &t, detail, sizeof detail);
        if (reason)
            return conclude(g, s, &t, reason, detail, 0);
    }
    int slot = sg_bind_enter(s, g, client_random, where < 0);
    if (slot < 0)
        return claims_full(g, s, &t, where);
    if (where > 0 || sg_smtp_ever()) /* push/pull TLS in a process with no SMTP yet: not */
        sg_gnutls_keep_open(g);
    int r = run_real(g, s);
    sg_gnutls_keep_close();
    sg_bind_leave(slot, s);
    r = after_step(g, s, &t, where, r);
    sg_gnutls_keep_release();
    return r;
}

SG_EXPORT int gnutls_handshake(gnutls_session_t s)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_handshake");
    if (SG_UNLIKELY(!g || !g->gnutls_handshake))
        return GNUTLS_E_INTERNAL_ERROR;
    /* Direct only when GnuTLS calls it on the session the shim drives (from
     * its own code, or by a tail call from a function the shim called: then
     * the return address is the shim's): the program calling it again (a
     * retry of a handshake it left by a jump, whose mark may still look
     * live: inside.h) is judged like any call. */
    if (!g->lib.complete ||
        (sg_inside_on(s) && (sg_lib_holds(&g->lib, CALLER) || sg_is_own_address(CALLER))))
        return g->gnutls_handshake(s);
    return handshake(g, s);
}

SG_EXPORT const char *gnutls_strerror(int error)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_strerror");
    if (error != 0 && error == refused_code && refused_text)
        return refused_text;
    return g && g->gnutls_strerror ? g->gnutls_strerror(error) : "unknown error";
}

/* A session freed in mid-handshake stops claiming its random, and a new one
 * at its address is taken neither for it nor for its SNI. */
SG_EXPORT void gnutls_deinit(gnutls_session_t s)
{
    struct sg_gnutls *g = sg_gnutls_for_caller(CALLER, "gnutls_deinit");
    sg_gnutls_sni_forget(s);
    sg_gnutls_prio_forget(s);
    if (SG_UNLIKELY(!g || !g->gnutls_deinit))
        return;
    if (g->lib.complete && !sg_inside_on(s)) {
        sg_bind_end(s);
        mark_pending(s, 0);
    }
    g->gnutls_deinit(s);
}
