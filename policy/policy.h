/* The smtpguard policy: parsed once, then frozen and read without locks.
 * Pure logic: no OpenSSL, no interposed state, no heap. Used by the shim and
 * by the smtpguard-policy checker. */
#ifndef SMTPGUARD_POLICY_H
#define SMTPGUARD_POLICY_H

#include <stddef.h>

#define SG_MAX_DEST 64
#define SG_MAX_PINS 4
#define SG_MAX_PROG 16
#define SG_HOST_MAX 256
#define SG_PATH_MAX 1024
#define SG_CIPHERS_MAX 512
#define SG_ERROR_MAX 512
#define SG_FILE_MAX (256 * 1024) /* a policy file larger than this is an error */
#define SG_LINE_MAX 4096         /* a longer line is an error */

/* A large zero-initialised table of the shim (this header is the one every
 * part includes). On x86-64 it goes to .lbss, which the linker places after
 * every .bss section: the small variables a process writes at start then
 * share a page instead of lying between the tables (issue 15, memory). */
#if defined(__x86_64__)
#define SG_TABLE __attribute__((section(".lbss")))
#else
#define SG_TABLE
#endif

enum sg_mode { SG_MODE_INHERIT = -1, SG_MODE_ENFORCE = 0, SG_MODE_AUDIT, SG_MODE_OFF };
#define SG_UNVERIFIED_INHERIT -1
enum sg_log_kind { SG_LOG_SYSLOG = 0, SG_LOG_STDERR, SG_LOG_FILE };

/* Protocol numbers are the TLS wire versions, as OpenSSL's TLS1_2_VERSION. */
#define SG_TLS12 0x0303
#define SG_TLS13 0x0304

struct sg_dest {
    char host[SG_HOST_MAX];  /* lower-case name or address literal (IPv6 without brackets) */
    int port;                /* 0: any port */
    int line;                /* line of the [destination ...] header */
    int mode;                /* SG_MODE_INHERIT or a mode */
    char ca_file[SG_PATH_MAX];     /* "" : not set; both unset: the global store applies */
    char ca_path[SG_PATH_MAX];     /* "" : not set (use sg_policy_ca_file/_ca_path) */
    char verify_name[SG_HOST_MAX]; /* "" : none */
    int unverified_tls;      /* SG_UNVERIFIED_INHERIT or allow (1) / refuse (0) */
    int npins;
    unsigned char pins[SG_MAX_PINS][32]; /* SPKI SHA-256 */
};

/* A [program PATH] section: settings for the processes running that executable, or
 * for an interpreter, that script. Unset values inherit the global ones. */
struct sg_prog {
    char path[SG_PATH_MAX];  /* absolute, as written in the policy */
    int line;                /* line of the [program ...] header */
    int mode;                /* SG_MODE_INHERIT or a mode */
    int require_tls;         /* -1: inherit, else 0/1 */
    int has_ports;           /* smtp_ports set: it replaces the global list */
    unsigned smtp_blocks;    /* see sg_policy's */
    unsigned char smtp_ports[65536 / 8];
    int unverified_tls;      /* SG_UNVERIFIED_INHERIT, else allow (1) / refuse (0) */
};

/* The fields a load writes come first, the large tables after them: the shim's
 * policy is a static, all zero until loaded, and a page nobody writes stays the
 * kernel's shared zero page, so a process pays only for the pages its policy
 * uses (issue 15, memory). */
struct sg_policy {
    int mode;                              /* enum sg_mode, never INHERIT */
    int min_protocol;                      /* SG_TLS12 or SG_TLS13 */
    int require_tls;                       /* 1 = yes */
    int unverified_tls;                    /* 1 = allow TLS whose certificate cannot be seen */
    int log_kind;                          /* enum sg_log_kind */
    int log_json;                          /* log_format = json */
    int ndest;
    int nprog;
    const struct sg_prog *program; /* the [program] section applied, or NULL */
    int broken;                /* 1: the file had an error; SMTP must fail closed */
    /* Bit b: bytes [256b, 256b + 256) of that port bitmap may be non-zero (a
     * port in 2048b..2048b + 2047). A load reads and writes only those blocks. */
    unsigned smtp_blocks, implicit_blocks, proxy_blocks;
    char error[SG_ERROR_MAX];  /* first error: "FILE:LINE: problem" or "FILE: problem" */
    char source[SG_PATH_MAX];  /* the file read, or "built-in defaults" */
    char ciphers[SG_CIPHERS_MAX];          /* OpenSSL TLS 1.2 cipher list */
    char ciphersuites[SG_CIPHERS_MAX];     /* OpenSSL TLS 1.3 ciphersuites */
    char ca_file[SG_PATH_MAX];
    char log_path[SG_PATH_MAX];            /* for SG_LOG_FILE */
    char ca_path[SG_PATH_MAX];
    /* Bitmaps: the low ports (25, 465, 587) lie on the page of the strings above. */
    unsigned char smtp_ports[65536 / 8];
    unsigned char implicit_ports[65536 / 8];
    unsigned char proxy_ports[65536 / 8];  /* SOCKS/HTTP CONNECT proxies, followed to their destination */
    struct sg_dest dest[SG_MAX_DEST];
    struct sg_prog prog[SG_MAX_PROG];
};

/* Results of sg_policy_load. */
#define SG_LOAD_OK 0
#define SG_LOAD_ABSENT 1     /* no such file: defaults kept, not broken */
#define SG_LOAD_ERROR 2      /* error: broken = 1, error says why */
#define SG_LOAD_UNTRUSTED 3  /* privileged and the file is not root-owned or is group/other
                                writable: defaults kept, not broken, error says why */

void sg_policy_defaults(struct sg_policy *p);
/* The same on a policy that is all zero already (zeroed = 1): no page is written
 * but the ones the defaults live in. */
void sg_policy_init_zeroed(struct sg_policy *p, int zeroed);
/* Add the default SMTP and implicit-TLS ports (a broken file keeps them). */
void sg_policy_default_ports(struct sg_policy *p);
/* Parse text into p (which holds defaults already). 0 ok, -1 error (p->broken, p->error). */
int sg_policy_parse(struct sg_policy *p, const char *name, const char *text, size_t len);
/* Open, check and parse a file. Never blocks (FIFO), never follows into a directory.
 * privileged != 0: the AT_SECURE rule applies. */
int sg_policy_load(struct sg_policy *p, const char *path, int privileged);

/* Is port in bitmap, whose block mask is blocks? The mask first: a bitmap
 * with no port near this one is not read (its page stays unmapped). */
#define SG_PORT_BLOCK 256 /* bytes of a port bitmap per bit of its mask */
static inline int sg_port_in(const unsigned char *bitmap, unsigned blocks, int port)
{
    return port > 0 && port < 65536 && (blocks >> ((port >> 3) / SG_PORT_BLOCK)) & 1 &&
           (bitmap[port >> 3] >> (port & 7)) & 1;
}

/* The destination section for a connection, or NULL. host may be NULL or "".
 * addr is the numeric peer address. A section with a port matches only that port;
 * a host match beats an address match; a port match beats an any-port one. */
const struct sg_dest *sg_policy_match(const struct sg_policy *p, const char *host,
                                      const char *addr, int port);
/* The [program] section for a process, or NULL: one whose PATH is the script (an
 * interpreter's) beats one whose PATH is the executable. canon resolves a section's
 * PATH into buf (symbolic links, "..") and returns it, or NULL; canon NULL compares
 * the text as written. exe and script should be canonical already; either may be "". */
const struct sg_prog *sg_policy_program(const struct sg_policy *p, const char *exe,
                                        const char *script,
                                        const char *(*canon)(const char *path, char *buf));
/* Make pr's settings the process's global ones (pr may be NULL: nothing changes). */
void sg_policy_apply_program(struct sg_policy *p, const struct sg_prog *pr);

/* Effective values for a connection (dest may be NULL). A section that sets ca_file or
 * ca_path replaces the global trust store as a whole (the other one is then unset).
 * The CA getters never return NULL; "" means not set. */
int sg_policy_mode(const struct sg_policy *p, const struct sg_dest *d);
const char *sg_policy_ca_file(const struct sg_policy *p, const struct sg_dest *d);
const char *sg_policy_ca_path(const struct sg_policy *p, const struct sg_dest *d);
/* unverified_tls for a connection: 1 allow, 0 refuse. */
int sg_policy_unverified(const struct sg_policy *p, const struct sg_dest *d);
const char *sg_mode_name(int mode);
/* "enforce", "audit" or "off" (ASCII case-insensitive) to the mode, else -1: for SMTPGUARD_MODE. */
int sg_mode_from_name(const char *name);
/* The effective policy as policy file text (every key, then the sections), NUL-terminated
 * and truncated to len. Returns the full length, as snprintf: >= len means truncated. */
int sg_policy_format(const struct sg_policy *p, char *buf, size_t len);

#endif
