/*
 * conn.h - one client connection: the HTTP upgrade, then the WebSocket state
 * machine (open, closing, lingering) over its socket, driving the codec
 * and the plugin's callbacks.
 */
#ifndef WSH_CONN_H
#define WSH_CONN_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/event_struct.h>

#include "frame.h"
#include "registry.h"
#include "websock.h"

struct evbuffer;
typedef struct wsh_worker wsh_worker;
typedef struct wsh_server wsh_server;
typedef struct wsh_shared wsh_shared;
typedef struct wsh_topic wsh_topic;
typedef struct wsh_timer wsh_timer;

typedef enum wsh_conn_state {
  WSH_CONN_HANDSHAKE, /* reading the upgrade request */
  WSH_CONN_OPEN,      /* frames flow both ways */
  WSH_CONN_CLOSING,   /* our close frame is queued; waiting for the peer's */
  WSH_CONN_FLUSHING,  /* last bytes queued; close the TCP side once written */
  WSH_CONN_LINGER     /* write side shut down; waiting for the peer's EOF */
} wsh_conn_state;

enum { WSH_STOP_NORMAL = 0, WSH_STOP_ERROR = 1, WSH_STOP_RESTART = 2 };

/* What few connections use, allocated on first use, so that an idle
 * connection stays small. */
typedef struct wsh_conn_more {
  uint8_t *pend; /* bytes read but not processed (reading paused) */
  size_t npend;
  char *stop_text;   /* websock_close()'s text or the error detail */
  char *subprotocol; /* negotiated */
  wsh_topic **subs;  /* topics joined */
  wsh_timer *timers; /* websock_send_after */
  int64_t next_timer_id;
  uint16_t nsubs, capsubs;
  uint16_t stop_code; /* websock_close()'s code, 0 if none */
} wsh_conn_more;

struct websock_conn {
  wsh_worker *w;
  websock_conn *prev, *next; /* the worker's list */
  int fd;
  short ev_flags;       /* what ev is registered for: EV_READ, EV_WRITE */
  struct event ev;      /* the socket */
  struct evbuffer *out; /* bytes not yet written; NULL when there are none */
  uint32_t stage_off;   /* a run of w->obuf queued in this loop callback, */
  uint32_t stage_len;   /* ahead of nothing: out is empty while it is set */
  struct event *timer;  /* handshake, close, linger, idle and ping deadlines */
  uint64_t id;
  uint64_t last_read_ms; /* for the idle timeout */
  uint64_t ping_at_ms;   /* next ping, or the pong's deadline */
  int io_error;          /* errno of a failed read or write, 0 if none */
  uint8_t state;
  uint8_t in_callback;   /* inside a plugin callback of this connection */
  uint8_t plugin_open;   /* init said OK: terminate is owed */
  uint8_t stop_kind;     /* how a WEBSOCK_STOP closes (WSH_STOP_*) */
  uint8_t in_slot;       /* reachable through websock_ref */
  uint8_t overflow;      /* a push passed max_unsent (policy close) */
  uint8_t read_paused;   /* our unsent bytes are over pause_reading_at */
  uint8_t awaiting_pong; /* a server ping is unanswered */
  uint8_t counted;       /* counts against max_connections */
  uint8_t dirty;         /* in the worker's list of connections to settle */
  uint8_t peer_eof;      /* the peer shut its side down */
  uint8_t dead;          /* to be freed when settled */
  uint8_t peer_closed;   /* the peer's close frame came: no more data */
  websock_request *req;  /* during the upgrade and init only */
  wsh_generation *gen;
  void *state_ptr; /* the plugin's state */
  wsh_conn_more *more;
  wsh_decoder dec;
  uint32_t slot, serial; /* websock_ref */
  size_t held;           /* buffered bytes counted in the host's budget */
};

/* Worker thread: adopts an accepted socket. Returns 0 or a negative code
 * (the socket is then closed). */
int wsh_conn_new(wsh_worker *w, int fd, const struct sockaddr *sa,
                 socklen_t len);

/* c->more, created on first use; NULL when out of memory. */
wsh_conn_more *wsh_conn_more_of(websock_conn *c);

/* Bytes queued for the peer and not yet written. */
size_t wsh_conn_unsent(const websock_conn *c);

/* Writes what is queued, updates what the socket waits for, and frees a
 * connection that is done. Called by the worker for every connection marked
 * dirty, at the end of each loop callback; c may be gone afterwards. */
void wsh_conn_settle(websock_conn *c);

/* Queues one whole unmasked frame. Returns 0 or WEBSOCK_ENOMEM. */
int wsh_conn_send_frame(websock_conn *c, uint8_t opcode, const void *data,
                        size_t len);

/* Pushes one message, applying the route's backpressure policy. */
int wsh_conn_push(websock_conn *c, uint8_t opcode, const void *data,
                  size_t len);

/* handle_info(data) if the connection is open and the plugin has one. */
void wsh_conn_info(websock_conn *c, const uint8_t *data, size_t len);

/* A broadcast frame: its bytes referenced, not copied. */
void wsh_conn_push_shared(websock_conn *c, wsh_shared *sh);

/* Timers and topics of websock.h. */
int64_t wsh_conn_send_after(websock_conn *c, uint64_t ms, const void *data,
                            size_t len);
int wsh_conn_cancel_timer(websock_conn *c, int64_t id);
int wsh_conn_subscribe(websock_conn *c, const char *topic);
int wsh_conn_unsubscribe(websock_conn *c, const char *topic);

/* Host shutdown: close with 1001 (terminate: shutdown), or drop a connection
 * still in its handshake. */
void wsh_conn_shutdown(websock_conn *c);

/* Hot reload of a `reload = restart` route: close with 1012 (terminate:
 * shutdown, 1012). */
void wsh_conn_restart(websock_conn *c);

/* Worker thread: the host is over max_buffered_memory. Closes w's
 * connections holding the most buffered bytes with 1013, largest first,
 * while the host is over and w holds more than its share. */
void wsh_conn_shed(wsh_worker *w);

/* Over 90 % of max_buffered_memory: new upgrades get 503. */
int wsh_conn_refuse_upgrades(wsh_server *srv);

/* The grace period is over: free the connection now. */
void wsh_conn_abort(websock_conn *c);

#endif
