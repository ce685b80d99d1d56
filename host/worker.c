/*
 * worker.c - a worker thread and its event loop. Other threads reach it only
 * through its mailbox: accepted sockets, messages for its connections,
 * publishes and broadcasts to its subscribers, and the stop request.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "registry.h"
#include "log.h"
#include "server.h"

/* ---- shared payloads ----------------------------------------------------- */

wsh_shared *wsh_shared_new(const char *topic, size_t len) {
  size_t tlen = strlen(topic);
  wsh_shared *sh = malloc(sizeof(*sh) + tlen + 1 + len);
  if (!sh)
    return NULL;
  atomic_init(&sh->refs, 1);
  memcpy(sh->topic, topic, tlen + 1);
  sh->data = (uint8_t *)sh->topic + tlen + 1;
  sh->len = len;
  return sh;
}

void wsh_shared_ref(wsh_shared *sh) {
  atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
}

void wsh_shared_unref(wsh_shared *sh) {
  if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1)
    free(sh);
}

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
                       socklen_t len) {
  wsh_mail *m = calloc(1, sizeof(*m));
  if (!m)
    return WEBSOCK_ENOMEM;
  m->kind = WSH_MAIL_ACCEPT;
  m->acc.fd = fd;
  memcpy(&m->acc.addr, sa, len);
  m->acc.addrlen = len;
  post(w, m);
  return 0;
}

int wsh_worker_post_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                         const void *data, size_t len) {
  if (!wsh_slots_live(&w->slots, slot, serial))
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

int wsh_status_index(int status) {
  switch (status) {
#define WSH_STATUS_CASE_(code)                                                 \
  case code:                                                                   \
    return WSH_STATUS_##code;
    WSH_STATUS_MAP(WSH_STATUS_CASE_)
#undef WSH_STATUS_CASE_
  default:
    return WSH_STATUS_OTHER;
  }
}

/* An accepted socket becomes a connection of w (or is closed if w stops). */
static void adopt(wsh_worker *w, int fd, const struct sockaddr *sa,
                  socklen_t len) {
  if (w->stopping)
    close(fd);
  else
    wsh_conn_new(w, fd, sa, len);
}

void wsh_worker_adopt_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                         socklen_t len) {
  adopt(w, fd, sa, len);
  wsh_worker_settle(w);
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
  wsh_topic *tp = wsh_topics_find(&w->topics, m->shared->topic);
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
    adopt(w, m->acc.fd, (struct sockaddr *)&m->acc.addr, m->acc.addrlen);
    break;
  case WSH_MAIL_RESTART:
    for (websock_conn *c = w->conns; c; c = c->next)
      if (c->gen == m->gen)
        wsh_conn_restart(c);
    break;
  case WSH_MAIL_SEND: {
    websock_conn *c = wsh_slots_get(&w->slots, m->slot, m->serial);
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
  if (w->nconns)
    wsh_warn("worker %u: grace period over, cutting %zu connection(s)",
             w->index, w->nconns);
  while (w->conns)
    wsh_conn_abort(w->conns);
  event_base_loopexit(w->base, NULL);
}

static void begin_stop(wsh_worker *w) {
  w->stopping = 1;
  if (w->index == 0)
    wsh_server_stop_listening(w->srv);
  for (websock_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    wsh_conn_shutdown(c);
  }
  wsh_worker_settle(w);
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
  wsh_mail *m = w->inbox;
  int stop = w->stop_requested;
  w->inbox = w->inbox_tail = NULL;
  pthread_mutex_unlock(&w->lock);
  if (stop && !w->stopping)
    begin_stop(w);
  if (atomic_exchange(&w->shed_requested, 0))
    wsh_conn_shed(w);
  while (m) {
    wsh_mail *next = m->next;
    deliver(w, m);
    if (m->kind == WSH_MAIL_ACCEPT)
      m->acc.fd = -1; /* adopted (or closed) */
    free_mail(m);
    m = next;
  }
  wsh_worker_settle(w);
}

void wsh_worker_mark(wsh_worker *w, websock_conn *c) {
  if (c->dirty)
    return;
  if (w->ndirty == w->capdirty) {
    size_t cap = w->capdirty ? w->capdirty * 2 : 64;
    websock_conn **d = realloc(w->dirty, cap * sizeof(*d));
    if (!d)
      return; /* settled later by its own socket or timer event */
    w->dirty = d;
    w->capdirty = cap;
  }
  c->dirty = 1;
  w->dirty[w->ndirty++] = c;
}

void wsh_worker_unmark(wsh_worker *w, websock_conn *c) {
  if (!c->dirty)
    return;
  for (size_t i = 0; i < w->ndirty; i++) {
    if (w->dirty[i] == c) {
      w->dirty[i] = w->dirty[--w->ndirty];
      break;
    }
  }
  c->dirty = 0;
}

void wsh_worker_settle(wsh_worker *w) {
  while (w->ndirty) {
    websock_conn *c = w->dirty[--w->ndirty];
    c->dirty = 0;
    wsh_conn_settle(c); /* may free c */
  }
  w->obuf_used = 0; /* every staged run was sent or moved */
}

void wsh_worker_conn_gone(wsh_worker *w) {
  w->nconns--;
  if (w->stopping && w->nconns == 0)
    event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg) {
  wsh_worker *w = arg;
  event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
  if (w->index == 0)
    wsh_server_stop_listening(w->srv);
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
  wsh_slots_init(&w->slots);
  wsh_topics_init(&w->topics);
  w->rbuf_size = 64 * 1024;
  w->rbuf = malloc(w->rbuf_size);
  w->obuf_size = 256 * 1024;
  w->obuf = malloc(w->obuf_size);
  w->base = event_base_new();
  if (!w->base || !w->rbuf || !w->obuf) {
    free(w->rbuf);
    w->rbuf = NULL;
    free(w->obuf);
    w->obuf = NULL;
    if (w->base)
      event_base_free(w->base);
    return WEBSOCK_ENOMEM;
  }
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

void wsh_worker_join(wsh_worker *w) {
  if (!w->started)
    return;
  pthread_join(w->thread, NULL);
  w->started = 0;
  for (wsh_mail *m = w->inbox, *next; m; m = next) {
    next = m->next;
    free_mail(m);
  }
  if (w->grace)
    event_free(w->grace);
  event_free(w->wake);
  event_base_free(w->base);
  wsh_slots_free(&w->slots);
  wsh_topics_free(&w->topics);
  free(w->rbuf);
  free(w->obuf);
  free(w->dirty);
  pthread_mutex_destroy(&w->lock);
}
