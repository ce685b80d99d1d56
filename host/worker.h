/*
 * worker.h - a worker: a thread running its own libevent loop. A connection
 * lives on one worker for its whole life, so its callbacks never run
 * concurrently. Other threads talk to a worker only through its inbox.
 */
#ifndef WSH_WORKER_H
#define WSH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "slots.h"
#include "topic.h"
#include "websock.h"

struct event_base;
struct event;
typedef struct wsh_server wsh_server;

typedef struct wsh_accepted {
  int fd;
  struct sockaddr_storage addr;
  socklen_t addrlen;
} wsh_accepted;

/* A payload several workers share: a publish (raw data for handle_info) or
 * a broadcast (one framed message, its bytes referenced by every
 * subscriber's send queue). Freed when the last reference goes. */
typedef struct wsh_shared {
  atomic_int refs;
  size_t len;
  uint8_t *data;
  char topic[];
} wsh_shared;

wsh_shared *wsh_shared_new(const char *topic, size_t len);
void wsh_shared_ref(wsh_shared *sh);
void wsh_shared_unref(wsh_shared *sh);

enum {
  WSH_MAIL_ACCEPT,
  WSH_MAIL_SEND,
  WSH_MAIL_PUBLISH,
  WSH_MAIL_BROADCAST,
  WSH_MAIL_RESTART /* close a replaced generation's connections with 1012 */
};

/* Counters for /metrics: written by the worker, read by any thread. */
#define WSH_STATUS_MAP(XX)                                                     \
  XX(101)                                                                      \
  XX(200)                                                                      \
  XX(400)                                                                      \
  XX(401)                                                                      \
  XX(403)                                                                      \
  XX(404)                                                                      \
  XX(405) XX(408) XX(413) XX(414) XX(426) XX(429) XX(431) XX(500) XX(503)
enum {
#define WSH_STATUS_ENUM_(code) WSH_STATUS_##code,
  WSH_STATUS_MAP(WSH_STATUS_ENUM_)
#undef WSH_STATUS_ENUM_
      WSH_STATUS_OTHER,
  WSH_NSTATUS
};

typedef struct wsh_stats {
  atomic_ullong accepted;
  atomic_ullong open; /* WebSocket connections now */
  atomic_ullong msgs_in, msgs_out, bytes_in, bytes_out;
  atomic_ullong responses[WSH_NSTATUS]; /* upgrade answers by status */
  atomic_ullong shed;        /* connections closed over the memory budget */
  atomic_ullong mem_refused; /* upgrades refused (503) over the budget */
} wsh_stats;

/* Adds to a counter of this worker's wsh_stats. Each counter has one writer,
 * the worker thread, so a relaxed load and store do (no locked add on the
 * per-message path); readers on other threads see whole values. */
static inline void wsh_stat_add(atomic_ullong *v, unsigned long long n) {
  atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                        memory_order_relaxed);
}

/* Index of a status in wsh_stats.responses. */
int wsh_status_index(int status);

typedef struct wsh_generation wsh_generation;

/* One item of a worker's mailbox. */
typedef struct wsh_mail {
  struct wsh_mail *next;
  int kind;
  wsh_accepted acc; /* ACCEPT */
  uint32_t slot;    /* SEND: the target */
  uint32_t serial;
  wsh_shared *shared;  /* PUBLISH, BROADCAST */
  wsh_generation *gen; /* RESTART (a reference) */
  size_t len;          /* SEND: data */
  uint8_t data[];
} wsh_mail;

typedef struct wsh_worker {
  wsh_server *srv;
  unsigned index;
  pthread_t thread;
  int started;
  struct event_base *base;
  struct event *wake; /* activated from other threads: look at the inbox */
  pthread_mutex_t lock;
  wsh_mail *inbox;      /* under lock: sockets, messages, publishes */
  wsh_mail *inbox_tail; /* under lock */
  int stop_requested;   /* under lock */
  int stopping;         /* worker thread only */
  struct event *grace;
  websock_conn *conns; /* every connection of this worker */
  size_t nconns;
  uint64_t next_id;
  wsh_slots slots;   /* behind websock_ref */
  wsh_topics topics; /* this worker's subscribers */
  wsh_stats stats;
  uint8_t *rbuf; /* every read of this worker's sockets lands here */
  size_t rbuf_size;
  /* Frames queued during one loop callback land here, each connection's in
   * one contiguous run, and are sent with one send() when it is settled; the
   * area is reused once every dirty connection is settled, so the echo path
   * allocates nothing. What a short write leaves goes to the connection's
   * evbuffer. */
  uint8_t *obuf;
  size_t obuf_size;
  size_t obuf_used;
  websock_conn **dirty; /* connections to settle before the callback ends */
  size_t ndirty;
  size_t capdirty;
  size_t buffered;           /* what this worker's connections hold */
  atomic_int shed_requested; /* the host is over its memory budget: shed */
} wsh_worker;

int wsh_worker_start(wsh_worker *w, wsh_server *srv, unsigned index);
/* From any thread: hand an accepted socket to this worker. */
int wsh_worker_post_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                       socklen_t len);
/* On w's own thread: take an accepted socket over at once. */
void wsh_worker_adopt_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                         socklen_t len);
/* From any thread: queue a message for a connection of this worker. Returns
 * 0, WEBSOCK_ENOENT (no such live connection) or WEBSOCK_ENOMEM. */
int wsh_worker_post_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                         const void *data, size_t len);
/* From any thread: deliver a shared publish or broadcast to this worker's
 * subscribers (takes a reference). */
int wsh_worker_post_shared(wsh_worker *w, int kind, wsh_shared *sh);

/* From any thread: close this worker's connections on generation g with
 * 1012 (takes a reference to g). */
int wsh_worker_post_restart(wsh_worker *w, wsh_generation *g);

/* From any thread: the host is over its memory budget; the worker sheds its
 * largest holders if it holds more than its share (see conn.c). */
void wsh_worker_post_shed(wsh_worker *w);

/* From any thread: close every connection with 1001 and exit the thread
 * once they are gone or after the grace period. */
void wsh_worker_post_stop(wsh_worker *w);
void wsh_worker_join(wsh_worker *w);

/* Worker thread only: c has output to write or state to settle at the end
 * of the current loop callback. */
void wsh_worker_mark(wsh_worker *w, websock_conn *c);
/* Worker thread only: settles every marked connection. */
void wsh_worker_settle(wsh_worker *w);
/* Worker thread only: c is being freed; forget it if marked. */
void wsh_worker_unmark(wsh_worker *w, websock_conn *c);

/* Worker thread only: a connection left the worker. */
void wsh_worker_conn_gone(wsh_worker *w);

#endif
