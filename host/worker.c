/*
 * worker.c - a worker thread and its event loop. The acceptor hands sockets
 * over through the inbox; the stop request comes the same way.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "server.h"

/* The grace period is over: whatever is still open is cut. */
static void on_grace(evutil_socket_t fd, short what, void *arg) {
  wsh_worker *w = arg;
  (void)fd;
  (void)what;
  if (w->nconns)
    wsh_warn("worker %u: grace period over, cutting %zu connection(s)",
             w->index, w->nconns);
  while (w->conns)
    wsh_conn_abort(w->conns);
  event_base_loopexit(w->base, NULL);
}

static void begin_stop(wsh_worker *w) {
  w->stopping = 1;
  for (websock_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    wsh_conn_shutdown(c);
  }
  uint64_t ms = w->srv->cfg->shutdown_grace_ms;
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  w->grace = evtimer_new(w->base, on_grace, w);
  if (w->grace)
    evtimer_add(w->grace, &tv);
  if (w->nconns == 0)
    event_base_loopexit(w->base, NULL);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  wsh_worker *w = arg;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&w->lock);
  wsh_accepted *items = w->inbox;
  size_t n = w->ninbox;
  int stop = w->stop_requested;
  w->inbox = NULL;
  w->ninbox = w->capinbox = 0;
  pthread_mutex_unlock(&w->lock);
  for (size_t i = 0; i < n; i++) {
    if (w->stopping || stop)
      close(items[i].fd);
    else
      wsh_conn_new(w, items[i].fd, (struct sockaddr *)&items[i].addr,
                   items[i].addrlen);
  }
  free(items);
  if (stop && !w->stopping)
    begin_stop(w);
}

void wsh_worker_conn_gone(wsh_worker *w) {
  w->nconns--;
  if (w->stopping && w->nconns == 0)
    event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg) {
  wsh_worker *w = arg;
  event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
  while (w->conns) /* loopexit with connections left: only on grace */
    wsh_conn_abort(w->conns);
  atomic_fetch_add(&w->srv->workers_done, 1);
  event_active(w->srv->worker_exit, EV_READ, 0);
  return NULL;
}

int wsh_worker_start(wsh_worker *w, wsh_server *srv, unsigned index) {
  memset(w, 0, sizeof(*w));
  w->srv = srv;
  w->index = index;
  pthread_mutex_init(&w->lock, NULL);
  w->base = event_base_new();
  if (!w->base)
    return WEBSOCK_ENOMEM;
  w->wake = event_new(w->base, -1, EV_PERSIST | EV_READ, on_wake, w);
  if (!w->wake)
    goto out_free_base;
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
    goto out_free_wake;
  w->started = 1;
  return 0;
out_free_wake:
  event_free(w->wake);
  w->wake = NULL;
out_free_base:
  event_base_free(w->base);
  w->base = NULL;
  return WEBSOCK_ENOMEM;
}

int wsh_worker_post_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                       socklen_t len) {
  pthread_mutex_lock(&w->lock);
  if (w->ninbox == w->capinbox) {
    size_t cap = w->capinbox ? w->capinbox * 2 : 16;
    wsh_accepted *items = realloc(w->inbox, cap * sizeof(*items));
    if (!items) {
      pthread_mutex_unlock(&w->lock);
      return WEBSOCK_ENOMEM;
    }
    w->inbox = items;
    w->capinbox = cap;
  }
  wsh_accepted *a = &w->inbox[w->ninbox++];
  a->fd = fd;
  memcpy(&a->addr, sa, len);
  a->addrlen = len;
  pthread_mutex_unlock(&w->lock);
  event_active(w->wake, EV_READ, 0);
  return 0;
}

void wsh_worker_post_stop(wsh_worker *w) {
  pthread_mutex_lock(&w->lock);
  w->stop_requested = 1;
  pthread_mutex_unlock(&w->lock);
  event_active(w->wake, EV_READ, 0);
}

void wsh_worker_join(wsh_worker *w) {
  if (!w->started)
    return;
  pthread_join(w->thread, NULL);
  w->started = 0;
  for (size_t i = 0; i < w->ninbox; i++)
    close(w->inbox[i].fd);
  free(w->inbox);
  if (w->grace)
    event_free(w->grace);
  event_free(w->wake);
  event_base_free(w->base);
  pthread_mutex_destroy(&w->lock);
}
