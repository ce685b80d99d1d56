/*
 * worker.h - a worker: a thread running its own event loop (wsh_loop,
 * which its connections share). A connection lives on one worker for its
 * whole life, so its callbacks never run concurrently. Other threads talk to
 * a worker only through its mailbox; the worker tells its owner (the
 * server) what happens through hooks and never calls it.
 */
#ifndef WSH_WORKER_H
#define WSH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bus/bus.h"
#include "network/loop.h"
#include "websock.h"

struct event;
typedef struct wsh_worker wsh_worker;

/* What the owner of the workers (the server) is told, on the worker's
 * thread: it begins to stop (worker 0 then closes the listeners), and it is
 * done (its loop has ended). The worker never calls the server itself. */
typedef struct wsh_worker_hooks {
  void (*stopping)(void *arg, wsh_worker *w);
  void (*exited)(void *arg, wsh_worker *w);
  void *arg;
} wsh_worker_hooks;

typedef struct wsh_accepted {
  int fd;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int kind; /* the listener's: WSH_LISTEN_PLAIN, _PROXY or _TLS */
} wsh_accepted;

enum {
  WSH_MAIL_ACCEPT,
  WSH_MAIL_SEND,
  WSH_MAIL_PUBLISH,
  WSH_MAIL_BROADCAST,
  WSH_MAIL_RESTART, /* close a replaced generation's connections with 1012 */
  WSH_MAIL_HANDOFF  /* move them to the route's new generation */
};

typedef struct wsh_generation wsh_generation;

/* What plugins hold as websock_host (websock_conn_host, websock_options_host,
 * websock_ref): the workers a message, publish or broadcast is posted to,
 * and the bus to the other hosts. The server owns it; it is not the server.
 *
 * A websock_ref of a connection on another host (websock_ref_parse) points
 * at a record of that host instead: remote is its bus id, local the host
 * whose bus reaches it. The records are interned in the local host's table
 * (at most WSH_REMOTE_HOSTS, kept until exit, so a ref never dangles). */
#define WSH_REMOTE_HOSTS 4096u
#define WSH_REMOTE_BUCKETS 256u
struct websock_host {
  wsh_worker *workers;
  unsigned nworkers;
  wsh_bus *bus;        /* this host's (the local engine without --redis) */
  uint64_t remote;     /* a record of another host: its id; else 0 */
  websock_host *local; /* a record: the host it was parsed on */
  websock_host *next;  /* a record: its bucket's chain */
  pthread_mutex_t remote_lock; /* the table of records (local host) */
  websock_host *remote_buckets[WSH_REMOTE_BUCKETS];
  unsigned nremote;
  /* Mail from other hosts a worker may hold, not yet delivered, in bytes
   * (each worker's own count is in its inbox_remote); past it the worker's
   * copy is dropped and counted here. */
  size_t remote_mail_max;
  atomic_ullong remote_mail_dropped;
  /* Subscribers per topic, all workers (websock_topic_subscribers). */
  wsh_topic_counts counts;
};

/* Local host: the record of the host with bus id `id` (created on first
 * use), or NULL when out of memory or the table is full. */
websock_host *wsh_host_remote(websock_host *host, uint64_t id);
/* Frees the records of other hosts. */
void wsh_host_free_remotes(websock_host *host);

/* Any thread: a publish (kind WSH_MAIL_PUBLISH: data for handle_info) or a
 * broadcast (WSH_MAIL_BROADCAST, one message of opcode, framed here once for
 * every worker) to every worker's subscribers of topic. remote: it came from
 * another host and counts against each worker's remote_mail_max. Returns 0
 * or WEBSOCK_ENOMEM. */
int wsh_host_post_topic(websock_host *host, int kind, int opcode,
                        const char *topic, const void *data, size_t len,
                        bool remote);

/* One item of a worker's mailbox. */
typedef struct wsh_mail {
  struct wsh_mail *next;
  int kind;
  wsh_accepted acc; /* ACCEPT */
  uint32_t slot;    /* SEND: the target */
  uint32_t serial;
  wsh_shared *shared;  /* PUBLISH, BROADCAST */
  wsh_generation *gen; /* RESTART, HANDOFF: the old one (a reference) */
  wsh_generation *to;  /* HANDOFF: the new one (a reference) */
  size_t remote;       /* from another host: the bytes counted for it */
  size_t len;          /* SEND: data */
  uint8_t data[];
} wsh_mail;

struct wsh_worker {
  wsh_loop loop; /* what its connections share (first: a worker is a loop) */
  wsh_worker_hooks hooks;
  uint64_t grace_ms; /* shutdown: how long connections get to close */
  pthread_t thread;
  int inited;  /* wsh_worker_init succeeded */
  int started; /* its thread runs */
  pthread_mutex_t lock;
  wsh_mail *inbox;            /* under lock: sockets, messages, publishes */
  wsh_mail *inbox_tail;       /* under lock */
  atomic_size_t inbox_remote; /* bytes of mail from other hosts in inbox */
  int stop_requested;         /* under lock */
  atomic_int shed_requested;  /* the host is over its memory budget: shed */
  struct event *grace;
  /* A topic's members as delivery began (loop thread only): kept from one
   * publish to the next, so that a broadcast to many allocates nothing
   * before its first write. */
  websock_conn **snap;
  size_t capsnap;
};

/* Sets w up (its loop, buffers, mailbox) without a thread: index-th worker
 * of host, its connections given env. Returns 0 or WEBSOCK_ENOMEM. */
int wsh_worker_init(wsh_worker *w, unsigned index, wsh_conn_env *env,
                    websock_host *host, const wsh_worker_hooks *hooks,
                    uint64_t grace_ms);
/* Runs w's loop on a thread of its own. Returns 0 or WEBSOCK_ENOMEM. */
int wsh_worker_start(wsh_worker *w);
/* Frees what wsh_worker_init set up (the thread, if any, joined first). */
void wsh_worker_free(wsh_worker *w);
/* From any thread: hand an accepted socket (tls: from a TLS listener) to
 * this worker. */
int wsh_worker_post_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                       socklen_t len, int kind);
/* On w's own thread: take an accepted socket over at once. */
void wsh_worker_adopt_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                         socklen_t len, int kind);
/* From any thread: queue a message for a connection of this worker. Returns
 * 0, WEBSOCK_ENOENT (no such live connection) or WEBSOCK_ENOMEM. */
int wsh_worker_post_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                         const void *data, size_t len);
/* The same for a message from another host (the bus thread): 0 also when
 * the worker's mail from other hosts is over its cap (dropped, counted). */
int wsh_worker_post_remote_send(wsh_worker *w, uint32_t slot, uint32_t serial,
                                const void *data, size_t len);
/* From any thread: deliver a shared publish or broadcast to this worker's
 * subscribers (takes a reference). */
int wsh_worker_post_shared(wsh_worker *w, int kind, wsh_shared *sh);

/* From any thread: close this worker's connections on generation g with
 * 1012 (takes a reference to g). */
int wsh_worker_post_restart(wsh_worker *w, wsh_generation *g);

/* From any thread: move this worker's open connections on generation g to
 * generation next (reload = handoff; takes a reference to both). */
int wsh_worker_post_handoff(wsh_worker *w, wsh_generation *g,
                            wsh_generation *next);

/* From any thread: the host is over its memory budget; the worker sheds its
 * largest holders if it holds more than its share (see conn.c). */
void wsh_worker_post_shed(wsh_worker *w);

/* From any thread: close every connection with 1001 and exit the thread
 * once they are gone or after the grace period. */
void wsh_worker_post_stop(wsh_worker *w);

#endif
