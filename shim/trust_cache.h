/* The index of a bundle (trust_index.h) prepared ahead of time, by
 * `smtpguard-trust-index` at install and after every trust-store update (a
 * hook in /etc/ca-certificates/update.d/), so that a process does not scan
 * the bundle at all (trust_index.h: it reads just the anchors a chain names).
 * A cache file that does not describe the very file (device, inode, size,
 * modification time), or that its checks reject, is ignored: the process
 * scans the bundle itself. A wrong cache can only hide anchors (the index
 * points into the bundle, between PEM markers, never elsewhere). */
#ifndef SG_TRUST_CACHE_H
#define SG_TRUST_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#ifndef SG_TRUST_CACHE_DIR
#define SG_TRUST_CACHE_DIR "/var/cache/smtpguard"
#endif

struct sg_trust_entry {
    uint64_t subject; /* name key (name_key.h) of the certificate's subject */
    uint64_t body;    /* its base64 lines: bytes [body, end) of the bundle */
    uint64_t end;
};

/* The entries cached for ca_file as described by st, in *out (malloc'd),
 * in file order; their number, or -1 when there is no valid cache. The
 * directory is SMTPGUARD_TRUST_CACHE (ignored by setuid programs) or
 * SG_TRUST_CACHE_DIR. */
int sg_trust_cache_read(const char *ca_file, const struct stat *st, struct sg_trust_entry **out);

/* The cache file of ca_file in dir, into out (smtpguard-trust-index -c). */
void sg_trust_cache_path(const char *dir, const char *ca_file, char *out, size_t len);

/* Write the cache of ca_file into dir (atomically). 0, or -1 with errno. */
int sg_trust_cache_write(const char *ca_file, const char *dir);

/* The scan itself (trust_index.c): entries of ca_file and its stat. */
int sg_trust_index_entries(const char *ca_file, struct sg_trust_entry **out, struct stat *st);

#endif
