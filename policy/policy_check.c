/* smtpguard-policy: check a policy file and print the policy it yields. */
#include "policy.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_POLICY "/etc/smtpguard/policy.conf"

static const char *canonical(const char *path, char *buf)
{
    return realpath(path, buf);
}

/* A path as the shim sees it: symbolic links resolved (kept as given if it does not exist). */
static const char *resolved(const char *path, char *buf)
{
    return path && realpath(path, buf) ? buf : path;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: smtpguard-policy [--privileged] [--program EXE] [--script FILE]\n"
               "                        [--match HOST ADDR PORT] [FILE]\n"
               "Check a smtpguard policy file and print the effective policy.\n"
               "FILE defaults to $SMTPGUARD_POLICY, else " DEFAULT_POLICY ".\n"
               "--privileged  read FILE as a setuid/setgid program would: it must be owned\n"
               "              by root and not writable by group or others, or it is ignored\n"
               "--match       print the settings for a connection to HOST (\"\" if unknown)\n"
               "              at numeric address ADDR, port PORT\n"
               "--program     as seen by a process running the executable EXE (and, for an\n"
               "--script      interpreter, the script FILE): its [program] section applies\n"
               "Exit status: 0 valid or absent (defaults apply), 1 broken or ignored, 2 usage.\n");
}

/* Print the policy; the text may exceed any fixed buffer (long port lists), so size it. */
static int print_policy(const struct sg_policy *p)
{
    int n = sg_policy_format(p, NULL, 0);
    char *buf = malloc((size_t)n + 1);

    if (!buf) {
        perror("smtpguard-policy");
        return 1;
    }
    sg_policy_format(p, buf, (size_t)n + 1);
    printf("# effective smtpguard policy from %s\n%s", p->source, buf);
    free(buf);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* What the shim would use for one connection: m is HOST ADDR PORT. */
static int print_match(const struct sg_policy *p, char **m)
{
    const struct sg_dest *d = sg_policy_match(p, m[0], m[1], atoi(m[2]));

    int port = atoi(m[2]);

    if (d)
        printf("section = %d\n", d->line);
    else
        printf("section = none\n");
    if (p->program)
        printf("program = %d\n", p->program->line);
    else
        printf("program = none\n");
    printf("smtp_port = %s\nrequire_tls = %s\n", sg_port_in(p->smtp_ports, p->smtp_blocks, port) ? "yes" : "no",
           p->require_tls ? "yes" : "no");
    printf("mode = %s\nca_file = %s\nca_path = %s\nverify_name = %s\npins = %d\n",
           sg_mode_name(sg_policy_mode(p, d)), sg_policy_ca_file(p, d), sg_policy_ca_path(p, d),
           d ? d->verify_name : "", d ? d->npins : 0);
    /* The shim never looks at a connection outside smtp_ports, sections or not. */
    if (!sg_port_in(p->smtp_ports, p->smtp_blocks, port))
        printf("note = port %d: not an SMTP port: untouched\n", port);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static struct sg_policy p; /* about 200 KiB: not on the stack */
    const char *path = getenv("SMTPGUARD_POLICY");
    char **match = NULL, exe_buf[PATH_MAX], script_buf[PATH_MAX];
    const char *exe = NULL, *script = NULL;
    int privileged = 0, i, r;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--privileged"))
            privileged = 1;
        else if (!strcmp(argv[i], "--program") && i + 1 < argc)
            exe = argv[++i];
        else if (!strcmp(argv[i], "--script") && i + 1 < argc)
            script = argv[++i];
        else if (!strcmp(argv[i], "--match") && i + 3 < argc)
            match = &argv[i + 1], i += 3;
        else {
            int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            usage(help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    if (argc - i > 1)
        return usage(stderr), 2;
    if (i < argc)
        path = argv[i];
    if (!path || !*path)
        path = DEFAULT_POLICY;

    sg_policy_defaults(&p);
    r = sg_policy_load(&p, path, privileged);
    if (r == SG_LOAD_ERROR) {
        fprintf(stderr, "%s\n", p.error);
        return 1;
    }
    if (r == SG_LOAD_ABSENT)
        fprintf(stderr, "%s: not found, built-in defaults apply\n", path);
    if (r == SG_LOAD_UNTRUSTED)
        fprintf(stderr, "%s\n", p.error);
    if (exe || script)
        sg_policy_apply_program(&p, sg_policy_program(&p, resolved(exe, exe_buf),
                                                      resolved(script, script_buf), canonical));
    if ((match ? print_match(&p, match) : print_policy(&p)) != 0)
        return 1;
    return r == SG_LOAD_UNTRUSTED;
}
