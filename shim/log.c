/* Decision lines: one event as a list of fields, formatted as text or JSON.
 * Every value is escaped, so a program name, SNI or path holding a newline or
 * another control character cannot forge a line (logsink.c delivers them). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ident.h"
#include "log.h"
#include "logsink.h"
#include "rawsys.h"
#include "utc.h"


#define VALUE_MAX 384

/* Arrays, not pointers: no relocation at every exec. */
static const char verdicts[][20] = {"accepted", "refused", "audit: would refuse"};

/* Append s escaped: control characters, DEL and backslash as \xNN / \\ (text), or
 * JSON escapes; in text, spaces too when the value is one word of a key=value pair.
 * One value takes at most VALUE_MAX bytes, so every field fits in a line. */
static size_t put_esc(char *out, size_t n, size_t cap, const char *s, int json, int word)
{
    size_t end = n + VALUE_MAX < cap ? n + VALUE_MAX : cap;
    for (; s && *s && n + 8 < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (json && (c == '"' || c == '\\'))
            n += snprintf(out + n, cap - n, "\\%c", c);
        else if (json && (c < 0x20 || c == 0x7f))
            n += snprintf(out + n, cap - n, "\\u%04x", c);
        else if (!json && (c < 0x20 || c == 0x7f || c == '\\' || (word && c == ' ')))
            n += snprintf(out + n, cap - n, c == '\\' ? "\\\\" : "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n < cap ? n : cap - 1] = '\0';
    return n;
}

size_t sg_log_esc(char *out, size_t n, size_t cap, const char *s)
{
    return put_esc(out, n, cap, s, 0, 0);
}

static size_t put(char *out, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t n, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (n >= cap)
        return n;
    va_start(ap, fmt);
    int r = vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
    return r < 0 ? n : n + r;
}

/* The verification result of a finished handshake: "ok" or the failed check. */
static const char *verify_result(const struct sg_event *e)
{
    if (!e->protocol)
        return NULL;
    return e->verify ? e->verify : e->check ? e->check : "ok";
}

/* ISO 8601 UTC with milliseconds; no time zone file is read in the host process. */
static void timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct sg_utc u;
    clock_gettime(CLOCK_REALTIME, &ts);
    sg_utc(ts.tv_sec, &u);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", u.year, u.mon, u.mday, u.hour,
             u.min, u.sec, ts.tv_nsec / 1000000);
}

/* The fields of an event in the order a reader wants them; NULL values are left out. */
static int event_fields(const struct sg_event *e, struct sg_field *f, char *port)
{
    snprintf(port, 16, "%d", e->port);
    const struct sg_field all[] = {
        {"verdict", verdicts[e->verdict]}, {"what", e->what}, {"host", e->host},
        {"addr", e->addr}, {"port", port}, {"protocol", e->protocol},
        {"cipher", e->protocol ? (e->cipher ? e->cipher : "none") : NULL},
        {"verify", verify_result(e)}, {"check", e->check}, {"reason", e->reason},
        {"rule", e->rule}, {"via", e->via}};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].val)
            f[n++] = all[i];
    return n;
}

const char *sg_log_field(const struct sg_line *l, const char *key)
{
    for (int i = 0; i < l->nfields; i++)
        if (!strcmp(l->fields[i].key, key))
            return l->fields[i].val;
    return NULL;
}

/* "refused TLS to host[addr]:port: check: reason protocol=.. cipher=.. verify=.. policy=.." */
static size_t text_event(char *o, size_t n, size_t cap, const struct sg_line *l)
{
    const char *host = sg_log_field(l, "host"), *v;
    n = put(o, n, cap, "%s %s to ", sg_log_field(l, "verdict"), sg_log_field(l, "what"));
    n = put_esc(o, n, cap, host && *host ? host : "unknown", 0, 1);
    n = put(o, n, cap, "[");
    n = put_esc(o, n, cap, sg_log_field(l, "addr"), 0, 1);
    n = put(o, n, cap, "]:%s", sg_log_field(l, "port"));
    if ((v = sg_log_field(l, "check"))) {
        n = put(o, n, cap, ": %s: ", v);
        n = put_esc(o, n, cap, sg_log_field(l, "reason"), 0, 0);
    }
    if ((v = sg_log_field(l, "protocol"))) {
        n = put(o, n, cap, " protocol=%s cipher=", v);
        n = put_esc(o, n, cap, sg_log_field(l, "cipher"), 0, 1);
        n = put(o, n, cap, " verify=%s", sg_log_field(l, "verify"));
    }
    if ((v = sg_log_field(l, "rule"))) {
        n = put(o, n, cap, " policy=");
        n = put_esc(o, n, cap, v, 0, 0);
    }
    if ((v = sg_log_field(l, "via")))
        n = put(o, n, cap, " via=%s", v);
    return n;
}

/* The text line: [TIME ]smtpguard: PROG[PID]: WHAT HAPPENED program=.. uid=.. exe=.. */
size_t sg_log_text(char *o, size_t cap, const struct sg_line *l, int parts)
{
    size_t n = 0;
    if (parts & SG_TEXT_STAMP)
        n = put(o, n, cap, "%s ", l->time);
    if (parts & SG_TEXT_HEAD) {
        n = put(o, n, cap, "smtpguard: ");
        n = put_esc(o, n, cap, l->id->program, 0, 1);
        n = put(o, n, cap, "[%d]: ", l->pid);
    }
    if (l->note)
        n = put_esc(o, n, cap, l->note, 0, 0);
    else
        n = text_event(o, n, cap, l);
    if (!(parts & SG_TEXT_TAIL))
        return n < cap ? n : cap - 1;
    n = put(o, n, cap, " program=");
    n = put_esc(o, n, cap, l->id->program, 0, 1);
    n = put(o, n, cap, " uid=%u exe=", l->uid);
    n = put_esc(o, n, cap, l->id->exe[0] ? l->id->exe : "unknown", 0, 1);
    if (l->id->script[0]) {
        n = put(o, n, cap, " script=");
        n = put_esc(o, n, cap, l->id->script, 0, 1);
    }
    return n < cap ? n : cap - 1;
}

static size_t json_pair(char *o, size_t n, size_t cap, const char *key, const char *val)
{
    n = put(o, n, cap, ",\"%s\":\"", key);
    n = put_esc(o, n, cap, val, 1, 0);
    return put(o, n, cap, "\"");
}

/* {"schema":1,"time":..,"pid":..,"uid":..,"port":..,"program":..,"exe":.., fields} */
size_t sg_log_json(char *o, size_t cap, const struct sg_line *l)
{
    const char *port = sg_log_field(l, "port");
    size_t n = put(o, 0, cap, "{\"schema\":%d,\"time\":\"%s\",\"pid\":%d,\"uid\":%u",
                   SG_LOG_SCHEMA, l->time, l->pid, l->uid);
    if (port)
        n = put(o, n, cap, ",\"port\":%s", port);
    n = json_pair(o, n, cap, "program", l->id->program);
    n = json_pair(o, n, cap, "exe", l->id->exe);
    if (l->id->script[0])
        n = json_pair(o, n, cap, "script", l->id->script);
    if (l->note)
        n = json_pair(o, n, cap, "note", l->note);
    for (int i = 0; i < l->nfields; i++)
        if (strcmp(l->fields[i].key, "port") != 0)
            n = json_pair(o, n, cap, l->fields[i].key, l->fields[i].val);
    n = put(o, n, cap, "}"); /* six long values at most: it fits SG_LOG_LINE */
    return n < cap ? n : cap - 1;
}

static void line_init(struct sg_line *l)
{
    l->id = sg_ident();
    l->pid = (int)sg_sys_getpid(); /* raw: two lazy bindings fewer per process */
    l->uid = (unsigned)sg_sys_getuid();
    timestamp(l->time, sizeof l->time);
}

void sg_log_event(const struct sg_policy *p, const struct sg_event *e)
{
    int saved = errno;
    struct sg_field f[16];
    char port[16];
    struct sg_line l = {.fields = f, .verdict = e->verdict};
    l.nfields = event_fields(e, f, port);
    line_init(&l);
    sg_log_emit(p, &l);
    errno = saved;
}

void sg_log_note(const struct sg_policy *p, const char *fmt, ...)
{
    int saved = errno;
    char note[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof note, fmt, ap);
    va_end(ap);
    struct sg_line l = {.note = note, .verdict = SG_REFUSED};
    line_init(&l);
    sg_log_emit(p, &l);
    errno = saved;
}
