/* The verdict on a finished handshake and what follows from it, the same
 * for every TLS library: each backend only answers the questions. */
#ifndef SG_DECISION_H
#define SG_DECISION_H

#include <stddef.h>

#include "reasons.h"
#include "target.h"

#define SG_MAX_CHAIN 16

/* What a backend can tell about a finished handshake (session is its own). */
struct sg_checks {
    int (*version)(void *session);             /* wire version: 0x0303 is TLS 1.2 */
    const char *(*version_name)(void *session);
    const char *(*cipher_name)(void *session);
    int (*fs_aead)(void *session);             /* forward-secret AEAD negotiated */
    /* The peer chain verified against the store of ca_file/ca_path for the
     * name in t. 0, or an SG_R_* reason with words in detail. On success the
     * SPKI SHA-256 of each certificate of the verified chain goes in spki. */
    int (*chain)(void *session, const struct sg_target *t, const char *ca_file,
                 const char *ca_path, unsigned char spki[][32], int *nspki,
                 char *detail, size_t len);
    /* Optional: a SHA-256 over the chain the server presented, 1 when none of
     * its certificates expires within valid_for seconds, else 0 (not cached). */
    int (*fingerprint)(void *session, long valid_for, unsigned char key[32]);
};

/* Before the handshake: 0 when it may start (the backend then applies the
 * policy if t->mode is enforce), else an SG_R_* reason with words in detail. */
int sg_before_handshake(const struct sg_target *t, char *detail, size_t len);

/* 0 when the connection passes, else an SG_R_* reason with words in detail. */
int sg_decide(const struct sg_checks *c, void *session, const struct sg_target *t,
              char *detail, size_t len);

/* sg_decide for a handshake a hooked library drove: plaintext the guard saw
 * arrive after the 220 reply to STARTTLS refuses it first. */
int sg_decide_hooked(const struct sg_checks *c, void *session, const struct sg_target *t,
                     char *detail, size_t len);

/* Log the outcome (reason 0: accepted) and set the socket's guard state.
 * protocol and cipher are NULL when no handshake happened. Returns 1 when
 * the program may go on (accepted, or audit mode), 0 when it is refused. */
int sg_conclude(const struct sg_target *t, int reason, const char *detail,
                const char *protocol, const char *cipher);

/* The same for a handshake judged on the wire (the log line says via=wire);
 * unverified: 1 accepted without a certificate check (unverified_tls = allow,
 * verify=unverified), 2 resumed from a session verified on the wire
 * (verify=resumed);
 * follow: accepted, but the wire reader goes on reading, so the socket is
 * not marked as done with TLS yet (the reader does it). */
int sg_conclude_wire(const struct sg_target *t, int reason, const char *detail,
                     const char *protocol, const char *cipher, int unverified, int follow);

#endif
