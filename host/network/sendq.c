/*
 * sendq.c - a worker's sends to many sockets in one system call (see
 * sendq.h).
 */
#include "network/sendq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <liburing.h>

#include "base/log.h"
#include "network/connection.h"
#include "network/loop.h"

struct wsh_sendq {
  struct io_uring ring;
  unsigned n; /* sends waiting */
  wsh_sendq_entry e[WSH_SENDQ_BATCH];
  uint8_t answered[WSH_SENDQ_BATCH]; /* while a batch's answers come */
};

/* The ring, with the flags that spare work where the kernel has them (one
 * thread submits; completions need no task work from other threads). */
static int ring_init(struct io_uring *ring) {
  unsigned flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                   IORING_SETUP_SINGLE_ISSUER;
  int rc = io_uring_queue_init(WSH_SENDQ_BATCH, ring, flags);
  if (rc == -EINVAL) /* a kernel before 6.0 */
    rc = io_uring_queue_init(WSH_SENDQ_BATCH, ring, 0);
  return rc;
}

bool wsh_sendq_ready(wsh_loop *l) {
  if (l->sendq)
    return true;
  if (l->sendq_off)
    return false;
  l->sendq_off = 1;
  if (!l->env->cfg->io_uring)
    return false;
  wsh_sendq *q = calloc(1, sizeof(*q));
  if (!q) {
    wsh_warn("worker %u: no memory for io_uring: a send() per subscriber",
             l->index);
    return false;
  }
  int rc = ring_init(&q->ring);
  if (rc < 0) {
    wsh_info("worker %u: io_uring unavailable (%s): broadcasts make a send() "
             "per subscriber",
             l->index, strerror(-rc));
    free(q);
    return false;
  }
  l->sendq = q;
  l->sendq_off = 0;
  return true;
}

/* Takes the answers there are: how many. */
static unsigned reap(wsh_sendq *q, unsigned n) {
  struct io_uring_cqe *cqe;
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&q->ring, head, cqe) {
    uint64_t i = cqe->user_data;
    if (i < n && !q->answered[i]) {
      q->answered[i] = 1;
      q->e[i].sent(&q->e[i], cqe->res);
    }
    seen++;
  }
  io_uring_cq_advance(&q->ring, seen);
  return seen;
}

void wsh_sendq_flush(wsh_loop *l) {
  wsh_sendq *q = l->sendq;
  if (!q || q->n == 0)
    return;
  unsigned n = q->n, seen = 0;
  q->n = 0;
  memset(q->answered, 0, n);
  /* Each send is non-blocking, so its answer is posted before the call
   * returns: waiting for all n costs nothing more. */
  int rc;
  do
    rc = io_uring_submit_and_wait(&q->ring, n);
  while (rc == -EINTR);
  wsh_stat_add(&l->stats.uring_enters, 1);
  wsh_stat_add(&l->stats.uring_sends, n);
  while (rc >= 0 || rc == -EINTR) { /* submitted: every send answers */
    seen += reap(q, n);
    if (seen >= n)
      return;
    struct io_uring_cqe *cqe;
    rc = io_uring_wait_cqe(&q->ring, &cqe);
  }
  /* Not expected: the sends not answered are lost, as for a failed send(),
   * and this worker sends without io_uring from now on. */
  wsh_error("worker %u: io_uring: %u of %u sends without an answer (%s); "
            "a send() per subscriber from now on",
            l->index, n - seen, n, strerror(-rc));
  for (unsigned i = 0; i < n; i++)
    if (!q->answered[i])
      q->e[i].c->io_error = EIO;
  wsh_sendq_free(l);
  l->sendq_off = 1;
}

void wsh_sendq_add(wsh_loop *l, const wsh_sendq_entry *e) {
  if (l->sendq && l->sendq->n == WSH_SENDQ_BATCH)
    wsh_sendq_flush(l);
  wsh_sendq *q = l->sendq;
  if (!q) { /* the ring failed (and is gone): this send by itself */
    ssize_t r = e->c->tp.ops->write(&e->c->tp, e->p, e->len, false);
    e->sent(e, r < 0 ? -errno : (int)r);
    return;
  }
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
  io_uring_prep_send(sqe, e->c->tp.fd, e->p, e->len,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
  sqe->user_data = q->n;
  q->e[q->n++] = *e;
}

void wsh_sendq_free(wsh_loop *l) {
  if (!l->sendq)
    return;
  io_uring_queue_exit(&l->sendq->ring);
  free(l->sendq);
  l->sendq = NULL;
}
