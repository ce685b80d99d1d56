/*
 * connection.h - the data of one client connection, shared by the modules
 * that each do one job on it: conn.c (the WebSocket state machine and its
 * life), http.c (the upgrade and the plain HTTP answers), outq.c (the
 * output queue), msgs.c (timers and topic subscriptions) and the transport
 * (transport.h) all its I/O goes through. Also the environment every
 * connection of a host shares, and the few helpers those modules all use.
 */
#ifndef WSH_CONNECTION_H
#define WSH_CONNECTION_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/event_struct.h>

#include "base/config.h"
#include "base/crash.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/realip.h"
#include "base/log.h"
#include "network/loop.h"
#include "plugins/registry.h"
#include "base/timeutil.h"
#include "network/transport.h"
#include "websock.h"

struct evbuffer;
typedef struct wsh_topic wsh_topic;
typedef struct wsh_timer wsh_timer;

typedef struct wsh_config wsh_config;

/* What every connection of a host needs and nothing more: the settings, the
 * routes, the one counter of open WebSocket connections that
 * max_connections applies to (each connection takes and releases its place
 * in conn.c, together with its worker's and its generation's gauges), and
 * the /metrics page. Owned by the server; read by the connections. */
typedef struct wsh_conn_env {
  const wsh_config *cfg;
  wsh_registry *reg;
  atomic_ulong open;
  int (*render_metrics)(void *arg, char **out); /* malloc'd text */
  void *metrics_arg;
  /* The browser pages (ops/console.c), or NULL: 0 if the plain request is
   * not theirs, 1 with *resp filled, or a negative code. */
  int (*answer_page)(void *arg, const websock_request *req, bool route,
                     websock_response *resp, const char **why);
  void *page_arg;
  /* Bytes buffered by every connection of every worker (see conn.c, "the
   * host-wide memory budget"): changed only when a connection's buffers
   * change size, never on the path of a message that is not buffered. */
  atomic_ullong buffered;
  void (*request_shed)(void *arg); /* over budget: every worker sheds */
  unsigned nworkers;               /* for each worker's share of it */
  void *shed_arg;
  wsh_tls *tls;          /* the certificates of the TLS listeners; NULL: none */
  wsh_cidr_list trusted; /* trusted_proxies: whose X-Forwarded-For counts */
} wsh_conn_env;

typedef enum wsh_conn_state {
  WSH_CONN_HANDSHAKE, /* reading the upgrade request */
  WSH_CONN_OPEN,      /* frames flow both ways */
  WSH_CONN_CLOSING,   /* our close frame is queued; waiting for the peer's */
  WSH_CONN_FLUSHING,  /* last bytes queued; close the TCP side once written */
  WSH_CONN_LINGER     /* write side shut down; waiting for the peer's EOF */
} wsh_conn_state;

/* What few connections use, allocated on first use and freed when it holds
 * nothing again (wsh_conn_more_release), so that an idle connection stays
 * small. */
typedef struct wsh_conn_more {
  struct event *timer; /* handshake, close, linger deadlines (open: conn.c) */
  size_t held;         /* buffered bytes counted in the host's budget */
  uint8_t *pend;       /* bytes read but not processed (reading paused) */
  size_t npend;
  char *stop_text;   /* websock_close()'s text or the error detail */
  char *subprotocol; /* negotiated */
  wsh_param *params; /* what the route's pattern captured: one block */
  size_t nparams;
  wsh_subs subs;     /* topics joined (bus/topic.h) */
  wsh_timer *timers; /* websock_send_after */
  int64_t next_timer_id;
  uint16_t stop_code; /* websock_close()'s code, 0 if none */
  uint8_t *proxy_hdr; /* a PROXY protocol header that came in pieces */
  size_t proxy_len;
  /* permessage-deflate: a compressed message inflating frame by frame */
  struct wsh_pmd_in *pmd_in;
} wsh_conn_more;

enum { WSH_CLOSED_BY_CLIENT = 1, WSH_CLOSED_BY_SERVER, WSH_CLOSED_LOST };

/* log_connections at info: what the line written at the end says. It is
 * the connection's tail (websock_conn.log), allocated with it only when
 * the line will be written (the level is fixed at start-up): 64 bytes,
 * the peer packed rather than as text. */
typedef struct wsh_conn_log {
  uint64_t opened_ms; /* 0 until upgraded: no line */
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  /* the client as the request named it (proxies applied) */
  uint8_t addr[16]; /* IPv4: the first 4 */
  uint16_t port;
  uint8_t family;    /* AF_INET, AF_INET6, AF_UNIX; 0: unknown ("?") */
  uint8_t closed_by; /* WSH_CLOSED_BY_*, 0 until known */
  uint16_t close_code;
} wsh_conn_log;

/* An idle upgraded connection costs this struct (a 160-byte malloc chunk;
 * 224 with the closing line's tail at log level info),
 * its websock_ref slot and the kernel's socket and epoll entry: keep it so
 * (bench/PERFORMANCE.md, "Idle memory"; unit_conn idle_memory fails when it
 * grows). What only some connections use goes in `more`. */
struct websock_conn {
  wsh_loop *w;               /* its worker's loop */
  websock_conn *prev, *next; /* the loop's list */
  wsh_transport tp;          /* all its I/O goes through here */
  struct evbuffer *out; /* bytes not yet written; NULL when there are none */
  uint32_t stage_off;   /* a run of w->obuf queued in this loop callback, */
  uint32_t stage_len;   /* ahead of nothing: out is empty while it is set */
  uint64_t id;
  uint64_t last_read_ms; /* for the idle timeout */
  websock_request *req;  /* during the upgrade and init only */
  wsh_generation *gen;
  void *state_ptr; /* the plugin's state */
  wsh_conn_more *more;
  wsh_conn_dec *dec;     /* a frame or message that spans reads; NULL between */
  uint32_t slot, serial; /* websock_ref */
  struct wsh_conn_pmd *pmd; /* permessage-deflate, dedicated: its streams */
  int io_error;             /* errno of a failed read or write, 0 if none */
  uint8_t state;
  uint8_t in_callback; /* inside a plugin callback of this connection */
  uint8_t dirty;       /* in the worker's list of connections to settle */
  uint8_t read_paused; /* our unsent bytes are over pause_reading_at */
  /* edge-triggered (WSH_IO_EDGE): reading stopped before the socket was
   * empty; the next conn_events asks epoll to look at it again */
  uint8_t undrained;
  /* bits, read and written on the loop thread only */
  uint16_t plugin_open : 1;   /* init said OK: terminate is owed */
  uint16_t stop_kind : 2;     /* how a WEBSOCK_STOP closes (WSH_STOP_*) */
  uint16_t in_slot : 1;       /* reachable through websock_ref */
  uint16_t overflow : 1;      /* a push passed max_unsent (policy close) */
  uint16_t awaiting_pong : 1; /* a server ping is unanswered */
  uint16_t counted : 1;       /* counts against max_connections */
  uint16_t peer_eof : 1;      /* the peer shut its side down */
  uint16_t dead : 1;          /* to be freed when settled */
  uint16_t peer_closed : 1;   /* the peer's close frame came: no more data */
  uint16_t await_proxy : 1;   /* a PROXY protocol header comes first */
  uint16_t pmd_on : 1;        /* permessage-deflate negotiated */
  uint16_t io_want : 3; /* WSH_IO_*: what the socket waits for (epoll set) */
  uint16_t logs : 1;    /* log[0] is there (log_connections at info) */
  wsh_pmd_params pmdp;  /* permessage-deflate's parameters */
  wsh_conn_log log[];   /* when logs: the closing line's state */
};

/* ---- helpers of every connection module ---------------------------------- */

static inline const wsh_config *wsh_conn_cfg(const websock_conn *c) {
  return c->w->env->cfg;
}

static inline const struct websock_handler *
wsh_conn_handler(const websock_conn *c) {
  return &c->gen->plugin->h;
}

/* The closing line's peer as text (as wsh_format_addr wrote it). */
void wsh_conn_log_peer(const wsh_conn_log *l, char *out, size_t len);

/* The peer's address for a log line (kept by the request during the
 * handshake, asked of the transport after: connections do not carry it). */
typedef struct wsh_addr_str {
  char s[64];
} wsh_addr_str;

static inline wsh_addr_str wsh_conn_peer(websock_conn *c) {
  wsh_addr_str a = {"?"};
  if (c->req) {
    snprintf(a.s, sizeof(a.s), "%s", c->req->remote_addr);
    return a;
  }
  if (c->logs && c->log->opened_ms) {
    wsh_conn_log_peer(c->log, a.s, sizeof(a.s));
    return a;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  if (c->tp.ops->peer(&c->tp, &ss, &len) == 0)
    wsh_format_addr((struct sockaddr *)&ss, a.s, sizeof(a.s));
  return a;
}

/* Around every plugin callback: the connection is inside one (websock_push
 * and friends check that), a crash names it, and one that blocks the loop
 * is logged with its route. Returns the start time for the leave. */
static inline uint64_t wsh_callback_enter(websock_conn *c, const char *what) {
  c->in_callback = 1;
  wsh_crash_enter(c->gen->conf->path, wsh_conn_handler(c)->name,
                  c->gen->plugin->label, what, c->id);
  return wsh_now_ms();
}

static inline void wsh_callback_leave(websock_conn *c, const char *what,
                                      uint64_t t0) {
  c->in_callback = 0;
  wsh_crash_leave();
  uint64_t took = wsh_now_ms() - t0;
  if (took >= wsh_conn_cfg(c)->slow_callback_ms)
    wsh_warn("route %s: %s() of plugin %s took %llu ms (callbacks must not "
             "block: every connection of worker %u waited)",
             c->gen->conf->path, what,
             wsh_conn_handler(c)->name ? wsh_conn_handler(c)->name : "?",
             (unsigned long long)took, c->w->index);
}

/* The one place open WebSocket connections are counted: the host-wide
 * counter max_connections applies to, and the gauges of the worker and of
 * the generation, all together. 0 if there is no room. */
static inline int wsh_conn_count_open(websock_conn *c) {
  wsh_conn_env *env = c->w->env;
  if (atomic_fetch_add(&env->open, 1) >= env->cfg->max_connections) {
    atomic_fetch_sub(&env->open, 1);
    return 0;
  }
  c->counted = 1;
  atomic_fetch_add(&c->gen->conns, 1);
  atomic_fetch_add(&c->w->stats.open, 1);
  return 1;
}

static inline void wsh_conn_count_closed(websock_conn *c) {
  if (!c->counted)
    return;
  c->counted = 0;
  atomic_fetch_sub(&c->w->env->open, 1);
  atomic_fetch_sub(&c->w->stats.open, 1);
  atomic_fetch_sub(&c->gen->conns, 1);
}

/* Over 90 % of max_buffered_memory: new upgrades get 503, so that the
 * connections already open keep headroom. */
static inline int wsh_conn_refuse_upgrades(const wsh_conn_env *env) {
  uint64_t budget = env->cfg->max_buffered_memory;
  return atomic_load_explicit(&env->buffered, memory_order_relaxed) >
         budget - budget / 10;
}

/* Loop thread only: c has output to write or state to settle at the end of
 * the current loop callback (wsh_conn_settle_all). */
static inline void wsh_loop_mark(wsh_loop *l, websock_conn *c) {
  if (c->dirty)
    return;
  if (l->ndirty == l->capdirty) {
    size_t cap = l->capdirty ? l->capdirty * 2 : 64;
    websock_conn **d = realloc(l->dirty, cap * sizeof(*d));
    if (!d)
      return; /* settled later by its own socket or timer event */
    l->dirty = d;
    l->capdirty = cap;
  }
  c->dirty = 1;
  l->dirty[l->ndirty++] = c;
}

/* Loop thread only: c is being freed; forget it if marked. */
static inline void wsh_loop_unmark(wsh_loop *l, websock_conn *c) {
  if (!c->dirty)
    return;
  for (size_t i = 0; i < l->ndirty; i++) {
    if (l->dirty[i] == c) {
      l->dirty[i] = l->dirty[--l->ndirty];
      break;
    }
  }
  c->dirty = 0;
}

/* c->more, created on first use; NULL when out of memory. */
static inline wsh_conn_more *wsh_conn_more_of(websock_conn *c) {
  if (!c->more)
    c->more = calloc(1, sizeof(*c->more));
  return c->more;
}

/* Frees c->more if it holds nothing (a timer id once given keeps it: ids
 * are not reused). */
static inline void wsh_conn_more_release(websock_conn *c) {
  const wsh_conn_more *m = c->more;
  if (!m || m->timer || m->held || m->pend || m->stop_text || m->subprotocol ||
      m->params || m->subs.v || m->timers || m->next_timer_id || m->stop_code ||
      m->proxy_hdr || m->pmd_in)
    return;
  free(c->more);
  c->more = NULL;
}

#endif
