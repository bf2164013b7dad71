/* Policy loading. The environment is read with secure_getenv, so a setuid,
 * setgid or file-capability program ignores it; such a program also ignores
 * a policy file that root does not own or that others may write. A broken
 * file leaves the policy marked broken: SMTP then fails closed. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "auxv.h"
#include "config.h"
#include "ident.h"
#include "log.h"
#include "real.h"

#define DEFAULT_POLICY "/etc/smtpguard/policy.conf"

/* Page-aligned: what a load writes (policy.h puts it first) then fills as few
 * pages as it can; the rest stays the kernel's zero page (issue 15, memory). */
static struct sg_policy policy SG_TABLE __attribute__((aligned(4096)));
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void mode_override(struct sg_policy *p)
{
    const char *m = secure_getenv("SMTPGUARD_MODE");
    if (!m || !*m)
        return;
    int mode = sg_mode_from_name(m);
    if (mode >= 0) {
        p->mode = mode;
        return;
    }
    p->broken = 1;
    snprintf(p->error, sizeof p->error,
             "SMTPGUARD_MODE: bad value '%.40s': expected enforce, audit or off", m);
}

static const char *canonical(const char *path, char *buf)
{
    return realpath(path, buf);
}

/* [program PATH] sections: this process's executable or script, resolved now,
 * before any chroot. A setuid program reads only a root-owned policy (above). */
static void apply_program(struct sg_policy *p)
{
    if (!p->nprog || p->broken)
        return;
    const struct sg_ident *id = sg_ident();
    sg_policy_apply_program(p, sg_policy_program(p, id->exe, id->script, canonical));
}

static void load(void)
{
    unsigned long secure;
    int privileged = !sg_auxval(AT_SECURE, &secure) || secure != 0; /* unknown: privileged */
    const char *path = secure_getenv("SMTPGUARD_POLICY");
    if (!path || !*path)
        path = DEFAULT_POLICY;
    sg_policy_init_zeroed(&policy, 1); /* static: zero, loaded once */
    int r = sg_policy_load(&policy, path, privileged);
    apply_program(&policy);
    mode_override(&policy); /* one command's SMTPGUARD_MODE beats the policy file */
    if (r == SG_LOAD_UNTRUSTED)
        sg_log_note(&policy, "%s; built-in defaults apply", policy.error);
    /* A broken file may have replaced the port lists halfway: keep guarding
     * the standard ports whatever it said. */
    if (policy.broken)
        sg_policy_default_ports(&policy);
}

const struct sg_policy *sg_config_loaded;

static void load_and_publish(void)
{
    load();
    __atomic_store_n(&sg_config_loaded, &policy, __ATOMIC_RELEASE);
}

const struct sg_policy *sg_config(void)
{
    const struct sg_policy *p = __atomic_load_n(&sg_config_loaded, __ATOMIC_ACQUIRE);
    if (SG_LIKELY(p != NULL))
        return p;
    pthread_once(&once, load_and_publish);
    return &policy;
}

void sg_config_rule(const struct sg_dest *d, char *out, size_t len)
{
    const struct sg_policy *p = sg_config();
    int n;
    if (d)
        n = snprintf(out, len, "%s:%d [destination %s%s%.0d]", p->source, d->line, d->host,
                     d->port ? ":" : "", d->port);
    else if (p->program)
        n = snprintf(out, len, "%s:%d [program %s]", p->source, p->program->line,
                     p->program->path);
    else
        n = snprintf(out, len, "%s (global settings)", p->source);
    if (d && p->program && n >= 0 && (size_t)n < len)
        snprintf(out + n, len - n, " with line %d [program %s]", p->program->line,
                 p->program->path);
}

void sg_config_each_store(void (*fn)(const char *ca_file, const char *ca_path, void *arg),
                          void *arg)
{
    const struct sg_policy *p = sg_config();
    fn(sg_policy_ca_file(p, NULL), sg_policy_ca_path(p, NULL), arg);
    for (int d = 0; d < p->ndest; d++)
        fn(sg_policy_ca_file(p, &p->dest[d]), sg_policy_ca_path(p, &p->dest[d]), arg);
}
