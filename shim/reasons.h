/* Why a TLS connection is refused: one list for every TLS library. */
#ifndef SG_REASONS_H
#define SG_REASONS_H

enum sg_reason {
    SG_R_CHAIN = 1,
    SG_R_HOSTNAME,
    SG_R_PROTOCOL,
    SG_R_CIPHER,
    SG_R_NO_NAME,
    SG_R_POLICY,
    SG_R_PIN,
    SG_R_APPLY,
    SG_R_INJECTION,
    SG_R_NO_CERT,
    SG_R_REFUSED,
    SG_R_HANDSHAKE,
    SG_R_STORE,
    SG_R_UNSUPPORTED,
    SG_R_UNBOUND,
    SG_R_AMBIGUOUS,
    SG_R_OWN_VERIFY,
    SG_R_UNVERIFIED,
    SG_R_RESUMED,
    SG_R_WIRE,
    SG_R_COUNT
};

/* The short name of a check, for log lines ("chain", "hostname", ...). */
const char *sg_reason_check(int reason);
/* The words shown to the program ("smtpguard: ..."). */
const char *sg_reason_text(int reason);

#endif
