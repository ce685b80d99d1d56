/*
 * registry.h - the routes being served: for each path, its current
 * generation (a route file plus the plugin loaded for it). Generations are
 * reference-counted: the registry holds one reference, each connection
 * another, and the last release unload()s and closes the plugin.
 */
#ifndef WSH_REGISTRY_H
#define WSH_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "plugin.h"
#include "route.h"

typedef struct wsh_generation {
  atomic_int refs;
  atomic_int conns; /* open connections on this generation */
  unsigned id;
  wsh_route_conf *conf;
  wsh_plugin *plugin;
  int loaded; /* load() accepted: unload() is owed */
} wsh_generation;

typedef struct wsh_registry {
  pthread_mutex_t lock;
  char *private_dir; /* private copies of the plugins, removed at the end */
  wsh_generation **routes; /* current generation per path */
  size_t n;
  unsigned next_id;
  websock_host *host; /* handed to plugins through their options */
} wsh_registry;

/* Creates a registry and its private directory under $TMPDIR (or /tmp). */
int wsh_registry_new(wsh_registry **out, char *err, size_t errlen);
/* Releases every route; removes the private directory. */
void wsh_registry_free(wsh_registry *r);

/* Loads every route file of dir. Each route that fails (bad file, duplicate
 * path, plugin that does not load, load() refusing) is logged with one line
 * naming the file and the cause and left out; the others are served.
 * Returns 0, or a negative code if the directory cannot be read; *failures
 * counts the routes left out. */
int wsh_registry_load_dir(wsh_registry *r, const char *dir, int *failures);

/* Opens the plugin a route file names and calls its load(). Takes ownership
 * of conf (also on failure). */
int wsh_generation_new(wsh_registry *r, wsh_route_conf *conf,
                       wsh_generation **out, char *err, size_t errlen);

/* The current generation for a path, with a reference taken, or NULL. */
wsh_generation *wsh_registry_acquire(wsh_registry *r, const char *path);
void wsh_generation_acquire(wsh_generation *g);
void wsh_generation_release(wsh_generation *g);

#endif
