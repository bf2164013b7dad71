/* Delivering a line. Each line goes out in one write or one datagram, so lines
 * from several processes do not interleave.
 *
 * Syslog: the program's own openlog() identity, options and descriptor are
 * left alone; the shim sends its own datagrams with the identity "smtpguard",
 * facility mail, to journald's native socket (fields SMTPGUARD_*) or, where
 * there is none, to /dev/log (RFC 3164). With neither, refusals go to stderr
 * (as LOG_CONS would) and accepted lines are dropped.
 *
 * stderr is written only when descriptor 2 is not a network socket: a program
 * whose descriptor 2 is its SMTP connection must not send our line to the server. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fdstate.h"
#include "ident.h"
#include "logsink.h"
#include "rawsys.h"
#include "real.h"
#include "utc.h"

#define LOG_MAIL_FACILITY 2
#define SEV_WARNING 4
#define SEV_INFO 6

static int severity(const struct sg_line *l)
{
    return l->verdict == SG_ACCEPTED ? SEV_INFO : SEV_WARNING;
}

static int stderr_usable(void)
{
    struct stat st;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (sg_fd_tracked(2) || fstat(2, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return 1;
    /* A local stream (journald's stdout stream for services) is fine. */
    return getsockname(2, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_UNIX;
}

static void write_fd(int fd, const char *s, size_t n)
{
    if (fd >= 0 && sg_sys_write(fd, s, n) < 0) /* raw: our own line, no lookup of write */
        return; /* nowhere left to report it */
}

static size_t format(const struct sg_policy *p, const struct sg_line *l, char *o, int parts)
{
    size_t n = p->log_json ? sg_log_json(o, SG_LOG_LINE - 1, l)
                           : sg_log_text(o, SG_LOG_LINE - 1, l, parts);
    o[n++] = '\n';
    return n;
}

static void to_stderr(const struct sg_policy *p, const struct sg_line *l)
{
    char o[SG_LOG_LINE];
    if (stderr_usable())
        write_fd(2, o, format(p, l, o, SG_TEXT_HEAD | SG_TEXT_TAIL));
}

static void to_file(const struct sg_policy *p, const struct sg_line *l)
{
    char o[SG_LOG_LINE];
    size_t n = format(p, l, o, SG_TEXT_STAMP | SG_TEXT_HEAD | SG_TEXT_TAIL);
    int fd = sg_sys_open(p->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    write_fd(fd, o, n);
    if (fd >= 0)
        sg_sys_close(fd);
}

/* One datagram of iovecs to a local socket; 0 when it was taken. */
static int send_dgram(const char *path, struct iovec *iov, int n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {1, 0}; /* a stuck log daemon may not stall the program long */
    strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    int fd = sg_socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct msghdr m = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = iov,
                       .msg_iovlen = n};
    ssize_t r = REAL(sendmsg)(fd, &m, MSG_NOSIGNAL);
    sg_sys_close(fd);
    return r < 0 ? -1 : 0;
}

static size_t jfield(char *o, size_t n, size_t cap, const char *key, const char *val)
{
    char up[32];
    size_t k = 0;
    if (!val || n + strlen(key) + 16 >= cap)
        return n;
    for (; key[k] && k < sizeof up - 1; k++)
        up[k] = key[k] >= 'a' && key[k] <= 'z' ? key[k] - 32 : key[k];
    up[k] = '\0';
    n += snprintf(o + n, cap - n, "SMTPGUARD_%s=", up);
    n = sg_log_esc(o, n, cap - 1, val);
    o[n++] = '\n';
    return n;
}

/* journald's native protocol: KEY=VALUE lines, every value escaped (no newline). */
static int to_journal(const char *msg, size_t len, const struct sg_line *l)
{
    char h[SG_LOG_LINE], uid[16];
    size_t n = snprintf(h, sizeof h,
                        "SYSLOG_IDENTIFIER=smtpguard\nSYSLOG_FACILITY=%d\nPRIORITY=%d\n"
                        "SYSLOG_PID=%d\nSMTPGUARD_SCHEMA=%d\n",
                        LOG_MAIL_FACILITY, severity(l), l->pid, SG_LOG_SCHEMA);
    snprintf(uid, sizeof uid, "%u", l->uid);
    n = jfield(h, n, sizeof h, "program", l->id->program);
    n = jfield(h, n, sizeof h, "exe", l->id->exe);
    n = jfield(h, n, sizeof h, "script", l->id->script[0] ? l->id->script : NULL);
    n = jfield(h, n, sizeof h, "uid", uid);
    n = jfield(h, n, sizeof h, "note", l->note);
    for (int i = 0; i < l->nfields; i++)
        n = jfield(h, n, sizeof h, l->fields[i].key, l->fields[i].val);
    struct iovec iov[] = {{h, n}, {"MESSAGE=", 8}, {(void *)msg, len}, {"\n", 1}};
    return send_dgram(SG_JOURNAL_SOCKET, iov, 4);
}

/* RFC 3164: <PRI>Mmm dd hh:mm:ss smtpguard[PID]: MESSAGE (UTC: no time zone file
 * is read inside the host program; receivers stamp their own time anyway). */
static int to_devlog(const char *msg, size_t len, const struct sg_line *l)
{
    static const char mon[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char h[96];
    struct sg_utc u;
    sg_utc(time(NULL), &u);
    int n = snprintf(h, sizeof h, "<%d>%s %2d %02d:%02d:%02d smtpguard[%d]: ",
                     LOG_MAIL_FACILITY * 8 + severity(l), mon[u.mon - 1], u.mday, u.hour,
                     u.min, u.sec, l->pid);
    struct iovec iov[] = {{h, (size_t)n}, {(void *)msg, len}};
    return send_dgram(SG_SYSLOG_SOCKET, iov, 2);
}

static void to_syslog(const struct sg_policy *p, const struct sg_line *l)
{
    char msg[SG_LOG_LINE];
    size_t n = format(p, l, msg, SG_TEXT_TAIL) - 1; /* no newline in a datagram */
    if (to_journal(msg, n, l) == 0 || to_devlog(msg, n, l) == 0)
        return;
    if (l->verdict != SG_ACCEPTED) /* no log socket on this host: LOG_CONS, on stderr */
        to_stderr(p, l);
}

/* An interactive user sees why a plaintext command failed ("Permission denied"
 * says nothing): one line on the terminal, unless the log line went there. */
static void tell_terminal(const struct sg_policy *p, const struct sg_line *l)
{
    const char *what = sg_log_field(l, "what");
    if (l->verdict != SG_REFUSED || !what || !strcmp(what, "TLS") ||
        p->log_kind == SG_LOG_STDERR || p->broken || !isatty(2) || !stderr_usable())
        return;
    char o[SG_LOG_LINE];
    size_t n = sg_log_text(o, sizeof o - 1, l, SG_TEXT_HEAD);
    o[n++] = '\n';
    write_fd(2, o, n);
}

void sg_log_emit(const struct sg_policy *p, const struct sg_line *l)
{
    if (p->log_kind == SG_LOG_SYSLOG)
        to_syslog(p, l);
    else if (p->log_kind == SG_LOG_FILE)
        to_file(p, l);
    /* A broken policy is also said on stderr: the administrator running the
     * failing command must see why, wherever the log goes. */
    if (p->log_kind == SG_LOG_STDERR || p->broken)
        to_stderr(p, l);
    tell_terminal(p, l);
}
