/*
 * record.h - how the test plugins tell the integration tests what happened:
 * one line per event appended to a file (route option `record = FILE`), each
 * written with a single write(2) so that lines from several workers never
 * interleave. Control characters become '?'.
 */
#ifndef WSH_TEST_RECORD_H
#define WSH_TEST_RECORD_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* Appends one line to `path` (nothing if path is NULL). */
__attribute__((format(printf, 2, 3), unused)) static void
record_to(const char *path, const char *fmt, ...) {
  if (!path)
    return;
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
      line[i] = '?';
  line[len++] = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  ssize_t w = write(fd, line, len);
  (void)w;
  close(fd);
}

#endif
