/* This process's pid without a system call each time (glibc's getpid() is one): read once and
 * refreshed in the child after fork. Used on the per-request paths (credit journal, usage ring). */
#ifndef TG_SELF_PID_H
#define TG_SELF_PID_H

#include <sys/types.h>

pid_t tg_self_pid(void);

#endif
