/* Decision lines. Built in a stack buffer, written with one call so lines
 * from several processes do not interleave. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "real.h"

#define LINE_MAX_LEN 2048

static const char *const verdicts[] = {"accepted", "refused", "audit: would refuse"};

static void write_line(int fd, const char *line, size_t len)
{
    if (fd >= 0 && REAL(write)(fd, line, len) < 0)
        return; /* nowhere left to report it */
}

/* A broken policy is also said on stderr: the administrator running the
 * failing command must see why, wherever the log goes. */
static void emit(const struct sg_policy *p, int priority, char *line, size_t len)
{
    int saved = errno;
    line[len] = '\n';
    if (p->log_kind == SG_LOG_SYSLOG) {
        syslog(LOG_MAIL | priority, "%.*s", (int)len, line);
    } else if (p->log_kind == SG_LOG_FILE) {
        int fd = open(p->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        write_line(fd, line, len + 1);
        if (fd >= 0)
            REAL(close)(fd);
    }
    if (p->log_kind == SG_LOG_STDERR || p->broken)
        write_line(2, line, len + 1);
    errno = saved;
}

/* JSON string escaping of the few characters that can appear. */
static void json_str(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; s && *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            o += snprintf(out + o, cap - o, "\\%c", c);
        else if (c < 0x20)
            o += snprintf(out + o, cap - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = 0;
}

/* The verification result of a finished handshake: "ok" or the failed check. */
static const char *verify_result(const struct sg_event *e)
{
    if (!e->protocol)
        return NULL;
    return e->verify ? e->verify : e->check ? e->check : "ok";
}

static size_t format_json(char *line, size_t cap, const struct sg_event *e)
{
    const char *keys[] = {"program", "verdict", "what", "host", "addr", "protocol",
                          "cipher", "verify", "check", "reason", "rule", "via"};
    const char *vals[] = {program_invocation_short_name, verdicts[e->verdict], e->what,
                          e->host, e->addr, e->protocol, e->cipher, verify_result(e),
                          e->check, e->reason, e->rule, e->via};
    size_t n = snprintf(line, cap, "{\"pid\":%d,\"port\":%d", (int)getpid(), e->port);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && n < cap; i++) {
        char esc[512];
        if (!vals[i])
            continue;
        json_str(esc, sizeof esc, vals[i]);
        n += snprintf(line + n, cap - n, ",\"%s\":\"%s\"", keys[i], esc);
    }
    if (n < cap)
        n += snprintf(line + n, cap - n, "}");
    return n;
}

static size_t format_text(char *line, size_t cap, const struct sg_event *e)
{
    size_t n = snprintf(line, cap, "smtpguard: %s[%d]: %s %s to %s[%s]:%d",
                        program_invocation_short_name, (int)getpid(), verdicts[e->verdict],
                        e->what, e->host && *e->host ? e->host : "unknown", e->addr, e->port);
    if (e->check && n < cap)
        n += snprintf(line + n, cap - n, ": %s: %s", e->check, e->reason ? e->reason : "");
    if (e->protocol && n < cap)
        n += snprintf(line + n, cap - n, " protocol=%s cipher=%s verify=%s", e->protocol,
                      e->cipher ? e->cipher : "none", verify_result(e));
    if (e->rule && n < cap)
        n += snprintf(line + n, cap - n, " policy=%s", e->rule);
    if (e->via && n < cap)
        n += snprintf(line + n, cap - n, " via=%s", e->via);
    return n;
}

void sg_log_event(const struct sg_policy *p, const struct sg_event *e)
{
    char line[LINE_MAX_LEN + 1];
    size_t n = p->log_json ? format_json(line, LINE_MAX_LEN, e)
                           : format_text(line, LINE_MAX_LEN, e);
    if (n >= LINE_MAX_LEN)
        n = LINE_MAX_LEN - 1;
    emit(p, e->verdict == SG_ACCEPTED ? LOG_INFO : LOG_WARNING, line, n);
}

void sg_log_note(const struct sg_policy *p, const char *fmt, ...)
{
    char line[LINE_MAX_LEN + 1];
    va_list ap;
    size_t n = snprintf(line, LINE_MAX_LEN, "smtpguard: %s[%d]: ",
                        program_invocation_short_name, (int)getpid());
    va_start(ap, fmt);
    n += vsnprintf(line + n, LINE_MAX_LEN - n, fmt, ap);
    va_end(ap);
    if (n >= LINE_MAX_LEN)
        n = LINE_MAX_LEN - 1;
    emit(p, LOG_WARNING, line, n);
}
