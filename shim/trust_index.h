/* The certificates of a PEM bundle (a policy's ca_file), indexed by subject
 * without parsing them: a TLS library is handed only the anchors a chain
 * names, instead of the whole bundle (145 certificates for Debian's) at the
 * first handshake of every process.
 *
 * When a prepared index (trust_cache.h) describes the file exactly, the
 * bundle is not read at all: the index is file-backed, and the few anchors a
 * chain names are read from the file (a pread each) when they are needed,
 * only while the file is still the very one indexed (device, inode, size,
 * modification time) and the PEM markers around each are where the index
 * says; otherwise that anchor is unavailable and the verification fails
 * closed. Without a prepared index, or in memory on request (before a
 * chroot), the bundle is read whole and scanned. Any PEM block other than
 * CERTIFICATE, or anything this scan cannot place, makes the index NULL: the
 * caller then loads the file the eager way, through its TLS library.
 *
 * A trust-store update reaches running processes through trust_follow.h:
 * at each verdict the file is compared with what the store was built from,
 * and a changed file gets a new store and a new index. An index never
 * changes once built: the queries below need no lock. */
#ifndef SG_TRUST_INDEX_H
#define SG_TRUST_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct sg_trust_index;

/* The index of ca_file (a policy string: frozen, its address is its
 * identity) for the file as it is now (trust_follow.c: built again when the
 * file changed); NULL when the file cannot be read or indexed. Never freed
 * (a store built on it may be in use). The caller holds sg_lock_tls
 * (locks.h), as the backends' store builders do: the fork handlers then
 * cover the build. */
const struct sg_trust_index *sg_trust_index_get(const char *ca_file);

/* A new index of ca_file: file-backed when a prepared index matches it,
 * unless in_memory (then, and without a match, the text is read and kept);
 * NULL when it cannot be read or indexed. st: ca_file's stat as just taken
 * by the caller (the identity a file-backed index keeps), or NULL to take
 * one here. */
struct sg_trust_index *sg_trust_index_open(const char *ca_file, int in_memory,
                                           const struct stat *st);

/* The index of a bundle's text pem[0..len) (malloc'd; the index owns it
 * from now on, even on failure); NULL when it cannot be indexed. For tests
 * and fuzzing: processes use sg_trust_index_get. */
struct sg_trust_index *sg_trust_index_from_text(char *pem, size_t len);
void sg_trust_index_free(struct sg_trust_index *x);

/* 1 when x holds its text in memory and path's bytes are that text, with
 * *st then path's identity: the file was replaced by the same content. */
int sg_trust_index_same_text(const struct sg_trust_index *x, const char *path, struct stat *st);

/* The next certificate after index from (start with -1) whose subject may
 * be the Name whose DER is name[0..len); -1 when none is left. */
int sg_trust_index_find(const struct sg_trust_index *x, const unsigned char *name, size_t len,
                        int from);

/* The same, for a Name key (name_key.h). */
int sg_trust_index_find_key(const struct sg_trust_index *x, uint64_t subject, int from);

/* The DER of certificate i into out (cap bytes); its length, or 0 when it
 * does not fit or is not valid base64. */
size_t sg_trust_index_der(const struct sg_trust_index *x, int i, unsigned char *out, size_t cap);

/* The same in a buffer of its own (free it); NULL on failure. */
unsigned char *sg_trust_index_der_alloc(const struct sg_trust_index *x, int i, size_t *len);

/* A certificate's DER in a buffer of its own (data NULL: unreadable). */
struct sg_der {
    unsigned char *data;
    size_t len;
};

/* Every certificate a chain may lead to, from the issuer and subject keys
 * of the presented certificates (DER, as on the wire): those whose subject
 * is one of those names, then the issuers of those, and so on, up to max
 * indices into out. Returns how many. With got, got[k] is the DER of out[k]
 * as read to follow its issuer (the caller frees each data). */
int sg_trust_index_select(const struct sg_trust_index *x, const unsigned char *const *der,
                          const size_t *len, int n, int *out, struct sg_der *got, int max);

/* The number of certificates in the bundle. */
int sg_trust_index_count(const struct sg_trust_index *x);

/* Is a the same file as b, unchanged (device, inode, size, modification
 * time)? The one test of "the trust store changed" (trust_follow.c too). */
int sg_same_file(const struct stat *a, const struct stat *b);

#endif
