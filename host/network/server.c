/*
 * server.c - sets up and runs the server (see server.h): the workers, the
 * listeners on worker 0's loop that hand accepted sockets to the workers in
 * turn, and on the main thread the signals that reload (SIGHUP) or start a
 * graceful shutdown (SIGTERM, SIGINT), and --watch.
 */
#include "network/server.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "base/log.h"
#include "network/transport.h"
#include "network/worker.h"

/* The service manager hears that the server serves (or still does). */
static void tell_ready(wsh_server *srv, const char *status) {
  if (srv->hooks.ready)
    srv->hooks.ready(status);
}

/* The listeners live on worker 0's loop, and everything that touches them
 * runs on its thread: it hands accepted sockets out round-robin and adopts
 * its own share directly (with one worker, accepting costs no thread
 * switch). */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int len, void *arg) {
  wsh_listener *li = arg;
  wsh_server *srv = li->srv;
  (void)l;
  wsh_worker *w = &srv->workers[srv->next_worker++ % srv->nworkers];
  if (w == &srv->workers[0])
    wsh_worker_adopt_fd(w, fd, sa, (socklen_t)len, li->kind);
  else if (wsh_worker_post_fd(w, fd, sa, (socklen_t)len, li->kind) != 0)
    evutil_closesocket(fd);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg) {
  wsh_server *srv = arg;
  (void)fd;
  (void)what;
  for (size_t i = 0; i < srv->nlisteners; i++)
    evconnlistener_enable(srv->listeners[i]);
}

/* Out of file descriptors (or another accept failure): stop accepting for a
 * moment instead of spinning on the pending connection, as nginx does. */
static void on_accept_error(struct evconnlistener *l, void *arg) {
  wsh_server *srv = ((wsh_listener *)arg)->srv;
  int err = EVUTIL_SOCKET_ERROR();
  wsh_error("accept on fd %d: %s; not accepting for 500 ms",
            (int)evconnlistener_get_fd(l), evutil_socket_error_to_string(err));
  for (size_t i = 0; i < srv->nlisteners; i++)
    evconnlistener_disable(srv->listeners[i]);
  if (srv->accept_resume)
    wsh_loop_timer_add(&srv->workers[0].loop, srv->accept_resume, 500);
}

static int bind_one(wsh_server *srv, const char *spec, int kind, char *err,
                    size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t len;
  const char *key = kind == WSH_LISTEN_TLS     ? "listen_tls"
                    : kind == WSH_LISTEN_PROXY ? "listen_proxy"
                                               : "listen";
  if (wsh_parse_listen(spec, &ss, &len) != 0) {
    snprintf(err, errlen, "%s: cannot parse \"%s\"", key, spec);
    return WEBSOCK_EINVAL;
  }
  wsh_listener *li = &srv->listener_args[srv->nlisteners];
  li->srv = srv;
  li->kind = kind;
  struct evconnlistener *l = evconnlistener_new_bind(
      srv->workers[0].loop.base, on_accept, li,
      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
      (struct sockaddr *)&ss, (int)len);
  if (!l) {
    snprintf(err, errlen, "%s %s: %s", key, spec, strerror(errno));
    return WEBSOCK_EINVAL;
  }
  evconnlistener_set_error_cb(l, on_accept_error);
  srv->listeners[srv->nlisteners++] = l;
  if (wsh_tcp_nodelay_listener(evconnlistener_get_fd(l)) != 0) {
    snprintf(err, errlen, "%s %s: TCP_NODELAY: %s", key, spec, strerror(errno));
    return WEBSOCK_EINVAL;
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof(bound);
  char addr[64];
  getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
  wsh_format_addr((struct sockaddr *)&bound, addr, sizeof(addr));
  wsh_info("listening on %s%s", addr,
           kind == WSH_LISTEN_PROXY ? " (PROXY protocol)"
           : kind == WSH_LISTEN_TLS ? " (TLS)"
                                    : "");
  return 0;
}

static void watch_plugins(wsh_server *srv);
static void reload_tls(wsh_server *srv, const char *why);

/* Closes the listeners: on worker 0's thread (as it stops, or after its
 * loop), or before it runs. */
static void stop_listening(wsh_server *srv) {
  for (size_t i = 0; i < srv->nlisteners; i++)
    evconnlistener_free(srv->listeners[i]);
  srv->nlisteners = 0;
  if (srv->accept_resume) {
    event_free(srv->accept_resume);
    srv->accept_resume = NULL;
  }
}

/* A forced exit leaves no plugin copies behind. */
static void remove_private_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  wsh_server *srv = arg;
  (void)what;
  if (srv->shutting_down) {
    wsh_warn("second signal %d: exiting now", (int)sig);
    remove_private_dir(wsh_registry_private_dir(srv->reg));
    _exit(1);
  }
  srv->shutting_down = 1;
  if (srv->hooks.stopping)
    srv->hooks.stopping();
  wsh_info("signal %d: shutting down (grace %llu ms)", (int)sig,
           (unsigned long long)srv->cfg->shutdown_grace_ms);
  /* worker 0 stops listening as it begins to stop */
  for (unsigned i = 0; i < srv->nworkers; i++)
    wsh_worker_post_stop(&srv->workers[i]);
}

void wsh_server_reload(wsh_server *srv, const char *why) {
  wsh_replaced *replaced = NULL;
  size_t n = 0;
  char summary[2048], err[1024];
  if (srv->shutting_down)
    return;
  if (srv->hooks.reloading)
    srv->hooks.reloading();
  reload_tls(srv, why);
  if (wsh_registry_reload(srv->reg, srv->cfg->plugins_dir, &replaced, &n,
                          summary, sizeof(summary), err, sizeof(err)) != 0) {
    wsh_error("reload (%s) failed; the previous routes keep serving: %s", why,
              err);
    tell_ready(srv, "reload failed; the previous routes keep serving");
    return;
  }
  wsh_info("reload (%s) ok:%s", why, summary);
  tell_ready(srv, "reloaded");
  /* Each worker acts on its own connections, in its mailbox's order: a
   * second reload's handoff follows the first one's. */
  for (size_t i = 0; i < n; i++) {
    for (unsigned j = 0; j < srv->nworkers; j++) {
      if (replaced[i].mode == WSH_RELOAD_HANDOFF)
        wsh_worker_post_handoff(&srv->workers[j], replaced[i].old,
                                replaced[i].now);
      else
        wsh_worker_post_restart(&srv->workers[j], replaced[i].old);
    }
  }
  wsh_replaced_free(replaced, n);
  watch_plugins(srv);
}

static void on_hup(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  wsh_server_reload(arg, "SIGHUP");
}

static void on_watch_delay(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wsh_server_reload(arg, "--watch");
}

/* Something changed under a watched directory: reload once it settles. */
static void on_watch(evutil_socket_t fd, short what, void *arg) {
  wsh_server *srv = arg;
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  (void)what;
  while (read(fd, buf, sizeof(buf)) > 0)
    ;
  struct timeval tv = {0, 300 * 1000};
  evtimer_add(srv->watch_delay, &tv);
}

static void watch_dir_of(wsh_server *srv, const char *file) {
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", file);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof(dir), ".");
  inotify_add_watch(srv->inotify_fd, dir,
                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                        IN_DELETE | IN_ATTRIB);
}

static void watch_route(void *arg, const wsh_generation *g) {
  watch_dir_of(arg, g->conf->plugin_path);
}

/* --watch: the plugins directory and the directory of every plugin. */
static void watch_plugins(wsh_server *srv) {
  if (srv->inotify_fd < 0)
    return;
  inotify_add_watch(srv->inotify_fd, srv->cfg->plugins_dir,
                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                        IN_DELETE | IN_ATTRIB);
  wsh_registry_each_route(srv->reg, watch_route, srv);
}

static int start_watch(wsh_server *srv, char *err, size_t errlen) {
  srv->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (srv->inotify_fd < 0) {
    snprintf(err, errlen, "--watch: inotify: %s", strerror(errno));
    return WEBSOCK_EINVAL;
  }
  srv->watch = event_new(srv->base, srv->inotify_fd, EV_READ | EV_PERSIST,
                         on_watch, srv);
  srv->watch_delay = evtimer_new(srv->base, on_watch_delay, srv);
  if (!srv->watch || !srv->watch_delay)
    return WEBSOCK_ENOMEM;
  event_add(srv->watch, NULL);
  watch_plugins(srv);
  wsh_info("--watch: reloading when %s or a plugin changes",
           srv->cfg->plugins_dir);
  return 0;
}

static void on_worker_exit(evutil_socket_t fd, short what, void *arg) {
  wsh_server *srv = arg;
  (void)fd;
  (void)what;
  if (atomic_load(&srv->workers_done) == srv->nworkers)
    event_base_loopexit(srv->base, NULL);
}

/* Connections' hook: over the memory budget, every worker is asked to shed
 * (each sheds only if it holds more than its share). */
static void request_shed(void *arg) {
  wsh_server *srv = arg;
  for (unsigned i = 0; i < srv->nworkers; i++)
    wsh_worker_post_shed(&srv->workers[i]);
}

/* Worker hook: worker 0 owns the listeners. */
static void on_worker_stopping(void *arg, wsh_worker *w) {
  if (w->loop.index == 0)
    stop_listening(arg);
}

/* Worker hook: the main loop ends once every worker has. */
static void on_worker_exited(void *arg, wsh_worker *w) {
  wsh_server *srv = arg;
  (void)w;
  atomic_fetch_add(&srv->workers_done, 1);
  event_active(srv->worker_exit, EV_READ, 0);
}

/* Bus callbacks (main thread): what another host published to a topic of
 * ours goes to every worker's subscribers as a local publish would (a
 * broadcast framed once here for all of them); what it sent to one of our
 * connections goes to its worker. */
static void on_remote_publish(void *arg, const wsh_bus_msg *m) {
  wsh_server *srv = arg;
  wsh_host_post_topic(&srv->host,
                      m->kind == WSH_BUS_PUBLISH ? WSH_MAIL_PUBLISH
                                                 : WSH_MAIL_BROADCAST,
                      m->opcode, m->topic, m->data, m->len, true);
}

static int on_remote_send(void *arg, const wsh_bus_msg *m) {
  wsh_server *srv = arg;
  if (m->to.worker >= srv->nworkers || m->to.slot > 0xFFFFFFu)
    return WEBSOCK_ENOENT;
  return wsh_worker_post_remote_send(&srv->workers[m->to.worker], m->to.slot,
                                     m->to.serial, m->data, m->len);
}

static int start_bus(wsh_server *srv, char *err, size_t errlen) {
  wsh_config *cfg = srv->cfg;
  wsh_bus_config bc = {.redis = cfg->redis,
                       .password = cfg->redis_password,
                       .prefix = cfg->redis_prefix,
                       .counts = &srv->host.counts};
  wsh_bus_callbacks cb = {srv, on_remote_publish, on_remote_send};
  int rc = wsh_bus_new(&srv->bus, &bc, srv->base, &cb);
  if (rc != 0) {
    snprintf(err, errlen, "redis: %s \"%s\"",
             rc == WEBSOCK_EINVAL ? "cannot use" : "out of memory",
             cfg->redis ? cfg->redis : "");
    return rc;
  }
  srv->host.bus = srv->bus;
  /* Each worker holds at most an eighth of the memory budget, shared out,
   * of messages from other hosts not yet delivered. */
  size_t cap = (size_t)(cfg->max_buffered_memory / 8 / cfg->workers);
  srv->host.remote_mail_max = cap < (1u << 20) ? (1u << 20) : cap;
  if (cfg->redis && *cfg->redis)
    wsh_info("bus: redis at %s, host id %016llx%s%s", cfg->redis,
             (unsigned long long)wsh_bus_host_id(srv->bus),
             cfg->redis_prefix ? ", prefix " : "",
             cfg->redis_prefix ? cfg->redis_prefix : "");
  return 0;
}

static int start_workers(wsh_server *srv, char *err, size_t errlen) {
  srv->workers = calloc(srv->cfg->workers, sizeof(wsh_worker));
  if (!srv->workers)
    return WEBSOCK_ENOMEM;
  srv->host.workers = srv->workers;
  wsh_worker_hooks hooks = {on_worker_stopping, on_worker_exited, srv};
  for (unsigned i = 0; i < srv->cfg->workers; i++) {
    wsh_worker *w = &srv->workers[i];
    if (wsh_worker_init(w, i, &srv->env, &srv->host, &hooks,
                        srv->cfg->shutdown_grace_ms) != 0 ||
        (srv->nworkers++, wsh_worker_start(w) != 0)) {
      snprintf(err, errlen, "cannot start worker %u", i);
      return WEBSOCK_ENOMEM;
    }
  }
  srv->host.nworkers = srv->nworkers;
  srv->env.nworkers = srv->nworkers;
  return 0;
}

/* The certificates of the TLS listeners, if any: read now, all of them. */
static int start_tls(wsh_server *srv, char *err, size_t errlen) {
  if (srv->cfg->tls.nlisten == 0)
    return 0;
  int rc = wsh_tls_new(&srv->env.tls);
  if (rc != 0) {
    snprintf(err, errlen, "TLS: %s", websock_strerror(rc));
    return rc;
  }
  return wsh_tls_load(srv->env.tls, &srv->cfg->tls, err, errlen);
}

/* SIGHUP: every certificate and key again, all or none (the old ones keep
 * serving; open connections keep theirs either way). */
static void reload_tls(wsh_server *srv, const char *why) {
  char err[1024];
  if (!srv->env.tls)
    return;
  if (wsh_tls_load(srv->env.tls, &srv->cfg->tls, err, sizeof(err)) != 0)
    wsh_error("TLS reload (%s) failed; the previous certificates keep "
              "serving: %s",
              why, err);
  else
    wsh_info("TLS reload (%s) ok: certificates and keys read again", why);
}

/* Connections are file descriptors: take all the process may have. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int wsh_server_new(wsh_server **out, wsh_config *cfg, wsh_registry *reg,
                   const wsh_server_hooks *hooks, char *err, size_t errlen) {
  int rc = WEBSOCK_ENOMEM;
  evthread_use_pthreads();
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  wsh_server *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return rc;
  pthread_mutex_init(&srv->host.remote_lock, NULL);
  wsh_topic_counts_init(&srv->host.counts);
  srv->cfg = cfg;
  srv->reg = reg;
  srv->env.cfg = cfg;
  srv->env.reg = reg;
  srv->hooks = *hooks;
  srv->env.render_metrics = hooks->render_metrics;
  srv->env.metrics_arg = srv;
  srv->env.answer_page = hooks->answer_page;
  srv->env.page_arg = hooks->page_arg;
  srv->env.request_shed = request_shed;
  srv->env.shed_arg = srv;
  srv->inotify_fd = -1;
  srv->base = event_base_new();
  size_t nl = cfg->nlisten + cfg->nlisten_proxy + cfg->tls.nlisten;
  srv->listeners = calloc(nl ? nl : 1, sizeof(*srv->listeners));
  srv->listener_args = calloc(nl ? nl : 1, sizeof(*srv->listener_args));
  if (!srv->base || !srv->listeners || !srv->listener_args)
    goto out_free;
  if (cfg->trusted_proxies &&
      wsh_cidr_list_parse(&srv->env.trusted, cfg->trusted_proxies, err,
                          errlen) != 0) {
    rc = WEBSOCK_EINVAL;
    goto out_free;
  }
  srv->worker_exit =
      event_new(srv->base, -1, EV_PERSIST | EV_READ, on_worker_exit, srv);
  srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
  srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
  srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_hup, srv);
  if (!srv->worker_exit || !srv->sig_term || !srv->sig_int || !srv->sig_hup)
    goto out_free;
  evsignal_add(srv->sig_term, NULL);
  evsignal_add(srv->sig_int, NULL);
  evsignal_add(srv->sig_hup, NULL);
  if ((rc = start_bus(srv, err, errlen)) != 0 ||
      (rc = start_tls(srv, err, errlen)) != 0 ||
      (rc = start_workers(srv, err, errlen)) != 0)
    goto out_free;
  srv->accept_resume =
      evtimer_new(srv->workers[0].loop.base, on_accept_resume, srv);
  if (!srv->accept_resume)
    goto out_free;
  *out = srv;
  return 0;
out_free:
  wsh_server_free(srv);
  return rc;
}

int wsh_server_listen(wsh_server *srv, char *err, size_t errlen) {
  if (srv->cfg->watch && start_watch(srv, err, errlen) != 0)
    return WEBSOCK_EINVAL;
  for (size_t i = 0; i < srv->cfg->nlisten; i++) {
    int rc = bind_one(srv, srv->cfg->listen[i], WSH_LISTEN_PLAIN, err, errlen);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < srv->cfg->tls.nlisten; i++) {
    int rc =
        bind_one(srv, srv->cfg->tls.listen[i], WSH_LISTEN_TLS, err, errlen);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < srv->cfg->nlisten_proxy; i++) {
    int rc =
        bind_one(srv, srv->cfg->listen_proxy[i], WSH_LISTEN_PROXY, err, errlen);
    if (rc)
      return rc;
  }
  return 0;
}

int wsh_server_run(wsh_server *srv) {
  wsh_info("websockd ready: %u worker(s), %zu route(s)", srv->nworkers,
           wsh_registry_count(srv->reg));
  tell_ready(srv, "serving");
  event_base_loop(srv->base, EVLOOP_NO_EXIT_ON_EMPTY);
  wsh_info("all connections closed; exiting");
  return 0;
}

void wsh_server_free(wsh_server *srv) {
  if (!srv)
    return;
  /* worker 0 frees the listeners on its own thread as it stops */
  for (unsigned i = 0; i < srv->nworkers; i++)
    wsh_worker_post_stop(&srv->workers[i]);
  for (unsigned i = 0; i < srv->nworkers; i++)
    wsh_worker_free(&srv->workers[i]);
  /* The workers are joined and the main loop is over: nobody calls the bus
   * or hears from it any more. */
  wsh_bus_free(srv->bus);
  wsh_host_free_remotes(&srv->host);
  pthread_mutex_destroy(&srv->host.remote_lock);
  wsh_topic_counts_free(&srv->host.counts);
  free(srv->workers);
  free(srv->listeners);
  free(srv->listener_args);
  wsh_cidr_list_free(&srv->env.trusted);
  if (srv->sig_term)
    event_free(srv->sig_term);
  if (srv->sig_int)
    event_free(srv->sig_int);
  if (srv->sig_hup)
    event_free(srv->sig_hup);
  if (srv->watch)
    event_free(srv->watch);
  if (srv->watch_delay)
    event_free(srv->watch_delay);
  if (srv->inotify_fd >= 0)
    close(srv->inotify_fd);
  if (srv->worker_exit)
    event_free(srv->worker_exit);
  if (srv->base)
    event_base_free(srv->base);
  wsh_tls_free(srv->env.tls);
  free(srv);
}
