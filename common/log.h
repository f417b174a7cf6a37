/* Process-wide logging: leveled error log lines and the JSON-lines access log.
 * Each process names its role once (tg_log_init); lines carry time, level, role and pid. */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdarg.h>

typedef enum { TG_LOG_DEBUG = 0, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR } tg_log_level_t;

/** Sets this process's role name ("master", "worker", "persister") and minimum level. */
void tg_log_init(const char *role, tg_log_level_t min_level);
/** Parses "debug|info|warn|error"; returns -1 on anything else. */
int tg_log_level_parse(const char *s, tg_log_level_t *out);
/** Opens (or reopens, for SIGUSR1) the error and access log destinations: "-" is stderr, "off" discards. */
int tg_log_open(const char *error_path, const char *access_path);
/** Signal handler for SIGUSR1: asks for tg_log_reopen_if_requested() to reopen the files. */
void tg_log_request_reopen(int sig);
/** Reopens the log files with the last paths given to tg_log_open, if a reopen was requested. */
void tg_log_reopen_if_requested(void);
void tg_log(tg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Queues one already-formatted access log line (ending in a newline); it reaches the file at the
 * next tg_log_flush, or earlier when the buffer fills. */
void tg_log_access(const char *line, int len);
/** Writes the queued access log lines. An event loop calls it once per iteration and at exit. */
void tg_log_flush(void);
int tg_log_access_enabled(void);

#define tg_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_info(...) tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
