/*
 * registry.c - routes and their plugin generations (see registry.h): the
 * start-up load, which serves what it can, and the SIGHUP reload, which is
 * all or nothing.
 */
#include "plugins/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/crash.h"
#include "base/hash.h"
#include "base/log.h"

/* How an upgrade finds its route: exact paths in a hash table (one lookup,
 * whatever the number of routes), then the patterns, most specific first
 * (the first that matches wins: two that could match one path with the
 * same specificity are refused when the routes are read). */
typedef struct route_index {
  wsh_generation **exact; /* open addressing; NULL: free */
  size_t nexact;          /* buckets: a power of two, at least 2 per route */
  wsh_generation **patterns;
  size_t npatterns;
} route_index;

/* The routes: the registry alone takes its lock. */
struct wsh_registry {
  pthread_mutex_t lock;
  char *private_dir; /* private copies of the plugins, removed at the end */
  wsh_generation **routes; /* current generation per path */
  size_t n;
  route_index index;    /* of routes */
  wsh_generation *live; /* current and draining generations */
  unsigned next_id;     /* generations count what was served: a failed */
  unsigned next_copy;   /* reload gives its numbers back; copies never do */
  wsh_probe probe;      /* exe NULL (the default): plugins are not probed */
  websock_host *host;   /* handed to plugins through their options */
  /* reload results, for the metrics */
  uint64_t reloads_ok;
  uint64_t reloads_failed;
  time_t last_reload;
  int last_reload_ok;
  wsh_reload_record recent_reloads[WSH_RELOAD_HISTORY];
};

int wsh_registry_new(wsh_registry **out, char *err, size_t errlen) {
  wsh_registry *r = calloc(1, sizeof(*r));
  if (!r)
    return WEBSOCK_ENOMEM;
  const char *tmp = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof(tmpl), "%s/websockd.%ld.XXXXXX",
           tmp && *tmp ? tmp : "/tmp", (long)getpid());
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
  r->next_copy = 1;
  r->probe.timeout_ms = WSH_PROBE_TIMEOUT_MS;
  *out = r;
  return 0;
}

static void index_free(route_index *ix) {
  free(ix->exact);
  free(ix->patterns);
  memset(ix, 0, sizeof(*ix));
}

void wsh_registry_free(wsh_registry *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    wsh_generation_release(r->routes[i]);
  free(r->routes);
  index_free(&r->index);
  if (r->live)
    wsh_warn("%s: generation %u still referenced at exit", r->private_dir,
             r->live->id);
  else if (rmdir(r->private_dir) != 0)
    wsh_warn("%s: not removed: %s", r->private_dir, strerror(errno));
  free(r->private_dir);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

/* ---- generations --------------------------------------------------------- */

/* The table's unload_context(context), if load() left a context. */
static void unload_context(wsh_plugin *p, websock_options *o,
                           const char *route) {
  void *context = o->context;
  o->context = NULL;
  if (!context || !p->h.unload_context)
    return;
  wsh_crash_enter(route, p->h.name, p->label, "unload_context", 0);
  p->h.unload_context(context);
  wsh_crash_leave();
}

static void generation_destroy(wsh_generation *g) {
  wsh_registry *r = g->reg;
  if (g->loaded && g->plugin->h.unload) {
    wsh_crash_enter(g->conf->path, g->plugin->h.name, g->plugin->label,
                    "unload", 0);
    g->plugin->h.unload();
    wsh_crash_leave();
  }
  if (g->loaded)
    unload_context(g->plugin, &g->conf->options, g->conf->path);
  if (r) {
    pthread_mutex_lock(&r->lock);
    if (g->live_prev)
      g->live_prev->live_next = g->live_next;
    else if (r->live == g)
      r->live = g->live_next;
    if (g->live_next)
      g->live_next->live_prev = g->live_prev;
    pthread_mutex_unlock(&r->lock);
    if (g->served)
      wsh_info("route %s: generation %u unloaded", g->conf->path, g->id);
    else
      wsh_info("route %s: new plugin unloaded (never served)", g->conf->path);
  }
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

/* SHA-256 of a whole file. */
static int digest_file(const char *path, uint8_t out[32]) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return WEBSOCK_ENOENT;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = WEBSOCK_ENOMEM;
  if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
    goto out_close;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
    EVP_DigestUpdate(ctx, buf, n);
  unsigned len = 32;
  rc = ferror(f) || !EVP_DigestFinal_ex(ctx, out, &len) ? WEBSOCK_EINVAL : 0;
out_close:
  EVP_MD_CTX_free(ctx);
  fclose(f);
  return rc;
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* The table's option_keys, if any, against the route's [options]: a key
 * it does not list is refused, naming its line (the caller names the
 * .conf). */
static int check_option_keys(const wsh_plugin *p, const wsh_route_conf *conf,
                             char *err, size_t errlen) {
  const char *const *keys = p->h.option_keys;
  if (!keys)
    return 0;
  for (size_t i = 0; i < conf->options.n; i++) {
    const wsh_kv *kv = &conf->options.items[i];
    size_t k = 0;
    while (keys[k] && strcmp(keys[k], kv->key) != 0)
      k++;
    if (keys[k])
      continue;
    char known[256] = "";
    for (size_t j = 0, used = 0; keys[j] && used < sizeof(known); j++) {
      int n = snprintf(known + used, sizeof(known) - used, "%s%s",
                       j ? ", " : "", keys[j]);
      used += n > 0 ? (size_t)n : 0;
    }
    snprintf(err, errlen,
             "line %d: unknown option \"%s\" in [options] (plugin %s "
             "knows: %s)",
             kv->line, kv->key, p->h.name ? p->h.name : "?",
             known[0] ? known : "none");
    return WEBSOCK_EINVAL;
  }
  return 0;
}

int wsh_generation_new(wsh_registry *r, wsh_route_conf *conf,
                       wsh_generation **out, char *err, size_t errlen) {
  int rc = WEBSOCK_ENOMEM;
  wsh_generation *g = calloc(1, sizeof(*g));
  if (!g)
    goto out_conf;
  pthread_mutex_lock(&r->lock);
  unsigned copy_id = r->next_copy++;
  pthread_mutex_unlock(&r->lock);
  digest_file(conf->conf_path, g->conf_digest);
  char copy[4096];
  snprintf(copy, sizeof(copy), "%s/%u-%s", r->private_dir, copy_id,
           base_name(conf->plugin_path));
  if ((rc = wsh_plugin_open_probed(conf->plugin_path, copy, &r->probe,
                                   &g->plugin, err, errlen)))
    goto out_gen;
  digest_file(copy, g->so_digest); /* of the code actually loaded */
  if ((rc = check_option_keys(g->plugin, conf, err, errlen)) != 0)
    goto out_plugin;
  /* Numbered before load() so that its log lines can say which generation;
   * the number is given back if load() refuses. */
  pthread_mutex_lock(&r->lock);
  g->id = r->next_id++;
  pthread_mutex_unlock(&r->lock);
  char label[192];
  snprintf(label, sizeof(label), "route %s plugin %s generation %u", conf->path,
           g->plugin->h.name ? g->plugin->h.name : "?", g->id);
  wsh_plugin_set_label(g->plugin, label);
  conf->options.host = r->host;
  conf->options.loading = 1;
  wsh_crash_enter(conf->path, g->plugin->h.name, g->plugin->label, "load", 0);
  int refused = g->plugin->h.load && g->plugin->h.load(&conf->options) != 0;
  wsh_crash_leave();
  conf->options.loading = 0;
  if (refused) {
    unload_context(g->plugin, &conf->options, conf->path);
    pthread_mutex_lock(&r->lock);
    if (r->next_id == g->id + 1)
      r->next_id--;
    pthread_mutex_unlock(&r->lock);
    snprintf(err, errlen, "%s: load() refused the route %s", conf->plugin_path,
             conf->path);
    rc = WEBSOCK_EINVAL;
    goto out_plugin;
  }
  g->loaded = 1;
  g->conf = conf;
  g->reg = r;
  atomic_init(&g->refs, 1);
  atomic_init(&g->conns, 0);
  pthread_mutex_lock(&r->lock);
  g->live_next = r->live;
  if (r->live)
    r->live->live_prev = g;
  r->live = g;
  pthread_mutex_unlock(&r->lock);
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

/* ---- building a route table ---------------------------------------------- */

/* A route table being built from a directory, before it is swapped in. */
typedef struct table {
  wsh_generation **gens;
  size_t n;
  int strict; /* reload: the first failure fails everything */
  int failures;
  char *err;
  size_t errlen;
} table;

static wsh_generation *find_in(wsh_generation **gens, size_t n,
                               const char *path) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(gens[i]->conf->path, path) == 0)
      return gens[i];
  return NULL;
}

static void table_free(table *t) {
  for (size_t i = 0; i < t->n; i++)
    wsh_generation_release(t->gens[i]);
  free(t->gens);
  t->gens = NULL;
  t->n = 0;
}

/* A failure: fatal for a reload, logged and skipped at start-up. */
static int table_fail(table *t) {
  t->failures++;
  if (t->strict)
    return -1;
  wsh_error("route not served: %s", t->err);
  return 0;
}

/* The current generation if neither the .conf nor the .so changed. */
static wsh_generation *unchanged(wsh_registry *r, const wsh_route_conf *conf) {
  uint8_t cd[32], sd[32];
  pthread_mutex_lock(&r->lock);
  wsh_generation *g = find_in(r->routes, r->n, conf->path);
  if (g)
    wsh_generation_acquire(g);
  pthread_mutex_unlock(&r->lock);
  if (!g)
    return NULL;
  if (digest_file(conf->conf_path, cd) == 0 &&
      digest_file(conf->plugin_path, sd) == 0 &&
      memcmp(cd, g->conf_digest, 32) == 0 &&
      memcmp(sd, g->so_digest, 32) == 0 &&
      strcmp(conf->conf_path, g->conf->conf_path) == 0)
    return g;
  wsh_generation_release(g);
  return NULL;
}

/* Two patterns that could match one path, neither more specific than the
 * other: which route would serve it is undecidable, so the second is
 * refused, naming both files and a path they share. */
static int conflict(table *t, const wsh_route_conf *conf, const char *file) {
  if (!conf->pattern.is_pattern)
    return 0;
  for (size_t i = 0; i < t->n; i++) {
    const wsh_route_conf *o = t->gens[i]->conf;
    char example[256];
    if (!o->pattern.is_pattern ||
        wsh_path_compare(&conf->pattern, &o->pattern) != 0 ||
        !wsh_path_overlap(&conf->pattern, &o->pattern, example,
                          sizeof(example)))
      continue;
    snprintf(t->err, t->errlen,
             "%s: path %s conflicts with path %s of %s: both match %s with "
             "the same precedence (make one more specific)",
             file, conf->path, o->path, o->conf_path, example);
    return 1;
  }
  return 0;
}

/* Adds one route file to the table. Returns -1 to abort (strict). */
static int table_add(wsh_registry *r, table *t, const char *file) {
  wsh_route_conf *conf;
  if (wsh_route_conf_load(file, &conf, t->err, t->errlen) != 0)
    return table_fail(t);
  wsh_generation *dup = find_in(t->gens, t->n, conf->path);
  if (dup) {
    snprintf(t->err, t->errlen, "%s: path %s is already served by %s", file,
             conf->path, dup->conf->conf_path);
    wsh_route_conf_free(conf);
    return table_fail(t);
  }
  if (conflict(t, conf, file)) {
    wsh_route_conf_free(conf);
    return table_fail(t);
  }
  wsh_generation **gens = realloc(t->gens, (t->n + 1) * sizeof(*gens));
  if (!gens) {
    snprintf(t->err, t->errlen, "%s: out of memory", file);
    wsh_route_conf_free(conf);
    return table_fail(t);
  }
  t->gens = gens;
  wsh_generation *g = unchanged(r, conf);
  if (g) {
    wsh_route_conf_free(conf);
  } else {
    char why[1024];
    if (wsh_generation_new(r, conf, &g, why, sizeof(why)) != 0) {
      snprintf(t->err, t->errlen, "%s: %s", file, why);
      return table_fail(t);
    }
  }
  t->gens[t->n++] = g;
  return 0;
}

static int table_build(wsh_registry *r, const char *dir, table *t) {
  char **files;
  size_t n;
  int rc = wsh_route_dir_list(dir, &files, &n, t->err, t->errlen);
  if (rc)
    return rc;
  for (size_t i = 0; i < n && rc == 0; i++)
    if (table_add(r, t, files[i]) != 0)
      rc = WEBSOCK_EINVAL;
  wsh_route_dir_list_free(files, n);
  return rc;
}

/* The patterns most specific first (qsort). */
static int by_specificity(const void *a, const void *b) {
  const wsh_generation *ga = *(wsh_generation *const *)a;
  const wsh_generation *gb = *(wsh_generation *const *)b;
  return -wsh_path_compare(&ga->conf->pattern, &gb->conf->pattern);
}

/* The index of a table's routes. Out of memory: an empty index (and every
 * upgrade is a 404) would be worse than the linear search it replaces, so
 * the caller keeps going with what it has: 0 or WEBSOCK_ENOMEM. */
static int index_build(route_index *ix, wsh_generation **gens, size_t n) {
  memset(ix, 0, sizeof(*ix));
  size_t nb = 8;
  while (nb < 2 * n)
    nb *= 2;
  ix->exact = calloc(nb, sizeof(*ix->exact));
  ix->patterns = calloc(n ? n : 1, sizeof(*ix->patterns));
  if (!ix->exact || !ix->patterns) {
    index_free(ix);
    return WEBSOCK_ENOMEM;
  }
  ix->nexact = nb;
  for (size_t i = 0; i < n; i++) {
    if (gens[i]->conf->pattern.is_pattern) {
      ix->patterns[ix->npatterns++] = gens[i];
      continue;
    }
    size_t h = wsh_hash_str(gens[i]->conf->path) & (nb - 1);
    while (ix->exact[h])
      h = (h + 1) & (nb - 1);
    ix->exact[h] = gens[i];
  }
  qsort(ix->patterns, ix->npatterns, sizeof(*ix->patterns), by_specificity);
  return 0;
}

/* The route serving path (under the lock), its captures in caps (room for
 * WSH_PATH_MAX_PARAMS + 1; NULL: not wanted) and their number in *ncaps. */
static wsh_generation *index_find(const wsh_registry *r, const char *path,
                                  wsh_path_capture *caps, int *ncaps) {
  const route_index *ix = &r->index;
  *ncaps = 0;
  if (!ix->nexact) /* no index (out of memory): exact paths one by one */
    return find_in(r->routes, r->n, path);
  for (size_t h = wsh_hash_str(path) & (ix->nexact - 1); ix->exact[h];
       h = (h + 1) & (ix->nexact - 1))
    if (strcmp(ix->exact[h]->conf->path, path) == 0)
      return ix->exact[h];
  wsh_path_capture scratch[WSH_PATH_MAX_PARAMS + 1];
  for (size_t i = 0; i < ix->npatterns; i++) {
    int n = wsh_path_match(&ix->patterns[i]->conf->pattern, path,
                           caps ? caps : scratch);
    if (n >= 0) {
      *ncaps = n;
      return ix->patterns[i];
    }
  }
  return NULL;
}

/* Swaps the table in; returns the old one (to release outside the lock). */
static void table_swap(wsh_registry *r, table *t) {
  route_index ix;
  index_build(&ix, t->gens, t->n);
  pthread_mutex_lock(&r->lock);
  wsh_generation **old = r->routes;
  size_t oldn = r->n;
  route_index oldix = r->index;
  r->index = ix;
  r->routes = t->gens;
  r->n = t->n;
  for (size_t i = 0; i < r->n; i++)
    r->routes[i]->served = 1;
  pthread_mutex_unlock(&r->lock);
  index_free(&oldix);
  t->gens = old;
  t->n = oldn;
}

static void log_routes(const table *t, const wsh_registry *r) {
  for (size_t i = 0; i < r->n; i++) {
    const wsh_generation *g = r->routes[i];
    if (find_in(t->gens, t->n, g->conf->path) == g)
      continue; /* unchanged */
    wsh_info("route %s: %s %s from %s (generation %u)", g->conf->path,
             g->plugin->h.name ? g->plugin->h.name : "?",
             g->plugin->h.version ? g->plugin->h.version : "?",
             g->conf->plugin_path, g->id);
  }
}

int wsh_registry_load_dir(wsh_registry *r, const char *dir, int *failures) {
  char err[1024];
  table t = {.err = err, .errlen = sizeof(err)};
  int rc = table_build(r, dir, &t);
  *failures = t.failures;
  if (rc) {
    wsh_error("%s", err);
    table_free(&t);
    return rc;
  }
  table_swap(r, &t);
  log_routes(&t, r);
  table_free(&t);
  return 0;
}

/* ---- reload -------------------------------------------------------------- */

/* Appends " what /path (generation N)" to the reload summary. */
static void append(char *buf, size_t len, const char *what, const char *path,
                   unsigned id) {
  size_t used = strlen(buf);
  if (used < len)
    snprintf(buf + used, len - used, " %s %s (generation %u)", what, path, id);
}

/* Compression settings a connection negotiated with keep their meaning. */
static bool same_pmd(const wsh_pmd_config *a, const wsh_pmd_config *b) {
  return a->mode == b->mode && a->server_window_bits == b->server_window_bits &&
         a->client_window_bits == b->client_window_bits &&
         a->level == b->level && a->mem_level == b->mem_level &&
         a->min_size == b->min_size;
}

/* What the new .conf's `reload` does to the connections of `was`, replaced
 * by g: a handoff that cannot be (logged) drains. */
static int reload_mode(const wsh_generation *was, const wsh_generation *g) {
  if (g->conf->reload != WSH_RELOAD_HANDOFF)
    return g->conf->reload;
  const struct websock_handler *o = &was->plugin->h, *n = &g->plugin->h;
  const char *why = NULL;
  if (!o->export_state)
    why = "the old plugin has no export_state";
  else if (!n->import_state)
    why = "the new plugin has no import_state";
  else if (strcmp(o->name ? o->name : "", n->name ? n->name : "") != 0)
    why = "the plugin's name changed";
  else if (!same_pmd(&was->conf->pmd, &g->conf->pmd))
    why = "the route's compression settings changed";
  if (!why)
    return WSH_RELOAD_HANDOFF;
  wsh_warn("route %s: reload = handoff, but %s: generation %u drains instead "
           "(its connections stay on the old code)",
           g->conf->path, why, was->id);
  return WSH_RELOAD_DRAIN;
}

void wsh_replaced_free(wsh_replaced *list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    wsh_generation_release(list[i].old);
    wsh_generation_release(list[i].now);
  }
  free(list);
}

/* What changed, and the old generations whose connections restart or move. */
static int diff_tables(const table *old, wsh_registry *r,
                       wsh_replaced **replaced, size_t *nreplaced,
                       char *summary, size_t len) {
  size_t unchanged_n = 0;
  summary[0] = '\0';
  *replaced = calloc(old->n + 1, sizeof(**replaced));
  *nreplaced = 0;
  if (!*replaced)
    return WEBSOCK_ENOMEM;
  for (size_t i = 0; i < r->n; i++) {
    wsh_generation *g = r->routes[i],
                   *was = find_in(old->gens, old->n, g->conf->path);
    if (was == g) {
      unchanged_n++;
    } else if (was) {
      append(summary, len, "changed", g->conf->path, g->id);
      int mode = reload_mode(was, g);
      if (mode != WSH_RELOAD_DRAIN) {
        wsh_generation_acquire(was);
        wsh_generation_acquire(g);
        (*replaced)[(*nreplaced)++] = (wsh_replaced){was, g, mode};
      }
    } else {
      append(summary, len, "added", g->conf->path, g->id);
    }
  }
  for (size_t i = 0; i < old->n; i++)
    if (!find_in(r->routes, r->n, old->gens[i]->conf->path))
      append(summary, len, "removed (draining)", old->gens[i]->conf->path,
             old->gens[i]->id);
  size_t used = strlen(summary);
  snprintf(summary + used, len - used, " unchanged %zu", unchanged_n);
  return 0;
}

int wsh_registry_reload(wsh_registry *r, const char *dir,
                        wsh_replaced **replaced, size_t *nreplaced,
                        char *summary, size_t summarylen, char *err,
                        size_t errlen) {
  table t = {.strict = 1, .err = err, .errlen = errlen};
  pthread_mutex_lock(&r->lock);
  unsigned first_id = r->next_id;
  pthread_mutex_unlock(&r->lock);
  int rc = table_build(r, dir, &t);
  if (rc)
    table_free(&t); /* new generations are unloaded, the old ones stay */
  pthread_mutex_lock(&r->lock);
  r->last_reload = time(NULL);
  r->last_reload_ok = rc == 0;
  if (rc) {
    r->reloads_failed++;
    r->next_id = first_id; /* nothing was served: the numbers are free */
  } else {
    r->reloads_ok++;
  }
  uint64_t n = r->reloads_ok + r->reloads_failed;
  r->recent_reloads[n % WSH_RELOAD_HISTORY] =
      (wsh_reload_record){n, r->last_reload, rc == 0};
  pthread_mutex_unlock(&r->lock);
  if (rc)
    return rc;
  table_swap(r, &t);
  log_routes(&t, r);
  rc = diff_tables(&t, r, replaced, nreplaced, summary, summarylen);
  table_free(&t);
  return rc;
}

/* ---- lookups ------------------------------------------------------------- */

wsh_generation *wsh_registry_acquire(wsh_registry *r, const char *path) {
  int n;
  return wsh_registry_match(r, path, NULL, &n);
}

wsh_generation *wsh_registry_match(wsh_registry *r, const char *path,
                                   wsh_path_capture *caps, int *ncaps) {
  pthread_mutex_lock(&r->lock);
  wsh_generation *g = index_find(r, path, caps, ncaps);
  if (g)
    wsh_generation_acquire(g);
  pthread_mutex_unlock(&r->lock);
  return g;
}

static int is_current_locked(const wsh_registry *r, const wsh_generation *g) {
  for (size_t i = 0; i < r->n; i++)
    if (r->routes[i] == g)
      return 1;
  return 0;
}

size_t wsh_registry_count(wsh_registry *r) {
  pthread_mutex_lock(&r->lock);
  size_t n = r->n;
  pthread_mutex_unlock(&r->lock);
  return n;
}

const char *wsh_registry_private_dir(const wsh_registry *r) {
  return r->private_dir;
}

void wsh_registry_set_host(wsh_registry *r, websock_host *host) {
  r->host = host;
}

void wsh_registry_each_route(wsh_registry *r,
                             void (*fn)(void *arg, const wsh_generation *g),
                             void *arg) {
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++)
    fn(arg, r->routes[i]);
  pthread_mutex_unlock(&r->lock);
}

void wsh_registry_each_generation(wsh_registry *r,
                                  void (*fn)(void *arg, const wsh_generation *g,
                                             bool current),
                                  void *arg) {
  pthread_mutex_lock(&r->lock);
  for (wsh_generation *g = r->live; g; g = g->live_next)
    fn(arg, g, is_current_locked(r, g));
  pthread_mutex_unlock(&r->lock);
}

wsh_reload_stats wsh_registry_reload_stats(wsh_registry *r) {
  pthread_mutex_lock(&r->lock);
  wsh_reload_stats st = {r->reloads_ok,
                         r->reloads_failed,
                         r->last_reload,
                         r->last_reload_ok,
                         {{0}}};
  memcpy(st.recent, r->recent_reloads, sizeof(st.recent));
  pthread_mutex_unlock(&r->lock);
  return st;
}

void wsh_registry_set_probe(wsh_registry *r, const char *exe) {
  r->probe.exe = exe;
}
