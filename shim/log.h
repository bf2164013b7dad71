/* One line per decision, to syslog (mail facility), stderr or a file, as
 * the policy says. Lines never carry command arguments, credentials or
 * message bytes: callers pass verbs and checks only. */
#ifndef SG_LOG_H
#define SG_LOG_H

#include "policy.h"

enum sg_verdict { SG_ACCEPTED = 0, SG_REFUSED, SG_WOULD_REFUSE };

struct sg_event {
    int verdict;
    const char *what;     /* "TLS" or "plaintext" */
    const char *host;     /* may be "" */
    const char *addr;
    int port;
    const char *protocol; /* NULL when no handshake happened */
    const char *cipher;
    const char *check;    /* the check that failed, NULL when accepted */
    const char *reason;   /* words for an administrator */
    const char *rule;     /* where in the policy the rule comes from */
    const char *verify;   /* the verification result when not "ok"/the check: "unverified" */
    const char *via;      /* "wire": judged from the bytes, no hooked library ran */
};

void sg_log_event(const struct sg_policy *p, const struct sg_event *e);
void sg_log_note(const struct sg_policy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
