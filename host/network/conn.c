/*
 * conn.c - one client connection's life and its WebSocket state machine:
 * HANDSHAKE (http.c answers), then OPEN (frames decoded, the plugin's
 * callbacks called, pings and the idle timeout), CLOSING (our close frame
 * sent, the peer's awaited), FLUSHING (last bytes written) and LINGER (our
 * FIN sent, the peer's awaited). Bytes come and go only through the
 * connection's transport; what is written goes through its output queue
 * (outq.c); timers and topics are msgs.c's.
 *
 * A read lands in the loop's shared buffer and is processed there (no
 * per-connection input buffer). Freeing happens only when a connection is
 * settled (wsh_conn_settle) or by the loop's own timer callbacks, never
 * while its bytes are being processed, so no code below has to ask "is c
 * still alive?".
 */
#include "network/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "network/compress.h"
#include "network/http.h"
#include "network/msgs.h"
#include "network/outq.h"
#include "network/sendq.h"
#include "plugins/statebuf.h"
#include "protocol/proxyproto.h"
#include "bus/topic.h"

static void deliver_message(websock_conn *c, const wsh_event *ev);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void read_frames(websock_conn *c, uint8_t *buf, size_t len);
static int check_room(websock_conn *c);

/* The connection no longer takes callbacks: it leaves its slot (messages to
 * it now report non-delivery) with its deadlines, its topics and its
 * timers. */
static void conn_leave(websock_conn *c) {
  if (c->in_slot) {
    wsh_deadlines_unfile(&c->w->deadlines, c->slot);
    wsh_slots_remove(&c->w->slots, c->slot);
    c->in_slot = 0;
  }
  wsh_msgs_leave(c);
}

static void set_deadline(websock_conn *c, uint64_t ms) {
  wsh_conn_more *m = wsh_conn_more_of(c);
  if (m && !m->timer)
    m->timer = evtimer_new(c->w->base, on_timer, c);
  if (m && m->timer)
    wsh_loop_timer_add(c->w, m->timer, ms);
}

static void clear_deadline(websock_conn *c) {
  if (c->more && c->more->timer) {
    event_free(c->more->timer);
    c->more->timer = NULL;
  }
}

/* ---- the host-wide memory budget -------------------------------------------
 *
 * What a connection buffers is counted in the host's budget
 * (max_buffered_memory): its decoder's reassembly buffer as allocated (a
 * partial message), its stashed input (reading paused) and its queued output
 * (the evbuffer `out`; a broadcast frame held by reference counts for every
 * connection that holds it), a dedicated connection's zlib streams and
 * history (compress.c), and a message inflated while the plugin has it. The
 * loop's read and staging areas are fixed memory and do not count.
 *
 * Each connection remembers what it was counted for (c->more->held). When it is
 * settled, what it holds now is compared with that: only when it differs are
 * the loop's total (c->w->buffered, its own thread only) and the host's
 * (env->buffered, one shared atomic) adjusted. A connection that buffers
 * nothing (the small-message echo path: no reassembly, output written at
 * once) never touches the shared counter.
 *
 * Workers are threads, each owning its connections. When a change takes the
 * host over its budget, every worker is asked to shed (env->request_shed). A
 * worker sheds only while the host is over budget and it holds more than its
 * share (budget / workers), largest holder first: over budget, at least one
 * worker holds more than its share, so shedding always makes progress, and
 * a worker whose connections are small leaves them alone. This is Envoy's
 * overload manager's per-worker "reset the streams using the most memory"
 * in its simplest form. New upgrades get 503 from 90 % of the budget
 * (http.c), so that the connections already open keep headroom. */

static inline size_t conn_buffered(const websock_conn *c) {
  size_t n = 0; /* the reassembly buffer of c's decoder, or of the loop's */
  if (c->dec)
    n = c->dec->d.buf_cap;
  else if (c->w->dec.c == c)
    n = c->w->dec.d.buf_cap;
  if (c->more)
    n += c->more->npend;
  if (c->out)
    n += evbuffer_get_length(c->out);
  return n + wsh_compress_held(c);
}

/* What c is counted for in the host's budget. */
static size_t held(const websock_conn *c) {
  return c->more ? c->more->held : 0;
}

/* Counts what c holds now; asks the workers to shed if that takes the host
 * over its budget. Out of memory for the count (c->more), c is lost: what
 * it buffers could not be counted. */
static void account(websock_conn *c, size_t now) {
  size_t was = held(c);
  if (now == was)
    return;
  wsh_conn_more *m = wsh_conn_more_of(c);
  if (!m) {
    c->io_error = ENOMEM;
    wsh_loop_mark(c->w, c);
    return;
  }
  wsh_conn_env *env = c->w->env;
  size_t delta = now - was; /* modulo 2^64: a decrease works too */
  c->w->buffered += delta;
  unsigned long long total = atomic_fetch_add(&env->buffered, delta) + delta;
  int grew = now > was;
  m->held = now;
  if (grew && total > env->cfg->max_buffered_memory && env->request_shed)
    env->request_shed(env->shed_arg);
}

/* ---- the frame decoder ---------------------------------------------------
 *
 * Between frames a decoder holds nothing but its settings, and the frames of
 * small messages arrive whole within one read, so a connection has no
 * decoder of its own: its reads are decoded by the loop's (set up for it at
 * each read), and only when a read ends inside a frame or a message is the
 * loop's state moved into one allocated for the connection, which decodes
 * its reads until it is back between frames. */

/* The decoder for a read of c. NULL when out of memory. */
static wsh_decoder *dec_take(websock_conn *c) {
  if (c->dec)
    return &c->dec->d;
  wsh_conn_dec *cd = &c->w->dec;
  if (!cd->c) {
    wsh_decoder_rebind(&cd->d, c->gen->conf->max_message_size);
  } else { /* busy (a read within a read): one of c's own */
    if (!(cd = malloc(sizeof(*cd))))
      return NULL;
    c->dec = cd;
    wsh_decoder_init(&cd->d, c->gen->conf->max_message_size);
  }
  if (c->pmd_on) {
    wsh_decoder_allow_rsv1(&cd->d);
    wsh_decoder_set_sink(&cd->d, wsh_compress_sink);
  }
  cd->c = c;
  return &cd->d;
}

/* After a read: a decoder back between frames lets go of what it holds;
 * the loop's, inside one, becomes c's own. */
static void dec_give_back(websock_conn *c) {
  wsh_conn_dec *cd = c->dec ? c->dec : &c->w->dec;
  if (cd->c != c)
    return; /* dec_take failed */
  wsh_decoder *d = &cd->d;
  bool between = wsh_decoder_release(d); /* else: d is inside one */
  if (cd != &c->w->dec) {
    if (between) { /* it holds nothing */
      free(cd);
      c->dec = NULL;
    }
    return;
  }
  cd->c = NULL;
  if (between)
    return;
  wsh_conn_dec *own = malloc(sizeof(*own));
  if (own) {
    *own = *cd; /* its buffers go with it */
    own->c = c;
    c->dec = own;
  } else {
    wsh_decoder_free(d);
    c->io_error = ENOMEM;
  }
  wsh_decoder_init(d, 0); /* the loop's holds nothing again */
}

/* Frees c's decoder and what it holds. */
static void dec_drop(websock_conn *c) {
  if (!c->dec)
    return;
  wsh_decoder_free(&c->dec->d);
  free(c->dec);
  c->dec = NULL;
}

/* ---- log_connections' closing line ---------------------------------------
 *
 * Written at info for every upgraded connection; below that level (fixed at
 * start-up) a connection carries none of what it says. Its state is the
 * connection's tail (wsh_conn_log), the peer's address packed in it. */

/* Packs the request's remote address (wsh_format_addr's text: "1.2.3.4:5",
 * "[::1]:5" or "unix") into l; anything else is kept as unknown. */
static void log_peer_pack(wsh_conn_log *l, const char *text) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon = strrchr(text, ':');
  l->family = 0;
  if (strcmp(text, "unix") == 0) {
    l->family = AF_UNIX;
    return;
  }
  size_t n = colon ? (size_t)(colon - text) : 0;
  if (!colon || n >= sizeof(host))
    return;
  char *end;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (*end || port > 65535)
    return;
  memcpy(host, text, n);
  host[n] = '\0';
  l->port = (uint16_t)port;
  if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
    host[n - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, l->addr) == 1)
      l->family = AF_INET6;
  } else if (inet_pton(AF_INET, host, l->addr) == 1) {
    l->family = AF_INET;
  }
}

void wsh_conn_log_peer(const wsh_conn_log *l, char *out, size_t len) {
  struct sockaddr_storage ss = {.ss_family = l->family};
  if (l->family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    memcpy(&in->sin_addr, l->addr, 4);
    in->sin_port = htons(l->port);
  } else if (l->family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    memcpy(&in6->sin6_addr, l->addr, 16);
    in6->sin6_port = htons(l->port);
  } else if (l->family != AF_UNIX) {
    snprintf(out, len, "?");
    return;
  }
  wsh_format_addr((struct sockaddr *)&ss, out, len);
}

/* How the connection ended, the first time it is known. */
static void note_close(websock_conn *c, int by, uint16_t code) {
  if (c->logs && !c->log->closed_by) {
    c->log->closed_by = (uint8_t)by;
    c->log->close_code = code;
  }
}

/* log_connections: one line (info) for a connection that was upgraded. */
static void log_closed(websock_conn *c) {
  static const char *const by[] = {"unknown", "client", "server", "lost"};
  const wsh_conn_log *m = c->logs ? c->log : NULL;
  if (!m || !m->opened_ms || !wsh_conn_cfg(c)->log_connections)
    return;
  wsh_addr_str peer;
  wsh_conn_log_peer(m, peer.s, sizeof(peer.s));
  wsh_log_field f[] = {
      WSH_LOG_STR("route", c->gen->conf->path),
      WSH_LOG_STR("peer", peer.s),
      WSH_LOG_NUM("conn", c->id),
      WSH_LOG_NUM("duration_ms", wsh_now_ms() - m->opened_ms),
      WSH_LOG_NUM("msgs_in", m->msgs_in),
      WSH_LOG_NUM("bytes_in", m->bytes_in),
      WSH_LOG_NUM("msgs_out", m->msgs_out),
      WSH_LOG_NUM("bytes_out", m->bytes_out),
      WSH_LOG_NUM("close_code", m->closed_by ? m->close_code : 1006),
      WSH_LOG_STR("closed_by", by[m->closed_by ? m->closed_by : 3]),
  };
  wsh_log_event(WSH_LOG_INFO, "conn_closed", f, sizeof(f) / sizeof(f[0]));
}

static void conn_free(websock_conn *c) {
  wsh_loop *w = c->w;
  log_closed(c);
  account(c, 0);
  conn_leave(c);
  wsh_conn_count_closed(c);
  clear_deadline(c);
  wsh_loop_unmark(w, c);
  if (c->io_want)
    wsh_loop_io_set(w, c->tp.fd, c, c->io_want, 0);
  wsh_loop_io_forget(w, c);
  if (w->dec.c == c) { /* never between reads; were it, it is c's */
    wsh_decoder_free(&w->dec.d);
    wsh_decoder_init(&w->dec.d, 0);
    w->dec.c = NULL;
  }
  c->tp.ops->close(&c->tp);
  wsh_outq_free(c);
  if (c->req)
    wsh_request_free(c->req);
  dec_drop(c);
  wsh_compress_free(c);
  if (c->gen)
    wsh_generation_release(c->gen);
  if (c->more) {
    free(c->more->pend);
    free(c->more->proxy_hdr);
    free(c->more->subprotocol);
    free(c->more->params);
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
  if (--w->nconns == 0 && w->stopping) /* the last one: the worker ends */
    wsh_loop_exit(w);
}

/* ---- closing the TCP side ------------------------------------------------ */

/* Write side shut down (our FIN sent: the server closes first); read until the
 * peer's EOF so that unread bytes do not turn our close into a reset. */
static void conn_linger(websock_conn *c) {
  c->state = WSH_CONN_LINGER;
  c->tp.ops->shutdown(&c->tp);
  if (c->more) {
    free(c->more->pend);
    c->more->pend = NULL;
    c->more->npend = 0;
  }
  set_deadline(c, wsh_conn_cfg(c)->close_timeout_ms);
}

/* The closing handshake is done and our close is written: the peer sends
 * nothing more, so unless bytes already wait (they would turn our close into
 * a reset) the socket is closed at once, the server first, without waiting
 * for the peer's FIN (the kernel finishes the TCP close). It is asked even
 * when this callback's read of the socket was short: a client still
 * sending what followed its close frame (RFC 6455 forbids it, hostile
 * clients do it) would otherwise get a reset instead of our close frame. */
static int nothing_to_read(websock_conn *c) {
  ssize_t n = c->tp.ops->read(&c->tp, c->w->rbuf, c->w->rbuf_size);
  return n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Everything that had to be said is queued: close once it is written (when
 * the connection is settled). */
static void conn_flush_and_close(websock_conn *c) {
  c->state = WSH_CONN_FLUSHING;
  c->read_paused = 0;
  conn_leave(c);
  set_deadline(c, wsh_conn_cfg(c)->close_timeout_ms);
  wsh_loop_mark(c->w, c);
}

/* ---- sending ------------------------------------------------------------- */

int wsh_conn_send_frame(websock_conn *c, uint8_t opcode, const void *data,
                        size_t len) {
  uint8_t hdr[WSH_MAX_HEADER];
  size_t n = wsh_frame_header(hdr, true, opcode, len);
  return wsh_outq_add(c, hdr, n, data, len);
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
  if (!wsh_conn_handler(c)->terminate)
    return;
  websock_reason reason = {
      .kind = kind, .code = code, .text = text ? text : ""};
  uint64_t t0 = wsh_callback_enter(c, "terminate");
  wsh_conn_handler(c)->terminate(c, c->state_ptr, &reason);
  wsh_callback_leave(c, "terminate", t0);
  c->state_ptr = NULL;
}

/* We close: the close frame is queued after anything pushed, terminate() is
 * told why, and we wait for the peer's close frame. */
static void conn_close(websock_conn *c, uint16_t code, const char *text,
                       websock_reason_kind kind, const char *detail) {
  note_close(c, WSH_CLOSED_BY_SERVER, code);
  send_close(c, code, text);
  c->state = WSH_CONN_CLOSING;
  c->read_paused = 0;
  set_deadline(c, wsh_conn_cfg(c)->close_timeout_ms);
  conn_terminate(c, kind, code, detail);
  conn_leave(c);
}

/* The callback returned STOP: close as websock_close*() said. */
static void conn_stop(websock_conn *c) {
  char *text = c->more ? c->more->stop_text : NULL;
  uint16_t code = c->more ? c->more->stop_code : 0;
  if (c->more)
    c->more->stop_text = NULL;
  wsh_stop_plan p = wsh_contract_stop(c->stop_kind, code, text);
  conn_close(c, p.code, p.text, p.reason, p.detail);
  free(text);
}

/* A push passed max_unsent under the close policy. */
static void conn_overflow(websock_conn *c) {
  wsh_info("conn %llu %s: %zu bytes unsent, over max_unsent: closing with 1008",
           (unsigned long long)c->id, wsh_conn_peer(c).s, wsh_outq_unsent(c));
  conn_close(c, WSH_CLOSE_POLICY, "send queue full", WEBSOCK_REASON_ERROR,
             "backpressure: unsent bytes over max_unsent");
}

/* Reading pauses while our own unsent bytes to this client are over the
 * route's mark; settling resumes it once they drain to half of it. */
static void maybe_pause_reading(websock_conn *c) {
  if (!c->read_paused && c->state == WSH_CONN_OPEN &&
      wsh_outq_unsent(c) > c->gen->conf->pause_reading_at)
    c->read_paused = 1;
}

/* What a callback returned. */
static void after_callback(websock_conn *c, int result, const char *what) {
  if (c->overflow && c->state == WSH_CONN_OPEN) {
    conn_overflow(c);
    return;
  }
  int kind = c->stop_kind;
  const char *detail;
  if (wsh_contract_result(result, &kind, &detail)) {
    maybe_pause_reading(c);
    c->stop_kind = WSH_STOP_NORMAL;
    if (c->more) {
      c->more->stop_code = 0;
      free(c->more->stop_text);
      c->more->stop_text = NULL;
    }
    return;
  }
  if (detail) {
    if (strcmp(detail, WSH_INVALID_RESULT_DETAIL) == 0)
      wsh_error("route %s: %s returned %d (neither WEBSOCK_OK nor "
                "WEBSOCK_STOP)",
                c->gen->conf->path, what, result);
    else
      wsh_error("route %s: %s returned %d: %s", c->gen->conf->path, what,
                result, detail);
    wsh_conn_more *m = wsh_conn_more_of(c);
    if (m) {
      free(m->stop_text);
      m->stop_text = strdup(detail);
    }
    c->stop_kind = (uint8_t)kind;
  }
  conn_stop(c);
}

/* A compressed message: inflated (counted in the budget while the plugin
 * has it), then delivered; 1009, 1007 or 1011 if it does not inflate. */
static void deliver_compressed(websock_conn *c, const wsh_event *ev) {
  wsh_zbuf out = {0};
  const char *why = NULL;
  uint16_t code = wsh_compress_inflate(c, ev, &out, &why);
  if (code) {
    wsh_compress_release(c, &out);
    wsh_info("conn %llu %s: closing with %u: %s", (unsigned long long)c->id,
             wsh_conn_peer(c).s, code, why);
    conn_close(c, code, why, WEBSOCK_REASON_ERROR, why);
    conn_flush_and_close(c);
    return;
  }
  account(c, conn_buffered(c) + out.cap);
  wsh_event plain = *ev;
  plain.data = out.data;
  plain.len = out.len;
  plain.compressed = false;
  deliver_message(c, &plain);
  wsh_compress_release(c, &out);
}

static void deliver_message(websock_conn *c, const wsh_event *ev) {
  if (ev->compressed) {
    deliver_compressed(c, ev);
    return;
  }
  if (c->pmd_on)
    wsh_compress_count_plain_in(c, ev->len);
  wsh_stat_add(&c->w->stats.msgs_in, 1);
  wsh_stat_add(&c->w->stats.bytes_in, ev->len);
  if (c->logs) {
    c->log->msgs_in++;
    c->log->bytes_in += ev->len;
  }
  uint64_t t0 = wsh_callback_enter(c, "handle_in");
  int r = wsh_conn_handler(c)->handle_in(
      c, &c->state_ptr, (websock_opcode)ev->opcode, ev->data, ev->len);
  wsh_callback_leave(c, "handle_in", t0);
  after_callback(c, r, "handle_in");
}

/* ---- deadlines while open ---------------------------------------------------
 *
 * While open, the route's idle timeout, its server pings and the idle trim
 * of dedicated deflate streams are the worker's deadlines (deadlines.h), by
 * the connection's websock_ref slot: nothing per connection but its slot's
 * entry. A read only stores its time (last_read_ms); the entry keeps the
 * deadline it was filed for, and when that comes the real one is worked out
 * again: due, it is acted on; put off by reads, the entry is filed again
 * (open_timer_due). The next server ping, or the pong's deadline while one
 * is awaited, is the word the slot's entry keeps (ping_at). The handshake,
 * close and linger deadlines, which few connections are in at once, stay on
 * the connection's own timer (set_deadline). */

/* The word c's slot keeps in the deadlines; NULL without a slot or out of
 * memory. */
static uint64_t *ping_word(websock_conn *c) {
  return c->in_slot ? wsh_deadlines_word(&c->w->deadlines, c->slot) : NULL;
}

/* The next server ping, or the pong's deadline (awaiting_pong); UINT64_MAX
 * when there is none (out of memory at the open: the connection is lost). */
static uint64_t ping_at(websock_conn *c) {
  uint64_t *at = ping_word(c);
  return at ? *at : UINT64_MAX;
}

static void set_ping_at(websock_conn *c, uint64_t at) {
  uint64_t *p = ping_word(c);
  if (p) {
    *p = at;
  } else {
    c->io_error = ENOMEM; /* it could not be kept: lost, when settled */
    wsh_loop_mark(c->w, c);
  }
}

/* Files c for whichever comes first, or takes it out when nothing is due.
 * A connection that cannot be filed (no slot, out of memory) is lost. */
static void arm_open_timer(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  uint64_t now = wsh_now_ms(), at = UINT64_MAX;
  if (rc->idle_timeout_ms)
    at = c->last_read_ms + rc->idle_timeout_ms;
  uint64_t ping = rc->ping_interval_ms ? ping_at(c) : UINT64_MAX;
  if (ping < at)
    at = ping;
  uint64_t trim_at = wsh_compress_idle(c, now);
  if (trim_at < at)
    at = trim_at;
  if (at == UINT64_MAX) {
    if (c->in_slot)
      wsh_deadlines_unfile(&c->w->deadlines, c->slot);
    return;
  }
  if (!c->in_slot || wsh_deadlines_file(&c->w->deadlines, c->slot, at, now)) {
    c->io_error = ENOMEM;
    wsh_loop_mark(c->w, c);
  }
}

static void ping_answered(websock_conn *c) {
  c->awaiting_pong = 0;
  set_ping_at(c, wsh_now_ms() + c->gen->conf->ping_interval_ms);
}

/* Server pings (route ping_interval_ms): send one, or close when the pong
 * is late. */
static void ping_due(websock_conn *c) {
  if (c->awaiting_pong) {
    wsh_info("conn %llu %s: no pong within %llu ms", (unsigned long long)c->id,
             wsh_conn_peer(c).s,
             (unsigned long long)c->gen->conf->ping_timeout_ms);
    conn_close(c, WSH_CLOSE_GOING_AWAY, "ping timeout", WEBSOCK_REASON_TIMEOUT,
               "no pong");
    return;
  }
  wsh_conn_send_frame(c, WEBSOCK_OP_PING, NULL, 0);
  c->awaiting_pong = 1;
  set_ping_at(c, wsh_now_ms() + c->gen->conf->ping_timeout_ms);
}

static void open_timer_due(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  uint64_t now = wsh_now_ms();
  if (rc->idle_timeout_ms && now >= c->last_read_ms + rc->idle_timeout_ms) {
    wsh_info("conn %llu %s: idle timeout", (unsigned long long)c->id,
             wsh_conn_peer(c).s);
    conn_close(c, WSH_CLOSE_GOING_AWAY, "idle timeout", WEBSOCK_REASON_TIMEOUT,
               NULL);
    return;
  }
  if (rc->ping_interval_ms && now >= ping_at(c))
    ping_due(c);
  if (c->state == WSH_CONN_OPEN)
    arm_open_timer(c);
}

void wsh_conn_deadline(void *loop, uint32_t slot) {
  wsh_loop *w = loop;
  websock_conn *c = wsh_slots_conn(&w->slots, slot);
  if (!c || c->state != WSH_CONN_OPEN || c->dead)
    return; /* never: a connection leaves the deadlines with its slot */
  open_timer_due(c);
  wsh_loop_mark(w, c);
  wsh_conn_settle_all(w);
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
  if (!wsh_conn_handler(c)->handle_control)
    return;
  uint64_t t0 = wsh_callback_enter(c, "handle_control");
  int r = wsh_conn_handler(c)->handle_control(c, &c->state_ptr, op, ev->data,
                                              ev->len);
  wsh_callback_leave(c, "handle_control", t0);
  after_callback(c, r, "handle_control");
}

/* ---- frames -------------------------------------------------------------- */

/* The peer's close frame: answer it with the same code (open), or take it as
 * the answer to ours (closing); either way the server then closes first. */
static void on_peer_close(websock_conn *c, const wsh_event *ev) {
  c->peer_closed = 1;
  note_close(c, WSH_CLOSED_BY_CLIENT, ev->close_code);
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
             wsh_conn_peer(c).s, ev->close_code, ev->error);
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

/* Decodes len bytes at buf; buf NULL: len payload bytes were read straight
 * into the message being reassembled (direct_room). */
static void read_frames(websock_conn *c, uint8_t *buf, size_t len) {
  if (!len)
    return;
  wsh_decoder *d = dec_take(c);
  if (!d) {
    c->io_error = ENOMEM;
    return;
  }
  while (len && (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING)) {
    if (c->read_paused) {
      stash(c, buf, len);
      break;
    }
    wsh_event ev;
    size_t used = len;
    if (buf)
      used = wsh_decode(d, buf, len, &ev);
    else
      wsh_decode_in_place(d, len, &ev);
    if (ev.type != WSH_EV_NONE)
      on_frame_event(c, &ev);
    if (buf)
      buf += used;
    len -= used;
  }
  dec_give_back(c);
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

/* init(): the connection is open. */
static void conn_open(websock_conn *c, websock_response *resp) {
  c->state = WSH_CONN_OPEN;
  clear_deadline(c);
  c->state_ptr = resp->state;
  if (c->logs) {
    c->log->opened_ms = wsh_now_ms();
    log_peer_pack(c->log, c->req->remote_addr);
  }
  if (resp->subprotocol && wsh_conn_more_of(c)) {
    c->more->subprotocol = resp->subprotocol;
    resp->subprotocol = NULL;
  }
  if (wsh_compress_open(c) != 0)
    c->io_error = ENOMEM;
  if (wsh_slots_add(&c->w->slots, c, &c->slot, &c->serial) == 0)
    c->in_slot = 1;
  c->last_read_ms = wsh_now_ms();
  if (c->gen->conf->ping_interval_ms)
    set_ping_at(c, c->last_read_ms + c->gen->conf->ping_interval_ms);
  arm_open_timer(c);
  c->plugin_open = 1;
  if (wsh_conn_handler(c)->init) {
    c->plugin_open = 0;
    uint64_t t0 = wsh_callback_enter(c, "init");
    int r = wsh_conn_handler(c)->init(c, &c->state_ptr);
    wsh_callback_leave(c, "init", t0);
    if (r == WEBSOCK_OK)
      c->plugin_open = 1;
    after_callback(c, r, "init");
  }
  wsh_request_free(c->req);
  c->req = NULL;
  wsh_conn_more_release(c); /* the handshake's deadline needed it */
}

/* ---- loop callbacks ------------------------------------------------------ */

/* The verified client certificate's name, for upgrade() and init(). */
static void read_peer_subject(websock_conn *c) {
  char subject[1024];
  c->req->subject_set = 1;
  if (c->tp.ops->peer_subject(&c->tp, subject, sizeof(subject)) > 0)
    c->req->peer_subject = strdup(subject);
}

/* A connection from a PROXY protocol listener: its header comes first, in
 * one read or several (kept, at most WSH_PROXY_MAX bytes), and names the
 * client. Returns how many bytes of buf were the header's; a connection
 * whose first bytes are no header is dropped without an answer. */
static size_t read_proxy_header(websock_conn *c, const uint8_t *buf,
                                size_t len) {
  wsh_conn_more *m = c->more;
  size_t had = m ? m->proxy_len : 0;
  const uint8_t *p = buf;
  size_t n = len;
  if (had) { /* the header's start came before */
    size_t take = len < WSH_PROXY_MAX - had ? len : WSH_PROXY_MAX - had;
    memcpy(m->proxy_hdr + had, buf, take);
    p = m->proxy_hdr;
    n = had + take;
  }
  wsh_proxy_info info;
  const char *why = "out of memory";
  int r = wsh_proxy_parse(p, n, &info, &why);
  if (r == WSH_PROXY_NEED_MORE && n < WSH_PROXY_MAX) {
    if (!had && (!(m = wsh_conn_more_of(c)) ||
                 !(m->proxy_hdr = malloc(WSH_PROXY_MAX)))) {
      r = WSH_PROXY_ERROR;
    } else {
      if (!had)
        memcpy(m->proxy_hdr, buf, len);
      m->proxy_len = n;
      return len;
    }
  }
  if (r <= 0) {
    wsh_info("%s: closing: %s", c->req->remote_addr,
             r == WSH_PROXY_ERROR ? why : "PROXY header too long");
    c->dead = 1;
    return len;
  }
  if (!info.local)
    wsh_format_addr((struct sockaddr *)&info.src, c->req->remote_addr,
                    sizeof(c->req->remote_addr));
  c->await_proxy = 0;
  if (m) {
    free(m->proxy_hdr);
    m->proxy_hdr = NULL;
    m->proxy_len = 0;
  }
  return (size_t)r - had;
}

/* What a read brought, by state. */
static void process(websock_conn *c, uint8_t *buf, size_t len) {
  if (c->await_proxy) {
    size_t used = read_proxy_header(c, buf, len);
    buf += used;
    len -= used;
  }
  if (c->state == WSH_CONN_HANDSHAKE && !c->await_proxy && !c->dead) {
    size_t used = 0;
    websock_response resp;
    if (!c->req->subject_set && c->tp.ops->peer_subject)
      read_peer_subject(c);
    switch (wsh_http_feed(c, buf, len, &used, &resp)) {
    case WSH_HTTP_ANSWERED:
      conn_flush_and_close(c);
      break;
    case WSH_HTTP_UPGRADED:
      conn_open(c, &resp);
      wsh_response_free(&resp);
      break;
    default:
      break;
    }
    buf += used;
    len -= used;
  }
  if (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING)
    read_frames(c, buf, len); /* frames sent right behind the request too */
  /* FLUSHING, LINGER: what the peer sends now is dropped */
}

/* The rest of a big frame is read into the message itself, not through
 * the loop's read buffer and a copy (bench/PERFORMANCE.md, "Big
 * messages"): from 16 KiB to come, at most a read buffer's worth a read. */
#define DIRECT_MIN (16 * 1024)

/* Where the next read goes straight into the message being reassembled
 * (its size; 0: through the read buffer). Only while the connection is
 * open and holds no stashed input, which comes first. */
static size_t direct_room(websock_conn *c, uint8_t **at) {
  if (!c->dec || c->state != WSH_CONN_OPEN || c->read_paused ||
      (c->more && c->more->pend))
    return 0;
  return wsh_decoder_room(&c->dec->d, DIRECT_MIN, c->w->rbuf_size, at);
}

/* The bytes read (-1: none, 0: the peer's EOF); *full: as many as asked,
 * so the socket may hold more. */
static ssize_t do_read(websock_conn *c, bool *full) {
  wsh_loop *w = c->w;
  uint8_t *at = NULL;
  size_t room = direct_room(c, &at);
  size_t ask = room ? room : w->rbuf_size;
  ssize_t n = c->tp.ops->read(&c->tp, room ? at : w->rbuf, ask);
  *full = n == (ssize_t)ask;
  if (n > 0) {
    c->last_read_ms = wsh_now_ms();
    if (room)
      read_frames(c, NULL, (size_t)n);
    else
      process(c, w->rbuf, (size_t)n);
  } else if (n == 0) {
    c->peer_eof = 1;
  } else if (c->tp.answered && c->state == WSH_CONN_HANDSHAKE) {
    conn_linger(c); /* the transport answered (TLS: plain HTTP's 400) */
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    c->io_error = errno;
  }
  return n;
}

/* What the socket waits for besides what conn_events wants: edge-triggered
 * where a short read empties it (TCP), so that connections are served in
 * the order their input came. Level-triggered, epoll put each socket it
 * reported back at the end of its ready list, ahead of sockets that became
 * ready while the turn ran: one that was served and had its next message
 * in by the next wait was served again before them (bench/PERFORMANCE.md,
 * "Target 3: the order connections are served"). */
static unsigned conn_edge(const websock_conn *c) {
  return c->tp.ops->drains ? WSH_IO_EDGE : 0u;
}

/* Reading goes on: not paused, nor ended. */
static bool reads_on(const websock_conn *c) {
  return !c->read_paused && !c->peer_eof && !c->io_error && !c->dead;
}

/* The transport holds bytes the socket will not signal (TLS: the rest of a
 * record a full read buffer left inside). */
static bool transport_holds(websock_conn *c) {
  return c->tp.ops->pending && c->tp.ops->pending(&c->tp) > 0;
}

/* Reads, then what the transport still holds that the socket will not
 * signal (TLS: the rest of a record a full read buffer left inside). An
 * edge-triggered socket whose peer has shut its side (hup) is read on
 * after a short read, to its EOF: that came with the edge already taken.
 * One left with more in it (a read filled the buffer, or the rest of a
 * big frame asked for, or reading paused)
 * is undrained: conn_events has epoll look at it again, so that it comes
 * on the next turn, behind the sockets ready now (one buffer a turn each,
 * as level-triggered), or when reading resumes. */
static void read_all(websock_conn *c, bool hup) {
  ssize_t n;
  bool full;
  do
    n = do_read(c, &full);
  while ((hup && n > 0 && !full && reads_on(c)) ||
         (c->tp.ops->pending && reads_on(c) && transport_holds(c)));
  if ((c->io_want & WSH_IO_EDGE) && n > 0 && (full || c->read_paused))
    c->undrained = 1;
}

void wsh_conn_io(websock_conn *c, unsigned io) {
  bool hup = io & WSH_IO_HUP;
  io &= c->io_want; /* EPOLLHUP and EPOLLERR say both */
  if ((io & WSH_IO_READ) ||
      (c->tp.flip & WSH_TP_READ_WANTS_WRITE && (io & WSH_IO_WRITE)))
    read_all(c, hup);
  wsh_loop_mark(c->w, c);
  wsh_conn_settle_all(c->w);
}

/* ---- settling: write, wait, or go ---------------------------------------- */

/* The socket waits for what the state needs. */
static void conn_events(websock_conn *c) {
  unsigned want = 0;
  if (!c->read_paused && c->state != WSH_CONN_FLUSHING && !c->peer_eof)
    want |= c->tp.flip & WSH_TP_READ_WANTS_WRITE ? WSH_IO_WRITE : WSH_IO_READ;
  if (wsh_outq_unsent(c) > 0)
    want |= c->tp.flip & WSH_TP_WRITE_WANTS_READ ? WSH_IO_READ : WSH_IO_WRITE;
  if (want)
    want |= conn_edge(c);
  if (want == c->io_want && !(c->undrained && (want & WSH_IO_READ)))
    return;
  if (wsh_loop_io_set(c->w, c->tp.fd, c, c->io_want, want) != 0) {
    c->io_error = errno; /* it would never be woken: lost, when settled */
    wsh_loop_mark(c->w, c);
    return;
  }
  c->io_want = (uint8_t)want;
  if (want & WSH_IO_READ)
    c->undrained = 0; /* epoll looked at it again */
}

/* The connection is lost (reset, EOF without a close frame, write error). */
static void conn_lost(websock_conn *c) {
  note_close(c, WSH_CLOSED_LOST, WSH_CLOSE_ABNORMAL);
  if (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING) {
    const char *detail = c->io_error
                             ? strerror(c->io_error)
                             : "connection closed without a close frame";
    wsh_debug("conn %llu %s: %s", (unsigned long long)c->id, wsh_conn_peer(c).s,
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
            (unsigned long long)c->id, wsh_conn_peer(c).s, wsh_outq_unsent(c));
  conn_terminate(c, WEBSOCK_REASON_ERROR, WSH_CLOSE_ABNORMAL,
                 "connection closed without a close frame");
  conn_flush_and_close(c);
}

void wsh_conn_settle(websock_conn *c) {
  if (c->dead) {
    conn_free(c);
    return;
  }
  wsh_outq_write(c, c->state == WSH_CONN_FLUSHING);
  if (c->read_paused && c->state == WSH_CONN_OPEN &&
      wsh_outq_unsent(c) <= c->gen->conf->pause_reading_at / 2) {
    resume_reading(c);
    if (!c->read_paused && transport_holds(c))
      read_all(c, false); /* what TLS holds will not wake the socket */
    wsh_outq_write(c, c->state == WSH_CONN_FLUSHING);
  }
  /* A peer that half-closed still gets what is queued for it (FLUSHING goes
   * on; an open connection with output queued starts flushing) */
  if (c->peer_eof && !c->io_error && wsh_outq_unsent(c) > 0 &&
      (c->state == WSH_CONN_OPEN || c->state == WSH_CONN_CLOSING))
    peer_half_closed(c);
  if (c->io_error || (c->peer_eof && c->state != WSH_CONN_FLUSHING)) {
    conn_lost(c);
    return;
  }
  if (c->state == WSH_CONN_FLUSHING && wsh_outq_unsent(c) == 0) {
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
  if (c->pmd && c->pmd->arm && c->state == WSH_CONN_OPEN) {
    c->pmd->arm = false; /* dedicated streams in use: trim them when idle */
    arm_open_timer(c);
  }
  if (c->dec || c->more || c->out || c->pmd) /* else it holds nothing */
    account(c, conn_buffered(c));
  if (c->more && c->state == WSH_CONN_OPEN)
    wsh_conn_more_release(c); /* what it held is gone */
  conn_events(c);
}

/* Many connections settle at once (a publish's members, a turn's mail,
 * deadlines due together): each one's first write goes to the kernel in
 * the worker's batch (sendq.h), then each is settled as usual, its write
 * already done. Not a connection about to close (its last bytes leave
 * with the FIN) nor TLS. */
__attribute__((noinline)) static void settle_batched(wsh_loop *w) {
  for (size_t i = 0; i < w->ndirty; i++) {
    websock_conn *c = w->dirty[i];
    if (!c->dead && !c->io_error && c->state != WSH_CONN_FLUSHING &&
        c->tp.ops->fd_sends)
      wsh_outq_write_batched(c);
  }
  wsh_sendq_flush(w);
}

void wsh_conn_settle_all(wsh_loop *w) {
  if (__builtin_expect(w->writers >= WSH_SENDQ_MIN, 0) && wsh_sendq_ready(w))
    settle_batched(w);
  while (w->ndirty) {
    websock_conn *c = w->dirty[--w->ndirty];
    c->dirty = 0;
    wsh_conn_settle(c); /* may free c */
  }
  w->obuf_used = 0; /* every staged run was sent or moved */
  w->writers = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  websock_conn *c = arg;
  wsh_loop *w = c->w;
  (void)fd;
  (void)what;
  switch (c->state) {
  case WSH_CONN_HANDSHAKE:
    if (c->tp.ops->handshaking && c->tp.ops->handshaking(&c->tp)) {
      c->tp.ops->timed_out(&c->tp); /* TLS: nothing can be said yet */
      c->dead = 1;
      break;
    }
    wsh_info("%s: handshake timeout", wsh_conn_peer(c).s);
    wsh_http_refuse(c, 408, NULL, "(handshake timeout)");
    conn_flush_and_close(c);
    break;
  case WSH_CONN_OPEN: /* its deadlines are the worker's (arm_open_timer) */
    break;
  case WSH_CONN_CLOSING:
    wsh_info("conn %llu %s: no close frame from the peer in time",
             (unsigned long long)c->id, wsh_conn_peer(c).s);
    c->dead = 1;
    break;
  default: /* FLUSHING or LINGER past the close timeout */
    c->dead = 1;
  }
  wsh_loop_mark(w, c);
  wsh_conn_settle_all(w);
}

/* ---- what the plugin API does on a connection ------------------------------
 */

/* May one more message be queued? Only what is already unsent counts: a push
 * is refused (the route's policy) when the queue is over max_unsent, never
 * for its own size, so one message of any size can always go out to a client
 * that reads, and a connection holds at most max_unsent plus one message. */
static int check_room(websock_conn *c) {
  const wsh_route_conf *rc = c->gen->conf;
  if (wsh_outq_unsent(c) <= rc->max_unsent)
    return 0;
  if (rc->on_max_unsent == WSH_FULL_DROP)
    return WEBSOCK_EFULL;
  c->overflow = 1;
  return WEBSOCK_ECLOSED;
}

int wsh_conn_push_as(websock_conn *c, uint8_t opcode, const void *data,
                     size_t len, bool plain) {
  if (c->overflow)
    return WEBSOCK_ECLOSED;
  int rc = check_room(c);
  if (rc)
    return rc;
  if (opcode < WEBSOCK_OP_CLOSE) {
    wsh_stat_add(&c->w->stats.msgs_out, 1);
    wsh_stat_add(&c->w->stats.bytes_out, len);
    if (c->logs) {
      c->log->msgs_out++;
      c->log->bytes_out += len;
    }
  }
  rc = wsh_compress_send(c, opcode, data, len, plain);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  return wsh_conn_send_frame(c, opcode, data, len);
}

int wsh_conn_push(websock_conn *c, uint8_t opcode, const void *data,
                  size_t len) {
  return wsh_conn_push_as(c, opcode, data, len, false);
}

void wsh_conn_info(websock_conn *c, int kind, int64_t timer_id,
                   const char *topic, const uint8_t *data, size_t len) {
  if (c->state != WSH_CONN_OPEN || !c->plugin_open ||
      !wsh_conn_handler(c)->handle_info)
    return;
  wsh_loop *w = c->w;
  w->info_conn = c;
  w->info_kind = kind;
  w->info_timer = timer_id;
  w->info_topic = topic;
  uint64_t t0 = wsh_callback_enter(c, "handle_info");
  int r = wsh_conn_handler(c)->handle_info(c, &c->state_ptr, data, len);
  wsh_callback_leave(c, "handle_info", t0);
  w->info_conn = NULL;
  after_callback(c, r, "handle_info");
  wsh_loop_mark(c->w, c);
}

static void unref_shared(const void *data, size_t len, void *arg) {
  (void)data;
  (void)len;
  wsh_shared_unref(arg);
}

static void hold_shared(void *arg) {
  wsh_shared_ref(arg);
}

void wsh_conn_push_shared(websock_conn *c, wsh_shared *sh, bool batch) {
  if (c->state != WSH_CONN_OPEN || c->overflow)
    return;
  if (check_room(c) != 0) {
    if (c->overflow) {
      wsh_sendq_flush(c->w); /* before its closing runs any callback */
      conn_overflow(c);
    }
    return;
  }
  wsh_stat_add(&c->w->stats.msgs_out, 1);
  wsh_stat_add(&c->w->stats.bytes_out, sh->len);
  if (c->logs) {
    c->log->msgs_out++;
    c->log->bytes_out += sh->len;
  }
  if (c->pmd_on) /* a plain frame otherwise: no call per subscriber */
    sh = wsh_compress_shared(c, sh);
  if (batch && c->tp.ops->fd_sends && !c->dirty && wsh_outq_unsent(c) == 0) {
    wsh_sendq_entry e = {
        c, sh->data, sh->len, wsh_outq_ref_sent, unref_shared, hold_shared, sh};
    wsh_loop_mark(c->w, c); /* the rest of this turn's output waits */
    wsh_sendq_add(c->w, &e);
    return;
  }
  /* Written at once if it is c's first output: a reference is taken only
   * when the queue holds the bytes (unref_shared drops it once written; not
   * before this returns, as the queue is written when c is settled). */
  if (wsh_outq_add_ref(c, sh->data, sh->len, unref_shared, sh) == 1)
    wsh_shared_ref(sh);
  maybe_pause_reading(c);
}

/* A websock_send_after() timer is due: handle_info with its message. */
static void timer_due(websock_conn *c, int64_t id, const uint8_t *data,
                      size_t len) {
  wsh_loop *w = c->w;
  wsh_conn_info(c, WEBSOCK_INFO_TIMER, id, NULL, data, len);
  wsh_conn_settle_all(w);
}

int64_t wsh_conn_send_after(websock_conn *c, uint64_t ms, const void *data,
                            size_t len) {
  return wsh_msgs_send_after(c, ms, data, len, timer_due);
}

/* ---- life ---------------------------------------------------------------- */

int wsh_conn_new(wsh_loop *w, int fd, const struct sockaddr *sa, socklen_t len,
                 int kind) {
  (void)len;
  wsh_transport tp;
  if (kind != WSH_LISTEN_TLS) {
    wsh_tcp_transport(&tp, fd);
  } else {
    int rc = wsh_tls_transport(&tp, fd, w->env->tls, &w->tls_stats);
    if (rc != 0) {
      wsh_error("TLS connection: %s", websock_strerror(rc));
      return rc; /* the socket is closed */
    }
  }
  /* the closing line is written at info: below that level (fixed at
   * start-up) a connection does not carry what it would say */
  int logs = w->env->cfg->log_connections && wsh_log_level() >= WSH_LOG_INFO;
  websock_conn *c = calloc(1, sizeof(*c) + (logs ? sizeof(c->log[0]) : 0));
  if (!c)
    goto out_close;
  c->logs = logs != 0;
  c->w = w;
  c->tp = tp;
  c->id = ++w->next_id * 1000 + w->index;
  c->await_proxy = kind == WSH_LISTEN_PROXY;
  char peer[64];
  wsh_format_addr(sa, peer, sizeof(peer));
  wsh_stat_add(&w->stats.accepted, 1);
  if (wsh_request_new(&c->req, wsh_conn_cfg(c)->max_header_size) != 0)
    goto out_free;
  snprintf(c->req->remote_addr, sizeof(c->req->remote_addr), "%s", peer);
  c->req->tls = kind == WSH_LISTEN_TLS;
  unsigned want = WSH_IO_READ | conn_edge(c);
  if (wsh_loop_io_set(w, c->tp.fd, c, 0, want) != 0)
    goto out_free_req;
  c->io_want = (uint8_t)want;
  c->next = w->conns;
  if (w->conns)
    w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  set_deadline(c, wsh_conn_cfg(c)->handshake_timeout_ms);
  return 0;
out_free_req:
  wsh_request_free(c->req);
out_free:
  free(c);
out_close:
  tp.ops->close(&tp);
  return WEBSOCK_ENOMEM;
}

void wsh_conn_shutdown(websock_conn *c) {
  wsh_loop_mark(c->w, c);
  if (c->state == WSH_CONN_HANDSHAKE && c->tp.ops->handshaking &&
      c->tp.ops->handshaking(&c->tp)) {
    c->dead = 1; /* mid TLS handshake: nothing can be said yet */
    return;
  }
  if (c->state == WSH_CONN_HANDSHAKE) {
    wsh_http_refuse(c, 503, "Shutting down.\n", "(shutting down)");
    conn_flush_and_close(c);
    return;
  }
  if (c->state == WSH_CONN_OPEN)
    conn_close(c, WSH_CLOSE_GOING_AWAY, "server shutting down",
               WEBSOCK_REASON_SHUTDOWN, NULL);
}

void wsh_conn_restart(websock_conn *c) {
  wsh_loop_mark(c->w, c);
  if (c->state == WSH_CONN_OPEN)
    conn_close(c, WSH_CLOSE_RESTART, "service restart", WEBSOCK_REASON_SHUTDOWN,
               NULL);
}

/* ---- live code upgrade (reload = handoff) --------------------------------
 *
 * The switch happens between two callbacks of the connection, on its worker:
 * whatever is queued for it (frames read but stashed, mail, timers, topic
 * deliveries) is simply dispatched to the new code afterwards. The exported
 * bytes live only between export and import, at most one connection's at a
 * time per worker, bounded by the new route's max_message_size and counted
 * in the host's memory budget meanwhile. */

/* A websock_close*() made in export or import has no effect. */
static void forget_stop(websock_conn *c) {
  c->stop_kind = WSH_STOP_NORMAL;
  if (c->more) {
    c->more->stop_code = 0;
    free(c->more->stop_text);
    c->more->stop_text = NULL;
  }
}

/* c now belongs to next: its reference, its place in the counts. */
static void move_generation(websock_conn *c, wsh_generation *next) {
  wsh_generation *old = c->gen;
  wsh_generation_acquire(next);
  if (c->counted) {
    atomic_fetch_add(&next->conns, 1);
    atomic_fetch_sub(&old->conns, 1);
  }
  c->gen = next;
  if (c->dec) /* the loop's is set up for the generation at each read */
    c->dec->d.max_message = next->conf->max_message_size;
  if (c->state == WSH_CONN_OPEN) { /* the new route's idle timeout and pings */
    if (next->conf->ping_interval_ms && !old->conf->ping_interval_ms)
      set_ping_at(c, wsh_now_ms() + next->conf->ping_interval_ms);
    arm_open_timer(c);
  }
  wsh_generation_release(old); /* the caller holds one: never the last */
}

/* export_state or import_state said no: close as `reload = restart` does;
 * terminate() is the current generation's, with the state it holds. */
static int handoff_failed(websock_conn *c, const char *what, int r) {
  wsh_warn("conn %llu %s: %s() of plugin %s (generation %u) returned %d: "
           "closing with 1012",
           (unsigned long long)c->id, c->gen->conf->path, what,
           wsh_conn_handler(c)->name ? wsh_conn_handler(c)->name : "?",
           c->gen->id, r);
  forget_stop(c);
  if (c->state == WSH_CONN_OPEN)
    conn_close(c, WSH_CLOSE_RESTART, "service restart", WEBSOCK_REASON_SHUTDOWN,
               NULL);
  return WEBSOCK_ECLOSED;
}

int wsh_conn_handoff(websock_conn *c, wsh_generation *next) {
  if (c->state != WSH_CONN_OPEN || !c->plugin_open || c->overflow ||
      !wsh_conn_handler(c)->export_state || !next->plugin->h.import_state)
    return 0;
  wsh_loop_mark(c->w, c);
  websock_buf buf;
  wsh_statebuf_init(&buf, next->conf->max_message_size);
  uint64_t t0 = wsh_callback_enter(c, "export_state");
  int r = wsh_conn_handler(c)->export_state(c, c->state_ptr, &buf);
  wsh_callback_leave(c, "export_state", t0);
  if (r != 0) {
    r = handoff_failed(c, "export_state", r);
    goto out_free_buf;
  }
  account(c, conn_buffered(c) + buf.cap);
  forget_stop(c);
  c->state_ptr = NULL; /* the old generation let go of it */
  unsigned from = c->gen->id;
  move_generation(c, next);
  void *state = NULL;
  t0 = wsh_callback_enter(c, "import_state");
  r = wsh_conn_handler(c)->import_state(c, buf.data, buf.len, &state);
  wsh_callback_leave(c, "import_state", t0);
  c->state_ptr = state;
  if (r != 0) {
    r = handoff_failed(c, "import_state", r);
    goto out_free_buf;
  }
  wsh_debug("conn %llu %s: handed off from generation %u to %u (%zu bytes "
            "of state)",
            (unsigned long long)c->id, c->gen->conf->path, from, c->gen->id,
            buf.len);
  forget_stop(c);
  after_callback(c, WEBSOCK_OK, "import_state");
  r = 1;
out_free_buf:
  wsh_statebuf_free(&buf);
  account(c, conn_buffered(c));
  return r;
}

/* Closes c with 1013 and releases what it buffers at once. Its partial
 * input and stash go; a connection with output still queued (a client that
 * does not read it) loses it too, and its socket is closed without a close
 * frame, which would have waited behind that output (and could not follow
 * a frame cut in the middle). */
static void conn_shed(websock_conn *c) {
  static const char detail[] = "shed: host over max_buffered_memory";
  wsh_conn_env *env = c->w->env;
  wsh_info("conn %llu %s: host over max_buffered_memory (%llu of %llu bytes "
           "buffered): closing this connection, holding %zu, with 1013",
           (unsigned long long)c->id, wsh_conn_peer(c).s,
           (unsigned long long)atomic_load(&env->buffered),
           (unsigned long long)env->cfg->max_buffered_memory, held(c));
  wsh_stat_add(&c->w->stats.shed, 1);
  note_close(c, WSH_CLOSED_BY_SERVER, WSH_CLOSE_TRY_AGAIN);
  int queued = c->out && evbuffer_get_length(c->out) > 0;
  if (c->state == WSH_CONN_OPEN && !queued) {
    conn_close(c, WSH_CLOSE_TRY_AGAIN, "try again later", WEBSOCK_REASON_ERROR,
               detail);
    conn_flush_and_close(c); /* what the peer sends now is dropped */
  } else {
    conn_terminate(c, WEBSOCK_REASON_ERROR, WSH_CLOSE_TRY_AGAIN, detail);
    conn_leave(c);
    wsh_outq_free(c);
    c->dead = 1;
  }
  dec_drop(c);
  if (c->more) {
    free(c->more->pend);
    c->more->pend = NULL;
    c->more->npend = 0;
  }
  account(c, conn_buffered(c));
  wsh_loop_mark(c->w, c);
}

void wsh_conn_shed(wsh_loop *w) {
  wsh_conn_env *env = w->env;
  uint64_t budget = env->cfg->max_buffered_memory;
  size_t share = (size_t)(budget / (env->nworkers ? env->nworkers : 1));
  while (atomic_load(&env->buffered) > budget && w->buffered > share) {
    websock_conn *big = NULL;
    for (websock_conn *c = w->conns; c; c = c->next)
      if (!c->dead && held(c) > (big ? held(big) : 0))
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
