/*
 * conn.h - one client connection's life and its WebSocket state machine
 * (conn.c): what the worker, the plugin API and the topics ask of a
 * connection. Its data is in connection.h.
 */
#ifndef WSH_CONN_H
#define WSH_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "network/connection.h"
#include "bus/topic.h"

/* What a listener expects first on its connections. */
enum {
  WSH_LISTEN_PLAIN = 0, /* the HTTP request */
  WSH_LISTEN_PROXY = 1, /* a PROXY protocol header, then the request */
  WSH_LISTEN_TLS = 2    /* a TLS handshake, then the request */
};

/* Loop thread: adopts an accepted socket from a listener of the given kind
 * (over TLS with the environment's certificates for WSH_LISTEN_TLS).
 * Returns 0 or a negative code (the socket is then closed). */
int wsh_conn_new(wsh_loop *w, int fd, const struct sockaddr *sa, socklen_t len,
                 int kind);

/* Writes what is queued, updates what the socket waits for, and frees a
 * connection that is done. Called by the worker for every connection marked
 * dirty, at the end of each loop callback; c may be gone afterwards. */
void wsh_conn_settle(websock_conn *c);

/* The loop's epoll set reports c's socket ready (WSH_IO_* bits): read what
 * came, then settle. */
void wsh_conn_io(websock_conn *c, unsigned io);

/* The loop's deadlines (deadlines.h): the open connection in slot of the
 * loop `loop` is due for its idle timeout, a server ping or its pong, or the
 * trim of its deflate streams, or was filed before a read put that off:
 * acts, files it again for what comes next, and settles. */
void wsh_conn_deadline(void *loop, uint32_t slot);

/* Settles every connection marked on w (wsh_loop_mark); called at the end of
 * every loop callback, which then reuses the output area. */
void wsh_conn_settle_all(wsh_loop *w);

/* Queues one whole unmasked frame. Returns 0 or WEBSOCK_ENOMEM. */
int wsh_conn_send_frame(websock_conn *c, uint8_t opcode, const void *data,
                        size_t len);

/* Pushes one message, applying the route's backpressure policy; compressed
 * when permessage-deflate was negotiated and it pays (compress.h). */
int wsh_conn_push(websock_conn *c, uint8_t opcode, const void *data,
                  size_t len);

/* The same; `plain`: never compressed (websock_push_uncompressed). */
int wsh_conn_push_as(websock_conn *c, uint8_t opcode, const void *data,
                     size_t len, bool plain);

/* handle_info(data) if the connection is open and the plugin has one; kind
 * (websock_info_kind), the timer's id or the topic say where it came from
 * (websock_info_source). */
void wsh_conn_info(websock_conn *c, int kind, int64_t timer_id,
                   const char *topic, const uint8_t *data, size_t len);

/* A broadcast frame: its bytes referenced, not copied. batch: its send may
 * wait in the worker's batch (sendq.h; wsh_sendq_ready said yes), sent
 * with the others by wsh_sendq_flush before the delivery ends. */
void wsh_conn_push_shared(websock_conn *c, wsh_shared *sh, bool batch);

/* websock_send_after(): handle_info(data) after ms (msgs.c keeps it).
 * Returns the timer's id or WEBSOCK_ENOMEM. */
int64_t wsh_conn_send_after(websock_conn *c, uint64_t ms, const void *data,
                            size_t len);

/* Host shutdown: close with 1001 (terminate: shutdown), or drop a connection
 * still in its handshake. */
void wsh_conn_shutdown(websock_conn *c);

/* Hot reload of a `reload = restart` route: close with 1012 (terminate:
 * shutdown, 1012). */
void wsh_conn_restart(websock_conn *c);

/* Hot reload of a `reload = handoff` route (loop thread, outside c's
 * callbacks): the old generation's export_state() writes c's state, c moves
 * to generation next (its counts, settings and callbacks), and next's
 * import_state() reads it. Returns 1 if c moved, 0 if it was left alone (not
 * open, or not on a generation that exports), or a negative code if export
 * or import failed and c is closing with 1012 (terminate() of the
 * generation holding the state). */
int wsh_conn_handoff(websock_conn *c, wsh_generation *next);

/* Loop thread: the host is over max_buffered_memory. Closes w's connections
 * holding the most buffered bytes with 1013, largest first, while the host
 * is over and w holds more than its share. */
void wsh_conn_shed(wsh_loop *w);

/* The grace period is over: free the connection now. */
void wsh_conn_abort(websock_conn *c);

#endif
