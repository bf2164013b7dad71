/* Chains that passed the verdict lately: a process that sends many messages
 * to one server verifies its chain again once a minute, not every session
 * (from its second verdict on: decision.c).
 * Sound because the handshake itself proves that the server holds the key
 * of the leaf (TLS libraries check that signature whatever callbacks the
 * program set); only the chain-to-store judgement is reused. */
#ifndef SG_VERDICT_CACHE_H
#define SG_VERDICT_CACHE_H

#include "target.h"

#define SG_VERDICT_TTL 60 /* seconds */

/* chain: the backend's fingerprint of the presented chain; gen: the
 * generation of the trust store's files (trust_follow.h): a verdict made
 * against an older store is never served. */
int sg_verdict_cached(const unsigned char chain[32], const struct sg_target *t,
                      const char *ca_file, const char *ca_path, unsigned gen);
void sg_verdict_remember(const unsigned char chain[32], const struct sg_target *t,
                         const char *ca_file, const char *ca_path, unsigned gen);

#endif
