/* A running process follows its trust store: at each verdict the policy's
 * ca_file (and the directory ca_path, whose modification time changes when
 * c_rehash adds or removes links) is compared with what the stores were
 * built from (device, inode, size, modification time: one stat each). A
 * change raises the generation of those paths: the backends build a new
 * store (backend.c), a new index (sg_trust_index_get) and the verdict cache
 * forgets verdicts of older generations. So an update of the trust store
 * takes effect at the next handshake of a running mailer.
 *
 * Bounds: 16 paths are followed, each through 16 changes (old stores are
 * never freed: another thread may be verifying with one); a path that
 * changes again is lost: its handshakes are refused while it differs from
 * the newest store (a certificate removed from the file must not count), and
 * the log says to restart the program. A ca_file replaced by the same bytes
 * (update-ca-certificates replaces it at every run) is not lost. After sg_trust_freeze (chroot: paths
 * now name other files) nothing is followed and new indexes are read into
 * memory. */
#ifndef SG_TRUST_FOLLOW_H
#define SG_TRUST_FOLLOW_H

#define SG_TRUST_CHANGES 16 /* changes of one path followed in a process */

/* Compare the paths with the files now; the generation of the pair, which
 * grows whenever either path changed; *lost (when lost is not NULL) set when
 * one changed past the bound. Takes sg_lock_tls: call it without. */
unsigned sg_trust_follow(const char *ca_file, const char *ca_path, int *lost);

/* The generation of the pair as last followed, without looking at the
 * files (a path seen for the first time is recorded). Caller holds
 * sg_lock_tls. */
unsigned sg_trust_generation(const char *ca_file, const char *ca_path);

/* Stop following; stores and indexes built from now on are self-contained
 * (read into memory), and every store is due to be built again. */
void sg_trust_freeze(void);

#endif
