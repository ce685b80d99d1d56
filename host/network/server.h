/*
 * server.h - the server: the main thread's loop (signals, reload, --watch),
 * the workers that own the connections, and the listeners, which live on
 * worker 0's loop and hand sockets out round-robin. The server owns what
 * the connections share (wsh_conn_env) and what plugins hold as
 * websock_host.
 */
#ifndef WSH_SERVER_H
#define WSH_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include "base/config.h"
#include "network/conn.h"
#include "plugins/registry.h"
#include "network/worker.h"

struct event_base;
struct event;
struct evconnlistener;

/* What on_accept is told of the listener a socket came from. */
typedef struct wsh_listener {
  struct wsh_server *srv;
  int kind; /* WSH_LISTEN_PLAIN or WSH_LISTEN_PROXY */
} wsh_listener;
/* What the server is given from above (operations): the /metrics page, and
 * what the service manager is told (each may be NULL but render_metrics). */
typedef struct wsh_server_hooks {
  int (*render_metrics)(void *srv, char **out); /* malloc'd text */
  /* the browser pages (may be NULL): see wsh_conn_env.answer_page */
  int (*answer_page)(void *arg, const websock_request *req, bool route,
                     websock_response *resp, const char **why);
  void *page_arg;
  void (*ready)(const char *status); /* serving (again) */
  void (*reloading)(void);
  void (*stopping)(void);
} wsh_server_hooks;

typedef struct wsh_server {
  wsh_config *cfg;
  wsh_registry *reg;
  wsh_server_hooks hooks;
  wsh_conn_env env;                  /* what the connections share */
  websock_host host;                 /* what plugins hold: the workers */
  struct event_base *base;           /* the main thread's loop */
  struct evconnlistener **listeners; /* on worker 0's loop */
  wsh_listener *listener_args;       /* each one's kind, for on_accept */
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
  int shutting_down;
} wsh_server;

/* Sets the server up and starts the workers (not listening yet). GET
 * /metrics is answered with what hooks->render_metrics(srv, &text) writes.
 * Returns 0 or a negative code with err set. cfg and reg stay the
 * caller's. */
int wsh_server_new(wsh_server **out, wsh_config *cfg, wsh_registry *reg,
                   const wsh_server_hooks *hooks, char *err, size_t errlen);
/* Binds every listen address. */
int wsh_server_listen(wsh_server *srv, char *err, size_t errlen);
/* Re-reads the plugins directory (SIGHUP, --watch). */
void wsh_server_reload(wsh_server *srv, const char *why);

/* Serves until SIGTERM or SIGINT and the graceful shutdown that follows. */
int wsh_server_run(wsh_server *srv);
void wsh_server_free(wsh_server *srv);

#endif
