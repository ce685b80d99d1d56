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
#include "network/sendq.h"
#include "plugins/registry.h"
#include "protocol/frame.h"
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
  wsh_loop_wake(&w->loop);
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

/* Mail from another host: counts size against the worker's cap (the host's
 * remote_mail_max), or says it is over it (the caller drops and counts). */
static bool remote_take(wsh_worker *w, size_t size) {
  size_t max = w->loop.host->remote_mail_max;
  size_t was = atomic_fetch_add(&w->inbox_remote, size);
  if (max && was + size > max) {
    atomic_fetch_sub(&w->inbox_remote, size);
    atomic_fetch_add(&w->loop.host->remote_mail_dropped, 1);
    return false;
  }
  return true;
}

static int post_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                     const void *data, size_t len, bool remote) {
  if (!wsh_slots_live(&w->loop.slots, slot, serial))
    return WEBSOCK_ENOENT;
  size_t size = sizeof(wsh_mail) + len;
  if (remote && !remote_take(w, size))
    return 0; /* dropped and counted: at most once */
  wsh_mail *m = malloc(size);
  if (!m) {
    if (remote)
      atomic_fetch_sub(&w->inbox_remote, size);
    return WEBSOCK_ENOMEM;
  }
  memset(m, 0, sizeof(*m));
  m->kind = WSH_MAIL_SEND;
  m->slot = slot;
  m->serial = serial;
  m->remote = remote ? size : 0;
  m->len = len;
  if (len)
    memcpy(m->data, data, len);
  post(w, m);
  return 0;
}

int wsh_worker_post_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                         const void *data, size_t len) {
  return post_send(w, slot, serial, data, len, false);
}

int wsh_worker_post_remote_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                                const void *data, size_t len) {
  return post_send(w, slot, serial, data, len, true);
}

static int post_shared(wsh_worker *w, int kind, wsh_shared *sh, bool remote) {
  size_t size = sizeof(wsh_mail) + sh->len;
  if (remote && !remote_take(w, size))
    return 0;
  wsh_mail *m = calloc(1, sizeof(*m));
  if (!m) {
    if (remote)
      atomic_fetch_sub(&w->inbox_remote, size);
    return WEBSOCK_ENOMEM;
  }
  m->kind = kind;
  m->remote = remote ? size : 0;
  wsh_shared_ref(sh);
  m->shared = sh;
  post(w, m);
  return 0;
}

int wsh_worker_post_shared(wsh_worker *w, int kind, wsh_shared *sh) {
  return post_shared(w, kind, sh, false);
}

int wsh_host_post_topic(websock_host *host, int kind, int opcode,
                        const char *topic, const void *data, size_t len,
                        bool remote) {
  uint8_t hdr[WSH_MAX_HEADER];
  size_t n = 0;
  if (kind == WSH_MAIL_BROADCAST)
    n = wsh_frame_header(hdr, true, (uint8_t)opcode, len);
  wsh_shared *sh = wsh_shared_new(topic, n + len);
  if (!sh)
    return WEBSOCK_ENOMEM;
  memcpy(sh->data, hdr, n);
  sh->hdr_len = n; /* a broadcast compressed once starts after the header */
  if (len)
    memcpy(sh->data + n, data, len);
  int rc = 0;
  for (unsigned i = 0; i < host->nworkers; i++)
    if (post_shared(&host->workers[i], kind, sh, remote) != 0)
      rc = WEBSOCK_ENOMEM;
  wsh_shared_unref(sh);
  return rc;
}

/* ---- records of other hosts (any thread, under remote_lock) -------------- */

websock_host *wsh_host_remote(websock_host *host, uint64_t id) {
  websock_host *r;
  pthread_mutex_lock(&host->remote_lock);
  websock_host **head = &host->remote_buckets[id % WSH_REMOTE_BUCKETS];
  for (r = *head; r; r = r->next)
    if (r->remote == id)
      goto out_unlock;
  if (host->nremote >= WSH_REMOTE_HOSTS || !(r = calloc(1, sizeof(*r))))
    goto out_unlock; /* r is NULL */
  r->remote = id;
  r->local = host;
  r->next = *head;
  *head = r;
  host->nremote++;
out_unlock:
  pthread_mutex_unlock(&host->remote_lock);
  return r;
}

void wsh_host_free_remotes(websock_host *host) {
  for (unsigned i = 0; i < WSH_REMOTE_BUCKETS; i++) {
    for (websock_host *r = host->remote_buckets[i], *next; r; r = next) {
      next = r->next;
      free(r);
    }
    host->remote_buckets[i] = NULL;
  }
  host->nremote = 0;
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

int wsh_worker_post_handoff(wsh_worker *w, wsh_generation *g,
                            wsh_generation *next) {
  wsh_mail *m = calloc(1, sizeof(*m));
  if (!m)
    return WEBSOCK_ENOMEM;
  m->kind = WSH_MAIL_HANDOFF;
  wsh_generation_acquire(g);
  wsh_generation_acquire(next);
  m->gen = g;
  m->to = next;
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
    wsh_loop_wake(&w->loop);
}

void wsh_worker_post_stop(wsh_worker *w) {
  pthread_mutex_lock(&w->lock);
  w->stop_requested = 1;
  pthread_mutex_unlock(&w->lock);
  wsh_loop_wake(&w->loop);
}

/* ---- delivery (worker thread) -------------------------------------------- */

static void deliver_to(websock_conn *c, wsh_mail *m, bool batch) {
  if (m->kind == WSH_MAIL_PUBLISH)
    wsh_conn_info(c, WEBSOCK_INFO_PUBLISH, 0, m->shared->topic, m->shared->data,
                  m->shared->len);
  else
    wsh_conn_push_shared(c, m->shared, batch);
}

/* A member's connection asked of memory ahead of its delivery: with
 * thousands of members, each is no longer in the cache when its turn comes,
 * and its delivery would otherwise wait for it (the struct, then its
 * statistics in its log tail) before its write. */
static void prefetch_conn(const websock_conn *c) {
  for (size_t off = 0; off < sizeof(*c); off += 64)
    __builtin_prefetch((const char *)c + off);
}

/* Every local subscriber of a topic, as the topic was when delivery began:
 * callbacks may join or leave topics while we deliver. The first member
 * gets it before anything proportional to the number of members is done
 * (a broadcast's first write goes out at once); the others from a snapshot
 * taken after it, in the worker's array, kept and only grown (deliveries
 * do not nest: mail is delivered from on_wake, never inside a callback).
 * If the first member's delivery joined or left topics (its callback, or
 * its closing on backpressure), only it can have done so: the snapshot is
 * then the topic as it is now, less the first member. */
static void deliver_shared(wsh_worker *w, wsh_mail *m) {
  wsh_topics *topics = &w->loop.topics;
  wsh_topic *tp = wsh_topics_find(topics, m->shared->topic);
  if (!tp)
    return;
  websock_conn *first = tp->members[0];
  uint64_t changes = topics->changes;
  deliver_to(first, m, false);
  size_t from = 1;
  if (topics->changes != changes) {
    if (!(tp = wsh_topics_find(topics, m->shared->topic)))
      return;
    from = 0;
  }
  size_t n = tp->n - from;
  if (n == 0)
    return;
  if (n > w->capsnap) {
    websock_conn **snap = realloc(w->snap, n * sizeof(*snap));
    if (!snap)
      return;
    w->snap = snap;
    w->capsnap = n;
  }
  memcpy(w->snap, tp->members + from, n * sizeof(*w->snap));
  /* A broadcast (no callback per member) sends to the others many per
   * system call where it can (sendq.h); the first went out on its own. */
  bool batch = m->kind != WSH_MAIL_PUBLISH && n >= WSH_SENDQ_MIN &&
               wsh_sendq_ready(&w->loop);
  for (size_t i = 0; i < n; i++) {
    if (i + 2 < n)
      prefetch_conn(w->snap[i + 2]);
    if (i + 1 < n && w->snap[i + 1]->logs) /* its tail, past the struct */
      __builtin_prefetch(&w->snap[i + 1]->log->bytes_out);
    if (w->snap[i] != first)
      deliver_to(w->snap[i], m, batch);
  }
  wsh_sendq_flush(&w->loop);
}

/* reload = handoff: every open connection of g moves to next, between two
 * of its callbacks (mail is delivered outside them). */
static void handoff(wsh_worker *w, wsh_generation *g, wsh_generation *next) {
  size_t moved = 0, failed = 0;
  for (websock_conn *c = w->loop.conns; c; c = c->next) {
    if (c->gen != g)
      continue;
    int rc = wsh_conn_handoff(c, next);
    moved += rc == 1;
    failed += rc < 0;
  }
  wsh_info("worker %u: route %s: %zu connection(s) handed off from "
           "generation %u to %u, %zu closed with 1012 (export or import "
           "failed)",
           w->loop.index, next->conf->path, moved, g->id, next->id, failed);
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
  case WSH_MAIL_HANDOFF:
    handoff(w, m->gen, m->to);
    break;
  case WSH_MAIL_SEND: {
    websock_conn *c = wsh_slots_get(&w->loop.slots, m->slot, m->serial);
    if (c)
      wsh_conn_info(c, WEBSOCK_INFO_SEND, 0, NULL, m->data, m->len);
    break;
  }
  default:
    deliver_shared(w, m);
  }
}

static void free_mail(wsh_worker *w, wsh_mail *m) {
  if (m->remote)
    atomic_fetch_sub(&w->inbox_remote, m->remote);
  if (m->kind == WSH_MAIL_ACCEPT && m->acc.fd >= 0)
    close(m->acc.fd);
  if (m->shared)
    wsh_shared_unref(m->shared);
  if (m->gen)
    wsh_generation_release(m->gen);
  if (m->to)
    wsh_generation_release(m->to);
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
  wsh_loop_exit(&w->loop);
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
  w->grace = evtimer_new(w->loop.base, on_grace, w);
  if (w->grace)
    wsh_loop_timer_add(&w->loop, w->grace, w->grace_ms);
  if (w->loop.nconns == 0)
    wsh_loop_exit(&w->loop);
}

static void on_wake(void *arg) {
  wsh_worker *w = arg;
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
    free_mail(w, m);
    m = next;
  }
  wsh_conn_settle_all(&w->loop);
}

static void *worker_main(void *arg) {
  wsh_worker *w = arg;
  wsh_loop_run(&w->loop);
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
  w->loop.on_wake = on_wake;
  w->loop.wake_arg = w;
  if (env && env->cfg) /* µs to ns: at most WSH_MAX_BUSY_POLL_US */
    w->loop.poll_max_ns = (uint32_t)(env->cfg->busy_poll_us * 1000);
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
    free_mail(w, m);
  }
  if (w->grace)
    event_free(w->grace);
  free(w->snap);
  wsh_loop_free(&w->loop);
  pthread_mutex_destroy(&w->lock);
}
