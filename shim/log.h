/* One line per decision, to syslog (mail facility), stderr or a file, as
 * the policy says. Lines never carry command arguments, credentials or
 * message bytes: callers pass verbs and checks only. */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stddef.h>

#include "policy.h"

#define SG_LOG_SCHEMA 1  /* "schema" of JSON lines: raised when a field changes meaning */
#define SG_LOG_LINE 4096 /* a formatted line, on the caller's stack */

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

/* ---- For the sinks (logsink.c) ---- */

struct sg_field {
    const char *key;
    const char *val; /* raw: every formatter escapes it */
};

struct sg_line {
    const struct sg_ident *id;
    int pid;
    unsigned uid;
    char time[64];              /* ISO 8601 UTC */
    int verdict;                /* enum sg_verdict: the priority */
    const char *note;           /* a note instead of an event, or NULL */
    const struct sg_field *fields;
    int nfields;
};

/* The text line, of the parts asked for: the time, "smtpguard: PROG[PID]: ",
 * what happened (always), then " program=.. uid=.. exe=.. [script=..]". */
enum { SG_TEXT_STAMP = 1, SG_TEXT_HEAD = 2, SG_TEXT_TAIL = 4 };
size_t sg_log_text(char *out, size_t cap, const struct sg_line *l, int parts);
/* Append s to out[n..cap) with control characters and backslashes escaped. */
size_t sg_log_esc(char *out, size_t n, size_t cap, const char *s);
/* The value of one field of the line, or NULL. */
const char *sg_log_field(const struct sg_line *l, const char *key);
size_t sg_log_json(char *out, size_t cap, const struct sg_line *l);

#endif
