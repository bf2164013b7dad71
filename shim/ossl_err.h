/* smtpguard's own OpenSSL error library, so that a refusal reaches the
 * program as an ordinary OpenSSL error whose text names smtpguard. */
#ifndef SG_OSSL_ERR_H
#define SG_OSSL_ERR_H

#include "ossl.h"

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
    SG_R_COUNT
};

/* The short name of a check, for log lines ("chain", "hostname", ...). */
const char *sg_reason_check(int reason);
/* The reason text shown by OpenSSL ("smtpguard: ..."). */
const char *sg_reason_text(int reason);
void sg_ossl_errors_init(struct sg_ossl *o);
/* Queue an error on the calling thread for the program to find. */
void sg_ossl_error(struct sg_ossl *o, int reason, const char *detail);

#endif
