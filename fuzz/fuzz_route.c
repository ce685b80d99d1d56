/*
 * fuzz_route.c - the INI readers: route files (host/plugins/route.c) and the host
 * config file (host/base/config.c), both read with inih. The input is the file:
 * it goes into a memfd, which both readers open by its /proc/self/fd path.
 * A route that loads must make sense (a path starting with '/', a plugin,
 * lists as long as counted and without empty or blank items, sizes not 0,
 * the origins it lists allowed); a refusal must name the file and a line of
 * it. The host config is read into a fresh wsh_config the same way.
 */
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/config.h"
#include "fuzz.h"
#include "plugins/route.h"

/* The memfd, made once and rewritten for every input. */
static const char *file_with(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  size_t done = 0;

  if (fd < 0) {
    fd = memfd_create("fuzz_route.conf", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "memfd_create");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
  while (done < size) {
    ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
    FUZZ_CHECK(n > 0, "pwrite");
    done += (size_t)n;
  }
  return path;
}

/* The lines of the file: each ends with LF, but for a last one without. */
static size_t count_lines(const uint8_t *data, size_t size) {
  size_t n = size && data[size - 1] != '\n';

  for (size_t i = 0; i < size; i++)
    n += data[i] == '\n';
  return n;
}

/* An error says "FILE: ..." and, if it names a line, one the file has. */
static void check_error(const char *err, const char *file, size_t lines) {
  size_t flen = strlen(file);
  const char *at;
  int line;

  FUZZ_CHECK(strncmp(err, file, flen) == 0 && err[flen] == ':',
             "the error does not start with the file");
  at = strstr(err + flen, ": line ");
  if (at && sscanf(at, ": line %d", &line) == 1) {
    if (line < 1 || (size_t)line > lines)
      fprintf(stderr, "%s (the file has %zu lines)\n", err, lines);
    FUZZ_CHECK(line >= 1 && (size_t)line <= lines, "no such line");
  }
}

static void check_list(char **items, size_t n) {
  FUZZ_CHECK(n == 0 || items != NULL, "a counted list is NULL");
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK(items[i] && items[i][0] && !strpbrk(items[i], ", \t"),
               "an empty list item or one with a separator");
}

static void check_route(const wsh_route_conf *rc, const char *file) {
  const websock_options *o = &rc->options;

  FUZZ_CHECK(rc->conf_path && strcmp(rc->conf_path, file) == 0, "conf_path");
  FUZZ_CHECK(rc->path && rc->path[0] == '/' && !strpbrk(rc->path, "?# \t"),
             "path");
  FUZZ_CHECK(rc->plugin_path && rc->plugin_path[0] == '/', "plugin_path");
  check_list(rc->subprotocols, rc->nsubprotocols);
  check_list(rc->origins, rc->norigins);
  FUZZ_CHECK(rc->max_message_size && rc->max_unsent && rc->pause_reading_at &&
                 rc->ping_timeout_ms,
             "a size or timeout of 0");
  FUZZ_CHECK(rc->reload == WSH_RELOAD_DRAIN || rc->reload == WSH_RELOAD_RESTART,
             "reload");
  FUZZ_CHECK(rc->on_max_unsent == WSH_FULL_CLOSE ||
                 rc->on_max_unsent == WSH_FULL_DROP,
             "on_max_unsent");
  FUZZ_CHECK(o->n <= o->cap && (o->n == 0 || o->items), "options");
  for (size_t i = 0; i < o->n; i++)
    FUZZ_CHECK(o->items[i].key && o->items[i].value, "an option without key");
  FUZZ_CHECK(wsh_route_origin_allowed(rc, NULL), "no Origin refused");
  for (size_t i = 0; i < rc->norigins; i++)
    FUZZ_CHECK(wsh_route_origin_allowed(rc, rc->origins[i]),
               "a listed origin refused");
}

static void load_route(const char *file, size_t lines) {
  wsh_route_conf *rc = NULL;
  char err[1024] = "";
  int r = wsh_route_conf_load(file, &rc, err, sizeof err);

  if (r == 0) {
    FUZZ_CHECK(rc != NULL, "loaded, yet no route");
    check_route(rc, file);
    wsh_route_conf_free(rc);
  } else {
    FUZZ_CHECK(r == WEBSOCK_EINVAL, "route error code");
    check_error(err, file, lines);
  }
}

static void load_config(const char *file, size_t lines) {
  wsh_config c;
  char err[1024] = "";
  int r;

  wsh_config_init(&c);
  r = wsh_config_load_file(&c, file, err, sizeof err);
  if (r == 0) {
    FUZZ_CHECK(c.nlisten == 0 || c.listen != NULL, "listen list");
    for (size_t i = 0; i < c.nlisten; i++)
      FUZZ_CHECK(c.listen[i] != NULL, "a NULL listen address");
    FUZZ_CHECK(c.plugins_dir != NULL, "plugins_dir");
    FUZZ_CHECK(c.workers <= 256, "workers");
    FUZZ_CHECK(c.max_header_size >= 256 && c.max_header_size <= (1u << 20),
               "max_header_size");
    FUZZ_CHECK(c.handshake_timeout_ms && c.close_timeout_ms &&
                   c.max_connections && c.slow_callback_ms,
               "a timeout or limit of 0");
    FUZZ_CHECK(c.log_level >= 0 && c.log_level <= 3, "log_level");
  } else {
    FUZZ_CHECK(r == WEBSOCK_EINVAL, "config error code");
    check_error(err, file, lines);
  }
  wsh_config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *file = file_with(data, size);
  size_t lines = count_lines(data, size);

  load_route(file, lines);
  load_config(file, lines);
  return 0;
}
