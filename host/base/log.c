/*
 * log.c - one line per event on stderr: "2026-11-26T05:00:00.123Z info: ...".
 * Each line is written with a single write(2) so lines from several worker
 * threads never interleave.
 */
#include "base/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Process-wide like stderr itself; set before the workers start. */
static atomic_int log_level = WSH_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void wsh_log_set_level(int level) {
  atomic_store(&log_level, level);
}

int wsh_log_level(void) {
  return atomic_load(&log_level);
}

int wsh_log_parse_level(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcasecmp(name, level_names[i]) == 0)
      return i;
  if (strcasecmp(name, "warning") == 0)
    return WSH_LOG_WARN;
  return -1;
}

void wsh_vlog(int level, const char *fmt, va_list ap) {
  if (level > atomic_load(&log_level))
    return;
  char line[2048];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof(line) - n,
                        ".%03ldZ %s: ", (long)(tv.tv_usec / 1000),
                        level_names[level]);
  int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  if (m < 0)
    m = 0;
  n += (size_t)m;
  if (n > sizeof(line) - 2)
    n = sizeof(line) - 2;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

void wsh_log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  wsh_vlog(level, fmt, ap);
  va_end(ap);
}
