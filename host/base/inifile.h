/*
 * inifile.h - reading INI files with inih, as route files and the host config
 * file are read: lines counted so that a handler can name the line it
 * rejects, a line longer than inih takes refused (instead of silently
 * split), the first of several errors reported, and the number syntaxes
 * both accept.
 */
#ifndef WSH_INIFILE_H
#define WSH_INIFILE_H

#include <stdint.h>
#include <stdio.h>

#include <ini.h>

typedef struct wsh_ini_pos {
  FILE *f;
  int line;     /* the line being handled */
  int too_long; /* the line of the first over-long line, or 0 */
} wsh_ini_pos;

/* 0, -1 if the file cannot be opened, or the line of the first error inih
 * saw (a syntax error, or a handler that returned 0). */
int wsh_ini_parse(const char *file, ini_handler handler, void *user,
                  wsh_ini_pos *pos);

/* A parse's position and the first error its handler met. */
typedef struct wsh_ini_errors {
  wsh_ini_pos pos;
  int failed;     /* the line of the first handler error, 0 if none */
  char what[512]; /* that error, without file and line */
} wsh_ini_errors;

/* Records a handler error at the current line unless one came before;
 * returns 0 (what an inih handler returns to stop). */
__attribute__((format(printf, 2, 3))) int wsh_ini_fail(wsh_ini_errors *e,
                                                       const char *fmt, ...);

/* What a route file says of an over-long line. */
#define WSH_INI_TOO_LONG                                                       \
  "line too long (at most 198 characters) or with a NUL byte"

/* The first problem of a parse (inih's syntax error at inih_line, the
 * handler's error, an over-long line described as too_long) as
 * "line N: what" in out; returns its line, or 0 if there was none. */
int wsh_ini_first_error(const wsh_ini_errors *e, int inih_line,
                        const char *too_long, char *out, size_t outlen);

/* Parses a size such as "1048576", "64K", "16M" or "1G". 0 or -1. */
int wsh_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative integer. 0 or -1. */
int wsh_parse_u64(const char *s, uint64_t *out);

#endif
