/* Logging implementation. Error lines: one write(2) each. Access lines: gathered in a buffer and
 * written together (tg_log_flush, at the end of every event-loop iteration, before a reopen and
 * at exit), so a loaded worker makes one write per iteration, not one per request. Every write
 * holds whole lines, and lines from many processes never interleave: appends to a regular file are
 * whole, and to anything else (a pipe) a write is kept within PIPE_BUF, which the kernel keeps whole. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *g_role = "tollgate";
static tg_log_level_t g_min = TG_LOG_INFO;
static int g_error_fd = 2;
static int g_access_fd = 2;
static char g_error_path[512] = "-", g_access_path[512] = "-";
static volatile sig_atomic_t g_reopen;
/* access lines not yet written; g_access_cap: how much one write may carry for this destination */
static char g_access_buf[64 * 1024];
static size_t g_access_len, g_access_cap = PIPE_BUF;
static const char *const g_level_names[] = {"debug", "info", "warn", "error"};

void tg_log_init(const char *role, tg_log_level_t min_level)
{
    g_role = role;
    g_min = min_level;
}

int tg_log_level_parse(const char *s, tg_log_level_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, g_level_names[i]) == 0) {
            *out = (tg_log_level_t)i;
            return 0;
        }
    return -1;
}

static int open_destination(const char *path, int current)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return 2;
    if (strcmp(path, "off") == 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return current;
    return fd;
}

int tg_log_open(const char *error_path, const char *access_path)
{
    if (error_path != g_error_path)
        snprintf(g_error_path, sizeof(g_error_path), "%s", error_path ? error_path : "-");
    if (access_path != g_access_path)
        snprintf(g_access_path, sizeof(g_access_path), "%s", access_path ? access_path : "-");
    tg_log_flush(); /* lines logged so far belong to the file open until now */
    int efd = open_destination(error_path, g_error_fd), afd = open_destination(access_path, g_access_fd);
    if (g_error_fd > 2 && g_error_fd != efd)
        close(g_error_fd);
    if (g_access_fd > 2 && g_access_fd != afd)
        close(g_access_fd);
    g_error_fd = efd < 0 ? 2 : efd;
    g_access_fd = afd;
    struct stat st;
    g_access_cap = afd >= 0 && fstat(afd, &st) == 0 && S_ISREG(st.st_mode) ? sizeof(g_access_buf) : PIPE_BUF;
    return 0;
}

void tg_log(tg_log_level_t level, const char *fmt, ...)
{
    if (level < g_min || g_error_fd < 0)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s[%d] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     g_level_names[level], g_role, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(g_error_fd, line, (size_t)n);
    (void)w;
}

int tg_log_access_enabled(void)
{
    return g_access_fd >= 0;
}

/* Writes N bytes of whole lines, retrying after an interruption or a short write. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a full disk or a closed pipe: the lines are dropped, as a direct write would */
        p += w;
        n -= (size_t)w;
    }
}

void tg_log_flush(void)
{
    if (g_access_len && g_access_fd >= 0)
        write_all(g_access_fd, g_access_buf, g_access_len);
    g_access_len = 0;
}

void tg_log_access(const char *line, int len)
{
    if (g_access_fd < 0 || len <= 0)
        return;
    if (g_access_len + (size_t)len > g_access_cap)
        tg_log_flush();
    if ((size_t)len > g_access_cap) { /* longer than one write may carry: on its own */
        write_all(g_access_fd, line, (size_t)len);
        return;
    }
    memcpy(g_access_buf + g_access_len, line, (size_t)len);
    g_access_len += (size_t)len;
}

void tg_log_request_reopen(int sig)
{
    g_reopen = 1;
}

void tg_log_reopen_if_requested(void)
{
    if (!g_reopen)
        return;
    g_reopen = 0;
    tg_log_open(g_error_path, g_access_path);
}
