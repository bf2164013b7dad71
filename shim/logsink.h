/* Where a line goes: the log socket (journald's native socket, else
 * /dev/log), stderr or a file. Never to a descriptor that is a network socket. */
#ifndef SG_LOGSINK_H
#define SG_LOGSINK_H

#include "log.h"

#define SG_JOURNAL_SOCKET "/run/systemd/journal/socket"
#define SG_SYSLOG_SOCKET "/dev/log"

void sg_log_emit(const struct sg_policy *p, const struct sg_line *l);

#endif
