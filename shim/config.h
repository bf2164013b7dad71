/* The process's policy: loaded once at the first need, then frozen. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include "policy.h"

const struct sg_policy *sg_config(void);
/* The policy once loaded, else NULL: for fast paths that fall back to sg_config(). */
extern const struct sg_policy *sg_config_loaded;
/* "FILE:LINE [destination ...]" or "FILE (global settings)" for a log line. */
void sg_config_rule(const struct sg_dest *d, char *out, size_t len);

/* Call fn for the global trust store and each destination's. */
void sg_config_each_store(void (*fn)(const char *ca_file, const char *ca_path, void *arg),
                          void *arg);

#endif
