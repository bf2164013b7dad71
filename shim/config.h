/* The process's policy: loaded once at the first need, then frozen. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include "policy.h"

const struct sg_policy *sg_config(void);
/* Is this port an SMTP port? Loads the policy on first use. */
int sg_config_smtp_port(int port);
/* "FILE:LINE [destination ...]" or "FILE (global settings)" for a log line. */
void sg_config_rule(const struct sg_dest *d, char *out, size_t len);

#endif
