/*
 * log.h - the host's log: one line per event on stderr, with a timestamp and
 * a level. The level is process-wide (set once at start-up).
 */
#ifndef WSH_LOG_H
#define WSH_LOG_H

#include <stdarg.h>

enum {
  WSH_LOG_ERROR = 0,
  WSH_LOG_WARN = 1,
  WSH_LOG_INFO = 2,
  WSH_LOG_DEBUG = 3
};

void wsh_log_set_level(int level);
int wsh_log_level(void);
/* Parses "error", "warn", "info" or "debug"; -1 if none of them. */
int wsh_log_parse_level(const char *name);

void wsh_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wsh_vlog(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define wsh_error(...) wsh_log(WSH_LOG_ERROR, __VA_ARGS__)
#define wsh_warn(...) wsh_log(WSH_LOG_WARN, __VA_ARGS__)
#define wsh_info(...) wsh_log(WSH_LOG_INFO, __VA_ARGS__)
#define wsh_debug(...) wsh_log(WSH_LOG_DEBUG, __VA_ARGS__)

#endif
