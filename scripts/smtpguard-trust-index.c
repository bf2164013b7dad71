/* smtpguard-trust-index: prepare the index of trust-store bundles, so that
 * no process scans them at its first SMTP handshake (shim/trust_cache.h).
 *
 *   smtpguard-trust-index [-d DIR] BUNDLE...
 *   smtpguard-trust-index -c [-d DIR] [-r ROOT] BUNDLE...
 *
 * DIR defaults to SMTPGUARD_TRUST_CACHE, else /var/cache/smtpguard: where
 * processes look. Run at install and by the hook in
 * /etc/ca-certificates/update.d/ after every trust-store update; a stale
 * index is ignored, never trusted. Exit 0 when every bundle was indexed.
 *
 * -c checks instead (smtpguard status): prints "BUNDLE: STATE INDEXFILE" with
 * STATE current (a process would use the index), stale (an index that no
 * longer matches the bundle), missing, unreadable (the bundle), or
 * unindexable (the bundle cannot be indexed: processes parse it whole). Exit 0 when every one is current, 1
 * otherwise. -r ROOT reads ROOT/BUNDLE and the index in ROOT's DIR (an image
 * or a rescue mount), keyed by BUNDLE as processes inside ROOT name it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust_cache.h"

static int usage(void)
{
    fprintf(stderr, "usage: smtpguard-trust-index [-d DIR] BUNDLE...\n"
                    "       smtpguard-trust-index -c [-d DIR] [-r ROOT] BUNDLE...\n");
    return 2;
}

/* The cached entries must be those a scan of the bundle finds now: what a
 * process would accept, and no more. */
static const char *state(const char *bundle, const char *file, const char *index)
{
    struct sg_trust_entry *cached = NULL, *scanned = NULL;
    struct stat st;
    int n = sg_trust_index_entries(file, &scanned, &st);
    int c = n > 0 ? sg_trust_cache_read(bundle, &st, &cached) : -1;
    const char *s;
    if (n <= 0)
        s = access(file, R_OK) != 0 ? "unreadable" : "unindexable";
    else if (c == n && memcmp(cached, scanned, (size_t)n * sizeof *cached) == 0)
        s = "current";
    else
        s = access(index, F_OK) == 0 ? "stale" : "missing";
    free(cached);
    free(scanned);
    return s;
}

static int check(int argc, char **argv, const char *dir, const char *root)
{
    char index[4096], file[4096], cache[4096];
    int status = 0;
    if (root) {
        snprintf(cache, sizeof cache, "%s%s", root, dir ? dir : SG_TRUST_CACHE_DIR);
        dir = cache;
    }
    if (dir && setenv("SMTPGUARD_TRUST_CACHE", dir, 1) != 0)
        return 1;
    const char *where = dir ? dir : secure_getenv("SMTPGUARD_TRUST_CACHE");
    for (int i = 0; i < argc; i++) {
        sg_trust_cache_path(where && *where ? where : SG_TRUST_CACHE_DIR, argv[i], index,
                            sizeof index);
        snprintf(file, sizeof file, "%s%s", root ? root : "", argv[i]);
        const char *s = state(argv[i], file, index);
        printf("%s: %s %s\n", argv[i], s, index);
        status |= strcmp(s, "current") != 0;
    }
    return status;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *root = NULL;
    int opt, status = 0, checking = 0;
    while ((opt = getopt(argc, argv, "cd:r:")) != -1) {
        switch (opt) {
        case 'c': checking = 1; break;
        case 'd': dir = optarg; break;
        case 'r': root = optarg; break;
        default: return usage();
        }
    }
    if (checking)
        return optind < argc ? check(argc - optind, argv + optind, dir, root) : usage();
    if (root)
        return usage();
    const char *env = getenv("SMTPGUARD_TRUST_CACHE");
    dir = dir ? dir : env && *env ? env : SG_TRUST_CACHE_DIR;
    umask(022);
    mkdir(dir, 0755); /* exists already, most times */
    for (int i = optind; i < argc; i++)
        if (sg_trust_cache_write(argv[i], dir) != 0) {
            fprintf(stderr, "smtpguard-trust-index: %s: cannot index it (%m); processes "
                            "will scan it themselves\n", argv[i]);
            status = 1;
        }
    return status;
}
