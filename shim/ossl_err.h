/* smtpguard's own OpenSSL error library, so that a refusal reaches the
 * program as an ordinary OpenSSL error whose text names smtpguard. */
#ifndef SG_OSSL_ERR_H
#define SG_OSSL_ERR_H

#include "ossl.h"
#include "reasons.h"

/* Queue an error on the calling thread for the program to find (our error
 * strings are loaded into o's library first, once). */
void sg_ossl_error(struct sg_ossl *o, int reason, const char *detail);

#endif
