/* File: a header (magic, the bundle's identity, the count, the bundle's
 * path) and the entries, in this machine's byte order: it is written and
 * read on the same machine. Only a file owned by root or by the reading
 * user, writable by nobody else, is read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawsys.h" /* the cache's own reads: no lazy bindings, no detour */
#include "trust_cache.h"

#define MAGIC "SGTIDX1"
#define MAX_ENTRIES 100000
#define MAX_FILE (sizeof(struct header) + 4096 + MAX_ENTRIES * sizeof(struct sg_trust_entry))

struct header {
    char magic[8];
    uint64_t dev, ino, size, mtime_sec, mtime_nsec;
    uint32_t count, path_len;
};

void sg_trust_cache_path(const char *dir, const char *ca_file, char *out, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the bundle's path */
    for (const char *p = ca_file; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(out, len, "%s/trust-%016llx.idx", dir, (unsigned long long)h);
}

static void identity(struct header *h, const struct stat *st, size_t path_len, int count)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, MAGIC, sizeof MAGIC);
    h->dev = st->st_dev, h->ino = st->st_ino, h->size = (uint64_t)st->st_size;
    h->mtime_sec = (uint64_t)st->st_mtim.tv_sec, h->mtime_nsec = (uint64_t)st->st_mtim.tv_nsec;
    h->count = (uint32_t)count, h->path_len = (uint32_t)path_len;
}

static int full_read(int fd, void *buf, size_t n)
{
    size_t got = 0;
    ssize_t r = 1;
    while (got < n && (r = sg_sys_read(fd, (char *)buf + got, n - got)) > 0)
        got += (size_t)r;
    return got == n ? 0 : -1;
}

/* The file's bytes in buf[0..size): the header, the bundle's path, the
 * entries and nothing more. The entries are moved to the front of buf. */
static int parse(char *buf, size_t size, const char *ca_file, const struct stat *st)
{
    struct header want, got;
    size_t len = strlen(ca_file);
    if (size < sizeof got)
        return -1;
    memcpy(&got, buf, sizeof got);
    if (got.count == 0 || got.count > MAX_ENTRIES ||
        size != sizeof got + len + got.count * sizeof(struct sg_trust_entry))
        return -1;
    identity(&want, st, len, (int)got.count);
    if (memcmp(&want, &got, sizeof got) != 0 || memcmp(buf + sizeof got, ca_file, len) != 0)
        return -1;
    memmove(buf, buf + sizeof got + len, got.count * sizeof(struct sg_trust_entry));
    return (int)got.count;
}

/* The whole file in one read (it is small: 24 bytes a certificate), its
 * size from the fstat that checks its owner and mode. */
int sg_trust_cache_read(const char *ca_file, const struct stat *st, struct sg_trust_entry **out)
{
    const char *dir = secure_getenv("SMTPGUARD_TRUST_CACHE");
    char path[4096];
    struct stat cs;
    sg_trust_cache_path(dir && *dir ? dir : SG_TRUST_CACHE_DIR, ca_file, path, sizeof path);
    int fd = sg_sys_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0);
    if (fd < 0)
        return -1;
    int n = -1;
    char *buf = NULL;
    *out = NULL;
    if (fstat(fd, &cs) == 0 && S_ISREG(cs.st_mode) && !(cs.st_mode & 022) &&
        (cs.st_uid == 0 || cs.st_uid == geteuid()) && cs.st_size > 0 &&
        (size_t)cs.st_size <= MAX_FILE && (buf = malloc((size_t)cs.st_size)) != NULL &&
        full_read(fd, buf, (size_t)cs.st_size) == 0)
        n = parse(buf, (size_t)cs.st_size, ca_file, st);
    sg_sys_close(fd);
    if (n > 0)
        *out = (struct sg_trust_entry *)buf; /* malloc'd: aligned for the entries */
    else
        free(buf);
    return n;
}

int sg_trust_cache_write(const char *ca_file, const char *dir)
{
    struct sg_trust_entry *e = NULL;
    struct stat st;
    struct header h;
    char path[4096], tmp[4200];
    int n = sg_trust_index_entries(ca_file, &e, &st);
    if (n <= 0) {
        errno = errno ? errno : EINVAL;
        return -1;
    }
    sg_trust_cache_path(dir, ca_file, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%ld.new", path, (long)getpid());
    identity(&h, &st, strlen(ca_file), n);
    FILE *f = fopen(tmp, "wbx");
    int ok = f && fwrite(&h, sizeof h, 1, f) == 1 &&
             fwrite(ca_file, 1, strlen(ca_file), f) == strlen(ca_file) &&
             fwrite(e, sizeof *e, (size_t)n, f) == (size_t)n;
    ok = f && fclose(f) == 0 && ok && chmod(tmp, 0644) == 0 && rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    free(e);
    return ok ? 0 : -1;
}
