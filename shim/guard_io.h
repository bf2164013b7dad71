/* The guarded write and observed read of guard_io.c, for the byte paths that
 * are emulated with them (guard_paths.c). Same semantics as the interposed
 * write(), sendmsg() and read() on an SMTP socket. */
#ifndef SG_GUARD_IO_H
#define SG_GUARD_IO_H

#include <sys/socket.h>
#include <sys/types.h>

ssize_t sg_guarded_write(int fd, const void *buf, size_t n);
ssize_t sg_guarded_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t sg_observed_read(int fd, void *buf, size_t n);
/* Sockets received over SCM_RIGHTS in msg's control data are classified. */
void sg_adopt_rights(const struct msghdr *msg);

#endif
