/*
 * test_registry.c - unit tests for host/plugins/registry.c: routes and their
 * plugin generations (the start-up load that serves what it can, the reload
 * that is all or nothing, reference counting, the private directory), against
 * the test plugins of tests/plugins/ built into WSH_TEST_PLUGIN_DIR. The
 * plugins call the real websock_* functions: this test exports wsh_core's
 * (ENABLE_EXPORTS, whole archive), as websockd does.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "plugins/registry.h"
#include "plugins/route.h"
#include "websock.h"

#define WSH_TEST_NAME "test_registry"
#define WSH_TEST_SET_TMPDIR /* the registry's private directory goes there */
#include "testutil.h"

#ifndef WSH_TEST_PLUGIN_DIR
#error "WSH_TEST_PLUGIN_DIR must name the directory of the built test plugins"
#endif

static void plugin_so(char *out, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s.so", WSH_TEST_PLUGIN_DIR, name);
}

/* ------------------------------------------------------------------------ */
/* The registry                                                              */
/* ------------------------------------------------------------------------ */

/* Writes tmp/routes/NAME (creating routes/) with the given text. */
static void write_route(char *dir, const char *name, const char *text) {
  char path[PATH_MAX];
  tmp_path(dir, "routes");
  mkdir(dir, 0700);
  snprintf(path, sizeof(path), "%s/routes/%s", tmp_dir, name);
  write_file(path, text);
}

static void route_text(char *out, size_t size, const char *path,
                       const char *plugin, const char *options) {
  char so[PATH_MAX];
  if (plugin[0] == '/' || strchr(plugin, '.'))
    snprintf(so, sizeof(so), "%s", plugin);
  else
    plugin_so(so, plugin);
  snprintf(out, size, "path = %s\nplugin = %s\n[options]\n%s", path, so,
           options ? options : "");
}

START_TEST(registry_private_dir) {
  wsh_registry *r = NULL;
  char err[1024] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  ck_assert_ptr_nonnull(wsh_registry_private_dir(r));
  ck_assert_msg(
      strncmp(wsh_registry_private_dir(r), tmp_dir, strlen(tmp_dir)) == 0,
      "%s is not under $TMPDIR %s", wsh_registry_private_dir(r), tmp_dir);
  struct stat st;
  ck_assert_int_eq(stat(wsh_registry_private_dir(r), &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", wsh_registry_private_dir(r));
  wsh_registry_free(r);
  ck_assert_msg(!exists(dir), "%s not removed", dir);
}
END_TEST

START_TEST(registry_load_dir) {
  char dir[PATH_MAX], rec[PATH_MAX], text[3 * PATH_MAX], opt[PATH_MAX + 16];
  tmp_path(rec, "rec.log");
  snprintf(opt, sizeof(opt), "record = %s\n", rec);
  route_text(text, sizeof(text), "/good", "recorder", opt);
  write_route(dir, "a_good.conf", text);
  route_text(text, sizeof(text), "/bad", "bad_abi", NULL);
  write_route(dir, "b_bad.conf", text);
  route_text(text, sizeof(text), "/good", "recorder", opt);
  write_route(dir, "c_dup.conf", text);
  write_route(dir, "notes.txt", "not a route\n");

  wsh_registry *r = NULL;
  char err[1024] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures = -1;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  ck_assert_int_eq(failures, 2);
  ck_assert_uint_eq(wsh_registry_count(r), 1);

  wsh_generation *g = wsh_registry_acquire(r, "/good");
  ck_assert_ptr_nonnull(g);
  ck_assert_str_eq(g->conf->path, "/good");
  ck_assert_has(g->conf->conf_path, "a_good.conf");
  ck_assert_str_eq(g->plugin->h.name, "recorder");
  ck_assert_int_eq(g->loaded, 1);
  ck_assert_msg(strncmp(g->plugin->copy_path, wsh_registry_private_dir(r),
                        strlen(wsh_registry_private_dir(r))) == 0,
                "copy %s outside %s", g->plugin->copy_path,
                wsh_registry_private_dir(r));
  ck_assert(exists(g->plugin->copy_path));
  ck_assert_int_eq(atomic_load(&g->refs), 2);
  wsh_generation_release(g);
  ck_assert_ptr_null(wsh_registry_acquire(r, "/bad"));
  ck_assert_ptr_null(wsh_registry_acquire(r, "/nope"));
  ck_assert_ptr_null(wsh_registry_acquire(r, "/good/"));
  /* load() ran once: the duplicate was refused before its plugin loaded. */
  ck_assert_str_eq(read_file(rec), "load\n");

  char priv[PATH_MAX];
  snprintf(priv, sizeof(priv), "%s", wsh_registry_private_dir(r));
  wsh_registry_free(r);
  ck_assert_str_eq(read_file(rec), "load\nunload\n");
  ck_assert_msg(!exists(priv), "%s not removed", priv);
}
END_TEST

START_TEST(registry_load_refused) {
  char dir[PATH_MAX], rec[PATH_MAX], text[3 * PATH_MAX], opt[PATH_MAX + 32];
  tmp_path(rec, "rec.log");
  snprintf(opt, sizeof(opt), "record = %s\nrefuse = yes\n", rec);
  route_text(text, sizeof(text), "/refused", "recorder", opt);
  write_route(dir, "refused.conf", text);

  wsh_registry *r = NULL;
  char err[1024] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures = -1;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  ck_assert_int_eq(failures, 1);
  ck_assert_ptr_null(wsh_registry_acquire(r, "/refused"));
  wsh_registry_free(r);
  /* Refused: no unload() owed. */
  ck_assert_str_eq(read_file(rec), "load refused\n");
}
END_TEST

START_TEST(registry_relative_plugin) {
  /* plugin = recorder.so next to the .conf, as in plugins.d/. */
  char dir[PATH_MAX], so[PATH_MAX], local[PATH_MAX + 16];
  write_route(dir, "rel.conf", "path = /rel\nplugin = recorder.so\n");
  plugin_so(so, "recorder");
  snprintf(local, sizeof(local), "%s/recorder.so", dir);
  write_file(local, "");
  int in = open(so, O_RDONLY), out = open(local, O_WRONLY | O_TRUNC);
  ck_assert(in >= 0 && out >= 0);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    ck_assert_int_eq(write(out, buf, (size_t)n), n);
  close(in);
  close(out);

  wsh_registry *r = NULL;
  char err[1024] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures = -1;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  ck_assert_int_eq(failures, 0);
  wsh_generation *g = wsh_registry_acquire(r, "/rel");
  ck_assert_ptr_nonnull(g);
  ck_assert_str_eq(g->conf->plugin_path, local);
  wsh_generation_release(g);
  wsh_registry_free(r);
}
END_TEST

START_TEST(registry_missing_dir) {
  char dir[PATH_MAX];
  tmp_path(dir, "no_such_dir");
  wsh_registry *r = NULL;
  char err[1024] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures = -1;
  ck_assert_int_lt(wsh_registry_load_dir(r, dir, &failures), 0);
  ck_assert_uint_eq(wsh_registry_count(r), 0);
  wsh_registry_free(r);
}
END_TEST

/* wsh_generation_new on a route file written from `text`. */
static int new_generation(wsh_registry *r, const char *text, wsh_generation **g,
                          char *conf, char *err, size_t errlen) {
  tmp_path(conf, "gen.conf");
  write_file(conf, text);
  wsh_route_conf *rc = NULL;
  ck_assert_msg(wsh_route_conf_load(conf, &rc, err, errlen) == 0, "%s", err);
  return wsh_generation_new(r, rc, g, err, errlen);
}

START_TEST(generation_refused_names_everything) {
  char text[3 * PATH_MAX], so[PATH_MAX], conf[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  route_text(text, sizeof(text), "/refused", "recorder", "refuse = yes\n");
  wsh_registry *r = NULL;
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  wsh_generation *g = NULL;
  ck_assert_int_lt(new_generation(r, text, &g, conf, err, sizeof(err)), 0);
  ck_assert_ptr_null(g);
  ck_assert_has(err, so);
  ck_assert_has(err, "load() refused");
  ck_assert_has(err, "/refused");
  /* the .conf is named by the caller (wsh_registry_load_dir and reload
   * prefix every error with it), so it appears once in the log line */
  ck_assert_msg(strstr(err, conf) == NULL, "%s", err);
  wsh_registry_free(r); /* its private directory must be empty again */
}
END_TEST

START_TEST(generation_bad_plugin) {
  char text[3 * PATH_MAX], so[PATH_MAX], conf[PATH_MAX], err[1024] = "";
  plugin_so(so, "bad_abi");
  route_text(text, sizeof(text), "/bad", "bad_abi", NULL);
  wsh_registry *r = NULL;
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  wsh_generation *g = NULL;
  ck_assert_int_lt(new_generation(r, text, &g, conf, err, sizeof(err)), 0);
  ck_assert_ptr_null(g);
  ck_assert_has(err, so);
  ck_assert_has(err, "unknown ABI version 99");
  wsh_registry_free(r);
}
END_TEST

START_TEST(generation_outlives_registry) {
  /* A connection's reference keeps the generation, and unload() waits for
   * the last one. */
  char text[3 * PATH_MAX], rec[PATH_MAX], opt[PATH_MAX + 16], conf[PATH_MAX];
  char err[1024] = "";
  tmp_path(rec, "rec.log");
  snprintf(opt, sizeof(opt), "record = %s\n", rec);
  route_text(text, sizeof(text), "/live", "recorder", opt);
  wsh_registry *r = NULL;
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  wsh_generation *g = NULL;
  ck_assert_msg(new_generation(r, text, &g, conf, err, sizeof(err)) == 0, "%s",
                err);
  ck_assert_uint_eq(g->id, 1);
  ck_assert_int_eq(atomic_load(&g->refs), 1);
  wsh_generation_acquire(g);
  wsh_generation_release(g);
  ck_assert_str_eq(read_file(rec), "load\n");
  wsh_generation_release(g);
  ck_assert_str_eq(read_file(rec), "load\nunload\n");
  wsh_registry_free(r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reload                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(reload_all_or_nothing) {
  char dir[PATH_MAX], rec[PATH_MAX], text[3 * PATH_MAX], opt[PATH_MAX + 16];
  tmp_path(rec, "rec.log");
  snprintf(opt, sizeof(opt), "record = %s\n", rec);
  route_text(text, sizeof(text), "/a", "recorder", opt);
  write_route(dir, "a.conf", text);
  wsh_registry *r = NULL;
  char err[1024] = "", summary[2048] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures = -1;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  ck_assert_int_eq(failures, 0);
  wsh_generation *old = wsh_registry_acquire(r, "/a");
  ck_assert_ptr_nonnull(old);

  /* a broken new route: nothing changes, err names the file */
  route_text(text, sizeof(text), "/b", "bad_abi", NULL);
  write_route(dir, "b.conf", text);
  wsh_replaced *restart = NULL;
  size_t nrestart = 0;
  ck_assert_int_lt(wsh_registry_reload(r, dir, &restart, &nrestart, summary,
                                       sizeof(summary), err, sizeof(err)),
                   0);
  ck_assert_has(err, "b.conf");
  ck_assert_uint_eq(wsh_registry_count(r), 1);
  ck_assert_ptr_null(wsh_registry_acquire(r, "/b"));
  wsh_reload_stats st = wsh_registry_reload_stats(r);
  ck_assert_uint_eq(st.failed, 1);
  ck_assert_int_eq(st.last_ok, 0);

  /* fixed, and /a changed: a new generation for /a, /b added */
  route_text(text, sizeof(text), "/b", "recorder", opt);
  write_route(dir, "b.conf", text);
  char changed[3 * PATH_MAX + 32];
  route_text(text, sizeof(text), "/a", "recorder", opt);
  snprintf(changed, sizeof(changed), "%sextra = 1\n", text);
  write_route(dir, "a.conf", changed);
  wsh_replaced_free(restart, 0); /* the failed reload listed nothing */
  restart = NULL;
  ck_assert_msg(wsh_registry_reload(r, dir, &restart, &nrestart, summary,
                                    sizeof(summary), err, sizeof(err)) == 0,
                "%s", err);
  ck_assert_uint_eq(nrestart, 0); /* reload = drain (the default) */
  wsh_replaced_free(restart, nrestart);
  ck_assert_uint_eq(wsh_registry_count(r), 2);
  wsh_generation *now = wsh_registry_acquire(r, "/a");
  ck_assert_ptr_nonnull(now);
  ck_assert_ptr_ne(now, old);
  ck_assert_uint_gt(now->id, old->id);
  st = wsh_registry_reload_stats(r);
  ck_assert_uint_eq(st.ok, 1);
  ck_assert_int_eq(st.last_ok, 1);
  wsh_generation_release(now);
  wsh_generation_release(old); /* the draining generation unloads now */
  wsh_registry_free(r);
}
END_TEST

/* /h (reload = handoff) and /d, each on the given plugin build. */
static void handoff_routes(char *dir, const char *h_so, const char *h_mode,
                           const char *d_so) {
  char so[PATH_MAX], text[2 * PATH_MAX];
  plugin_so(so, h_so);
  snprintf(text, sizeof(text), "path = /h\nplugin = %s\nreload = %s\n", so,
           h_mode);
  write_route(dir, "h.conf", text);
  plugin_so(so, d_so);
  snprintf(text, sizeof(text), "path = /d\nplugin = %s\nreload = handoff\n",
           so);
  write_route(dir, "d.conf", text);
}

/* reload = handoff lists the replaced generation with the new one only when
 * the old build exports and the new one imports; otherwise it drains (not
 * listed). The new .conf's mode decides. */
START_TEST(registry_reload_handoff) {
  char dir[PATH_MAX], err[1024] = "", summary[2048];
  handoff_routes(dir, "counter", "handoff", "counter_plain");
  wsh_registry *r = NULL;
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  wsh_generation *h1 = wsh_registry_acquire(r, "/h");
  /* /h: v1 -> v2, both with the callbacks; /d: no export_state -> drain */
  handoff_routes(dir, "counter_v2", "handoff", "counter");
  wsh_replaced *list = NULL;
  size_t n = 0;
  ck_assert_msg(wsh_registry_reload(r, dir, &list, &n, summary, sizeof(summary),
                                    err, sizeof(err)) == 0,
                "%s", err);
  ck_assert_uint_eq(n, 1);
  wsh_generation *h2 = wsh_registry_acquire(r, "/h");
  ck_assert_ptr_eq(list[0].old, h1);
  ck_assert_ptr_eq(list[0].now, h2);
  ck_assert_int_eq(list[0].mode, WSH_RELOAD_HANDOFF);
  wsh_replaced_free(list, n);
  /* /h: the new .conf says restart; /d: the new build has no import_state */
  handoff_routes(dir, "counter", "restart", "counter_plain");
  ck_assert_msg(wsh_registry_reload(r, dir, &list, &n, summary, sizeof(summary),
                                    err, sizeof(err)) == 0,
                "%s", err);
  ck_assert_uint_eq(n, 1);
  ck_assert_ptr_eq(list[0].old, h2);
  ck_assert_int_eq(list[0].mode, WSH_RELOAD_RESTART);
  wsh_replaced_free(list, n);
  wsh_generation_release(h1);
  wsh_generation_release(h2);
  wsh_registry_free(r);
}
END_TEST

typedef struct seen_gens {
  int current, draining;
} seen_gens;

static void count_gen(void *arg, const wsh_generation *g, bool current) {
  seen_gens *s = arg;
  (void)g;
  if (current)
    s->current++;
  else
    s->draining++;
}

static void count_route(void *arg, const wsh_generation *g) {
  (void)g;
  (*(int *)arg)++;
}

START_TEST(each_generation_and_route) {
  char dir[PATH_MAX], text[3 * PATH_MAX];
  route_text(text, sizeof(text), "/x", "recorder", NULL);
  write_route(dir, "x.conf", text);
  wsh_registry *r = NULL;
  char err[1024] = "", summary[2048];
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  wsh_generation *held = wsh_registry_acquire(r, "/x");
  char changed[3 * PATH_MAX + 32];
  snprintf(changed, sizeof(changed), "%sk = v\n", text);
  write_route(dir, "x.conf", changed);
  wsh_replaced *restart = NULL;
  size_t n = 0;
  ck_assert_int_eq(wsh_registry_reload(r, dir, &restart, &n, summary,
                                       sizeof(summary), err, sizeof(err)),
                   0);
  wsh_replaced_free(restart, n);
  seen_gens s = {0};
  wsh_registry_each_generation(r, count_gen, &s);
  ck_assert_int_eq(s.current, 1);
  ck_assert_int_eq(s.draining, 1); /* held by our reference */
  int routes = 0;
  wsh_registry_each_route(r, count_route, &routes);
  ck_assert_int_eq(routes, 1);
  wsh_generation_release(held);
  s = (seen_gens){0};
  wsh_registry_each_generation(r, count_gen, &s);
  ck_assert_int_eq(s.draining, 0);
  wsh_registry_free(r);
}
END_TEST

/* Path routes: exact paths (many, through the hash table), patterns by
 * specificity, captures; a conflict fails the start-up route, naming both
 * files. */
START_TEST(registry_path_routes) {
  char dir[PATH_MAX], text[3 * PATH_MAX], name[64], path[64];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "x%02d.conf", i);
    snprintf(path, sizeof(path), "/x%d", i);
    route_text(text, sizeof(text), path, "whoami", NULL);
    write_route(dir, name, text);
  }
  route_text(text, sizeof(text), "/x/:id", "whoami", NULL);
  write_route(dir, "y1.conf", text);
  route_text(text, sizeof(text), "/x/*", "whoami", NULL);
  write_route(dir, "y2.conf", text);
  route_text(text, sizeof(text), "/:a/:b", "whoami", NULL);
  write_route(dir, "y3.conf", text);
  route_text(text, sizeof(text), "/x/:other", "whoami", NULL);
  write_route(dir, "y4_conflict.conf", text);
  wsh_registry *r = NULL;
  char err[1024] = "";
  ck_assert_msg(wsh_registry_new(&r, err, sizeof(err)) == 0, "%s", err);
  int failures = -1;
  ck_assert_int_eq(wsh_registry_load_dir(r, dir, &failures), 0);
  ck_assert_int_eq(failures, 1); /* y4 conflicts with y1 */
  ck_assert_uint_eq(wsh_registry_count(r), 43);
  for (int i = 0; i < 40; i++) {
    snprintf(path, sizeof(path), "/x%d", i);
    wsh_generation *g = wsh_registry_acquire(r, path);
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->conf->path, path);
    wsh_generation_release(g);
  }
  wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
  int n = -1;
  wsh_generation *g = wsh_registry_match(r, "/x/7", caps, &n);
  ck_assert_ptr_nonnull(g);
  /* the most specific of the three that match */
  ck_assert_str_eq(g->conf->path, "/x/:id");
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(caps[0].name, "id");
  ck_assert_int_eq((int)caps[0].len, 1);
  ck_assert_int_eq(caps[0].at[0], '7');
  wsh_generation_release(g);
  g = wsh_registry_match(r, "/y/7", caps, &n);
  ck_assert_str_eq(g->conf->path, "/:a/:b");
  ck_assert_int_eq(n, 2);
  wsh_generation_release(g);
  g = wsh_registry_match(r, "/x/7/8", caps, &n);
  ck_assert_str_eq(g->conf->path, "/x/*");
  wsh_generation_release(g);
  g = wsh_registry_match(r, "/x40", caps, &n); /* exact ones only */
  ck_assert_ptr_null(g);
  ck_assert_int_eq(n, 0);
  ck_assert_ptr_null(wsh_registry_acquire(r, "/a/b/c"));
  wsh_registry_free(r);
}
END_TEST

static Suite *registry_suite(void) {
  Suite *s = suite_create("registry");
  TCase *tc = tcase_create("registry");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, registry_private_dir);
  tcase_add_test(tc, registry_load_dir);
  tcase_add_test(tc, registry_reload_handoff);
  tcase_add_test(tc, registry_load_refused);
  tcase_add_test(tc, registry_relative_plugin);
  tcase_add_test(tc, registry_missing_dir);
  tcase_add_test(tc, generation_refused_names_everything);
  tcase_add_test(tc, generation_bad_plugin);
  tcase_add_test(tc, generation_outlives_registry);
  tcase_add_test(tc, reload_all_or_nothing);
  tcase_add_test(tc, each_generation_and_route);
  tcase_add_test(tc, registry_path_routes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  /* The registry logs each refused route; errors are enough here. */
  wsh_log_set_level(WSH_LOG_ERROR);
  return run_suite(registry_suite());
}
