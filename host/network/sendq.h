/*
 * sendq.h - one worker's writes to many sockets in one system call. A
 * broadcast's frame goes to each member whose queue is empty with a send
 * of its own; through io_uring (liburing) the worker hands the kernel up
 * to WSH_SENDQ_BATCH of them per io_uring_enter instead of making one
 * send() call each. The sends are the same (MSG_DONTWAIT | MSG_NOSIGNAL,
 * issued at once, in order; a full socket answers EAGAIN and never waits)
 * and so are their results: what a socket does not take is queued by
 * reference, an error is the connection's, as for a send() (outq.h).
 * Where the kernel refuses io_uring (seccomp, io_uring_disabled, an old
 * kernel) or `io_uring = off`, every send is a send() call, as before.
 *
 * The same goes for the first write of each connection when many are
 * settled together (a publish's members, a turn's mail: conn.c), from the
 * loop's staging area or the connection's queue.
 *
 * Only plain TCP sockets (transport ops with `fd_sends`), only between
 * callbacks: nothing else writes to a connection while its send waits
 * here (wsh_sendq_flush runs before anything that could, and before the
 * delivery or the settling ends).
 */
#ifndef WSH_SENDQ_H
#define WSH_SENDQ_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "websock.h"

typedef struct wsh_loop wsh_loop;

/* Sends per io_uring_enter (the ring's size). */
#define WSH_SENDQ_BATCH 256
/* Members a delivery (or connections with output a settling) needs
 * before the ring is set up and used. */
#define WSH_SENDQ_MIN 4

/* One send waiting for the batch's system call: len bytes at p to c's
 * socket; sent(e, res) is told what send() would have returned (-errno
 * for an error) once the batch is sent (outq.c's handlers). done, hold
 * and arg are sent's to use. */
typedef struct wsh_sendq_entry {
  websock_conn *c;
  const void *p;
  size_t len;
  void (*sent)(const struct wsh_sendq_entry *e, int res);
  evbuffer_ref_cleanup_cb done;
  void (*hold)(void *arg);
  void *arg;
} wsh_sendq_entry;

typedef struct wsh_sendq wsh_sendq;

/* Is l's ring there, or can it be set up now? The first call sets it up
 * (a failure is logged once, and every later call answers false). Off
 * when the server's `io_uring = off`. Loop thread only. */
bool wsh_sendq_ready(wsh_loop *l);

/* Adds e's send to l's batch (nothing may write to e->c until the batch
 * is sent); a full batch is sent first. Only after wsh_sendq_ready(l); if
 * the ring has failed since (wsh_sendq_flush gave it up), the send is made
 * at once by send() and answered. */
void wsh_sendq_add(wsh_loop *l, const wsh_sendq_entry *e);

/* Sends what the batch holds, one io_uring_enter, and handles each
 * result. Nothing to do when empty. */
void wsh_sendq_flush(wsh_loop *l);

/* Frees l's ring (the batch must be empty). */
void wsh_sendq_free(wsh_loop *l);

#endif
