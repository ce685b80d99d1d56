/*
 * test_route.c - unit tests for host/plugins/route.c: route files read with
 * inih (keys, [options], errors naming the file and the line), the listing of
 * plugins.d/ and the Origin allow-list; and host/plugins/route_path.c, the
 * route paths with parameters (parsing, matching, precedence, conflicts,
 * decoding). (The size and number parsers are tested with
 * host/base/inifile.c in test_inifile.c.)
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/route.h"
#include "websock.h"

#define WSH_TEST_NAME "test_route"
#include "testutil.h"

/* The path of the last route file written by load(). */
static char conf_file[PATH_MAX];

/* Writes tmp/route.conf with text and loads it; err gets the message. */
static int load(const char *text, wsh_route_conf **out, char *err,
                size_t errlen) {
  tmp_path(conf_file, "route.conf");
  write_file(conf_file, text);
  *out = NULL;
  err[0] = '\0';
  return wsh_route_conf_load(conf_file, out, err, errlen);
}

static wsh_route_conf *load_ok(const char *text) {
  wsh_route_conf *rc;
  char err[1024];
  ck_assert_msg(load(text, &rc, err, sizeof(err)) == 0, "%s", err);
  ck_assert_ptr_nonnull(rc);
  return rc;
}

/* Loading text must fail with exactly "<file>: <what>". */
static void check_error(const char *text, const char *what) {
  wsh_route_conf *rc;
  char err[1024], want[PATH_MAX + 512];
  ck_assert_int_lt(load(text, &rc, err, sizeof(err)), 0);
  ck_assert_ptr_null(rc);
  snprintf(want, sizeof(want), "%s: %s", conf_file, what);
  ck_assert_str_eq(err, want);
}

/* ------------------------------------------------------------------------ */
/* wsh_route_conf_load                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(conf_full) {
  wsh_route_conf *rc =
      load_ok("; the chat route\n"
              "# another comment\n"
              "path = /chat/room\n"
              "plugin = lib/chat.so\n"
              "subprotocols = v2.chat, v1.chat  chat\n"
              "origins = https://Example.com,http://localhost:8080\n"
              "max_message_size = 64K\n"
              "idle_timeout_ms = 30000\n"
              "reload = restart\n"
              "\n"
              "[options]\n"
              "greeting = hello world\n"
              "zeta = 1\n"
              "alpha = a=b\n"
              "empty =\n");
  char plugin[PATH_MAX];
  tmp_path(plugin, "lib/chat.so");
  ck_assert_str_eq(rc->conf_path, conf_file);
  ck_assert_str_eq(rc->path, "/chat/room");
  ck_assert_str_eq(rc->plugin_path, plugin);
  ck_assert_uint_eq(rc->nsubprotocols, 3);
  ck_assert_str_eq(rc->subprotocols[0], "v2.chat");
  ck_assert_str_eq(rc->subprotocols[1], "v1.chat");
  ck_assert_str_eq(rc->subprotocols[2], "chat");
  ck_assert_uint_eq(rc->norigins, 2);
  ck_assert_str_eq(rc->origins[0], "https://Example.com");
  ck_assert_str_eq(rc->origins[1], "http://localhost:8080");
  ck_assert_uint_eq(rc->max_message_size, 64 * 1024);
  ck_assert_uint_eq(rc->idle_timeout_ms, 30000);
  ck_assert_int_eq(rc->reload, WSH_RELOAD_RESTART);
  ck_assert_uint_eq(rc->options.n, 4);
  const char *keys[] = {"greeting", "zeta", "alpha", "empty"};
  const char *values[] = {"hello world", "1", "a=b", ""};
  for (size_t i = 0; i < 4; i++) {
    ck_assert_str_eq(rc->options.items[i].key, keys[i]);
    ck_assert_str_eq(rc->options.items[i].value, values[i]);
  }
  wsh_route_conf_free(rc);
}
END_TEST

START_TEST(conf_defaults) {
  wsh_route_conf *rc = load_ok("path = /echo\nplugin = echo.so\n");
  char plugin[PATH_MAX];
  tmp_path(plugin, "echo.so");
  ck_assert_str_eq(rc->plugin_path, plugin);
  ck_assert_uint_eq(rc->nsubprotocols, 0);
  ck_assert_uint_eq(rc->norigins, 0);
  ck_assert_uint_eq(rc->max_message_size, WSH_DEFAULT_MAX_MESSAGE);
  ck_assert_uint_eq(rc->idle_timeout_ms, 0);
  ck_assert_int_eq(rc->reload, WSH_RELOAD_DRAIN);
  ck_assert_uint_eq(rc->options.n, 0);
  wsh_route_conf_free(rc);
}
END_TEST

START_TEST(conf_sizes_and_reload) {
  static const struct {
    const char *size;
    uint64_t bytes;
  } cases[] = {{"1", 1},          {"1048576", 1048576}, {"64k", 65536},
               {"16M", 16 << 20}, {"2m", 2 << 20},      {"1G", 1u << 30}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char text[256];
    snprintf(
        text, sizeof(text),
        "path = /s\nplugin = s.so\nmax_message_size = %s\nreload = drain\n",
        cases[i].size);
    wsh_route_conf *rc = load_ok(text);
    ck_assert_msg(rc->max_message_size == cases[i].bytes, "%s gave %llu",
                  cases[i].size, (unsigned long long)rc->max_message_size);
    ck_assert_int_eq(rc->reload, WSH_RELOAD_DRAIN);
    wsh_route_conf_free(rc);
  }
}
END_TEST

START_TEST(conf_plugin_paths) {
  wsh_route_conf *rc = load_ok("path = /a\nplugin = /opt/plugins/a.so\n");
  ck_assert_str_eq(rc->plugin_path, "/opt/plugins/a.so");
  wsh_route_conf_free(rc);

  rc = load_ok("path = /a\nplugin = ../shared/a.so\n");
  char plugin[PATH_MAX];
  tmp_path(plugin, "../shared/a.so");
  ck_assert_str_eq(rc->plugin_path, plugin);
  wsh_route_conf_free(rc);

  /* A route file named without a directory: relative to ".". */
  char cwd[PATH_MAX];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
  ck_assert_int_eq(chdir(tmp_dir), 0);
  write_file("bare.conf", "path = /a\nplugin = a.so\n");
  char err[1024] = "";
  ck_assert_msg(wsh_route_conf_load("bare.conf", &rc, err, sizeof(err)) == 0,
                "%s", err);
  ck_assert_str_eq(rc->plugin_path, "./a.so");
  ck_assert_str_eq(rc->conf_path, "bare.conf");
  wsh_route_conf_free(rc);
  ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

START_TEST(conf_options_keep_duplicates_in_order) {
  wsh_route_conf *rc =
      load_ok("path = /a\nplugin = a.so\n[options]\nk = 1\nj = 2\nk = 3\n");
  ck_assert_uint_eq(rc->options.n, 3);
  ck_assert_str_eq(rc->options.items[0].key, "k");
  ck_assert_str_eq(rc->options.items[0].value, "1");
  ck_assert_str_eq(rc->options.items[2].key, "k");
  ck_assert_str_eq(rc->options.items[2].value, "3");
  wsh_route_conf_free(rc);
}
END_TEST

START_TEST(conf_error_unknown_key) {
  check_error("path = /a\nplugin = a.so\n\nmax_msg_size = 10\n",
              "line 4: unknown key \"max_msg_size\"");
}
END_TEST

START_TEST(conf_error_unknown_section) {
  check_error("path = /a\nplugin = a.so\n[option]\nrecord = /tmp/x\n",
              "line 4: unknown section [option] (only [options])");
}
END_TEST

START_TEST(conf_error_route_key_in_options) {
  /* Keys after [options] belong to the plugin, however they are named; a
   * missing route key is then reported as missing. */
  check_error("plugin = a.so\n[options]\npath = /a\n",
              "missing required key \"path\"");
}
END_TEST

START_TEST(conf_error_missing_path) {
  check_error("plugin = a.so\nreload = drain\n",
              "missing required key \"path\"");
}
END_TEST

START_TEST(conf_error_missing_plugin) {
  check_error("path = /a\n[options]\nplugin = a.so\n",
              "missing required key \"plugin\"");
}
END_TEST

START_TEST(conf_error_empty_file) {
  check_error("", "missing required key \"path\"");
}
END_TEST

START_TEST(conf_error_bad_size) {
  check_error("path = /a\nplugin = a.so\nmax_message_size = 12Q\n",
              "line 3: max_message_size: not a size: \"12Q\"");
  check_error("path = /a\nmax_message_size = 0\nplugin = a.so\n",
              "line 2: max_message_size: not a size: \"0\"");
  check_error("max_message_size = 1KB\n",
              "line 1: max_message_size: not a size: \"1KB\"");
  check_error("max_message_size = -1\n",
              "line 1: max_message_size: not a size: \"-1\"");
}
END_TEST

START_TEST(conf_error_bad_idle_timeout) {
  check_error("path = /a\nplugin = a.so\nidle_timeout_ms = 5s\n",
              "line 3: idle_timeout_ms: not a number: \"5s\"");
}
END_TEST

START_TEST(conf_error_bad_reload) {
  check_error(
      "path = /a\nplugin = a.so\nreload = Restart\n",
      "line 3: reload must be drain, restart or handoff, not \"Restart\"");
}
END_TEST

START_TEST(conf_reload_modes) {
  const char *text[] = {"path = /a\nplugin = a.so\nreload = drain\n",
                        "path = /a\nplugin = a.so\nreload = restart\n",
                        "path = /a\nplugin = a.so\nreload = handoff\n"};
  const int want[] = {WSH_RELOAD_DRAIN, WSH_RELOAD_RESTART, WSH_RELOAD_HANDOFF};
  for (size_t i = 0; i < 3; i++) {
    wsh_route_conf *rc = load_ok(text[i]);
    ck_assert_int_eq(rc->reload, want[i]);
    wsh_route_conf_free(rc);
  }
}
END_TEST

START_TEST(conf_error_bad_path) {
  check_error("path = echo\nplugin = a.so\n",
              "line 1: path must start with '/' and have no query: \"echo\"");
  check_error(
      "plugin = a.so\npath = /echo?x=1\n",
      "line 2: path must start with '/' and have no query: \"/echo?x=1\"");
}
END_TEST

START_TEST(conf_error_twice) {
  check_error("path = /a\npath = /b\nplugin = a.so\n",
              "line 2: path given twice (\"/b\")");
  check_error("path = /a\nplugin = a.so\nplugin = b.so\n",
              "line 3: plugin given twice or empty");
}
END_TEST

START_TEST(conf_error_syntax) {
  check_error("path = /a\nplugin = a.so\nthis line has no equals sign\n",
              "line 3: syntax error");
  check_error("path = /a\n[options\nplugin = a.so\n", "line 2: syntax error");
}
END_TEST

START_TEST(conf_error_first_error_wins) {
  check_error("path = a\nbogus = 1\nreload = never\n",
              "line 1: path must start with '/' and have no query: \"a\"");
}
END_TEST

START_TEST(conf_error_cannot_open) {
  char file[PATH_MAX], err[1024] = "";
  tmp_path(file, "missing.conf");
  wsh_route_conf *rc = NULL;
  ck_assert_int_lt(wsh_route_conf_load(file, &rc, err, sizeof(err)), 0);
  ck_assert_ptr_null(rc);
  char want[PATH_MAX + 128];
  snprintf(want, sizeof(want), "%s: cannot open: %s", file, strerror(ENOENT));
  ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(conf_free_null) {
  wsh_route_conf_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Regressions: misbehaviours found while writing these tests, now fixed.   */
/* ------------------------------------------------------------------------ */

START_TEST(bug_syntax_error_then_key_error) {
  /* inih reports the first error line (2, the syntax error) and the handler
   * its own (line 3): the message must pair the right line with its cause. */
  check_error("path = /a\nthis is junk\nbogus = 1\nplugin = a.so\n",
              "line 2: syntax error");
}
END_TEST

START_TEST(bug_long_line_split) {
  /* Debian's inih reads at most 199 bytes of a line (INI_MAX_LINE 200) and
   * parses the rest as a line of its own: a long value is cut, and its tail
   * becomes another key. It must be read whole or refused. */
  char text[1024], value[400];
  memset(value, 'x', 300);
  memcpy(value + 290, "=tail", 6);
  snprintf(text, sizeof(text),
           "path = /a\nplugin = a.so\n[options]\nkey = %s\n", value);
  wsh_route_conf *rc;
  char err[1024];
  if (load(text, &rc, err, sizeof(err)) == 0) {
    ck_assert_uint_eq(rc->options.n, 1);
    ck_assert_str_eq(rc->options.items[0].value, value);
    wsh_route_conf_free(rc);
  } else {
    ck_assert_msg(strstr(err, "line 4") != NULL, "%s", err);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* wsh_route_dir_list                                                        */
/* ------------------------------------------------------------------------ */

START_TEST(dir_list_sorted_conf_only) {
  const char *names[] = {"b.conf",       "a.conf", "c.conf.bak", "readme.txt",
                         ".hidden.conf", "conf",   "xconf",      "B.conf",
                         "10-z.conf",    "d.CONF"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char p[PATH_MAX];
    tmp_path(p, names[i]);
    write_file(p, "");
  }
  char **files = NULL, err[1024] = "";
  size_t n = 99;
  ck_assert_msg(wsh_route_dir_list(tmp_dir, &files, &n, err, sizeof(err)) == 0,
                "%s", err);
  const char *want[] = {"10-z.conf", "B.conf", "a.conf", "b.conf"};
  ck_assert_uint_eq(n, 4);
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    tmp_path(p, want[i]);
    ck_assert_str_eq(files[i], p);
  }
  wsh_route_dir_list_free(files, n);
}
END_TEST

START_TEST(dir_list_empty) {
  char **files = NULL, err[1024] = "";
  size_t n = 99;
  ck_assert_int_eq(wsh_route_dir_list(tmp_dir, &files, &n, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(n, 0);
  wsh_route_dir_list_free(files, n);
}
END_TEST

START_TEST(dir_list_missing) {
  char dir[PATH_MAX], err[1024] = "";
  tmp_path(dir, "nope");
  char **files = NULL;
  size_t n = 0;
  ck_assert_int_lt(wsh_route_dir_list(dir, &files, &n, err, sizeof(err)), 0);
  ck_assert_msg(strncmp(err, dir, strlen(dir)) == 0, "%s", err);
  ck_assert_msg(strstr(err, strerror(ENOENT)) != NULL, "%s", err);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* wsh_route_origin_allowed                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(origin_empty_list_allows_all) {
  wsh_route_conf rc = {0};
  ck_assert(wsh_route_origin_allowed(&rc, "https://evil.example"));
  ck_assert(wsh_route_origin_allowed(&rc, "null"));
  ck_assert(wsh_route_origin_allowed(&rc, NULL));
}
END_TEST

START_TEST(origin_star_allows_all) {
  char *origins[] = {"https://a.example", "*"};
  wsh_route_conf rc = {.origins = origins, .norigins = 2};
  ck_assert(wsh_route_origin_allowed(&rc, "https://evil.example"));
  ck_assert(wsh_route_origin_allowed(&rc, "https://a.example"));
}
END_TEST

START_TEST(origin_listed) {
  char *origins[] = {"https://a.example", "http://localhost:8080"};
  wsh_route_conf rc = {.origins = origins, .norigins = 2};
  ck_assert(wsh_route_origin_allowed(&rc, "https://a.example"));
  ck_assert(wsh_route_origin_allowed(&rc, "HTTPS://A.Example"));
  ck_assert(wsh_route_origin_allowed(&rc, "http://localhost:8080"));
  ck_assert(!wsh_route_origin_allowed(&rc, "http://localhost:8081"));
  ck_assert(!wsh_route_origin_allowed(&rc, "http://a.example"));
  ck_assert(!wsh_route_origin_allowed(&rc, "https://a.example.evil"));
  ck_assert(!wsh_route_origin_allowed(&rc, "https://b.example"));
  ck_assert(!wsh_route_origin_allowed(&rc, ""));
  ck_assert(!wsh_route_origin_allowed(&rc, "null"));
  /* No Origin header: not a browser, nothing to protect. */
  ck_assert(wsh_route_origin_allowed(&rc, NULL));
}
END_TEST

START_TEST(origin_from_file) {
  wsh_route_conf *rc = load_ok("path = /a\nplugin = a.so\norigins = "
                               "https://a.example https://b.example\n");
  ck_assert(wsh_route_origin_allowed(rc, "https://b.example"));
  ck_assert(!wsh_route_origin_allowed(rc, "https://c.example"));
  wsh_route_conf_free(rc);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* options                                                                   */
/* ------------------------------------------------------------------------ */

START_TEST(options_add_and_free) {
  websock_options o = {0};
  char key[16], value[16];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    snprintf(value, sizeof(value), "v%d", i);
    ck_assert_int_eq(wsh_options_add(&o, key, value), 0);
  }
  ck_assert_uint_eq(o.n, 100);
  ck_assert_uint_ge(o.cap, 100);
  ck_assert_str_eq(o.items[0].key, "k0");
  ck_assert_str_eq(o.items[99].value, "v99");
  wsh_options_free(&o);
  ck_assert_uint_eq(o.n, 0);
  ck_assert_ptr_null(o.items);
  wsh_options_free(&o); /* twice is harmless */
}
END_TEST

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* route_path.c: patterns                                                    */
/* ------------------------------------------------------------------------ */

static wsh_path_pattern pat(const char *path) {
  wsh_path_pattern p;
  char err[160];
  ck_assert_msg(wsh_path_pattern_parse(path, &p, err, sizeof(err)) == 0,
                "%s: %s", path, err);
  return p;
}

static void pat_error(const char *path, const char *want) {
  wsh_path_pattern p;
  char err[160] = "";
  ck_assert_int_eq(wsh_path_pattern_parse(path, &p, err, sizeof(err)), -1);
  ck_assert_msg(strstr(err, want), "%s: \"%s\" lacks \"%s\"", path, err, want);
}

/* Matches path against pattern; returns the captures as "name=value;..."
 * (raw), or "no" if it does not match. */
static const char *match(const char *pattern, const char *path) {
  static char out[512];
  wsh_path_pattern p = pat(pattern);
  wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
  int n = wsh_path_match(&p, path, caps);
  if (n < 0) {
    snprintf(out, sizeof(out), "no");
  } else {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
      used += (size_t)snprintf(out + used, sizeof(out) - used, "%s=%.*s;",
                               caps[i].name, (int)caps[i].len, caps[i].at);
  }
  wsh_path_pattern_free(&p);
  return out;
}

START_TEST(path_parse) {
  wsh_path_pattern p = pat("/echo");
  ck_assert(!p.is_pattern); /* exact: matched as a string */
  ck_assert_uint_eq(p.nsegs, 0);
  wsh_path_pattern_free(&p);
  p = pat("/chat/:room/x/*");
  ck_assert(p.is_pattern);
  ck_assert_uint_eq(p.nsegs, 4);
  ck_assert_uint_eq(p.nliteral, 2);
  ck_assert_uint_eq(p.nparam, 1);
  ck_assert(p.star);
  ck_assert_str_eq(p.segs[1].text, "room");
  wsh_path_pattern_free(&p);
  wsh_path_pattern_free(&p); /* twice is harmless */
  p = pat("/a:b/c");         /* ':' inside a segment is a literal */
  ck_assert(!p.is_pattern);
  pat_error("/a/*/b", "'*' is allowed only as the whole last segment");
  pat_error("/a/b*", "'*' is allowed only");
  pat_error("/a/:", "a parameter needs a name");
  pat_error("/a/:x-y", "a parameter needs a name");
  pat_error("/:x/:x", "parameter \":x\" given twice");
  pat_error("a/b", "must start with '/'");
  char many[256] = "";
  for (int i = 0; i <= WSH_PATH_MAX_PARAMS; i++)
    snprintf(many + strlen(many), sizeof(many) - strlen(many), "/:p%d", i);
  pat_error(many, "more than 16 parameters");
}
END_TEST

START_TEST(path_match) {
  ck_assert_str_eq(match("/chat/:room", "/chat/lobby"), "room=lobby;");
  ck_assert_str_eq(match("/chat/:room", "/chat/a%20b"), "room=a%20b;");
  ck_assert_str_eq(match("/chat/:room", "/chat/"), "no"); /* not empty */
  ck_assert_str_eq(match("/chat/:room", "/chat"), "no");
  ck_assert_str_eq(match("/chat/:room", "/chat/a/b"), "no");
  ck_assert_str_eq(match("/chat/:room", "/chatx/a"), "no");
  ck_assert_str_eq(match("/:a/:b", "/x/y"), "a=x;b=y;");
  ck_assert_str_eq(match("/files/*", "/files"), "*=;");
  ck_assert_str_eq(match("/files/*", "/files/"), "*=;");
  ck_assert_str_eq(match("/files/*", "/files/a"), "*=a;");
  ck_assert_str_eq(match("/files/*", "/files/a/b/"), "*=a/b/;");
  ck_assert_str_eq(match("/files/*", "/filesx"), "no");
  ck_assert_str_eq(match("/files/*", "/file"), "no");
  ck_assert_str_eq(match("/*", "/"), "*=;");
  ck_assert_str_eq(match("/*", "/anything/at/all"), "*=anything/at/all;");
  ck_assert_str_eq(match("/u/:id/*", "/u/7/a/b"), "id=7;*=a/b;");
  ck_assert_str_eq(match("/u/:id/*", "/u//a"), "no");
  ck_assert_str_eq(match("/a/:x/", "/a/b/"), "x=b;"); /* trailing slash */
  ck_assert_str_eq(match("/a/:x/", "/a/b"), "no");
}
END_TEST

/* compare(a, b) and whether they share a path (and that path). */
static int cmp(const char *a, const char *b) {
  wsh_path_pattern pa = pat(a), pb = pat(b);
  int r = wsh_path_compare(&pa, &pb);
  ck_assert_int_eq(r, -wsh_path_compare(&pb, &pa));
  wsh_path_pattern_free(&pa);
  wsh_path_pattern_free(&pb);
  return r;
}

static const char *overlap(const char *a, const char *b) {
  static char example[256];
  wsh_path_pattern pa = pat(a), pb = pat(b);
  bool both = wsh_path_overlap(&pa, &pb, example, sizeof(example));
  ck_assert(both == wsh_path_overlap(&pb, &pa, NULL, 0));
  if (both) { /* the example matches both */
    wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
    ck_assert_int_ge(wsh_path_match(&pa, example, caps), 0);
    ck_assert_int_ge(wsh_path_match(&pb, example, caps), 0);
  }
  wsh_path_pattern_free(&pa);
  wsh_path_pattern_free(&pb);
  return both ? example : "none";
}

START_TEST(path_precedence_and_overlap) {
  /* more literal segments win, then more parameters, then no star */
  ck_assert_int_gt(cmp("/a/:x", "/:x/:y"), 0);
  ck_assert_int_gt(cmp("/a/:x", "/a/*"), 0);
  ck_assert_int_gt(cmp("/a/b/*", "/a/:x"), 0);
  ck_assert_int_gt(cmp("/a/:x/:y", "/a/:x"), 0);
  ck_assert_int_gt(cmp("/a/:x", "/a/:x/*"), 0);
  ck_assert_int_gt(cmp("/:x/*", "/*"), 0);
  /* equal: a conflict exactly when they share a path */
  ck_assert_int_eq(cmp("/a/:x", "/a/:y"), 0);
  ck_assert_str_eq(overlap("/a/:x", "/a/:y"), "/a/x");
  ck_assert_int_eq(cmp("/:x/b", "/a/:y"), 0);
  ck_assert_str_eq(overlap("/:x/b", "/a/:y"), "/a/b");
  ck_assert_int_eq(cmp("/a/*", "/b/*"), 0);
  ck_assert_str_eq(overlap("/a/*", "/b/*"), "none");
  ck_assert_str_eq(overlap("/a/:x", "/b/:x"), "none");
  ck_assert_str_eq(overlap("/a/:x", "/a/:x/:y"), "none"); /* lengths */
  ck_assert_str_eq(overlap("/a/:x", "/a/:x/*"), "/a/x");  /* empty star */
  ck_assert_str_eq(overlap("/*", "/a/:x/c"), "/a/x/c");
  ck_assert_str_eq(overlap("/*", "/:x/*"), "/x");
  ck_assert_str_eq(overlap("/a/:x/", "/a/:y/"), "/a/x/");
  ck_assert_str_eq(overlap("/a/", "/:x/:y"), "none"); /* "" is no value */
}
END_TEST

static const char *decode(const char *raw, bool segment) {
  static char out[64];
  return wsh_path_decode(raw, strlen(raw), segment, out) < 0 ? "refused" : out;
}

START_TEST(path_decode) {
  ck_assert_str_eq(decode("a%20b", true), "a b");
  ck_assert_str_eq(decode("%C3%A9%c3%a9", true), "\xc3\xa9\xc3\xa9");
  ck_assert_str_eq(decode("a+b", true), "a+b"); /* a path, not a form */
  ck_assert_str_eq(decode("", true), "");
  ck_assert_str_eq(decode("a%2Fb", true), "refused"); /* a '/' in :name */
  ck_assert_str_eq(decode("a%2Fb", false), "a/b");    /* fine in '*' */
  ck_assert_str_eq(decode("a/b", false), "a/b");
  ck_assert_str_eq(decode("a%00", false), "refused");
  ck_assert_str_eq(decode("%", true), "refused");
  ck_assert_str_eq(decode("%4", true), "refused");
  ck_assert_str_eq(decode("%4g", true), "refused");
  ck_assert_str_eq(decode("%zz", false), "refused");
  ck_assert_str_eq(decode("100%25", true), "100%");
}
END_TEST

START_TEST(conf_path_pattern_and_option_lines) {
  wsh_route_conf *rc = load_ok("path = /chat/:room\n"
                               "plugin = chat.so\n"
                               "[options]\n"
                               "a = 1\n"
                               "\n"
                               "b = 2\n");
  ck_assert(rc->pattern.is_pattern);
  ck_assert_uint_eq(rc->pattern.nparam, 1);
  ck_assert_uint_eq(rc->options.n, 2);
  ck_assert_int_eq(rc->options.items[0].line, 4);
  ck_assert_int_eq(rc->options.items[1].line, 6);
  wsh_route_conf_free(rc);
  check_error("path = /a/*/b\nplugin = x.so\n",
              "line 1: path \"/a/*/b\": '*' is allowed only as the whole last "
              "segment");
}
END_TEST

static Suite *route_suite(void) {
  Suite *s = suite_create("route");

  TCase *tc = tcase_create("conf");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, conf_full);
  tcase_add_test(tc, conf_defaults);
  tcase_add_test(tc, conf_sizes_and_reload);
  tcase_add_test(tc, conf_plugin_paths);
  tcase_add_test(tc, conf_options_keep_duplicates_in_order);
  tcase_add_test(tc, conf_error_unknown_key);
  tcase_add_test(tc, conf_error_unknown_section);
  tcase_add_test(tc, conf_error_route_key_in_options);
  tcase_add_test(tc, conf_error_missing_path);
  tcase_add_test(tc, conf_error_missing_plugin);
  tcase_add_test(tc, conf_error_empty_file);
  tcase_add_test(tc, conf_error_bad_size);
  tcase_add_test(tc, conf_error_bad_idle_timeout);
  tcase_add_test(tc, conf_error_bad_reload);
  tcase_add_test(tc, conf_reload_modes);
  tcase_add_test(tc, conf_error_bad_path);
  tcase_add_test(tc, conf_error_twice);
  tcase_add_test(tc, conf_error_syntax);
  tcase_add_test(tc, conf_error_first_error_wins);
  tcase_add_test(tc, conf_error_cannot_open);
  tcase_add_test(tc, conf_free_null);
  suite_add_tcase(s, tc);

  tc = tcase_create("regressions");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, bug_syntax_error_then_key_error);
  tcase_add_test(tc, bug_long_line_split);
  suite_add_tcase(s, tc);

  tc = tcase_create("dir_list");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, dir_list_sorted_conf_only);
  tcase_add_test(tc, dir_list_empty);
  tcase_add_test(tc, dir_list_missing);
  suite_add_tcase(s, tc);

  tc = tcase_create("origin");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, origin_empty_list_allows_all);
  tcase_add_test(tc, origin_star_allows_all);
  tcase_add_test(tc, origin_listed);
  tcase_add_test(tc, origin_from_file);
  suite_add_tcase(s, tc);

  tc = tcase_create("options");
  tcase_add_test(tc, options_add_and_free);
  suite_add_tcase(s, tc);

  tc = tcase_create("path_patterns");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, path_parse);
  tcase_add_test(tc, path_match);
  tcase_add_test(tc, path_precedence_and_overlap);
  tcase_add_test(tc, path_decode);
  tcase_add_test(tc, conf_path_pattern_and_option_lines);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(route_suite());
}
