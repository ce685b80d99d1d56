/*
 * outq.h - a connection's output queue. Small writes of a connection whose
 * queue is empty are staged in its loop's output area (each connection's
 * bytes in one run) and written with one write when the connection is
 * settled at the end of the loop callback: one write per connection per
 * loop turn, whatever the number of messages, and no allocation. Only what
 * a short write leaves (or what does not fit the area, or a broadcast frame
 * held by reference) goes to the connection's evbuffer, freed once empty.
 * A big payload (256 KiB or more) with nothing queued before it is written
 * at once from where it lies, and only what the socket leaves is copied.
 * All writing goes through the connection's transport.
 */
#ifndef WSH_OUTQ_H
#define WSH_OUTQ_H

#include <stddef.h>

#include <event2/buffer.h>

#include "network/connection.h"
#include "network/sendq.h"

/* Queues a then b (b may be empty), or writes them now if b is big and
 * nothing is queued (a write error then sets c->io_error). Returns 0 or
 * WEBSOCK_ENOMEM (the connection is then dropped: its stream would have a
 * hole). */
int wsh_outq_add(websock_conn *c, const void *a, size_t alen, const void *b,
                 size_t blen);

/* The evbuffer for bytes held by reference (a broadcast frame), after what
 * is staged, to keep the order. NULL when out of memory. */
struct evbuffer *wsh_outq_buffer(websock_conn *c);

/* Shared bytes (a broadcast frame), the first output of this loop turn for
 * c: written at once, so that a broadcast reaches its first subscribers
 * before it is queued for the last; what the socket does not take, and the
 * bytes of a connection that already has output this turn (batched into
 * one write at the end of the turn, as before), are queued by reference.
 * Returns 1 if the queue holds p and will call done(p', n, arg) once
 * written, 0 if nothing of it was queued (written, or a write error set
 * c->io_error), or WEBSOCK_ENOMEM. */
int wsh_outq_add_ref(websock_conn *c, const void *p, size_t len,
                     evbuffer_ref_cleanup_cb done, void *arg);

/* A broadcast frame's send through the worker's batch answered
 * (sendq.h; e->done, e->hold and e->arg as for wsh_outq_add_ref): written;
 * what the socket did not take queued by reference, hold(arg) first; or
 * c->io_error. */
void wsh_outq_ref_sent(const wsh_sendq_entry *e, int res);

/* The first write of c's settling (what is staged, or the evbuffer's first
 * piece) goes into the worker's batch (sendq.h) instead, if c has output;
 * its answer is handled as wsh_outq_write would. Not the bytes before our
 * FIN (wsh_outq_write's `more`), and only on plain TCP. */
void wsh_outq_write_batched(websock_conn *c);

/* Bytes queued and not yet written. */
static inline size_t wsh_outq_unsent(const websock_conn *c) {
  return c->stage_len + (c->out ? evbuffer_get_length(c->out) : 0);
}

/* Writes what is queued (more: the last bytes before our FIN, which may
 * leave with it). An error other than "try later" sets c->io_error. */
void wsh_outq_write(websock_conn *c, bool more);

/* Drops what is queued. */
void wsh_outq_free(websock_conn *c);

#endif
