/*
 * registry.h - the routes being served: for each path, its current
 * generation (a route file plus the plugin loaded for it), and every older
 * generation still draining. Generations are reference-counted: the registry
 * holds one reference to each current one, each connection another, and the
 * last release unload()s and dlclose()s the plugin and deletes its copy.
 */
#ifndef WSH_REGISTRY_H
#define WSH_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "plugins/plugin.h"
#include "plugins/route.h"

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
  /* permessage-deflate traffic of its connections that negotiated it
   * (WSH_PMD_STAT_*), any worker: a locked add per message on such
   * connections only */
  atomic_ullong pmd_stats[12];
} wsh_generation;

/* wsh_generation.pmd_stats: messages and payload bytes, in and out,
 * compressed (bytes as sent, and the message's size: their ratio) or not. */
enum {
  WSH_PMD_STAT_MSGS_IN_Z,
  WSH_PMD_STAT_BYTES_IN_Z, /* compressed payload bytes */
  WSH_PMD_STAT_SIZE_IN_Z,  /* the same messages inflated */
  WSH_PMD_STAT_MSGS_IN_PLAIN,
  WSH_PMD_STAT_BYTES_IN_PLAIN,
  WSH_PMD_STAT_MSGS_OUT_Z,
  WSH_PMD_STAT_BYTES_OUT_Z,
  WSH_PMD_STAT_SIZE_OUT_Z,
  WSH_PMD_STAT_MSGS_OUT_PLAIN,
  WSH_PMD_STAT_BYTES_OUT_PLAIN,
  WSH_PMD_NSTATS
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

/* A generation a reload replaced whose connections the caller acts on
 * (under `reload = drain` it does nothing: those are not listed). */
typedef struct wsh_replaced {
  wsh_generation *old; /* a reference */
  wsh_generation *now; /* a reference: the route's new generation */
  int mode;            /* WSH_RELOAD_RESTART or WSH_RELOAD_HANDOFF */
} wsh_replaced;

/* SIGHUP: re-reads dir, all or nothing. Routes whose .conf or .so changed
 * (by content) get a new generation; unchanged ones keep theirs; added ones
 * appear; removed ones stop taking upgrades and drain. On any failure nothing
 * changes and err names the file and the cause. On success, *replaced lists
 * the replaced generations of the routes whose new .conf says `reload =
 * restart` (the caller closes their connections with 1012) or `reload =
 * handoff` (the caller moves them to the new generation; a handoff that
 * cannot be, logged here, is left out: those drain), and summary says what
 * changed. Free the list with wsh_replaced_free(). */
int wsh_registry_reload(wsh_registry *r, const char *dir,
                        wsh_replaced **replaced, size_t *nreplaced,
                        char *summary, size_t summarylen, char *err,
                        size_t errlen);

/* Releases the references of a wsh_registry_reload() list and frees it. */
void wsh_replaced_free(wsh_replaced *list, size_t n);

/* Opens the plugin a route file names and calls its load(). Takes ownership
 * of conf (also on failure). */
int wsh_generation_new(wsh_registry *r, wsh_route_conf *conf,
                       wsh_generation **out, char *err, size_t errlen);

/* The current generation serving a request path, with a reference taken,
 * or NULL: an exact route of that path, else the most specific pattern
 * that matches it. */
wsh_generation *wsh_registry_acquire(wsh_registry *r, const char *path);

/* The same, with what a pattern captured (raw, pointing into path and into
 * the generation's route) in caps, room for WSH_PATH_MAX_PARAMS + 1 (NULL:
 * not wanted), and their number in *ncaps (0 for an exact route). */
wsh_generation *wsh_registry_match(wsh_registry *r, const char *path,
                                   wsh_path_capture *caps, int *ncaps);
void wsh_generation_acquire(wsh_generation *g);
void wsh_generation_release(wsh_generation *g);

/* New plugins are first opened by a child, `exe --probe-plugin` (main.c),
 * so that one that crashes or hangs as it loads is refused (NULL: none). */
void wsh_registry_set_probe(wsh_registry *r, const char *exe);

/* The number of routes served. */
size_t wsh_registry_count(wsh_registry *r);

/* The directory of the private plugin copies (fixed for r's life). */
const char *wsh_registry_private_dir(const wsh_registry *r);

/* The handle plugins get through websock_options_host() from their next
 * load() on (set once, before the first route is loaded). */
void wsh_registry_set_host(wsh_registry *r, websock_host *host);

/* Calls fn for the current generation of every route, under the registry's
 * lock (fn must not call back into the registry). */
void wsh_registry_each_route(wsh_registry *r,
                             void (*fn)(void *arg, const wsh_generation *g),
                             void *arg);

/* Calls fn for every loaded generation, current or draining, under the
 * registry's lock. */
void wsh_registry_each_generation(wsh_registry *r,
                                  void (*fn)(void *arg, const wsh_generation *g,
                                             bool current),
                                  void *arg);

/* Reload results, for the metrics. */
/* One reload, for the history /metrics shows. */
typedef struct wsh_reload_record {
  uint64_t n; /* 1, 2, ...; 0: unused */
  time_t at;
  int ok;
} wsh_reload_record;

typedef struct wsh_reload_stats {
  uint64_t ok;
  uint64_t failed;
  time_t last; /* 0: never */
  int last_ok;
  /* the last WSH_RELOAD_HISTORY reloads, reload number n at [n % size] */
  wsh_reload_record recent[WSH_RELOAD_HISTORY];
} wsh_reload_stats;

wsh_reload_stats wsh_registry_reload_stats(wsh_registry *r);

#endif
