/*
 * route.h - route files: plugins.d/NAME.conf, one INI file per route, read
 * with inih. Knows nothing of plugins or connections.
 */
#ifndef WSH_ROUTE_H
#define WSH_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "plugins/route_path.h"
#include "protocol/deflate.h"
#include "websock.h"

typedef struct wsh_kv {
  char *key;
  char *value;
  int line; /* in the .conf (0: not from a file) */
} wsh_kv;

/* The [options] section, handed to the plugin's load(). */
struct websock_options {
  wsh_kv *items;
  size_t n;
  size_t cap;
  websock_host *host; /* set when a generation is loaded; NULL under -t */
  void *context;      /* websock_options_set_context(), in load() */
  int loading;        /* inside load(): the context may be set */
};

/* reload = drain | restart | handoff: the NEW .conf's key decides what a
 * reload does to the replaced generation's connections. */
enum { WSH_RELOAD_DRAIN = 0, WSH_RELOAD_RESTART = 1, WSH_RELOAD_HANDOFF = 2 };
enum { WSH_FULL_CLOSE = 0, WSH_FULL_DROP = 1 };

#define WSH_DEFAULT_MAX_UNSENT (4 * 1024 * 1024)
#define WSH_DEFAULT_PAUSE_READING (1024 * 1024)

#define WSH_DEFAULT_MAX_MESSAGE (1024 * 1024)
#define WSH_DEFAULT_PMD_LEVEL 1       /* zlib level: CPU first (README) */
#define WSH_DEFAULT_PMD_IDLE_MS 10000 /* dedicated streams trimmed after */

/* memLevel of dedicated deflaters: a 4 K-entry hash, so that sliding the
 * window (every 32 KiB sent, with context takeover) walks 36 K entries, not
 * 64 K; the ratio moves by under 1 % (README). */
#define WSH_DEFAULT_PMD_MEM_LEVEL 5

typedef struct wsh_route_conf {
  char *conf_path;          /* the .conf file */
  char *path;               /* the URL path served, "/echo" or "/chat/:room" */
  wsh_path_pattern pattern; /* is_pattern false: path is matched exactly */
  char *plugin_path;        /* the .so, resolved relative to the .conf */
  char **subprotocols;      /* in the server's order of preference */
  size_t nsubprotocols;
  char **origins; /* allow-list; empty: any origin */
  size_t norigins;
  uint64_t max_message_size; /* bytes; over it: close 1009 */
  uint64_t idle_timeout_ms;  /* 0: none */
  int reload;                /* WSH_RELOAD_* */
  uint64_t max_unsent;       /* bytes queued for one client, at most */
  int on_max_unsent;         /* WSH_FULL_* */
  uint64_t pause_reading_at; /* stop reading a client above this */
  uint64_t ping_interval_ms; /* 0: no server pings */
  uint64_t ping_timeout_ms;  /* no pong by then: close */
  wsh_pmd_config pmd;        /* permessage-deflate (compression = ...) */
  uint64_t pmd_idle_ms;      /* dedicated: trim a connection idle this long */
  websock_options options;
} wsh_route_conf;

/* Reads one route file. On error returns a negative code and writes one line
 * naming the file, the line and the cause into err. */
int wsh_route_conf_load(const char *file, wsh_route_conf **out, char *err,
                        size_t errlen);
void wsh_route_conf_free(wsh_route_conf *rc);

/* The *.conf files of a directory, sorted by name (malloc'd array of
 * malloc'd paths). Returns 0 or a negative code with err set. */
int wsh_route_dir_list(const char *dir, char ***files, size_t *n, char *err,
                       size_t errlen);
void wsh_route_dir_list_free(char **files, size_t n);

/* True if the route allows this Origin header value (NULL: no header). */
int wsh_route_origin_allowed(const wsh_route_conf *rc, const char *origin);

/* A route's [options]. */
int wsh_options_add(websock_options *o, const char *key, const char *value);
void wsh_options_free(websock_options *o);

#endif
