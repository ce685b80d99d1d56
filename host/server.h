/*
 * server.h - the server: host config, route registry, signals and reload on
 * the main thread; the workers that own the connections, worker 0 also
 * accepting them (its listeners hand sockets out round-robin).
 */
#ifndef WSH_SERVER_H
#define WSH_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "registry.h"

struct event_base;
struct event;
struct evconnlistener;
typedef struct wsh_worker wsh_worker;

typedef struct wsh_server {
  wsh_config *cfg;
  wsh_registry *reg;
  struct event_base *base;           /* the main thread's loop */
  struct evconnlistener **listeners; /* on worker 0's loop */
  size_t nlisteners;
  wsh_worker *workers;
  unsigned nworkers;
  unsigned next_worker; /* round-robin hand-off (worker 0's thread) */
  struct event *sig_term;
  struct event *sig_int;
  struct event *sig_hup;
  struct event *accept_resume; /* accepting again after an accept error
                                  (worker 0's loop) */
  struct event *watch;         /* --watch: the inotify descriptor */
  struct event *watch_delay;   /* --watch: reload once changes settle */
  int inotify_fd;
  struct event *worker_exit; /* activated by each worker as it finishes */
  atomic_uint workers_done;
  atomic_ulong open_conns;
  /* WebSocket connections, for max_connections */ /* counted by the workers
                                                      themselves */
  int shutting_down;
  /* Bytes buffered by every connection of every worker (see conn.c, "the
   * host-wide memory budget"): changed only when a connection's buffers
   * change size, never on the path of a message that is not buffered. */
  atomic_ullong buffered;
} wsh_server;

/* Sets the server up and starts the workers (not listening yet). Returns 0
 * or a negative code with err set. cfg and reg stay the caller's. */
int wsh_server_new(wsh_server **out, wsh_config *cfg, wsh_registry *reg,
                   char *err, size_t errlen);
/* Binds every listen address. */
int wsh_server_listen(wsh_server *srv, char *err, size_t errlen);
/* Re-reads the plugins directory (SIGHUP, --watch). */
void wsh_server_reload(wsh_server *srv, const char *why);

/* Serves until SIGTERM or SIGINT and the graceful shutdown that follows. */
int wsh_server_run(wsh_server *srv);
void wsh_server_free(wsh_server *srv);
/* Closes the listeners: on worker 0's thread, or when no worker runs. */
void wsh_server_stop_listening(wsh_server *srv);

#endif
