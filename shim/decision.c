/* The order of the checks is the order an administrator reads them in:
 * which name, which version, which cipher, which certificate. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "decision.h"
#include "guard.h"
#include "log.h"
#include "trust_follow.h"
#include "verdict_cache.h"

static int check_pins(const struct sg_target *t, unsigned char spki[][32], int n,
                      char *detail, size_t len)
{
    if (!t->dest || t->dest->npins == 0)
        return 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < t->dest->npins; k++)
            if (memcmp(spki[i], t->dest->pins[k], 32) == 0)
                return 0;
    snprintf(detail, len, "no certificate in the chain has a pin_sha256 of the policy");
    return SG_R_PIN;
}

/* No name to verify: several could apply (a steered lookup looks just like
 * this), or the address is unknown too. */
static int no_name(const struct sg_target *t, char *detail, size_t len)
{
    if (t->candidates[0]) {
        snprintf(detail, len, "the program set no SNI and these names resolved to %s: %s; "
                 "add a [destination %s] section with verify_name set to the one meant",
                 t->addr, t->candidates, t->addr);
        return SG_R_AMBIGUOUS;
    }
    snprintf(detail, len, "the program set no SNI and no name or address is known for the "
             "server; add a [destination HOST] section with verify_name");
    return SG_R_NO_NAME;
}

int sg_before_handshake(const struct sg_target *t, char *detail, size_t len)
{
    const struct sg_policy *p = sg_config();
    if (p->broken) {
        snprintf(detail, len, "%s", p->error);
        return SG_R_POLICY;
    }
    if (t->mode != SG_MODE_ENFORCE)
        return 0;
    if (!t->host[0])
        return no_name(t, detail, len);
    if (sg_guard_injected(t->fd)) {
        snprintf(detail, len, "bytes arrived after the 220 reply to STARTTLS");
        return SG_R_INJECTION;
    }
    return 0;
}

int sg_decide_hooked(const struct sg_checks *c, void *session, const struct sg_target *t,
                     char *detail, size_t len)
{
    if (!sg_guard_injection_seen(t->fd))
        return sg_decide(c, session, t, detail, len);
    snprintf(detail, len, "bytes arrived after the 220 reply to STARTTLS");
    return SG_R_INJECTION;
}

/* Verdicts this process reached the chain check in. The verdict cache only
 * helps a later handshake of the same process: the first verdict neither
 * asks it nor fills it, so a process that sends one message computes no
 * fingerprint (issue 15); one that sends many verifies its second chain in
 * full once more, and keeps that verdict. The rule of every backend. */
static unsigned verdicts;

int sg_decide(const struct sg_checks *c, void *session, const struct sg_target *t,
              char *detail, size_t len)
{
    const struct sg_policy *p = sg_config();
    if (!t->host[0])
        return no_name(t, detail, len);
    if (c->version(session) < p->min_protocol) {
        snprintf(detail, len, "negotiated %s, policy min_protocol is %s",
                 c->version_name(session), p->min_protocol == SG_TLS13 ? "TLSv1.3" : "TLSv1.2");
        return SG_R_PROTOCOL;
    }
    if (!c->fs_aead(session)) {
        snprintf(detail, len, "negotiated %s, which is not a forward-secret AEAD cipher "
                              "the policy allows",
                 c->cipher_name(session));
        return SG_R_CIPHER;
    }
    const char *ca_file = sg_policy_ca_file(p, t->dest), *ca_path = sg_policy_ca_path(p, t->dest);
    unsigned char spki[SG_MAX_CHAIN][32], fp[32];
    int n = 0, pins = t->dest && t->dest->npins;
    int later = __atomic_fetch_add(&verdicts, 1, __ATOMIC_RELAXED) > 0;
    int keyed = later && !pins && c->fingerprint &&
                c->fingerprint(session, SG_VERDICT_TTL, fp);
    /* The trust store as the files are now: a changed file gets a new store
     * (built by c->chain's backend) and no verdict of the old one. */
    int lost;
    unsigned gen = sg_trust_follow(ca_file, ca_path, &lost);
    if (lost) {
        snprintf(detail, len, "ca_file '%s' / ca_path '%s' changed more than %d times while "
                 "this process ran; it no longer follows them: restart the program",
                 ca_file, ca_path, SG_TRUST_CHANGES);
        return SG_R_STORE;
    }
    if (keyed && sg_verdict_cached(fp, t, ca_file, ca_path, gen))
        return 0;
    int r = c->chain(session, t, ca_file, ca_path, spki, &n, detail, len);
    if (!r && keyed)
        sg_verdict_remember(fp, t, ca_file, ca_path, gen);
    return r ? r : check_pins(t, spki, n, detail, len);
}

/* The program named no host, so the address was the identity and the
 * certificate does not hold it: say how to name the host. */
static const char *by_address_hint(const struct sg_target *t, int reason)
{
    if ((reason != SG_R_HOSTNAME && reason != SG_R_OWN_VERIFY) || !t->ip_literal ||
        (t->dest && t->dest->verify_name[0]))
        return "";
    return "; the program named no host, so the certificate must hold the address: "
           "else add a [destination ADDRESS] section with verify_name";
}

static int conclude(const struct sg_target *t, int reason, const char *detail,
                    const char *protocol, const char *cipher, const char *via,
                    const char *verify, int keep_phase)
{
    char rule[SG_PATH_MAX + SG_HOST_MAX + 32], words[768];
    /* The program's own verification refused: that happened in every mode. */
    int verdict = !reason                       ? SG_ACCEPTED
                  : reason == SG_R_OWN_VERIFY   ? SG_REFUSED
                  : (t->mode == SG_MODE_AUDIT && reason != SG_R_POLICY) ? SG_WOULD_REFUSE
                                                                       : SG_REFUSED;
    sg_config_rule(t->dest, rule, sizeof rule);
    if (reason)
        snprintf(words, sizeof words, "%s (%s)%s",
                 sg_reason_text(reason) + strlen("smtpguard: "), detail ? detail : "",
                 by_address_hint(t, reason));
    struct sg_event e = {.verdict = verdict, .what = "TLS", .host = t->host, .addr = t->addr,
                         .port = t->port, .protocol = protocol, .cipher = cipher,
                         .check = reason ? sg_reason_check(reason) : NULL,
                         .reason = reason ? words : NULL, .rule = rule, .verify = verify,
                         .via = via};
    sg_log_event(sg_config(), &e);
    if (verdict == SG_REFUSED) {
        if (reason != SG_R_OWN_VERIFY || t->mode == SG_MODE_ENFORCE)
            sg_guard_refused(t->fd);
        return 0;
    }
    if (protocol && !keep_phase)
        sg_guard_tls_ok(t->fd);
    return 1;
}

int sg_conclude(const struct sg_target *t, int reason, const char *detail,
                const char *protocol, const char *cipher)
{
    return conclude(t, reason, detail, protocol, cipher, NULL, NULL, 0);
}

int sg_conclude_wire(const struct sg_target *t, int reason, const char *detail,
                     const char *protocol, const char *cipher, int unverified, int follow)
{
    static const char verify[][12] = {"", "unverified", "resumed"};
    return conclude(t, reason, detail, protocol, cipher, "wire",
                    reason || unverified < 1 || unverified > 2 ? NULL : verify[unverified],
                    follow);
}
