/*
 * inifile.c - INI reading shared by route files and the host config (see
 * inifile.h).
 */
#include "base/inifile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static char *read_line(char *str, int num, void *stream) {
  wsh_ini_pos *pos = stream;
  long start = ftell(pos->f);
  if (!fgets(str, num, pos->f))
    return NULL;
  pos->line++;
  size_t len = strlen(str);
  if (start >= 0 && ftell(pos->f) - start != (long)len) {
    pos->too_long = pos->line; /* a NUL byte: inih would cut the line there */
    return NULL;
  }
  if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(pos->f)) {
    pos->too_long = pos->line;
    return NULL; /* stop: the rest of the line would become a line of its own */
  }
  return str;
}

int wsh_ini_parse(const char *file, ini_handler handler, void *user,
                  wsh_ini_pos *pos) {
  pos->line = 0;
  pos->too_long = 0;
  pos->f = fopen(file, "r");
  if (!pos->f)
    return -1;
  int rc = ini_parse_stream(read_line, pos, handler, user);
  fclose(pos->f);
  pos->f = NULL;
  return rc;
}

int wsh_ini_fail(wsh_ini_errors *e, const char *fmt, ...) {
  if (!e->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof(e->what), fmt, ap);
    va_end(ap);
    e->failed = e->pos.line;
  }
  return 0;
}

int wsh_ini_first_error(const wsh_ini_errors *e, int inih_line,
                        const char *too_long, char *out, size_t outlen) {
  int line = inih_line;
  const char *msg = "syntax error";
  if (e->failed && (!line || e->failed <= line)) {
    line = e->failed;
    msg = e->what;
  }
  if (e->pos.too_long && (!line || e->pos.too_long <= line)) {
    line = e->pos.too_long;
    msg = too_long;
  }
  if (!line)
    return 0;
  snprintf(out, outlen, "line %d: %s", line, msg);
  return line;
}

int wsh_parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (!s || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

int wsh_parse_size(const char *s, uint64_t *out) {
  char *end;
  if (!s || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno)
    return -1;
  unsigned shift = 0;
  switch (*end) {
  case '\0':
    break;
  case 'k':
  case 'K':
    shift = 10;
    end++;
    break;
  case 'm':
  case 'M':
    shift = 20;
    end++;
    break;
  case 'g':
  case 'G':
    shift = 30;
    end++;
    break;
  default:
    return -1;
  }
  if (*end || (shift && v > (UINT64_MAX >> shift)))
    return -1;
  *out = (uint64_t)v << shift;
  return 0;
}
