/* Who the process is, for log lines and [program PATH] sections. Never read
 * from argv memory at log time: programs rewrite it (Perl's $0 = "...", where
 * scripts put their whole command line, password included). */
#ifndef SG_IDENT_H
#define SG_IDENT_H

struct sg_ident {
    const char *program; /* the kernel's command name at load (comm, <= 15 bytes) */
    const char *exe;     /* the executable, from /proc/self/exe; "" when unknown */
    const char *script;  /* for an interpreter, the script it runs (absolute); "" if none */
};

/* Filled on the first call (reads /proc/self/exe once); the strings live forever. */
const struct sg_ident *sg_ident(void);

#endif
