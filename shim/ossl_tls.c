/* The OpenSSL handshake driver: apply the policy to the SSL object before the
 * handshake, judge it after (decision.c). Per-SSL state lives in the object's
 * own ex_data slot as a small tagged integer (ossl_bind.h): no allocation,
 * freed with the object, no struct read. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "fdstate.h"
#include "guard.h"
#include "inside.h"
#include "ossl_bind.h"
#include "ossl_ciphers.h"
#include "ossl_err.h"
#include "ossl_tls.h"
#include "ossl_verdict.h"
#include "real.h"
#include "tlsbind.h"
#include "trust_follow.h"

/* Enforce: the program gets an error naming the check, the socket is shut
 * so nothing more leaves on it. Audit: only the log line. */
static int conclude(struct sg_ossl *o, SSL *s, const struct sg_target *t, int reason,
                    const char *detail, int handshook)
{
    struct sg_ossl_session x = {o, s};
    sg_bind_end(s); /* the handshake is over either way */
    const char *proto = handshook ? sg_ossl_checks.version_name(&x) : NULL;
    const char *cipher = handshook ? sg_ossl_checks.cipher_name(&x) : NULL;
    if (sg_conclude(t, reason, detail, proto, cipher)) {
        sg_ossl_set_state(o, s, ST_SEEN | ST_SMTP | ST_PASSED);
        return 1;
    }
    char words[1024];
    snprintf(words, sizeof words, "%s[%s]:%d: %s", t->host[0] ? t->host : "unknown", t->addr,
             t->port, detail);
    o->ERR_clear_error();
    sg_ossl_error(o, reason, words);
    sg_ossl_set_state(o, s, ST_SEEN | ST_SMTP | ST_REFUSED);
    return -1;
}

static int run_real(SSL *s, int (*real)(SSL *))
{
    struct sg_inside in;
    sg_inside_enter(&in, s);
    int r = real(s);
    sg_inside_leave(&in);
    return r;
}

static int apply_versions_and_ciphers(struct sg_ossl *o, SSL *s, const struct sg_policy *p)
{
    o->SSL_clear_options(s, SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3);
    if (o->SSL_ctrl(s, SSL_CTRL_GET_MIN_PROTO_VERSION, 0, NULL) < p->min_protocol)
        o->SSL_ctrl(s, SSL_CTRL_SET_MIN_PROTO_VERSION, p->min_protocol, NULL);
    long max = o->SSL_ctrl(s, SSL_CTRL_GET_MAX_PROTO_VERSION, 0, NULL);
    if (max && max < p->min_protocol)
        o->SSL_ctrl(s, SSL_CTRL_SET_MAX_PROTO_VERSION, 0, NULL);
    if (o->SSL_get_security_level(s) < 2)
        o->SSL_set_security_level(s, 2);
    return sg_ossl_apply_ciphers(o, s, p);
}

/* A program that verifies nothing gets verification against the policy
 * store; one that verifies keeps its own (it can only add strictness), and
 * the verdict judges both kinds the same way afterwards. */
static int apply_verification(struct sg_ossl *o, SSL *s, const struct sg_target *t)
{
    if (o->SSL_get_verify_mode(s) & SSL_VERIFY_PEER)
        return 1;
    const struct sg_policy *p = sg_config();
    const char *ca_file = sg_policy_ca_file(p, t->dest), *ca_path = sg_policy_ca_path(p, t->dest);
    /* OpenSSL verifies with the store before the verdict does; the verdict
     * asks whether the store can still be followed (a bundle read then). */
    sg_trust_follow(ca_file, ca_path, NULL);
    X509_STORE *store = sg_ossl_store(o, ca_file, ca_path);
    if (!store)
        return 0;
    o->SSL_set_verify(s, SSL_VERIFY_PEER, NULL);
    o->SSL_ctrl(s, SSL_CTRL_SET_VERIFY_CERT_STORE, 1, store);
    return t->ip_literal ? o->X509_VERIFY_PARAM_set1_ip_asc(o->SSL_get0_param(s), t->host)
                         : o->SSL_set1_host(s, t->host);
}

static int apply(struct sg_ossl *o, SSL *s, const struct sg_target *t, char *detail, size_t len)
{
    const struct sg_policy *p = sg_config();
    int reason = sg_before_handshake(t, detail, len);
    if (reason || t->mode != SG_MODE_ENFORCE)
        return reason;
    if (!t->ip_literal && !o->SSL_get_servername(s, TLSEXT_NAMETYPE_host_name))
        o->SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)t->host);
    if (!apply_versions_and_ciphers(o, s, p)) {
        snprintf(detail, len, "OpenSSL rejected the policy's ciphers or ciphersuites");
        return SG_R_APPLY;
    }
    if (!apply_verification(o, s, t)) {
        snprintf(detail, len, "cannot load ca_file '%s' / ca_path '%s'",
                 sg_policy_ca_file(p, t->dest), sg_policy_ca_path(p, t->dest));
        return SG_R_STORE;
    }
    return 0;
}

/* Which policy requirement an OpenSSL handshake error most likely comes from. */
static int failure_reason(struct sg_ossl *o, unsigned long e)
{
    int r = (int)(o->kind == SG_OSSL_3 ? e & 0x7FFFFF : e & 0xFFF);
    switch (r) {
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_WRONG_SSL_VERSION:
        return SG_R_PROTOCOL;
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_WRONG_CIPHER_RETURNED:
        return SG_R_CIPHER;
    default:
        return SG_R_HANDSHAKE;
    }
}

/* The program's own verification (its store, its names) failed the
 * handshake: logged as such, in audit mode too (where the program keeps its
 * own error). 1 when that is what happened. */
static int own_verify_failed(struct sg_ossl *o, SSL *s, struct sg_target *t)
{
    long v = o->SSL_get_verify_result(s);
    if (v == X509_V_OK || !(sg_ossl_state(o, s) & ST_OWN_VERIFY))
        return 0;
    sg_ossl_relearn(o, s, t);
    char detail[512];
    snprintf(detail, sizeof detail, "%s (the program verifies with its own trust settings; "
             "the policy expects %s)", o->X509_verify_cert_error_string(v), t->host);
    if (t->mode == SG_MODE_ENFORCE)
        conclude(o, s, t, SG_R_OWN_VERIFY, detail, 0);
    else
        sg_conclude(t, SG_R_OWN_VERIFY, detail, NULL, NULL);
    return 1;
}

/* The handshake failed inside OpenSSL: say what the policy had to do with it. */
static int explain_failure(struct sg_ossl *o, SSL *s, struct sg_target *t, int r)
{
    int err = o->SSL_get_error(s, r);
    if (err != SSL_ERROR_SSL && err != SSL_ERROR_SYSCALL && err != SSL_ERROR_ZERO_RETURN)
        return r; /* WANT_READ and the like: the handshake goes on */
    sg_ossl_end_claim(o, s);
    if (err == SSL_ERROR_SSL && own_verify_failed(o, s, t))
        return r;
    if (t->mode != SG_MODE_ENFORCE)
        return r;
    sg_ossl_relearn(o, s, t);
    if (err != SSL_ERROR_SSL) { /* the peer went away: no plaintext after it either */
        sg_guard_refused(t->fd);
        return r;
    }
    char detail[512];
    long v = o->SSL_get_verify_result(s);
    int reason;
    if (v != X509_V_OK) {
        reason = (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
                     ? SG_R_HOSTNAME
                     : SG_R_CHAIN;
        snprintf(detail, sizeof detail, "%s (expected %s)", o->X509_verify_cert_error_string(v),
                 t->host);
    } else {
        unsigned long e = o->ERR_peek_last_error();
        const char *why = o->ERR_reason_error_string(e);
        reason = failure_reason(o, e);
        snprintf(detail, sizeof detail, "%s; the policy requires %s", why ? why : "failure",
                 reason == SG_R_PROTOCOL ? "TLS 1.2 or newer"
                 : reason == SG_R_CIPHER ? "a forward-secret AEAD cipher, the program's "
                                           "own when its list has one"
                                         : "TLS 1.2 or newer with a forward-secret AEAD cipher");
    }
    return conclude(o, s, t, reason, detail, 0);
}

/* A session that is or may become SMTP needs the policy's functions: bound
 * now. A library that lacks some is passed through (SG_UNDRIVABLE), as a
 * library lacking any always was; no claim was made for this session yet. */
static int drivable(struct sg_ossl *o, SSL *s)
{
    if (SG_LIKELY(sg_ossl_full(o)))
        return 1;
    sg_ossl_end_claim(o, s);
    sg_ossl_set_state(o, s, ST_SEEN);
    return 0;
}

static int first_contact(struct sg_ossl *o, SSL *s, struct sg_target *t, int client)
{
    int where = sg_ossl_target(o, s, t, client);
    if (where != 0 && !drivable(o, s))
        return SG_UNDRIVABLE;
    /* Its ClientHello will tell, even when the process has no SMTP connection
     * yet: a program may make it first (into a memory BIO) and connect after. */
    if (where < 0) {
        sg_ossl_set_state(o, s, ST_SEEN | ST_UNBOUND);
        return 1;
    }
    if (where <= 0 || t->mode == SG_MODE_OFF) {
        sg_ossl_set_state(o, s, ST_SEEN | (where > 0 ? ST_OFF : 0));
        return 1;
    }
    char detail[512];
    /* Before apply: it gives verification to a program that has none. */
    unsigned own = o->SSL_get_verify_mode(s) & SSL_VERIFY_PEER ? ST_OWN_VERIFY : 0;
    int reason = apply(o, s, t, detail, sizeof detail);
    if (reason)
        return conclude(o, s, t, reason, detail, 0);
    sg_ossl_set_state(o, s, ST_SEEN | ST_SMTP | own);
    return 1;
}

static int judge(struct sg_ossl *o, SSL *s, struct sg_target *t)
{
    char detail[512];
    struct sg_ossl_session x = {o, s};
    sg_ossl_relearn(o, s, t);
    if (t->mode == SG_MODE_OFF) {
        sg_ossl_end_claim(o, s);
        sg_ossl_set_state(o, s, ST_SEEN);
        return 1;
    }
    int reason = sg_decide_hooked(&sg_ossl_checks, &x, t, detail, sizeof detail);
    return conclude(o, s, t, reason, detail, 1);
}

/* A handshake completed and no SMTP socket carried its ClientHello. */
static int unidentified(struct sg_ossl *o, SSL *s)
{
    struct sg_target w;
    char detail[512];
    int untouched = sg_bind_unidentified(s, &w, detail, sizeof detail);
    sg_ossl_end_claim(o, s);
    if (untouched) {
        sg_ossl_set_state(o, s, ST_SEEN); /* not an SMTP session */
        return 1;
    }
    return conclude(o, s, &w, SG_R_UNBOUND, detail, 1);
}

/* An unbound session after a step that did not bind it. */
static int unbound_step(struct sg_ossl *o, SSL *s, int r)
{
    if (r == 1)
        return unidentified(o, s);
    int err = o->SSL_get_error(s, r);
    if (err == SSL_ERROR_SSL || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
        sg_ossl_end_claim(o, s);
    return r;
}

/* A session the policy leaves alone on an SMTP socket (mode off) still
 * claims its random while its handshake runs: its ClientHello is not taken
 * for TLS that no hook drives. */
static int run_off(struct sg_ossl *o, SSL *s, int (*real)(SSL *))
{
    int r = sg_ossl_run_claimed(o, s, real);
    if (r == SG_CLAIMS_FULL)
        return run_real(s, real);
    int err = r == 1 ? SSL_ERROR_NONE : o->SSL_get_error(s, r);
    if (err == SSL_ERROR_NONE || err == SSL_ERROR_SSL || err == SSL_ERROR_SYSCALL ||
        err == SSL_ERROR_ZERO_RETURN) {
        sg_ossl_end_claim(o, s);
        sg_ossl_set_state(o, s, ST_SEEN);
    }
    return r;
}

/* Fail closed: the session cannot claim its random, so its socket could
 * not be told. Unless no SMTP connection waits for a handshake, refuse. */
static int claims_full(struct sg_ossl *o, SSL *s, struct sg_target *t, int (*real)(SSL *))
{
    char detail[512];
    if (sg_ossl_state(o, s) & ST_UNBOUND && sg_bind_unidentified(s, t, detail, sizeof detail)) {
        sg_ossl_set_state(o, s, ST_SEEN);
        return run_real(s, real);
    }
    snprintf(detail, sizeof detail, "more TLS handshakes under way at once than the shim "
             "can tell apart by their ClientHello%s",
             sg_ossl_state(o, s) & ST_UNBOUND ? "; this SMTP connection waits for one" : "");
    return conclude(o, s, t, SG_R_UNBOUND, detail, 0) == 1 ? run_real(s, real) : -1;
}

static int refused_earlier(struct sg_ossl *o)
{
    sg_ossl_error(o, SG_R_REFUSED, "an earlier check refused this connection");
    return -1;
}

/* A handshake finished where we did not see it (an entry point we do not
 * wrap): judge it before any application byte moves. */
static int judge_late(struct sg_ossl *o, SSL *s, unsigned st)
{
    struct sg_target t;
    if (st & ST_PASSED || (st & ST_SEEN && !(st & (ST_SMTP | ST_UNBOUND))))
        return 1;
    int where = sg_ossl_target(o, s, &t, 0);
    if (where != 0 && !drivable(o, s))
        return SG_UNDRIVABLE;
    if (where < 0 && __atomic_load_n(&sg_conn_active, __ATOMIC_RELAXED))
        return unidentified(o, s);
    if (where <= 0 || t.mode == SG_MODE_OFF) {
        sg_ossl_end_claim(o, s);
        sg_ossl_set_state(o, s, ST_SEEN);
        return 1;
    }
    return judge(o, s, &t);
}

int sg_tls_handshake(struct sg_ossl *o, SSL *s, int (*real)(SSL *), int client)
{
    unsigned st = sg_ossl_state(o, s);
    struct sg_target t;
    if (st & ST_REFUSED)
        return refused_earlier(o);
    if (o->SSL_is_init_finished(s)) {
        int r = judge_late(o, s, st);
        return r == 1 ? run_real(s, real) : r == SG_UNDRIVABLE ? real(s) : r;
    }
    if (st & ST_SEEN && !(st & (ST_SMTP | ST_PASSED | ST_UNBOUND)))
        return st & ST_OFF ? run_off(o, s, real) : run_real(s, real);
    if (!(st & ST_SEEN) || (st & ST_PASSED)) { /* new, or a new handshake on it */
        int r = first_contact(o, s, &t, client);
        if (r == SG_UNDRIVABLE)
            return real(s);
        if (r != 1)
            return r;
        if (sg_ossl_state(o, s) & ST_OFF)
            return run_off(o, s, real);
    } else if (st & ST_SMTP && sg_ossl_target(o, s, &t, 1) <= 0) {
        return run_real(s, real);
    }
    if (sg_ossl_state(o, s) & ST_UNBOUND && sg_ossl_settle(o, s, &t) < 0)
        return run_real(s, real);
    if (!(sg_ossl_state(o, s) & (ST_SMTP | ST_UNBOUND)))
        return run_real(s, real);
    int r = sg_ossl_run_claimed(o, s, real);
    if (r == SG_CLAIMS_FULL)
        return claims_full(o, s, &t, real);
    if (sg_ossl_state(o, s) & ST_UNBOUND) {
        int bound = sg_ossl_settle(o, s, &t);
        if (bound <= 0)
            return bound < 0 ? r : unbound_step(o, s, r);
    }
    if (r != 1)
        return explain_failure(o, s, &t, r);
    return judge(o, s, &t);
}

int sg_tls_before_io(struct sg_ossl *o, SSL *s)
{
    unsigned st = sg_ossl_state(o, s);
    if (SG_UNLIKELY(st & ST_REFUSED))
        return refused_earlier(o);
    if (SG_LIKELY(o->SSL_is_init_finished(s)))
        return SG_LIKELY(st & ST_SEEN) && !((st & (ST_SMTP | ST_UNBOUND)) && !(st & ST_PASSED))
                   ? 1
                   : judge_late(o, s, st);
    if (o->SSL_is_server(s))
        return 1;
    return sg_tls_handshake(o, s, o->SSL_do_handshake, 0);
}
