/*
 * fuzz_route.c - the INI readers: route files (host/plugins/route.c) and the
 * host config file (host/base/config.c), both read with inih. The input is the
 * file: it goes into a memfd, which both readers open by its /proc/self/fd
 * path. A route that loads must make sense (a path starting with '/', a plugin,
 * lists as long as counted and without empty or blank items, sizes not 0,
 * the origins it lists allowed); a refusal must name the file and a line of
 * it. The host config is read into a fresh wsh_config the same way.
 * A route's path pattern (":name", a last "*") must match a path built
 * from it, and each [options] value, taken as a request path and as a
 * second pattern, must match, decode and compare with it consistently.
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

/* The captures lie within the path, and each decodes to at most its own
 * length. */
static void check_captures(const char *path, const wsh_path_capture *caps,
                           int n) {
  size_t plen = strlen(path);
  for (int i = 0; i < n; i++) {
    FUZZ_CHECK(caps[i].name && caps[i].at >= path &&
                   caps[i].at + caps[i].len <= path + plen,
               "a capture outside the path");
    char out[4096];
    if (caps[i].len < sizeof(out)) {
      long d = wsh_path_decode(caps[i].at, caps[i].len,
                               strcmp(caps[i].name, "*") != 0, out);
      FUZZ_CHECK(d < 0 ||
                     ((size_t)d <= caps[i].len && strlen(out) == (size_t)d),
                 "a decoded value longer than its text");
    }
  }
}

/* The route's pattern against a path and, if it parses as one, against
 * that path as another pattern. */
static void check_against(const wsh_path_pattern *p, const char *path) {
  wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
  char example[512];
  check_captures(path, caps, wsh_path_match(p, path, caps));
  wsh_path_pattern q;
  char why[160];
  if (path[0] != '/' || wsh_path_pattern_parse(path, &q, why, sizeof why))
    return;
  if (q.is_pattern) {
    FUZZ_CHECK(wsh_path_compare(p, &q) == -wsh_path_compare(&q, p),
               "specificity is not antisymmetric");
    bool both = wsh_path_overlap(p, &q, example, sizeof example);
    FUZZ_CHECK(both == wsh_path_overlap(&q, p, NULL, 0),
               "overlap is not symmetric");
    if (both && strlen(example) < sizeof example - 1)
      FUZZ_CHECK(wsh_path_match(p, example, caps) >= 0 &&
                     wsh_path_match(&q, example, caps) >= 0,
                 "the shared example does not match both");
  }
  wsh_path_pattern_free(&q);
}

/* The route's pattern against itself, and against every [options] value
 * as a request path and as a second pattern. */
static void check_pattern(const wsh_route_conf *rc) {
  const wsh_path_pattern *p = &rc->pattern;
  wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
  char example[512];

  if (!p->is_pattern) {
    FUZZ_CHECK(p->nsegs == 0, "an exact path with segments");
    return;
  }
  FUZZ_CHECK(p->nparam + p->nliteral + (p->star ? 1 : 0) == p->nsegs,
             "segment counts");
  FUZZ_CHECK(wsh_path_compare(p, p) == 0, "a pattern beats itself");
  FUZZ_CHECK(wsh_path_overlap(p, p, example, sizeof example),
             "a pattern matches no path");
  if (strlen(example) < sizeof example - 1) {
    int m = wsh_path_match(p, example, caps);
    FUZZ_CHECK(m == (int)(p->nparam + (p->star ? 1 : 0)),
               "a pattern does not match its own example");
    check_captures(example, caps, m);
  }
  for (size_t i = 0; i < rc->options.n; i++)
    check_against(p, rc->options.items[i].value);
}

static void load_route(const char *file, size_t lines) {
  wsh_route_conf *rc = NULL;
  char err[1024] = "";
  int r = wsh_route_conf_load(file, &rc, err, sizeof err);

  if (r == 0) {
    FUZZ_CHECK(rc != NULL, "loaded, yet no route");
    check_route(rc, file);
    check_pattern(rc);
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
