/* Has this process (or the parent it was forked from) ever had an SMTP
 * connection? Set once, when the shim first takes a record for one
 * (sg_conn_open), never cleared. The signature memos (nettle_memo.c,
 * ossl_memo.c) read it so that a process that never speaks SMTP keeps its
 * library's own checks untouched: one branch, then the real function. */
#ifndef SG_SMTP_SEEN_H
#define SG_SMTP_SEEN_H

extern int sg_smtp_seen;

static inline int sg_smtp_ever(void)
{
    return __atomic_load_n(&sg_smtp_seen, __ATOMIC_RELAXED);
}

#endif
