/*
 * worker.c - a worker thread and its event loop. Other threads reach it only
 * through its mailbox: accepted sockets, messages for its connections,
 * publishes and broadcasts to its subscribers, and the stop request.
 */
#include "network/worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "network/conn.h"
#include "plugins/registry.h"
#include "base/log.h"
#include "base/timeutil.h"

/* ---- the mailbox --------------------------------------------------------- */

static void post(wsh_worker *w, wsh_mail *m) {
  m->next = NULL;
  pthread_mutex_lock(&w->lock);
  if (w->inbox_tail)
    w->inbox_tail->next = m;
  else
    w->inbox = m;
  w->inbox_tail = m;
  pthread_mutex_unlock(&w->lock);
  event_active(w->wake, EV_READ, 0);
}

int wsh_worker_post_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                       socklen_t len, int kind) {
  wsh_mail *m = calloc(1, sizeof(*m));
  if (!m)
    return WEBSOCK_ENOMEM;
  m->kind = WSH_MAIL_ACCEPT;
  m->acc.fd = fd;
  memcpy(&m->acc.addr, sa, len);
  m->acc.addrlen = len;
  m->acc.kind = kind;
  post(w, m);
  return 0;
}

int wsh_worker_post_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                         const void *data, size_t len) {
  if (!wsh_slots_live(&w->loop.slots, slot, serial))
    return WEBSOCK_ENOENT;
  wsh_mail *m = malloc(sizeof(*m) + len);
  if (!m)
    return WEBSOCK_ENOMEM;
  memset(m, 0, sizeof(*m));
  m->kind = WSH_MAIL_SEND;
  m->slot = slot;
  m->serial = serial;
  m->len = len;
  if (len)
    memcpy(m->data, data, len);
  post(w, m);
  return 0;
}

int wsh_worker_post_shared(wsh_worker *w, int kind, wsh_shared *sh) {
  wsh_mail *m = calloc(1, sizeof(*m));
  if (!m)
    return WEBSOCK_ENOMEM;
  m->kind = kind;
  wsh_shared_ref(sh);
  m->shared = sh;
  post(w, m);
  return 0;
}

int wsh_worker_post_restart(wsh_worker *w, wsh_generation *g) {
  wsh_mail *m = calloc(1, sizeof(*m));
  if (!m)
    return WEBSOCK_ENOMEM;
  m->kind = WSH_MAIL_RESTART;
  wsh_generation_acquire(g);
  m->gen = g;
  post(w, m);
  return 0;
}

/* An accepted socket becomes a connection of w (or is closed if w stops). */
static void adopt(wsh_worker *w, int fd, const struct sockaddr *sa,
                  socklen_t len, int kind) {
  if (w->loop.stopping)
    close(fd);
  else
    wsh_conn_new(&w->loop, fd, sa, len, kind);
}

void wsh_worker_adopt_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                         socklen_t len, int kind) {
  adopt(w, fd, sa, len, kind);
  wsh_conn_settle_all(&w->loop);
}

void wsh_worker_post_shed(wsh_worker *w) {
  if (!atomic_exchange(&w->shed_requested, 1))
    event_active(w->wake, EV_READ, 0);
}

void wsh_worker_post_stop(wsh_worker *w) {
  pthread_mutex_lock(&w->lock);
  w->stop_requested = 1;
  pthread_mutex_unlock(&w->lock);
  event_active(w->wake, EV_READ, 0);
}

/* ---- delivery (worker thread) -------------------------------------------- */

/* Every local subscriber of a topic, from a snapshot: callbacks may join or
 * leave topics while we deliver. */
static void deliver_shared(wsh_worker *w, wsh_mail *m) {
  wsh_topic *tp = wsh_topics_find(&w->loop.topics, m->shared->topic);
  if (!tp)
    return;
  size_t n = tp->n;
  websock_conn **snap = malloc(n * sizeof(*snap));
  if (!snap)
    return;
  memcpy(snap, tp->members, n * sizeof(*snap));
  for (size_t i = 0; i < n; i++) {
    if (m->kind == WSH_MAIL_PUBLISH)
      wsh_conn_info(snap[i], m->shared->data, m->shared->len);
    else
      wsh_conn_push_shared(snap[i], m->shared);
  }
  free(snap);
}

static void deliver(wsh_worker *w, wsh_mail *m) {
  switch (m->kind) {
  case WSH_MAIL_ACCEPT:
    adopt(w, m->acc.fd, (struct sockaddr *)&m->acc.addr, m->acc.addrlen,
          m->acc.kind);
    break;
  case WSH_MAIL_RESTART:
    for (websock_conn *c = w->loop.conns; c; c = c->next)
      if (c->gen == m->gen)
        wsh_conn_restart(c);
    break;
  case WSH_MAIL_SEND: {
    websock_conn *c = wsh_slots_get(&w->loop.slots, m->slot, m->serial);
    if (c)
      wsh_conn_info(c, m->data, m->len);
    break;
  }
  default:
    deliver_shared(w, m);
  }
}

static void free_mail(wsh_mail *m) {
  if (m->kind == WSH_MAIL_ACCEPT && m->acc.fd >= 0)
    close(m->acc.fd);
  if (m->shared)
    wsh_shared_unref(m->shared);
  if (m->gen)
    wsh_generation_release(m->gen);
  free(m);
}

/* The grace period is over: whatever is still open is cut. */
static void on_grace(evutil_socket_t fd, short what, void *arg) {
  wsh_worker *w = arg;
  (void)fd;
  (void)what;
  if (w->loop.nconns)
    wsh_warn("worker %u: grace period over, cutting %zu connection(s)",
             w->loop.index, w->loop.nconns);
  while (w->loop.conns)
    wsh_conn_abort(w->loop.conns);
  event_base_loopexit(w->loop.base, NULL);
}

static void begin_stop(wsh_worker *w) {
  w->loop.stopping = 1;
  if (w->hooks.stopping)
    w->hooks.stopping(w->hooks.arg, w);
  for (websock_conn *c = w->loop.conns, *next; c; c = next) {
    next = c->next;
    wsh_conn_shutdown(c);
  }
  wsh_conn_settle_all(&w->loop);
  struct timeval tv = wsh_timeval_ms(w->grace_ms);
  w->grace = evtimer_new(w->loop.base, on_grace, w);
  if (w->grace)
    evtimer_add(w->grace, &tv);
  if (w->loop.nconns == 0)
    event_base_loopexit(w->loop.base, NULL);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  wsh_worker *w = arg;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&w->lock);
  wsh_mail *m = w->inbox;
  int stop = w->stop_requested;
  w->inbox = w->inbox_tail = NULL;
  pthread_mutex_unlock(&w->lock);
  if (stop && !w->loop.stopping)
    begin_stop(w);
  if (atomic_exchange(&w->shed_requested, 0))
    wsh_conn_shed(&w->loop);
  while (m) {
    wsh_mail *next = m->next;
    deliver(w, m);
    if (m->kind == WSH_MAIL_ACCEPT)
      m->acc.fd = -1; /* adopted (or closed) */
    free_mail(m);
    m = next;
  }
  wsh_conn_settle_all(&w->loop);
}

static void *worker_main(void *arg) {
  wsh_worker *w = arg;
  event_base_loop(w->loop.base, EVLOOP_NO_EXIT_ON_EMPTY);
  if (w->hooks.stopping) /* the loop may end without begin_stop */
    w->hooks.stopping(w->hooks.arg, w);
  while (w->loop.conns) /* loopexit with connections left: only on grace */
    wsh_conn_abort(w->loop.conns);
  if (w->hooks.exited)
    w->hooks.exited(w->hooks.arg, w);
  return NULL;
}

int wsh_worker_init(wsh_worker *w, unsigned index, wsh_conn_env *env,
                    websock_host *host, const wsh_worker_hooks *hooks,
                    uint64_t grace_ms) {
  memset(w, 0, sizeof(*w));
  if (wsh_loop_init(&w->loop, index, env, host) != 0)
    return WEBSOCK_ENOMEM;
  if (hooks)
    w->hooks = *hooks;
  w->grace_ms = grace_ms;
  w->wake = event_new(w->loop.base, -1, EV_PERSIST | EV_READ, on_wake, w);
  if (!w->wake) {
    wsh_loop_free(&w->loop);
    return WEBSOCK_ENOMEM;
  }
  pthread_mutex_init(&w->lock, NULL);
  w->inited = 1;
  return 0;
}

int wsh_worker_start(wsh_worker *w) {
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
    return WEBSOCK_ENOMEM;
  w->started = 1;
  return 0;
}

void wsh_worker_free(wsh_worker *w) {
  if (w->started) {
    pthread_join(w->thread, NULL);
    w->started = 0;
  }
  if (!w->inited)
    return;
  w->inited = 0;
  for (wsh_mail *m = w->inbox, *next; m; m = next) {
    next = m->next;
    free_mail(m);
  }
  if (w->grace)
    event_free(w->grace);
  event_free(w->wake);
  wsh_loop_free(&w->loop);
  pthread_mutex_destroy(&w->lock);
}
