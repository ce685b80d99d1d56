/*
 * conn.c - one client connection, from the first byte of its upgrade request
 * to the close of its socket. The connection knows the codec, the handshake
 * module, the registry and the loop; the plugin sees it as websock_conn.
 *
 * I/O: a read lands in the worker's shared buffer and is processed there (no
 * per-connection input buffer); what callbacks push is staged in the
 * worker's output area (each connection's frames in one run) and written
 * with one send(), when the connection is settled at the end of the loop
 * callback: one write per connection per loop turn, whatever the number of
 * messages, and no allocation. Only what a short write leaves (or what does
 * not fit the area, or a broadcast frame held by reference) goes to the
 * connection's evbuffer `out`, freed once empty; the socket waits for
 * writability only while `out` holds bytes.
 *
 * Freeing happens only when a connection is settled (wsh_conn_settle) or by
 * the loop's own timer callbacks, never while its bytes are being processed,
 * so no code below has to ask "is c still alive?".
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "crash.h"
#include "handshake.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "topic.h"
#include "worker.h"

static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void read_frames(websock_conn *c, uint8_t *buf, size_t len);
static int check_room(websock_conn *c);

static const wsh_config *conn_cfg(const websock_conn *c) {
  return c->w->srv->cfg;
}

/* The peer's address for a log line (kept by the request during the
 * handshake, asked of the socket after: connections do not carry it). */
typedef struct addr_str {
  char s[64];
} addr_str;

static addr_str conn_peer(const websock_conn *c) {
  addr_str a = {"?"};
  if (c->req) {
    snprintf(a.s, sizeof(a.s), "%s", c->req->remote_addr);
    return a;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
    wsh_format_addr((struct sockaddr *)&ss, a.s, sizeof(a.s));
  return a;
}

/* A websock_send_after() timer: its event and its message in one block. */
struct wsh_timer {
  struct event ev;
  websock_conn *c;
  wsh_timer *next;
  int64_t id;
  size_t len;
  uint8_t data[];
};

wsh_conn_more *wsh_conn_more_of(websock_conn *c) {
  if (!c->more)
    c->more = calloc(1, sizeof(*c->more));
  return c->more;
}

static void timers_free(websock_conn *c) {
  while (c->more && c->more->timers) {
    wsh_timer *t = c->more->timers;
    c->more->timers = t->next;
    event_del(&t->ev);
    free(t);
  }
}

/* The connection no longer takes callbacks: it leaves its slot (messages to
 * it now report non-delivery), its topics and its timers. */
static void conn_leave(websock_conn *c) {
  if (c->in_slot) {
    wsh_slots_remove(&c->w->slots, c->slot);
    c->in_slot = 0;
  }
  wsh_conn_more *m = c->more;
  if (!m)
    return;
  for (uint16_t i = 0; i < m->nsubs; i++)
    wsh_topics_leave(&c->w->topics, m->subs[i], c);
  free(m->subs);
  m->subs = NULL;
  m->nsubs = m->capsubs = 0;
  timers_free(c);
}

static void set_deadline(websock_conn *c, uint64_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  if (!c->timer)
    c->timer = evtimer_new(c->w->base, on_timer, c);
  if (c->timer)
    evtimer_add(c->timer, &tv);
}

static void clear_deadline(websock_conn *c) {
  if (c->timer) {
    event_free(c->timer);
    c->timer = NULL;
  }
}

/* ---- the host-wide memory budget -------------------------------------------
 *
 * What a connection buffers is counted in the host's budget
 * (max_buffered_memory): its decoder's reassembly buffer as allocated (a
 * partial message), its stashed input (reading paused) and its queued output
 * (the evbuffer `out`; a broadcast frame held by reference counts for every
 * connection that holds it). The worker's read and staging areas are fixed
 * memory and do not count.
 *
 * Each connection remembers what it was counted for (c->held). When it is
 * settled, what it holds now is compared with that: only when it differs are
 * the worker's total (c->w->buffered, its own thread only) and the host's
 * (srv->buffered, one shared atomic) adjusted. A connection that buffers
 * nothing (the small-message echo path: no reassembly, output written at
 * once) never touches the shared counter.
 *
 * Workers are threads, each owning its connections. When a change takes the
 * host over its budget, every worker is asked to shed (its wake event). A
 * worker sheds only while the host is over budget and it holds more than its
 * share (budget / workers), largest holder first: over budget, at least one
 * worker holds more than its share, so shedding always makes progress, and
 * a worker whose connections are small leaves them alone. This is Envoy's
 * overload manager's per-worker "reset the streams using the most memory"
 * in its simplest form. New upgrades get 503 from 90 % of the budget, so
 * that the connections already open keep headroom. */

static size_t conn_buffered(const websock_conn *c) {
  size_t n = c->dec.buf_cap;
  if (c->more)
    n += c->more->npend;
  if (c->out)
    n += evbuffer_get_length(c->out);
  return n;
}

/* Counts what c holds now; asks the workers to shed if that takes the host
 * over its budget. */
static void account(websock_conn *c, size_t now) {
  if (now == c->held)
    return;
  wsh_server *srv = c->w->srv;
  size_t delta = now - c->held; /* modulo 2^64: a decrease works too */
  c->w->buffered += delta;
  unsigned long long total = atomic_fetch_add(&srv->buffered, delta) + delta;
  int grew = now > c->held;
  c->held = now;
  if (grew && total > srv->cfg->max_buffered_memory)
    for (unsigned i = 0; i < srv->nworkers; i++)
      wsh_worker_post_shed(&srv->workers[i]);
}

int wsh_conn_refuse_upgrades(wsh_server *srv) {
  uint64_t budget = srv->cfg->max_buffered_memory;
  return atomic_load_explicit(&srv->buffered, memory_order_relaxed) >
         budget - budget / 10;
}

static void conn_free(websock_conn *c) {
  wsh_worker *w = c->w;
  account(c, 0);
  conn_leave(c);
  if (c->counted) {
    atomic_fetch_sub(&w->srv->open_conns, 1);
    atomic_fetch_sub(&w->stats.open, 1);
  }
  clear_deadline(c);
  wsh_worker_unmark(w, c);
  if (c->ev_flags)
    event_del(&c->ev);
  close(c->fd);
  if (c->out)
    evbuffer_free(c->out);
  if (c->req)
    wsh_request_free(c->req);
  wsh_decoder_free(&c->dec);
  if (c->gen) {
    if (c->counted)
      atomic_fetch_sub(&c->gen->conns, 1);
    wsh_generation_release(c->gen);
  }
  if (c->more) {
    free(c->more->pend);
    free(c->more->subprotocol);
    free(c->more->stop_text);
    free(c->more);
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
  wsh_worker_conn_gone(w);
}

/* ---- closing the TCP side ------------------------------------------------ */

/* Write side shut down (our FIN sent: the server closes first); read until the
 * peer's EOF so that unread bytes do not turn our close into a reset. */
static void conn_linger(websock_conn *c) {
  c->state = WSH_CONN_LINGER;
  shutdown(c->fd, SHUT_WR);
  if (c->more) {
    free(c->more->pend);
    c->more->pend = NULL;
    c->more->npend = 0;
  }
  set_deadline(c, conn_cfg(c)->close_timeout_ms);
}

/* The closing handshake is done and our close is written: the peer sends
 * nothing more, so unless bytes already wait (they would turn our close into
 * a reset) the socket is closed at once, the server first, without waiting
 * for the peer's FIN (the kernel finishes the TCP close). */
static int nothing_to_read(websock_conn *c) {
  ssize_t n = recv(c->fd, c->w->rbuf, c->w->rbuf_size, MSG_DONTWAIT);
  return n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Everything that had to be said is queued: close once it is written (when
 * the connection is settled). */
static void conn_flush_and_close(websock_conn *c) {
  c->state = WSH_CONN_FLUSHING;
  c->read_paused = 0;
  conn_leave(c);
  set_deadline(c, conn_cfg(c)->close_timeout_ms);
  wsh_worker_mark(c->w, c);
}

size_t wsh_conn_unsent(const websock_conn *c) {
  return c->stage_len + (c->out ? evbuffer_get_length(c->out) : 0);
}

/* Appends to the output queue, created on first use (idle connections hold
 * none). Out of memory drops the connection (its stream would have a hole):
 * io_error is set and WEBSOCK_ENOMEM returned. */
static int out_add(websock_conn *c, const void *p, size_t n) {
  if ((!c->out && !(c->out = evbuffer_new())) || evbuffer_add(c->out, p, n)) {
    c->io_error = ENOMEM;
    return WEBSOCK_ENOMEM;
  }
  return 0;
}

/* The output queue for bytes that cannot be staged. A run staged in the
 * worker's area moves into it first, to keep the order. NULL when out of
 * memory. */
static struct evbuffer *out_buf(websock_conn *c) {
  wsh_worker_mark(c->w, c);
  size_t staged = c->stage_len;
  c->stage_len = 0;
  if (out_add(c, c->w->obuf + c->stage_off, staged) != 0)
    return NULL;
  return c->out;
}

/* Queues a then b for the peer. Small writes of a connection whose queue is
 * empty go to the worker's staging area (no allocation); the rest to out. */
static int conn_queue(websock_conn *c, const void *a, size_t alen,
                      const void *b, size_t blen) {
  wsh_worker *w = c->w;
  size_t n = alen + blen;
  wsh_worker_mark(w, c);
  if (c->dirty && (!c->out || !evbuffer_get_length(c->out)) &&
      n <= w->obuf_size - w->obuf_used &&
      (!c->stage_len || c->stage_off + c->stage_len == w->obuf_used)) {
    if (!c->stage_len)
      c->stage_off = (uint32_t)w->obuf_used;
    memcpy(w->obuf + w->obuf_used, a, alen);
    if (blen)
      memcpy(w->obuf + w->obuf_used + alen, b, blen);
    w->obuf_used += n;
    c->stage_len += (uint32_t)n;
    return 0;
  }
  if (!out_buf(c) || out_add(c, a, alen) != 0)
    return WEBSOCK_ENOMEM;
  return blen ? out_add(c, b, blen) : 0;
}

/* ---- sending ------------------------------------------------------------- */

int wsh_conn_send_frame(websock_conn *c, uint8_t opcode, const void *data,
                        size_t len) {
  uint8_t hdr[WSH_MAX_HEADER];
  size_t n = wsh_frame_header(hdr, true, opcode, len);
  return conn_queue(c, hdr, n, data, len);
}

static void send_close_len(websock_conn *c, uint16_t code, const char *text,
                           size_t len) {
  uint8_t payload[WSH_MAX_CONTROL];
  size_t n = 0;
  if (code != WSH_CLOSE_NO_STATUS)
    n = wsh_close_payload(payload, code, text, len);
  wsh_conn_send_frame(c, WEBSOCK_OP_CLOSE, payload, n);
}

static void send_close(websock_conn *c, uint16_t code, const char *text) {
  send_close_len(c, code, text, text ? strlen(text) : 0);
}

/* ---- the plugin's side --------------------------------------------------- */

static const struct websock_handler *handler(const websock_conn *c) {
  return &c->gen->plugin->h;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Around every plugin callback: the connection is inside one (websock_push
 * and friends check that), a crash names it, and one that blocks the loop
 * is logged with its route. Returns the start time for callback_leave. */
static uint64_t callback_enter(websock_conn *c, const char *what) {
  c->in_callback = 1;
  wsh_crash_enter(c->gen->conf->path, handler(c)->name, what, c->id);
  return now_ms();
}

static void callback_leave(websock_conn *c, const char *what, uint64_t t0) {
  c->in_callback = 0;
  wsh_crash_leave();
  uint64_t took = now_ms() - t0;
  if (took >= conn_cfg(c)->slow_callback_ms)
    wsh_warn("route %s: %s() of plugin %s took %llu ms (callbacks must not "
             "block: every connection of worker %u waited)",
             c->gen->conf->path, what,
             handler(c)->name ? handler(c)->name : "?",
             (unsigned long long)took, c->w->index);
}

/* terminate(), exactly once, for a connection whose init said OK. */
static void conn_terminate(websock_conn *c, websock_reason_kind kind,
                           uint16_t code, const char *text) {
  if (!c->plugin_open)
    return;
  c->plugin_open = 0;
  if (c->state == WSH_CONN_OPEN) /* no push, timer or close from terminate */
    c->state = WSH_CONN_CLOSING;
  wsh_debug("conn %llu %s: terminate (reason %d, code %u%s%s)",
            (unsigned long long)c->id, c->gen->conf->path, (int)kind, code,
            text && *text ? ", " : "", text ? text : "");
  if (!handler(c)->terminate)
    return;
  websock_reason reason = {
      .kind = kind, .code = code, .text = text ? text : ""};
  uint64_t t0 = callback_enter(c, "terminate");
  handler(c)->terminate(c, c->state_ptr, &reason);
  callback_leave(c, "terminate", t0);
  c->state_ptr = NULL;
}

/* We close: the close frame is queued after anything pushed, terminate() is
 * told why, and we wait for the peer's close frame. */
static void conn_close(websock_conn *c, uint16_t code, const char *text,
                       websock_reason_kind kind, const char *detail) {
  send_close(c, code, text);
  c->state = WSH_CONN_CLOSING;
  c->read_paused = 0;
  set_deadline(c, conn_cfg(c)->close_timeout_ms);
  conn_terminate(c, kind, code, detail);
  conn_leave(c);
}

/* The callback returned STOP: close as websock_close*() said. */
static void conn_stop(websock_conn *c) {
  char *text = c->more ? c->more->stop_text : NULL;
  uint16_t code = c->more ? c->more->stop_code : 0;
  if (c->more)
    c->more->stop_text = NULL;
  switch (c->stop_kind) {
  case WSH_STOP_ERROR:
    conn_close(c, WSH_CLOSE_INTERNAL, "internal error", WEBSOCK_REASON_ERROR,
               text ? text : "plugin stopped with an error");
    break;
  case WSH_STOP_RESTART:
    conn_close(c, WSH_CLOSE_RESTART, "service restart", WEBSOCK_REASON_SHUTDOWN,
               NULL);
    break;
  default:
    conn_close(c, code ? code : WSH_CLOSE_NORMAL, text, WEBSOCK_REASON_NORMAL,
               NULL);
  }
  free(text);
}

/* A push passed max_unsent under the close policy. */
static void conn_overflow(websock_conn *c) {
  wsh_info("conn %llu %s: %zu bytes unsent, over max_unsent: closing with 1008",
           (unsigned long long)c->id, conn_peer(c).s, wsh_conn_unsent(c));
  conn_close(c, WSH_CLOSE_POLICY, "send queue full", WEBSOCK_REASON_ERROR,
             "backpressure: unsent bytes over max_unsent");
}

/* Reading pauses while our own unsent bytes to this client are over the
 * route's mark; settling resumes it once they drain to half of it. */
static void maybe_pause_reading(websock_conn *c) {
  if (!c->read_paused && c->state == WSH_CONN_OPEN &&
      wsh_conn_unsent(c) > c->gen->conf->pause_reading_at)
    c->read_paused = 1;
}

/* What a callback returned. */
static void after_callback(websock_conn *c, int result, const char *what) {
  if (c->overflow && c->state == WSH_CONN_OPEN) {
    conn_overflow(c);
    return;
  }
  if (result == WEBSOCK_OK) {
    maybe_pause_reading(c);
    c->stop_kind = WSH_STOP_NORMAL;
    if (c->more) {
      c->more->stop_code = 0;
      free(c->more->stop_text);
      c->more->stop_text = NULL;
    }
    return;
  }
  if (result != WEBSOCK_STOP) {
    wsh_error("route %s: %s returned %d (neither WEBSOCK_OK nor WEBSOCK_STOP)",
              c->gen->conf->path, what, result);
    wsh_conn_more *m = wsh_conn_more_of(c);
    if (m) {
      free(m->stop_text);
      m->stop_text = strdup("callback returned an invalid result");
    }
    c->stop_kind = WSH_STOP_ERROR;
  }
  conn_stop(c);
}

static void deliver_message(websock_conn *c, const wsh_event *ev) {
  wsh_stat_add(&c->w->stats.msgs_in, 1);
  wsh_stat_add(&c->w->stats.bytes_in, ev->len);
  uint64_t t0 = callback_enter(c, "handle_in");
  int r = handler(c)->handle_in(c, &c->state_ptr, (websock_opcode)ev->opcode,
                                ev->data, ev->len);
  callback_leave(c, "handle_in", t0);
  after_callback(c, r, "handle_in");
}

/* While open, the timer serves the route's idle timeout and server pings:
 * it is armed for whichever comes first. */
static void arm_open_timer(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  uint64_t now = now_ms(), at = UINT64_MAX;
  if (rc->idle_timeout_ms)
    at = c->last_read_ms + rc->idle_timeout_ms;
  if (rc->ping_interval_ms && c->ping_at_ms < at)
    at = c->ping_at_ms;
  if (at != UINT64_MAX)
    set_deadline(c, at > now ? at - now : 0);
}

static void ping_answered(websock_conn *c) {
  c->awaiting_pong = 0;
  c->ping_at_ms = now_ms() + c->gen->conf->ping_interval_ms;
}

/* Server pings (route ping_interval_ms): send one, or close when the pong
 * is late. */
static void ping_due(websock_conn *c) {
  if (c->awaiting_pong) {
    wsh_info("conn %llu %s: no pong within %llu ms", (unsigned long long)c->id,
             conn_peer(c).s, (unsigned long long)c->gen->conf->ping_timeout_ms);
    conn_close(c, WSH_CLOSE_GOING_AWAY, "ping timeout", WEBSOCK_REASON_TIMEOUT,
               "no pong");
    return;
  }
  wsh_conn_send_frame(c, WEBSOCK_OP_PING, NULL, 0);
  c->awaiting_pong = 1;
  c->ping_at_ms = now_ms() + c->gen->conf->ping_timeout_ms;
}

static void open_timer_due(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  uint64_t now = now_ms();
  if (rc->idle_timeout_ms && now >= c->last_read_ms + rc->idle_timeout_ms) {
    wsh_info("conn %llu %s: idle timeout", (unsigned long long)c->id,
             conn_peer(c).s);
    conn_close(c, WSH_CLOSE_GOING_AWAY, "idle timeout", WEBSOCK_REASON_TIMEOUT,
               NULL);
    return;
  }
  if (rc->ping_interval_ms && now >= c->ping_at_ms)
    ping_due(c);
  if (c->state == WSH_CONN_OPEN)
    arm_open_timer(c);
}

static void deliver_control(websock_conn *c, const wsh_event *ev) {
  websock_opcode op =
      ev->type == WSH_EV_PING ? WEBSOCK_OP_PING : WEBSOCK_OP_PONG;
  if (op == WEBSOCK_OP_PING) {
    /* pongs count against max_unsent too: a client that pings and never
     * reads must not grow our memory */
    if (check_room(c) == 0)
      wsh_conn_send_frame(c, WEBSOCK_OP_PONG, ev->data, ev->len);
    else if (c->overflow) {
      conn_overflow(c);
      return;
    }
    maybe_pause_reading(c);
  } else if (c->awaiting_pong) {
    ping_answered(c);
  }
  if (!handler(c)->handle_control)
    return;
  uint64_t t0 = callback_enter(c, "handle_control");
  int r = handler(c)->handle_control(c, &c->state_ptr, op, ev->data, ev->len);
  callback_leave(c, "handle_control", t0);
  after_callback(c, r, "handle_control");
}

/* ---- frames -------------------------------------------------------------- */

/* The peer's close frame: answer it with the same code (open), or take it as
 * the answer to ours (closing); either way the server then closes first. */
static void on_peer_close(websock_conn *c, const wsh_event *ev) {
  c->peer_closed = 1;
  if (c->state == WSH_CONN_OPEN) {
    char reason[WSH_MAX_CONTROL + 1];
    memcpy(reason, ev->data, ev->len);
    reason[ev->len] = '\0';
    send_close_len(c, ev->close_code, reason, ev->len);
    conn_terminate(c, WEBSOCK_REASON_REMOTE, ev->close_code, reason);
  }
  conn_flush_and_close(c);
}

static void on_frame_event(websock_conn *c, const wsh_event *ev) {
  if (ev->type == WSH_EV_CLOSE) {
    on_peer_close(c, ev);
    return;
  }
  if (ev->type == WSH_EV_ERROR) {
    wsh_info("conn %llu %s: closing with %u: %s", (unsigned long long)c->id,
             conn_peer(c).s, ev->close_code, ev->error);
    if (c->state == WSH_CONN_OPEN)
      conn_close(c, ev->close_code, ev->error, WEBSOCK_REASON_ERROR, ev->error);
    conn_flush_and_close(c);
    return;
  }
  if (c->state != WSH_CONN_OPEN) /* after our close: only the peer's counts */
    return;
  if (ev->type == WSH_EV_MESSAGE)
    deliver_message(c, ev);
  else
    deliver_control(c, ev);
}

/* Keeps what a paused connection could not process yet. */
static void stash(websock_conn *c, const uint8_t *buf, size_t len) {
  wsh_conn_more *m = wsh_conn_more_of(c);
  uint8_t *p = m ? malloc(len) : NULL;
  if (!p) {
    c->io_error = ENOMEM;
    return;
  }
  memcpy(p, buf, len);
  m->pend = p;
  m->npend = len;
}

static void read_frames(websock_conn *c, uint8_t *buf, size_t len) {
  while (len && (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING)) {
    if (c->read_paused) {
      stash(c, buf, len);
      return;
    }
    wsh_event ev;
    size_t used = wsh_decode(&c->dec, buf, len, &ev);
    if (ev.type != WSH_EV_NONE)
      on_frame_event(c, &ev);
    buf += used;
    len -= used;
  }
}

/* Reading resumes: first what arrived before the pause. */
static void resume_reading(websock_conn *c) {
  c->read_paused = 0;
  if (!c->more || !c->more->pend)
    return;
  uint8_t *p = c->more->pend;
  size_t n = c->more->npend;
  c->more->pend = NULL;
  c->more->npend = 0;
  if (p)
    read_frames(c, p, n);
  free(p);
}

/* ---- the upgrade --------------------------------------------------------- */

/* Answers the request with a refusal (or 200 for /healthz) and closes. */
static void respond(websock_conn *c, websock_response *resp, const char *why) {
  char *out;
  size_t len;
  const char *path = c->req && c->req->path ? c->req->path : "-";
  wsh_stat_add(&c->w->stats.responses[wsh_status_index(resp->status)], 1);
  wsh_info("%s %s %s: %d%s%s", conn_peer(c).s, c->req ? c->req->method : "-",
           path, resp->status, why ? " " : "", why ? why : "");
  if (wsh_response_render(resp, NULL, &out, &len) == 0) {
    conn_queue(c, out, len, NULL, 0);
    free(out);
  }
  wsh_response_free(resp);
  conn_flush_and_close(c);
}

static void respond_status(websock_conn *c, int status, const char *body,
                           const char *why) {
  websock_response resp;
  wsh_response_init(&resp, c->req);
  resp.status = status;
  if (body)
    websock_response_set_body(&resp, body);
  respond(c, &resp, why);
}

static void answer_metrics(websock_conn *c) {
  char *text = NULL;
  if (wsh_metrics_render(c->w->srv, &text) != 0) {
    respond_status(c, 500, NULL, "(out of memory)");
    return;
  }
  websock_response resp;
  wsh_response_init(&resp, c->req);
  resp.status = 200;
  websock_response_add_header(&resp, "Content-Type",
                              "text/plain; version=0.0.4");
  websock_response_set_body(&resp, text);
  free(text);
  respond(c, &resp, NULL);
}

static bool get_or_head(const websock_request *req) {
  return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* A known path asked with a method it does not serve. */
static void answer_405(websock_conn *c) {
  websock_response resp;
  wsh_response_init(&resp, c->req);
  resp.status = 405;
  websock_response_add_header(&resp, "Allow", "GET, HEAD");
  respond(c, &resp, "(method not allowed)");
}

/* Plain HTTP: /healthz, /metrics, the console's pages (console.c: /status,
 * or a route's page with --devconsole), 426 at a WebSocket route (GET or
 * HEAD), 405 for another method at one of these, or 404. */
static void answer_plain_http(websock_conn *c) {
  const char *path = c->req->path;
  bool healthz = strcmp(path, "/healthz") == 0;
  bool metrics = strcmp(path, "/metrics") == 0;
  bool route = false;
  if (!healthz && !metrics) {
    wsh_generation *g = wsh_registry_acquire(c->w->srv->reg, path);
    route = g != NULL;
    if (g)
      wsh_generation_release(g);
  }
  websock_response page;
  const char *why;
  int console = healthz || metrics ? 0
                                   : wsh_console_answer(conn_cfg(c), c->req,
                                                        route, &page, &why);
  if (console > 0)
    respond(c, &page, why);
  else if (console < 0)
    respond_status(c, 500, NULL, "(out of memory)");
  else if (!healthz && !metrics && !route)
    respond_status(c, 404, NULL, NULL);
  else if (!get_or_head(c->req))
    answer_405(c);
  else if (healthz)
    respond_status(c, 200, "ok\n", NULL);
  else if (metrics)
    answer_metrics(c);
  else
    respond_status(c, 426, "This is a WebSocket endpoint: upgrade required.\n",
                   "(plain HTTP at a WebSocket route)");
}

/* init(): the connection is open. */
static void conn_open(websock_conn *c, websock_response *resp) {
  c->state = WSH_CONN_OPEN;
  clear_deadline(c);
  c->state_ptr = resp->state;
  if (resp->subprotocol && wsh_conn_more_of(c)) {
    c->more->subprotocol = resp->subprotocol;
    resp->subprotocol = NULL;
  }
  wsh_decoder_init(&c->dec, c->gen->conf->max_message_size);
  if (wsh_slots_add(&c->w->slots, c, &c->slot, &c->serial) == 0)
    c->in_slot = 1;
  c->last_read_ms = now_ms();
  c->ping_at_ms = c->last_read_ms + c->gen->conf->ping_interval_ms;
  arm_open_timer(c);
  c->plugin_open = 1;
  if (handler(c)->init) {
    c->plugin_open = 0;
    uint64_t t0 = callback_enter(c, "init");
    int r = handler(c)->init(c, &c->state_ptr);
    callback_leave(c, "init", t0);
    if (r == WEBSOCK_OK)
      c->plugin_open = 1;
    after_callback(c, r, "init");
  }
  wsh_request_free(c->req);
  c->req = NULL;
}

/* The plugin's upgrade(), if any: 0 to go on, or a refusal already sent. */
static int call_upgrade(websock_conn *c, websock_response *resp) {
  if (!handler(c)->upgrade)
    return 0;
  wsh_crash_enter(c->gen->conf->path, handler(c)->name, "upgrade", c->id);
  uint64_t t0 = now_ms();
  int status = handler(c)->upgrade(c->req, resp);
  wsh_crash_leave();
  if (now_ms() - t0 >= conn_cfg(c)->slow_callback_ms)
    wsh_warn("route %s: upgrade() of plugin %s took %llu ms (callbacks must "
             "not block)",
             c->gen->conf->path, handler(c)->name ? handler(c)->name : "?",
             (unsigned long long)(now_ms() - t0));
  if (status == 0)
    return 0;
  if (status < 400 || status > 599) {
    wsh_error("route %s: upgrade() returned %d (want 0 or 400-599)",
              c->gen->conf->path, status);
    wsh_response_free(resp);
    respond_status(c, 500, NULL, "(invalid upgrade() result)");
    return -1;
  }
  resp->status = status;
  respond(c, resp, "(refused by the plugin's upgrade())");
  return -1;
}

/* Counts the connection against max_connections, or says there is no room. */
static int take_connection_slot(websock_conn *c) {
  wsh_server *srv = c->w->srv;
  if (atomic_fetch_add(&srv->open_conns, 1) >= srv->cfg->max_connections) {
    atomic_fetch_sub(&srv->open_conns, 1);
    return 0;
  }
  c->counted = 1;
  atomic_fetch_add(&c->gen->conns, 1);
  atomic_fetch_add(&c->w->stats.open, 1);
  return 1;
}

static void answer_upgrade(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  const char *why = NULL;
  int status = wsh_request_check_upgrade(c->req, &why);
  if (status) {
    respond_status(c, status, NULL, why);
    return;
  }
  if (!wsh_route_origin_allowed(rc, websock_request_header(c->req, "Origin"))) {
    respond_status(c, 403, "Origin not allowed.\n", "(origin not allowed)");
    return;
  }
  if (wsh_conn_refuse_upgrades(c->w->srv)) {
    wsh_stat_add(&c->w->stats.mem_refused, 1);
    respond_status(c, 503, "Server busy (memory): try again later.\n",
                   "(over 90 % of max_buffered_memory)");
    return;
  }
  if (!take_connection_slot(c)) {
    respond_status(c, 503, "Too many connections.\n",
                   "(max_connections reached)");
    return;
  }
  c->req->subprotocol =
      wsh_negotiate_subprotocol(c->req, rc->subprotocols, rc->nsubprotocols);
  websock_response resp;
  wsh_response_init(&resp, c->req);
  if (c->req->subprotocol &&
      !(resp.subprotocol = strdup(c->req->subprotocol))) {
    wsh_response_free(&resp);
    respond_status(c, 500, NULL, "(out of memory)");
    return;
  }
  if (call_upgrade(c, &resp) != 0)
    return;
  char accept[29], *out;
  size_t len;
  wsh_accept_key(websock_request_header(c->req, "Sec-WebSocket-Key"), accept);
  if (wsh_response_render(&resp, accept, &out, &len) != 0) {
    wsh_response_free(&resp);
    respond_status(c, 500, NULL, "(out of memory)");
    return;
  }
  conn_queue(c, out, len, NULL, 0);
  free(out);
  wsh_stat_add(&c->w->stats.responses[WSH_STATUS_101], 1);
  wsh_debug("%s GET %s: 101 (conn %llu, generation %u%s%s)", conn_peer(c).s,
            c->req->path, (unsigned long long)c->id, c->gen->id,
            resp.subprotocol ? ", subprotocol " : "",
            resp.subprotocol ? resp.subprotocol : "");
  conn_open(c, &resp);
  wsh_response_free(&resp);
}

static void on_request(websock_conn *c) {
  if (!wsh_request_wants_websocket(c->req)) {
    answer_plain_http(c);
    return;
  }
  c->gen = wsh_registry_acquire(c->w->srv->reg, c->req->path);
  if (!c->gen) {
    respond_status(c, 404, NULL, "(no such route)");
    return;
  }
  answer_upgrade(c);
}

/* Request bytes; returns how many belong to the request head. */
static size_t read_request(websock_conn *c, const uint8_t *buf, size_t len) {
  size_t used = 0;
  int rc = wsh_request_feed(c->req, (const char *)buf, len, &used);
  if (rc == WSH_HS_NEED_MORE)
    return len;
  if (rc != WSH_HS_DONE) {
    respond_status(c, rc, NULL, "(bad request head)");
    return len;
  }
  on_request(c);
  return used;
}

/* ---- loop callbacks ------------------------------------------------------ */

/* What a read brought, by state. */
static void process(websock_conn *c, uint8_t *buf, size_t len) {
  if (c->state == WSH_CONN_HANDSHAKE) {
    size_t used = read_request(c, buf, len);
    buf += used;
    len -= used;
  }
  if (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING)
    read_frames(c, buf, len); /* frames sent right behind the request too */
  /* FLUSHING, LINGER: what the peer sends now is dropped */
}

static void do_read(websock_conn *c) {
  wsh_worker *w = c->w;
  ssize_t n = recv(c->fd, w->rbuf, w->rbuf_size, 0);
  if (n > 0) {
    c->last_read_ms = now_ms();
    process(c, w->rbuf, (size_t)n);
  } else if (n == 0) {
    c->peer_eof = 1;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    c->io_error = errno;
  }
  if (c->state == WSH_CONN_OPEN && !c->dec.msg_opcode)
    wsh_decoder_trim(&c->dec); /* idle connections hold no buffer */
}

static void on_io(evutil_socket_t fd, short what, void *arg) {
  websock_conn *c = arg;
  (void)fd;
  if (what & EV_READ)
    do_read(c);
  wsh_worker_mark(c->w, c);
  wsh_worker_settle(c->w);
}

/* ---- settling: write, wait, or go ---------------------------------------- */

/* Writes what is queued; a short write makes the socket wait for EV_WRITE. */
static void conn_write(websock_conn *c) {
  if (c->stage_len) { /* out is empty: one send, the rest to out */
    const uint8_t *p = c->w->obuf + c->stage_off;
    size_t len = c->stage_len;
    /* a closing connection's last bytes leave with its FIN (the close or
     * shutdown that follows pushes them) */
    int more = c->state == WSH_CONN_FLUSHING ? MSG_MORE : 0;
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT | more);
    c->stage_len = 0;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->io_error = errno;
        return;
      }
      n = 0;
    }
    if ((size_t)n < len)
      out_add(c, p + n, len - (size_t)n);
    return; /* the socket's buffer is full, or everything is sent */
  }
  while (c->out && evbuffer_get_length(c->out) > 0) {
    int n = evbuffer_write(c->out, c->fd);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        c->io_error = errno;
      return;
    }
    if (n == 0)
      return;
  }
  if (c->out) { /* empty: idle connections hold no buffer */
    evbuffer_free(c->out);
    c->out = NULL;
  }
}

/* The socket waits for what the state needs. */
static void conn_events(websock_conn *c) {
  short want = 0;
  if (!c->read_paused && c->state != WSH_CONN_FLUSHING && !c->peer_eof)
    want |= EV_READ;
  if (wsh_conn_unsent(c) > 0)
    want |= EV_WRITE;
  if (want == c->ev_flags)
    return;
  if (c->ev_flags)
    event_del(&c->ev);
  c->ev_flags = want;
  if (!want)
    return;
  event_assign(&c->ev, c->w->base, c->fd, (short)(want | EV_PERSIST), on_io, c);
  event_add(&c->ev, NULL);
}

/* The connection is lost (reset, EOF without a close frame, write error). */
static void conn_lost(websock_conn *c) {
  if (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING) {
    const char *detail = c->io_error
                             ? strerror(c->io_error)
                             : "connection closed without a close frame";
    wsh_debug("conn %llu %s: %s", (unsigned long long)c->id, conn_peer(c).s,
              detail);
    conn_terminate(c, WEBSOCK_REASON_ERROR, WSH_CLOSE_ABNORMAL, detail);
  }
  conn_free(c);
}

/* The peer sent its FIN, no close frame, while output waits for it: the
 * plugin is told the connection ended without a close frame (ERROR, 1006:
 * no more input can come), and what is queued is written, within the close
 * timeout, before the socket is closed (a half-closed peer may still read). */
static void peer_half_closed(websock_conn *c) {
  wsh_debug("conn %llu %s: FIN with %zu bytes unsent: writing them, then "
            "closing",
            (unsigned long long)c->id, conn_peer(c).s, wsh_conn_unsent(c));
  conn_terminate(c, WEBSOCK_REASON_ERROR, WSH_CLOSE_ABNORMAL,
                 "connection closed without a close frame");
  conn_flush_and_close(c);
}

void wsh_conn_settle(websock_conn *c) {
  if (c->dead) {
    conn_free(c);
    return;
  }
  conn_write(c);
  if (c->read_paused && c->state == WSH_CONN_OPEN &&
      wsh_conn_unsent(c) <= c->gen->conf->pause_reading_at / 2) {
    resume_reading(c);
    conn_write(c);
  }
  /* A peer that half-closed still gets what is queued for it (FLUSHING goes
   * on; an open connection with output queued starts flushing) */
  if (c->peer_eof && !c->io_error && wsh_conn_unsent(c) > 0 &&
      (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING))
    peer_half_closed(c);
  if (c->io_error || (c->peer_eof && c->state != WSH_CONN_FLUSHING)) {
    conn_lost(c);
    return;
  }
  if (c->state == WSH_CONN_FLUSHING && wsh_conn_unsent(c) == 0) {
    if (c->peer_closed && nothing_to_read(c)) {
      conn_free(c); /* both closes exchanged (RFC 6455 7.1.1) */
      return;
    }
    conn_linger(c);
  }
  if (c->state == WSH_CONN_LINGER && c->peer_eof) {
    conn_free(c);
    return;
  }
  account(c, conn_buffered(c));
  conn_events(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  websock_conn *c = arg;
  wsh_worker *w = c->w;
  (void)fd;
  (void)what;
  switch (c->state) {
  case WSH_CONN_HANDSHAKE:
    wsh_info("%s: handshake timeout", conn_peer(c).s);
    respond_status(c, 408, NULL, "(handshake timeout)");
    break;
  case WSH_CONN_OPEN:
    open_timer_due(c);
    break;
  case WSH_CONN_CLOSING:
    wsh_info("conn %llu %s: no close frame from the peer in time",
             (unsigned long long)c->id, conn_peer(c).s);
    c->dead = 1;
    break;
  default: /* FLUSHING or LINGER past the close timeout */
    c->dead = 1;
  }
  wsh_worker_mark(w, c);
  wsh_worker_settle(w);
}

/* ---- what the plugin API does on a connection ------------------------------
 */

/* May one more message be queued? Only what is already unsent counts: a push
 * is refused (the route's policy) when the queue is over max_unsent, never
 * for its own size, so one message of any size can always go out to a client
 * that reads, and a connection holds at most max_unsent plus one message. */
static int check_room(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  if (wsh_conn_unsent(c) <= rc->max_unsent)
    return 0;
  if (rc->on_max_unsent == WSH_FULL_DROP)
    return WEBSOCK_EFULL;
  c->overflow = 1;
  return WEBSOCK_ECLOSED;
}

int wsh_conn_push(websock_conn *c, uint8_t opcode, const void *data,
                  size_t len) {
  if (c->overflow)
    return WEBSOCK_ECLOSED;
  int rc = check_room(c);
  if (rc)
    return rc;
  if (opcode < WEBSOCK_OP_CLOSE) {
    wsh_stat_add(&c->w->stats.msgs_out, 1);
    wsh_stat_add(&c->w->stats.bytes_out, len);
  }
  return wsh_conn_send_frame(c, opcode, data, len);
}

void wsh_conn_info(websock_conn *c, const uint8_t *data, size_t len) {
  if (c->state != WSH_CONN_OPEN || !c->plugin_open || !handler(c)->handle_info)
    return;
  uint64_t t0 = callback_enter(c, "handle_info");
  int r = handler(c)->handle_info(c, &c->state_ptr, data, len);
  callback_leave(c, "handle_info", t0);
  after_callback(c, r, "handle_info");
  wsh_worker_mark(c->w, c);
}

static void unref_shared(const void *data, size_t len, void *arg) {
  (void)data;
  (void)len;
  wsh_shared_unref(arg);
}

void wsh_conn_push_shared(websock_conn *c, wsh_shared *sh) {
  if (c->state != WSH_CONN_OPEN || c->overflow)
    return;
  if (check_room(c) != 0) {
    if (c->overflow)
      conn_overflow(c);
    return;
  }
  wsh_stat_add(&c->w->stats.msgs_out, 1);
  wsh_stat_add(&c->w->stats.bytes_out, sh->len);
  wsh_shared_ref(sh);
  struct evbuffer *out = out_buf(c);
  if (!out ||
      evbuffer_add_reference(out, sh->data, sh->len, unref_shared, sh) != 0)
    wsh_shared_unref(sh);
  maybe_pause_reading(c);
}

static void on_send_after(evutil_socket_t fd, short what, void *arg) {
  wsh_timer *t = arg;
  websock_conn *c = t->c;
  (void)fd;
  (void)what;
  wsh_timer **pp = &c->more->timers;
  while (*pp != t)
    pp = &(*pp)->next;
  *pp = t->next;
  wsh_worker *w = c->w;
  wsh_conn_info(c, t->data, t->len);
  free(t);
  wsh_worker_settle(w);
}

int64_t wsh_conn_send_after(websock_conn *c, uint64_t ms, const void *data,
                            size_t len) {
  wsh_conn_more *m = wsh_conn_more_of(c);
  wsh_timer *t = m ? malloc(sizeof(*t) + len) : NULL;
  if (!t)
    return WEBSOCK_ENOMEM;
  t->c = c;
  t->id = ++m->next_timer_id;
  t->len = len;
  if (len)
    memcpy(t->data, data, len);
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  evtimer_assign(&t->ev, c->w->base, on_send_after, t);
  if (evtimer_add(&t->ev, &tv) != 0) {
    free(t);
    return WEBSOCK_ENOMEM;
  }
  t->next = m->timers;
  m->timers = t;
  return t->id;
}

int wsh_conn_cancel_timer(websock_conn *c, int64_t id) {
  if (!c->more)
    return WEBSOCK_ENOENT;
  for (wsh_timer **pp = &c->more->timers; *pp; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      wsh_timer *t = *pp;
      *pp = t->next;
      event_del(&t->ev);
      free(t);
      return 0;
    }
  }
  return WEBSOCK_ENOENT;
}

int wsh_conn_subscribe(websock_conn *c, const char *topic) {
  if (!topic || !*topic || strlen(topic) > WSH_TOPIC_MAX)
    return WEBSOCK_EINVAL;
  wsh_conn_more *m = wsh_conn_more_of(c);
  if (!m)
    return WEBSOCK_ENOMEM;
  if (m->nsubs == m->capsubs) {
    if (m->capsubs >= UINT16_MAX / 2)
      return WEBSOCK_ENOMEM;
    uint16_t cap = m->capsubs ? (uint16_t)(m->capsubs * 2) : 2;
    wsh_topic **subs = realloc(m->subs, cap * sizeof(*subs));
    if (!subs)
      return WEBSOCK_ENOMEM;
    m->subs = subs;
    m->capsubs = cap;
  }
  bool added;
  wsh_topic *tp = wsh_topics_join(&c->w->topics, topic, c, &added);
  if (!tp)
    return WEBSOCK_ENOMEM;
  if (added)
    m->subs[m->nsubs++] = tp;
  return 0;
}

int wsh_conn_unsubscribe(websock_conn *c, const char *topic) {
  wsh_conn_more *m = c->more;
  for (uint16_t i = 0; m && i < m->nsubs; i++) {
    if (strcmp(m->subs[i]->name, topic) == 0) {
      wsh_topics_leave(&c->w->topics, m->subs[i], c);
      m->subs[i] = m->subs[--m->nsubs];
      return 0;
    }
  }
  return WEBSOCK_ENOENT;
}

/* ---- life ---------------------------------------------------------------- */

int wsh_conn_new(wsh_worker *w, int fd, const struct sockaddr *sa,
                 socklen_t len) {
  (void)len;
  websock_conn *c = calloc(1, sizeof(*c));
  if (!c)
    goto out_close_fd;
  c->w = w;
  c->id = ++w->next_id * 1000 + w->index;
  char peer[64];
  wsh_format_addr(sa, peer, sizeof(peer));
  wsh_stat_add(&w->stats.accepted, 1);
  /* Writes are already batched per loop turn: send them without waiting for
   * the peer's delayed ACK (a message over one write would wait 40 ms). */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->fd = fd;
  if (wsh_request_new(&c->req, conn_cfg(c)->max_header_size) != 0)
    goto out_free;
  snprintf(c->req->remote_addr, sizeof(c->req->remote_addr), "%s", peer);
  c->ev_flags = EV_READ;
  event_assign(&c->ev, w->base, fd, EV_READ | EV_PERSIST, on_io, c);
  event_add(&c->ev, NULL);
  c->next = w->conns;
  if (w->conns)
    w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  set_deadline(c, conn_cfg(c)->handshake_timeout_ms);
  return 0;
out_free:
  free(c);
out_close_fd:
  evutil_closesocket(fd);
  return WEBSOCK_ENOMEM;
}

void wsh_conn_shutdown(websock_conn *c) {
  wsh_worker_mark(c->w, c);
  if (c->state == WSH_CONN_HANDSHAKE) {
    respond_status(c, 503, "Shutting down.\n", "(shutting down)");
    return;
  }
  if (c->state == WSH_CONN_OPEN)
    conn_close(c, WSH_CLOSE_GOING_AWAY, "server shutting down",
               WEBSOCK_REASON_SHUTDOWN, NULL);
}

void wsh_conn_restart(websock_conn *c) {
  wsh_worker_mark(c->w, c);
  if (c->state == WSH_CONN_OPEN)
    conn_close(c, WSH_CLOSE_RESTART, "service restart", WEBSOCK_REASON_SHUTDOWN,
               NULL);
}

/* Closes c with 1013 and releases what it buffers at once. Its partial
 * input and stash go; a connection with output still queued (a client that
 * does not read it) loses it too, and its socket is closed without a close
 * frame, which would have waited behind that output (and could not follow
 * a frame cut in the middle). */
static void conn_shed(websock_conn *c) {
  static const char detail[] = "shed: host over max_buffered_memory";
  wsh_server *srv = c->w->srv;
  wsh_info("conn %llu %s: host over max_buffered_memory (%llu of %llu bytes "
           "buffered): closing this connection, holding %zu, with 1013",
           (unsigned long long)c->id, conn_peer(c).s,
           (unsigned long long)atomic_load(&srv->buffered),
           (unsigned long long)srv->cfg->max_buffered_memory, c->held);
  wsh_stat_add(&c->w->stats.shed, 1);
  int queued = c->out && evbuffer_get_length(c->out) > 0;
  if (c->state == WSH_CONN_OPEN && !queued) {
    conn_close(c, WSH_CLOSE_TRY_AGAIN, "try again later", WEBSOCK_REASON_ERROR,
               detail);
    conn_flush_and_close(c); /* what the peer sends now is dropped */
  } else {
    conn_terminate(c, WEBSOCK_REASON_ERROR, WSH_CLOSE_TRY_AGAIN, detail);
    conn_leave(c);
    if (c->out) {
      evbuffer_free(c->out);
      c->out = NULL;
    }
    c->stage_len = 0;
    c->dead = 1;
  }
  wsh_decoder_free(&c->dec);
  if (c->more) {
    free(c->more->pend);
    c->more->pend = NULL;
    c->more->npend = 0;
  }
  account(c, conn_buffered(c));
  wsh_worker_mark(c->w, c);
}

void wsh_conn_shed(wsh_worker *w) {
  wsh_server *srv = w->srv;
  uint64_t budget = srv->cfg->max_buffered_memory;
  size_t share = (size_t)(budget / srv->nworkers);
  while (atomic_load(&srv->buffered) > budget && w->buffered > share) {
    websock_conn *big = NULL;
    for (websock_conn *c = w->conns; c; c = c->next)
      if (!c->dead && c->held > (big ? big->held : 0))
        big = c;
    if (!big)
      break;
    conn_shed(big);
  }
}

void wsh_conn_abort(websock_conn *c) {
  conn_terminate(c, WEBSOCK_REASON_SHUTDOWN, WSH_CLOSE_GOING_AWAY, NULL);
  conn_free(c);
}
