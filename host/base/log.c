/*
 * log.c - one line per event on stderr, as text
 * ("2026-11-26T05:00:00.123Z info: ...") or, with log_format = json, as one
 * JSON object per line ({"time":...,"level":...,"event":...,...}). Each line
 * is written with a single write(2) so lines from several worker threads
 * never interleave.
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
static atomic_int log_format = WSH_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void wsh_log_set_level(int level) {
  atomic_store(&log_level, level);
}

int wsh_log_level(void) {
  return atomic_load(&log_level);
}

void wsh_log_set_format(int format) {
  atomic_store(&log_format, format);
}

int wsh_log_parse_level(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcasecmp(name, level_names[i]) == 0)
      return i;
  if (strcasecmp(name, "warning") == 0)
    return WSH_LOG_WARN;
  return -1;
}

int wsh_log_parse_format(const char *name) {
  if (strcmp(name, "text") == 0)
    return WSH_LOG_TEXT;
  if (strcmp(name, "json") == 0)
    return WSH_LOG_JSON;
  return -1;
}

/* A line being built; what does not fit is cut (the line stays one line). */
typedef struct line {
  char s[2048];
  size_t n;
} line;

static void put(line *l, const char *p, size_t n) {
  size_t room = sizeof(l->s) - 2 - l->n; /* keep room for "}\n" */
  if (n > room)
    n = room;
  memcpy(l->s + l->n, p, n);
  l->n += n;
}

static void puts_(line *l, const char *p) {
  put(l, p, strlen(p));
}

/* The length of the well-formed UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned char b = p[0];
  size_t len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
  if (!len || b > 0xf4 || len > n)
    return 0;
  for (size_t i = 1; i < len; i++)
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  if ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] > 0x9f) ||
      (b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] > 0x8f))
    return 0;
  return len;
}

/* A JSON string: quotes, backslashes and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD, so that every line parses. */
static void put_json_string(line *l, const char *s) {
  put(l, "\"", 1);
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    char esc[8];
    if (p[i] == '"' || p[i] == '\\') {
      esc[0] = '\\', esc[1] = (char)p[i];
      put(l, esc, 2);
      i++;
    } else if (p[i] < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
      put(l, esc, 6);
      i++;
    } else if (p[i] < 0x80) {
      put(l, (const char *)p + i, 1);
      i++;
    } else {
      size_t len = utf8_seq(p + i, n - i);
      put(l, len ? (const char *)p + i : "\\ufffd", len ? len : 6);
      i += len ? len : 1;
    }
  }
  put(l, "\"", 1);
}

/* A text value: as it is, or quoted (logfmt) when it holds a space, a quote,
 * an equals sign or nothing. */
static void put_text_value(line *l, const char *s) {
  if (*s && !strpbrk(s, " \"=\t")) {
    puts_(l, s);
    return;
  }
  put_json_string(l, s);
}

static void begin(line *l, int level, const char *event) {
  struct timeval tv;
  struct tm tm;
  char ts[40];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
  l->n = 0;
  if (atomic_load(&log_format) == WSH_LOG_JSON) {
    puts_(l, "{\"time\":\"");
    puts_(l, ts);
    puts_(l, "\",\"level\":\"");
    puts_(l, level_names[level]);
    puts_(l, "\",\"event\":");
    put_json_string(l, event);
  } else {
    puts_(l, ts);
    puts_(l, " ");
    puts_(l, level_names[level]);
    puts_(l, ": ");
    if (strcmp(event, "log") != 0) /* a free-form line is its message */
      puts_(l, event);
  }
}

static void end(line *l) {
  if (atomic_load(&log_format) == WSH_LOG_JSON)
    l->s[l->n++] = '}';
  l->s[l->n++] = '\n';
  ssize_t w = write(STDERR_FILENO, l->s, l->n);
  (void)w;
}

void wsh_vlog(int level, const char *fmt, va_list ap) {
  if (level > atomic_load(&log_level))
    return;
  char msg[2048];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  for (char *p = msg; (p = strchr(p, '\n')) != NULL;)
    *p = ' '; /* one event, one line */
  line l;
  begin(&l, level, "log");
  if (atomic_load(&log_format) == WSH_LOG_JSON) {
    puts_(&l, ",\"msg\":");
    put_json_string(&l, msg);
  } else {
    puts_(&l, msg);
  }
  end(&l);
}

void wsh_log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  wsh_vlog(level, fmt, ap);
  va_end(ap);
}

void wsh_log_event(int level, const char *event, const wsh_log_field *f,
                   size_t n) {
  if (level > atomic_load(&log_level))
    return;
  int json = atomic_load(&log_format) == WSH_LOG_JSON;
  line l;
  begin(&l, level, event);
  for (size_t i = 0; i < n; i++) {
    char num[32];
    if (json) {
      puts_(&l, ",");
      put_json_string(&l, f[i].key);
      puts_(&l, ":");
    } else {
      puts_(&l, " ");
      puts_(&l, f[i].key);
      puts_(&l, "=");
    }
    if (f[i].str) {
      if (json)
        put_json_string(&l, f[i].str);
      else
        put_text_value(&l, f[i].str);
    } else {
      snprintf(num, sizeof(num), "%lld", f[i].num);
      puts_(&l, num);
    }
  }
  end(&l);
}
