/*
 * worker.h - a worker: a thread running its own libevent loop. A connection
 * lives on one worker for its whole life, so its callbacks never run
 * concurrently. Other threads talk to a worker only through its inbox.
 */
#ifndef WSH_WORKER_H
#define WSH_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "websock.h"

struct event_base;
struct event;
typedef struct wsh_server wsh_server;

typedef struct wsh_accepted {
  int fd;
  struct sockaddr_storage addr;
  socklen_t addrlen;
} wsh_accepted;

typedef struct wsh_worker {
  wsh_server *srv;
  unsigned index;
  pthread_t thread;
  int started;
  struct event_base *base;
  struct event *wake; /* activated from other threads: look at the inbox */
  pthread_mutex_t lock;
  wsh_accepted *inbox; /* accepted sockets to adopt */
  size_t ninbox;
  size_t capinbox;
  int stop_requested; /* under lock */
  int stopping;       /* worker thread only */
  struct event *grace;
  websock_conn *conns; /* every connection of this worker */
  size_t nconns;
  uint64_t next_id;
} wsh_worker;

int wsh_worker_start(wsh_worker *w, wsh_server *srv, unsigned index);
/* From any thread: hand an accepted socket to this worker. */
int wsh_worker_post_fd(wsh_worker *w, int fd, const struct sockaddr *sa,
                       socklen_t len);
/* From any thread: close every connection with 1001 and exit the thread
 * once they are gone or after the grace period. */
void wsh_worker_post_stop(wsh_worker *w);
void wsh_worker_join(wsh_worker *w);

/* Worker thread only: a connection left the worker. */
void wsh_worker_conn_gone(wsh_worker *w);

#endif
