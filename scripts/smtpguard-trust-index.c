/* smtpguard-trust-index: prepare the index of trust-store bundles, so that
 * no process scans them at its first SMTP handshake (shim/trust_cache.h).
 *
 *   smtpguard-trust-index [-d DIR] BUNDLE...
 *
 * DIR defaults to /var/cache/smtpguard. Run at install and by the hook in
 * /etc/ca-certificates/update.d/ after every trust-store update; a stale
 * index is ignored, never trusted. Exit 0 when every bundle was indexed. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust_cache.h"

int main(int argc, char **argv)
{
    const char *dir = SG_TRUST_CACHE_DIR;
    int opt, status = 0;
    while ((opt = getopt(argc, argv, "d:")) != -1) {
        if (opt != 'd') {
            fprintf(stderr, "usage: smtpguard-trust-index [-d DIR] BUNDLE...\n");
            return 2;
        }
        dir = optarg;
    }
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
