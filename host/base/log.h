/*
 * log.h - the host's log: one line per event on stderr, with a timestamp and
 * a level, as text or as one JSON object per line. The level and the format
 * are process-wide (set once at start-up).
 */
#ifndef WSH_LOG_H
#define WSH_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum {
  WSH_LOG_ERROR = 0,
  WSH_LOG_WARN = 1,
  WSH_LOG_INFO = 2,
  WSH_LOG_DEBUG = 3
};

enum { WSH_LOG_TEXT = 0, WSH_LOG_JSON = 1 };

void wsh_log_set_level(int level);
void wsh_log_set_format(int format);
/* Parses "text" or "json"; -1 if neither. */
int wsh_log_parse_format(const char *name);
int wsh_log_level(void);
/* Parses "error", "warn", "info" or "debug"; -1 if none of them. */
int wsh_log_parse_level(const char *name);

void wsh_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wsh_vlog(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* A structured event: a name and fields, a string (str) or a number (num,
 * when str is NULL). Text: "info: EVENT key=value ..." (values with spaces
 * quoted); JSON: {"time","level","event",key:value,...}. A free-form line
 * (wsh_log) is the event "log" with the field "msg" in JSON. */
typedef struct wsh_log_field {
  const char *key;
  const char *str;
  long long num;
} wsh_log_field;
#define WSH_LOG_STR(k, v) ((wsh_log_field){(k), (v) ? (v) : "", 0})
#define WSH_LOG_NUM(k, v) ((wsh_log_field){(k), NULL, (long long)(v)})

void wsh_log_event(int level, const char *event, const wsh_log_field *f,
                   size_t n);

#define wsh_error(...) wsh_log(WSH_LOG_ERROR, __VA_ARGS__)
#define wsh_warn(...) wsh_log(WSH_LOG_WARN, __VA_ARGS__)
#define wsh_info(...) wsh_log(WSH_LOG_INFO, __VA_ARGS__)
#define wsh_debug(...) wsh_log(WSH_LOG_DEBUG, __VA_ARGS__)

#endif
