/*
 * registry.h - the routes being served: for each path, its current
 * generation (a route file plus the plugin loaded for it), and every older
 * generation still draining. Generations are reference-counted: the registry
 * holds one reference to each current one, each connection another, and the
 * last release unload()s and dlclose()s the plugin and deletes its copy.
 */
#ifndef WSH_REGISTRY_H
#define WSH_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "plugin.h"
#include "route.h"

typedef struct wsh_registry wsh_registry;

/* Reloads remembered for /metrics (and so the /status page). */
#define WSH_RELOAD_HISTORY 8

typedef struct wsh_generation {
  atomic_int refs;
  atomic_int conns; /* open connections on this generation */
  unsigned id;
  wsh_route_conf *conf;
  wsh_plugin *plugin;
  int loaded;              /* load() accepted: unload() is owed */
  int served;              /* was in a route table swapped in */
  uint8_t conf_digest[32]; /* SHA-256 of the .conf and of the .so, to tell */
  uint8_t so_digest[32];   /* a changed route from an unchanged one */
  wsh_registry *reg;
  struct wsh_generation *live_prev, *live_next; /* every loaded generation */
} wsh_generation;

struct wsh_registry {
  pthread_mutex_t lock;
  char *private_dir; /* private copies of the plugins, removed at the end */
  wsh_generation **routes; /* current generation per path */
  size_t n;
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
  /* the last WSH_RELOAD_HISTORY reloads, reload number n at [n % size] */
  struct wsh_reload_record {
    uint64_t n; /* 1, 2, ...; 0: unused */
    time_t at;
    int ok;
  } recent_reloads[WSH_RELOAD_HISTORY];
};

/* Creates a registry and its private directory under $TMPDIR (or /tmp). */
int wsh_registry_new(wsh_registry **out, char *err, size_t errlen);
/* Releases every route; removes the private directory. */
void wsh_registry_free(wsh_registry *r);

/* Start-up: loads every route file of dir. Each route that fails (bad file,
 * duplicate path, plugin that does not load, load() refusing) is logged with
 * one line naming the file and the cause and left out; the others are
 * served. Returns 0, or a negative code if the directory cannot be read;
 * *failures counts the routes left out. */
int wsh_registry_load_dir(wsh_registry *r, const char *dir, int *failures);

/* SIGHUP: re-reads dir, all or nothing. Routes whose .conf or .so changed
 * (by content) get a new generation; unchanged ones keep theirs; added ones
 * appear; removed ones stop taking upgrades and drain. On any failure nothing
 * changes and err names the file and the cause. On success, *restart lists
 * (with a reference each) the replaced generations of `reload = restart`
 * routes, whose connections the caller closes with 1012, and summary says
 * what changed. */
int wsh_registry_reload(wsh_registry *r, const char *dir,
                        wsh_generation ***restart, size_t *nrestart,
                        char *summary, size_t summarylen, char *err,
                        size_t errlen);

/* Opens the plugin a route file names and calls its load(). Takes ownership
 * of conf (also on failure). */
int wsh_generation_new(wsh_registry *r, wsh_route_conf *conf,
                       wsh_generation **out, char *err, size_t errlen);

/* The current generation for a path, with a reference taken, or NULL. */
wsh_generation *wsh_registry_acquire(wsh_registry *r, const char *path);
void wsh_generation_acquire(wsh_generation *g);
void wsh_generation_release(wsh_generation *g);

/* True if g is the current generation of its route. Under r->lock. */
int wsh_registry_is_current_locked(const wsh_registry *r,
                                   const wsh_generation *g);

#endif
