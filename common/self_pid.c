/* tg_self_pid(): the pid cached per process, refreshed by a pthread_atfork child handler. */
#include "common/self_pid.h"

#include <pthread.h>
#include <unistd.h>

static pid_t g_pid;
static pthread_once_t g_pid_once = PTHREAD_ONCE_INIT;

static void pid_after_fork(void)
{
    g_pid = getpid();
}

static void pid_init(void)
{
    g_pid = getpid();
    pthread_atfork(NULL, NULL, pid_after_fork);
}

pid_t tg_self_pid(void)
{
    pthread_once(&g_pid_once, pid_init);
    return g_pid;
}
