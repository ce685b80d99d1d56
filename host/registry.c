/*
 * registry.c - routes and their plugin generations (see registry.h).
 */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int wsh_registry_new(wsh_registry **out, char *err, size_t errlen) {
  wsh_registry *r = calloc(1, sizeof(*r));
  if (!r)
    return WEBSOCK_ENOMEM;
  const char *tmp = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof(tmpl), "%s/websockd.%ld.XXXXXX", tmp && *tmp ? tmp : "/tmp",
           (long)getpid());
  if (!mkdtemp(tmpl)) {
    snprintf(err, errlen, "%s: cannot create private directory: %s", tmpl,
             strerror(errno));
    free(r);
    return WEBSOCK_EINVAL;
  }
  if (!(r->private_dir = strdup(tmpl))) {
    rmdir(tmpl);
    free(r);
    return WEBSOCK_ENOMEM;
  }
  pthread_mutex_init(&r->lock, NULL);
  r->next_id = 1;
  *out = r;
  return 0;
}

void wsh_registry_free(wsh_registry *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    wsh_generation_release(r->routes[i]);
  free(r->routes);
  if (rmdir(r->private_dir) != 0)
    wsh_warn("%s: not removed: %s", r->private_dir, strerror(errno));
  free(r->private_dir);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

static void generation_destroy(wsh_generation *g) {
  if (g->loaded && g->plugin->h.unload)
    g->plugin->h.unload();
  wsh_plugin_close(g->plugin);
  wsh_route_conf_free(g->conf);
  free(g);
}

void wsh_generation_acquire(wsh_generation *g) {
  atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void wsh_generation_release(wsh_generation *g) {
  if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
    generation_destroy(g);
}

/* "echo.so" in "plugins.d/echo.so": the private copy's base name. */
static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

int wsh_generation_new(wsh_registry *r, wsh_route_conf *conf,
                       wsh_generation **out, char *err, size_t errlen) {
  int rc = WEBSOCK_ENOMEM;
  wsh_generation *g = calloc(1, sizeof(*g));
  if (!g)
    goto out_conf;
  pthread_mutex_lock(&r->lock);
  g->id = r->next_id++;
  pthread_mutex_unlock(&r->lock);
  char copy[4096];
  snprintf(copy, sizeof(copy), "%s/%u-%s", r->private_dir, g->id,
           base_name(conf->plugin_path));
  if ((rc = wsh_plugin_open(conf->plugin_path, copy, &g->plugin, err, errlen)))
    goto out_gen;
  conf->options.host = r->host;
  if (g->plugin->h.load && g->plugin->h.load(&conf->options) != 0) {
    snprintf(err, errlen, "%s: load() refused the route %s (from %s)",
             conf->plugin_path, conf->path, conf->conf_path);
    rc = WEBSOCK_EINVAL;
    goto out_plugin;
  }
  g->loaded = 1;
  g->conf = conf;
  atomic_init(&g->refs, 1);
  atomic_init(&g->conns, 0);
  *out = g;
  return 0;
out_plugin:
  wsh_plugin_close(g->plugin);
out_gen:
  free(g);
out_conf:
  wsh_route_conf_free(conf);
  return rc;
}

static wsh_generation *find_locked(wsh_registry *r, const char *path) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->routes[i]->conf->path, path) == 0)
      return r->routes[i];
  return NULL;
}

static int add_route(wsh_registry *r, wsh_generation *g) {
  wsh_generation **routes = realloc(r->routes, (r->n + 1) * sizeof(*routes));
  if (!routes)
    return WEBSOCK_ENOMEM;
  r->routes = routes;
  r->routes[r->n++] = g;
  return 0;
}

/* Loads one route file into the registry, or says why not. */
static int load_one(wsh_registry *r, const char *file, char *err, size_t errlen) {
  wsh_route_conf *conf;
  int rc = wsh_route_conf_load(file, &conf, err, errlen);
  if (rc)
    return rc;
  pthread_mutex_lock(&r->lock);
  wsh_generation *dup = find_locked(r, conf->path);
  pthread_mutex_unlock(&r->lock);
  if (dup) {
    snprintf(err, errlen, "%s: path %s is already served by %s", file,
             conf->path, dup->conf->conf_path);
    wsh_route_conf_free(conf);
    return WEBSOCK_EINVAL;
  }
  wsh_generation *g;
  if ((rc = wsh_generation_new(r, conf, &g, err, errlen)))
    return rc;
  pthread_mutex_lock(&r->lock);
  rc = add_route(r, g);
  pthread_mutex_unlock(&r->lock);
  if (rc) {
    snprintf(err, errlen, "%s: out of memory", file);
    wsh_generation_release(g);
    return rc;
  }
  wsh_info("route %s: %s %s from %s (generation %u)", g->conf->path,
           g->plugin->h.name ? g->plugin->h.name : "?",
           g->plugin->h.version ? g->plugin->h.version : "?",
           g->conf->plugin_path, g->id);
  return 0;
}

int wsh_registry_load_dir(wsh_registry *r, const char *dir, int *failures) {
  char err[1024];
  char **files;
  size_t n;
  *failures = 0;
  int rc = wsh_route_dir_list(dir, &files, &n, err, sizeof(err));
  if (rc) {
    wsh_error("%s", err);
    return rc;
  }
  for (size_t i = 0; i < n; i++) {
    if (load_one(r, files[i], err, sizeof(err)) != 0) {
      wsh_error("route not served: %s", err);
      (*failures)++;
    }
  }
  wsh_route_dir_list_free(files, n);
  return 0;
}

wsh_generation *wsh_registry_acquire(wsh_registry *r, const char *path) {
  pthread_mutex_lock(&r->lock);
  wsh_generation *g = find_locked(r, path);
  if (g)
    wsh_generation_acquire(g);
  pthread_mutex_unlock(&r->lock);
  return g;
}
