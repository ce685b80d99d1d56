/*
 * websock.h - the one header a websockd plugin author needs.
 *
 * A plugin is a shared object that exports one data symbol,
 * `websock_handler_v1`, a const table of callbacks (struct websock_handler).
 * The websockd host does the HTTP upgrade and all RFC 6455 framing, and routes
 * each connection's whole lifecycle into the plugin its route names:
 *
 *   upgrade (optional) -> init (optional) -> handle_in / handle_control /
 *   handle_info ... -> terminate (optional, exactly once after init said OK)
 *
 * (On a `reload = handoff` the old build's export_state and the new build's
 * import_state move an open connection, state included, to the new code in
 * the middle of that sequence: see struct websock_handler.)
 *
 * Rules that hold everywhere:
 *  - Pointers handed to a callback are valid for that call only; copy what you
 *    keep. Functions that take data from you (websock_push, ...) copy it.
 *  - Callbacks of one connection never run concurrently: a connection lives on
 *    one worker thread. Callbacks of different connections may run at the same
 *    time on different workers, so plugin-wide data needs its own locking.
 *  - A callback must not block: it runs on the worker's event loop.
 *  - Functions taking a websock_conn are callable only from inside a callback
 *    of that same connection, unless their comment says otherwise.
 *
 * Build a plugin with `pkg-config --cflags websock` or CMake's
 * `find_package(WebSock)` + `target_link_libraries(x PRIVATE WebSock::plugin)`.
 * The websock_* functions are provided by the host process at load time; do
 * not link anything for them. A plugin that uses a function the host lacks
 * fails to load (the host opens plugins with RTLD_NOW), never mid-connection.
 * To fail the build instead, link once more with -Wl,-z,defs against the
 * SDK's stubs of these functions, into a throw-away output: CMake's
 * websock_add_plugin(name LINK_CHECK ...) or `pkg-config --libs
 * websock-check` (see the SDK's README.md, "The link-time check").
 *
 * Before the host opens a new or changed .so, a short-lived child process
 * (websockd itself, re-executed) opens it first and checks this table, so a
 * file that crashes or hangs while being mapped is refused instead of taking
 * the host down. Your constructors (__attribute__((constructor)), C++ static
 * initialisers) therefore run twice, once in that child, which then exits
 * without running destructors: keep them free of side effects; put set-up in
 * load(), which runs in the host only.
 */
#ifndef WEBSOCK_H
#define WEBSOCK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. The host refuses a table whose
 * abi_version it does not know. */
#define WEBSOCK_ABI_VERSION 1

/* Marks the one symbol a plugin exports (plugins build with
 * -fvisibility=hidden). */
#if defined(__GNUC__)
#define WEBSOCK_EXPORT __attribute__((visibility("default")))
#else
#define WEBSOCK_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* Every websock_* function that can fail returns 0 or one of these negative
 * codes; websock_strerror() names them. */
#define WEBSOCK_ERRNO_MAP(XX)                                                  \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(ECLOSED, -3, "connection is closing or closed")                           \
  XX(ECONTEXT, -4, "not allowed outside this connection's callbacks")          \
  XX(EFULL, -5, "backpressure limit reached, message dropped")                 \
  XX(ENOENT, -6, "no such connection, option or header")                       \
  XX(ETOOBIG, -7, "message too big")

typedef enum websock_errno {
#define WEBSOCK_ERRNO_ENUM_(name, value, text) WEBSOCK_##name = (value),
  WEBSOCK_ERRNO_MAP(WEBSOCK_ERRNO_ENUM_)
#undef WEBSOCK_ERRNO_ENUM_
} websock_errno;

/* A static, human-readable string for a code above (or "unknown error").
 * Never NULL; do not free. */
const char *websock_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Types                                                                     */
/* ------------------------------------------------------------------------ */

/* One WebSocket connection. Opaque; owned by the host. Valid during the
 * callbacks of that connection only: do not keep it past terminate. */
typedef struct websock_conn websock_conn;

/* The HTTP upgrade request. Opaque; owned by the host; valid during upgrade()
 * and init() only. */
typedef struct websock_request websock_request;

/* The response to the upgrade request, filled in by upgrade(). Opaque. */
typedef struct websock_response websock_response;

/* A route's [options] section, handed to load() and readable from any
 * callback through websock_conn_option(). Opaque; owned by the host. */
typedef struct websock_options websock_options;

/* The bytes export_state() writes for a live code upgrade (reload =
 * handoff), appended with websock_buf_append(). Opaque; owned by the host;
 * valid during that export_state() call only. */
typedef struct websock_buf websock_buf;

/* RFC 6455 opcodes. */
typedef enum websock_opcode {
  WEBSOCK_OP_CONTINUATION = 0x0,
  WEBSOCK_OP_TEXT = 0x1,
  WEBSOCK_OP_BINARY = 0x2,
  WEBSOCK_OP_CLOSE = 0x8,
  WEBSOCK_OP_PING = 0x9,
  WEBSOCK_OP_PONG = 0xA
} websock_opcode;

/* What a callback returns.
 *
 * A callback may also return a negative websock_* error as it is, say
 * `return websock_push(conn, ...);`:
 *  - WEBSOCK_EFULL: the connection carries on, as for WEBSOCK_OK (the
 *    route's `drop` policy already dropped the message);
 *  - WEBSOCK_ECLOSED: the close already under way stands (1008 when a push
 *    passed `max_unsent` under the `close` policy); with none under way it
 *    is a WEBSOCK_STOP;
 *  - any other websock_errno code (WEBSOCK_EINVAL, WEBSOCK_ENOMEM, ...): an
 *    error stop, as after websock_close_error(): close 1011, and terminate()
 *    gets WEBSOCK_REASON_ERROR with the text "callback returned
 *    WEBSOCK_ENOMEM (out of memory)" (the code's websock_strerror()).
 * Any other value is an invalid result: an error stop (1011, detail
 * "callback returned an invalid result"). */
typedef enum websock_result {
  WEBSOCK_OK = 0,  /* keep the connection open ({:ok, state}) */
  WEBSOCK_STOP = 1 /* close it ({:stop, ...}); see websock_close() */
} websock_result;

/* Why a connection ended, as terminate() is told (WebSock's terminate/2). */
typedef enum websock_reason_kind {
  WEBSOCK_REASON_NORMAL = 0,   /* the plugin returned WEBSOCK_STOP (:normal) */
  WEBSOCK_REASON_REMOTE = 1,   /* the client closed (:remote) */
  WEBSOCK_REASON_SHUTDOWN = 2, /* host shutdown (1001) or restart (1012) */
  WEBSOCK_REASON_TIMEOUT = 3,  /* idle or close-handshake timeout */
  WEBSOCK_REASON_ERROR = 4     /* protocol, I/O or plugin error ({:error, _}) */
} websock_reason_kind;

typedef struct websock_reason {
  websock_reason_kind kind;
  /* The close code: for REMOTE the peer's (1005 if its close frame had
   * none); for ERROR the code the host sent (1002, 1007, 1009, 1011, 1008,
   * or 1013 when the host sheds the connection over its memory budget,
   * text "shed: host over max_buffered_memory"),
   * or 1006 if the TCP connection ended without a close frame (a reset, an
   * EOF; text "connection closed without a close frame"). A client that
   * half-closes (FIN) with output still queued for it is told this at its
   * FIN, and the host still writes what was queued before terminate()
   * (within the close timeout), then closes; for the other kinds the code the
   * host sent (1000 or the plugin's, 1001, 1012). */
  uint16_t code;
  /* REMOTE: the peer's close reason (UTF-8, may be empty). ERROR: a detail
   * string such as "invalid UTF-8 in text message". Otherwise empty. Never
   * NULL; NUL-terminated; valid during terminate() only. */
  const char *text;
} websock_reason;

/* Close codes (RFC 6455 section 7.4.1 and the IANA registry), for
 * websock_close() and for reading websock_reason.code. A server may send
 * NORMAL, GOING_AWAY, UNSUPPORTED_DATA, INVALID_DATA, POLICY, TOO_BIG,
 * MANDATORY_EXTENSION, INTERNAL_ERROR, SERVICE_RESTART, TRY_AGAIN_LATER,
 * BAD_GATEWAY and 3000-4999 (websock_close() refuses the others).
 * PROTOCOL_ERROR is the host's alone; NO_STATUS (a close frame without a
 * code) and ABNORMAL (no close frame at all) are never on the wire: they
 * only appear in websock_reason. */
#define WEBSOCK_CLOSE_NORMAL 1000
#define WEBSOCK_CLOSE_GOING_AWAY 1001
#define WEBSOCK_CLOSE_PROTOCOL_ERROR 1002
#define WEBSOCK_CLOSE_UNSUPPORTED_DATA 1003
#define WEBSOCK_CLOSE_NO_STATUS 1005
#define WEBSOCK_CLOSE_ABNORMAL 1006
#define WEBSOCK_CLOSE_INVALID_DATA 1007
#define WEBSOCK_CLOSE_POLICY 1008
#define WEBSOCK_CLOSE_TOO_BIG 1009
#define WEBSOCK_CLOSE_MANDATORY_EXTENSION 1010
#define WEBSOCK_CLOSE_INTERNAL_ERROR 1011
#define WEBSOCK_CLOSE_SERVICE_RESTART 1012
#define WEBSOCK_CLOSE_TRY_AGAIN_LATER 1013
#define WEBSOCK_CLOSE_BAD_GATEWAY 1014

/* websock_log() levels. */
#define WEBSOCK_LOG_ERROR 0
#define WEBSOCK_LOG_WARN 1
#define WEBSOCK_LOG_INFO 2
#define WEBSOCK_LOG_DEBUG 3

/* Where the message handle_info() is running for came from
 * (websock_info_source()). */
typedef enum websock_info_kind {
  WEBSOCK_INFO_NONE = 0,   /* not inside handle_info() */
  WEBSOCK_INFO_SEND = 1,   /* websock_send(), from this host or another */
  WEBSOCK_INFO_TIMER = 2,  /* a websock_send_after() timer */
  WEBSOCK_INFO_PUBLISH = 3 /* websock_publish(), from this host or another */
} websock_info_kind;

/* ------------------------------------------------------------------------ */
/* The plugin table                                                          */
/* ------------------------------------------------------------------------ */

/*
 * Export exactly one of these, named websock_handler_v1:
 *
 *   WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
 *       .abi_version = WEBSOCK_ABI_VERSION,
 *       .struct_size = sizeof(struct websock_handler),
 *       .name = "echo", .version = "1.0.0",
 *       .handle_in = echo_in,
 *   };
 *
 * Fields are only ever appended. The host treats a field that lies beyond
 * the plugin's struct_size as absent, so a plugin built against an older
 * header keeps working. Only handle_in is required.
 */
struct websock_handler {
  /* WEBSOCK_ABI_VERSION as compiled. */
  uint32_t abi_version;
  /* sizeof(struct websock_handler) as compiled. */
  uint32_t struct_size;
  /* The plugin's name and version, for logs and metrics. Static strings. */
  const char *name;
  const char *version;

  /* Optional. Called once per loaded generation of the plugin, before any
   * connection, with the route's [options], in the host process only (the
   * probe child does not call it). Return 0 to accept, non-zero to refuse
   * (the route is then not served, and the host logs why). `options` stays
   * valid until unload() returns. load() may hand a pointer to every
   * callback of this generation with websock_options_set_context().
   *
   * Each generation is a private copy of the .so (a reload opens the new
   * file under a new name), so file-scope and static variables belong to
   * one generation: a reload starts them afresh, while the old generation's
   * connections keep theirs until they close. */
  int (*load)(const websock_options *options);

  /* Optional. Called once when the generation's last connection is gone and
   * it is being unloaded (or the host exits). */
  void (*unload)(void);

  /* Optional. Sees the upgrade request before the host answers 101. Return 0
   * to accept, or an HTTP status from 400 to 599 to refuse (say 401, after
   * websock_response_add_header(resp, "WWW-Authenticate", ...)). May pick a
   * subprotocol, add response headers, and hand a value on to init(). Runs
   * on the worker thread that will own the connection; must not block. */
  int (*upgrade)(const websock_request *req, websock_response *resp);

  /* Optional. The connection is open (101 queued). Set *state to your
   * per-connection state (it starts as the value upgrade() handed on, or
   * NULL). May push; may return WEBSOCK_STOP. websock_conn_request(conn)
   * is valid here. When init is NULL the connection opens with the value
   * upgrade() handed on (or NULL) as its state. */
  int (*init)(websock_conn *conn, void **state);

  /* Required. One whole data message, reassembled from its fragments;
   * opcode is WEBSOCK_OP_TEXT (data already validated as UTF-8) or
   * WEBSOCK_OP_BINARY. `data` is valid for this call only. *state may be
   * replaced. */
  int (*handle_in)(websock_conn *conn, void **state, websock_opcode opcode,
                   const uint8_t *data, size_t len);

  /* Optional, informational: a ping or pong from the client (opcode
   * WEBSOCK_OP_PING or WEBSOCK_OP_PONG), at most 125 bytes. The host has
   * already answered a ping with a pong carrying the same payload. */
  int (*handle_control)(websock_conn *conn, void **state, websock_opcode opcode,
                        const uint8_t *data, size_t len);

  /* Optional: a message sent to this connection from elsewhere:
   * websock_send() from any thread, a timer of websock_send_after(), or a
   * websock_publish() to a topic the connection subscribed to. Runs on the
   * connection's own worker; `data` is valid for this call only.
   * websock_info_source() tells which of them it is. */
  int (*handle_info)(websock_conn *conn, void **state, const uint8_t *data,
                     size_t len);

  /* Optional. Called exactly once for every connection whose init returned
   * WEBSOCK_OK (or that had no init), whatever ended it. Free your state here.
   * After a live code upgrade (export_state/import_state below) it is the
   * generation holding the connection at its end that is called, once.
   * The connection is closing: websock_push, websock_send_after,
   * websock_subscribe and websock_close* return WEBSOCK_ECLOSED. Still
   * allowed: websock_unsubscribe, websock_cancel_timer (both pointless:
   * topics and timers go with the connection), the websock_conn_* getters,
   * websock_log, and the any-thread functions (websock_send,
   * websock_publish, websock_broadcast through websock_conn_host(conn)). */
  void (*terminate)(websock_conn *conn, void *state,
                    const websock_reason *reason);

  /* ---- Appended fields (a plugin built before them leaves them out: its
   * struct_size ends earlier, and the host reads them as NULL). ---- */

  /* Optional. The keys this plugin's [options] section may have, ending
   * with NULL: { "greeting", "max_rooms", NULL }. When set, the host refuses
   * a route whose [options] has any other key (a typo), naming the .conf
   * file and line, at start-up, on SIGHUP (the old generation keeps
   * serving) and under `websockd -t`. NULL: any key is accepted. */
  const char *const *option_keys;

  /* Optional. Called with the context load() set through
   * websock_options_set_context() (only if it set a non-NULL one), once,
   * after unload() when the generation goes (or, if load() refused the
   * route, right after load() returned). Free the context here. */
  void (*unload_context)(void *context);
  /* ---- Live code upgrade (reload = handoff); appended in ABI 1 --------- */
  /*
   * Optional, as a pair. When a route whose new .conf says `reload =
   * handoff` gets a new generation, each open connection of the replaced
   * generation moves to the new one without closing: on the connection's
   * own worker thread, between two of its callbacks, the OLD generation's
   * export_state() writes the state as bytes, then the NEW generation's
   * import_state() reads them and sets *state, and from then on the new
   * code gets the connection's callbacks. Nothing queued for it is lost or
   * reordered: frames already read, websock_send() and topic mail, timers
   * (websock_send_after ids stay valid) and topic subscriptions all carry
   * on to the new code. A connection already closing is not moved: it ends
   * on the old generation. Without an export_state in the old generation or
   * an import_state in the new one (or when the plugin's name or the
   * route's compression settings changed), the reload drains instead: old
   * connections stay on the old code.
   *
   * export_state: append the state to `out` with websock_buf_append()
   * (at most the new route's max_message_size bytes in all; the host frees
   * them). Return 0 on success; the old generation then no longer owns the
   * connection: free `state` here, as terminate() would (terminate() is NOT
   * called for a connection handed off). Return non-zero to refuse: the
   * connection closes with 1012 and the old generation's terminate() gets
   * `state` (WEBSOCK_REASON_SHUTDOWN, code 1012).
   *
   * import_state: `data` (valid for this call only) is what export_state
   * wrote, perhaps by an older build of the plugin: check it. Set *state
   * (it starts as NULL) and return 0; or return non-zero: the connection
   * closes with 1012 and the NEW generation's terminate() gets whatever
   * *state holds then (free partial work there, or before returning).
   * Both may push, set timers and subscribe (the connection is open), and
   * run like any callback of the connection; websock_close*() in them has
   * no effect. The static data of the old generation is not carried: each
   * generation is a private copy of the .so. Export bytes, not pointers:
   * the strings websock_conn_option() and websock_conn_route() returned to
   * the old code belong to the old generation and go with it (ask again in
   * the new code; the route's settings, [options] included, are the new
   * .conf's from import_state on).
   */
  int (*export_state)(websock_conn *conn, void *state, websock_buf *out);
  int (*import_state)(websock_conn *conn, const uint8_t *data, size_t len,
                      void **state);
};

/* The symbol name the host looks up. */
#define WEBSOCK_HANDLER_SYMBOL "websock_handler_v1"

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */
/* ------------------------------------------------------------------------ */

/* Queues one whole message for the client ({:push, ...}). Copies `data`.
 * Messages go out in the order pushed, once the current callback returns.
 * opcode: WEBSOCK_OP_TEXT (data must be UTF-8: the host sends it as it is,
 * and a strict client fails the connection with 1007 otherwise),
 * WEBSOCK_OP_BINARY, or
 * WEBSOCK_OP_PING / WEBSOCK_OP_PONG (at most 125 bytes).
 * Returns 0; WEBSOCK_EINVAL for another opcode or an oversized control frame;
 * WEBSOCK_ECLOSED once the connection is closing (for example after the
 * callback decided to stop, or inside terminate); WEBSOCK_ECONTEXT from
 * outside this connection's callbacks; past the route's `max_unsent`
 * (counted before this message: see websock_unsent_bytes) WEBSOCK_ECLOSED
 * under the `close` policy or WEBSOCK_EFULL under `drop`. A message of any
 * size is accepted while what is already unsent is within the limit. */
int websock_push(websock_conn *conn, websock_opcode opcode, const void *data,
                 size_t len);

/* Sets how the connection closes when the current callback returns
 * WEBSOCK_STOP ({:stop, :normal, {code, text}, ...}). Without it a stop
 * closes with 1000. Messages pushed before the stop go out before the close
 * frame. `code` must be one a server may send: 1000, 1001, 1003, 1007, 1008,
 * 1009, 1010, 1011, 1012, 1013, 1014 or 3000-4999; `text` may be NULL and is
 * cut at 123 bytes (on a UTF-8 boundary). terminate() is told
 * WEBSOCK_REASON_NORMAL with this code. If the callback returns WEBSOCK_OK
 * instead, nothing happens. Returns 0, WEBSOCK_EINVAL (a code a server may
 * not send), WEBSOCK_ECLOSED (already closing), WEBSOCK_ECONTEXT (outside
 * this connection's callbacks) or WEBSOCK_ENOMEM. */
int websock_close(websock_conn *conn, uint16_t code, const char *text);

/* Marks the coming WEBSOCK_STOP as an error stop: the connection closes with
 * 1011 and terminate() is told WEBSOCK_REASON_ERROR with `detail` (copied,
 * may be NULL). Returns 0, WEBSOCK_ECLOSED, WEBSOCK_ECONTEXT or
 * WEBSOCK_ENOMEM. */
int websock_close_error(websock_conn *conn, const char *detail);

/* Marks the coming WEBSOCK_STOP as a restart ({:shutdown, :restart}): the
 * connection closes with 1012 Service Restart so the client knows to
 * reconnect, and terminate() is told WEBSOCK_REASON_SHUTDOWN, code 1012.
 * Returns 0, WEBSOCK_ECLOSED or WEBSOCK_ECONTEXT. */
int websock_close_restart(websock_conn *conn);

/* Bytes queued for this client and not yet written to the socket.
 *
 * Backpressure: each route limits the unsent bytes of a connection
 * (`max_unsent`, default 4 MiB). The limit applies to what is already
 * queued, not to the message being pushed: a push is accepted while the
 * unsent bytes are at most `max_unsent`, whatever its own size, so one
 * message of any size can always go out to a client that reads, and a
 * connection holds at most `max_unsent` plus one message. A push made while
 * the unsent bytes are over the limit follows the
 * route's `on_max_unsent` policy: `close` (the default) refuses it with
 * WEBSOCK_ECLOSED and closes the connection with 1008 once the callback
 * returns (terminate: WEBSOCK_REASON_ERROR); `drop` refuses it with
 * WEBSOCK_EFULL and the connection stays open. Reading from a client pauses
 * while its own unsent bytes are above `pause_reading_at` (default 1 MiB). */
size_t websock_unsent_bytes(const websock_conn *conn);

/* websock_push(), except that the message is never compressed, even when
 * the connection negotiated permessage-deflate (for data already
 * compressed, such as images, where deflate would only cost CPU). Same
 * arguments, rules and results as websock_push(). */
int websock_push_uncompressed(websock_conn *conn, websock_opcode opcode,
                              const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Messages, timers and topics (the handle_info sources)                     */
/* ------------------------------------------------------------------------ */

/* The host process, for calls that have no connection at hand (a thread the
 * plugin started, say). Opaque; valid until the plugin's unload() returns. */
typedef struct websock_host websock_host;

/* A small copyable reference to a connection, like an Erlang pid. Copy it
 * anywhere, keep it as long as you like: it never dangles. Treat the fields
 * as private. */
typedef struct websock_ref {
  const websock_host *host_;
  uint64_t id_;
} websock_ref;

/* This connection's reference. */
websock_ref websock_self(const websock_conn *conn);

/* The host, from a connection or from load()'s options. */
websock_host *websock_conn_host(const websock_conn *conn);
websock_host *websock_options_host(const websock_options *options);

/* Sends `data` (copied) to the connection `to`: its handle_info runs on its
 * own worker thread, soon. Callable from any thread, including threads the
 * plugin started and other connections' callbacks. Messages from one sender
 * thread to one connection arrive in the order sent. Returns 0 when the
 * message was queued for a live connection, WEBSOCK_ENOENT when the
 * connection is gone (or never existed): nothing was delivered. A connection
 * that closes after the message was queued never sees it. Sent from a
 * callback to a connection of the same worker (websock_self(conn), say), it
 * is handled before any input read after that callback; so are the
 * deliveries of a websock_publish() made there to that worker's
 * subscribers. */
int websock_send(websock_ref to, const void *data, size_t len);

/* Like Process.send_after: handle_info(data) on this connection after `ms`
 * milliseconds. Copies data. Returns a timer id (> 0) for
 * websock_cancel_timer, or a negative error (WEBSOCK_ECONTEXT outside this
 * connection's callbacks, WEBSOCK_ECLOSED once closing). Timers die with the
 * connection. */
int64_t websock_send_after(websock_conn *conn, uint64_t ms, const void *data,
                           size_t len);

/* Cancels a timer that has not fired. Returns 0, or WEBSOCK_ENOENT if it
 * already fired, was cancelled, or is not this connection's. */
int websock_cancel_timer(websock_conn *conn, int64_t timer_id);

/* Subscribes this connection to a topic (any NUL-terminated name, at most
 * 255 bytes; topics are host-wide, shared by every route). Subscribing twice
 * is harmless. A connection leaves its topics when it closes. Joining and
 * leaving cost the same whatever the topic's size. Returns 0,
 * WEBSOCK_EINVAL or WEBSOCK_ENOMEM (also past 32,768 topics for one
 * connection). Only from this connection's callbacks. */
int websock_subscribe(websock_conn *conn, const char *topic);

/* Returns 0, WEBSOCK_ENOENT if the connection was not subscribed,
 * WEBSOCK_EINVAL or WEBSOCK_ECONTEXT. */
int websock_unsubscribe(websock_conn *conn, const char *topic);

/* Delivers `data` (copied once, shared) to handle_info of every subscriber
 * of `topic`, on every worker, the publisher included if subscribed.
 * Callable from any thread. Returns 0 or a negative error. */
int websock_publish(websock_host *host, const char *topic, const void *data,
                    size_t len);

/* Pushes one message to every subscriber of `topic` without calling any
 * callback: the frame is built once and its bytes shared by every
 * connection's send queue (no copy per subscriber). opcode TEXT or BINARY.
 * Each subscriber's backpressure policy applies. Callable from any thread.
 * Returns 0 or a negative error. */
int websock_broadcast(websock_host *host, const char *topic,
                      websock_opcode opcode, const void *data, size_t len);

/* Across hosts (websockd --redis): websock_publish and websock_broadcast
 * also reach the topic's subscribers on every host sharing the Redis, in
 * the order one host published them, at most once (a message published
 * while Redis is unreachable is dropped and counted, never queued without
 * bound). A reference crosses hosts as text: */

/* The longest reference string, with its NUL. */
#define WEBSOCK_REF_STRLEN 50

/* Writes ref as a short string ("<host: 16 hex digits>.<worker>.<slot>.
 * <serial>", e.g. "00c0ffee12345678.1.42.7") and its NUL to out[0..cap).
 * Returns its length, WEBSOCK_EINVAL (cap below WEBSOCK_REF_STRLEN) or
 * WEBSOCK_ENOENT (an empty ref). Callable from any thread. */
int websock_ref_format(websock_ref ref, char *out, size_t cap);

/* Reads a string of websock_ref_format (from this host or another host
 * sharing its Redis) into *out. websock_send() to a ref of another host
 * goes there through Redis and returns 0 whether or not the connection (or
 * its host) still exists: at most once; the host counts what no one took.
 * Returns 0, WEBSOCK_EINVAL (not a reference) or WEBSOCK_ENOMEM (too many
 * other hosts seen: 4096). Callable from any thread. */
int websock_ref_parse(websock_host *host, const char *s, websock_ref *out);

/* Inside handle_info(): where its message came from. Returns
 * WEBSOCK_INFO_SEND (websock_send(), from this host or, over Redis, from
 * another), WEBSOCK_INFO_TIMER (a websock_send_after() timer; *timer_id
 * gets the id websock_send_after() returned) or WEBSOCK_INFO_PUBLISH (a
 * websock_publish(), from this host or another; *topic gets the topic's
 * name, owned by the host, valid during this handle_info() only). timer_id
 * and topic may be NULL; whichever does not apply is set to 0 or NULL.
 * Anywhere else (another callback, another thread, another connection)
 * returns WEBSOCK_INFO_NONE. */
websock_info_kind websock_info_source(const websock_conn *conn,
                                      int64_t *timer_id, const char **topic);

/* The number of connections subscribed to `topic` on this host, every
 * worker and every route together; 0 for a topic no one joined. Exact as
 * of the call: a websock_subscribe() that returned 0 is counted, a
 * connection is uncounted once it unsubscribed or closed. Callable from any
 * thread, cheap (one lock and a hash lookup). Returns the count or
 * WEBSOCK_EINVAL (no host, or not a topic name). With --redis it counts
 * this host's subscribers only (websock_topic_subscribers_all: every
 * host's). */
int64_t websock_topic_subscribers(websock_host *host, const char *topic);

/* The number of connections subscribed to `topic` on every host sharing
 * this host's Redis (websockd --redis): this host's exact count
 * (websock_topic_subscribers) plus what each other host last announced.
 * Eventually consistent: each host announces its changed counts at most
 * once a second and all its counts every 3 s, so a change on another host
 * shows here within about a second (plus Redis's delay); a host that stops
 * announcing (killed, or cut off from Redis) is forgotten 10 s after its
 * last announcement, and so is a count whose drop to 0 was lost. While
 * Redis is down no announcement comes in or goes out (10 s into an outage
 * this is the local count). A host stopped with SIGTERM says nothing on
 * its way out either: it is forgotten the same way. Other hosts' counts
 * are kept within bounds (32768 topic-and-host pairs, 8192 per host, 256
 * hosts; what does not fit is left out and counted in /metrics as
 * websockd_bus_counts_dropped_total). Without --redis, and in the test
 * library, it equals websock_topic_subscribers(). Callable from any
 * thread, cheap (two locks and two hash lookups; no I/O). Returns the count
 * or WEBSOCK_EINVAL (no host, or not a topic name). */
int64_t websock_topic_subscribers_all(websock_host *host, const char *topic);

/* ------------------------------------------------------------------------ */
/* About a connection                                                        */
/* ------------------------------------------------------------------------ */

/* The upgrade request; valid during init() only, NULL elsewhere. */
const websock_request *websock_conn_request(const websock_conn *conn);

/* The negotiated subprotocol, or NULL if none. Valid for the connection's
 * life. */
const char *websock_conn_subprotocol(const websock_conn *conn);

/* A value from the route's [options] section, or NULL. Valid for the
 * connection's life. */
const char *websock_conn_option(const websock_conn *conn, const char *key);

/* The route's path as configured: "/echo", or a pattern such as
 * "/chat/:room" (websock_conn_param() has the values). Valid for the
 * connection's life. */
const char *websock_conn_route(const websock_conn *conn);

/* 1 if the connection negotiated permessage-deflate (RFC 7692: the route
 * has `compression = shared` or `dedicated` and the client offered it), so
 * that text and binary messages of at least the route's
 * `compression_min_size` go out compressed when that makes them smaller;
 * 0 if not (or conn is NULL). Any time in the connection's callbacks. */
int websock_conn_compressed(const websock_conn *conn);

/* The value a path parameter of the route captured for this connection
 * (see websock_request_param()), or NULL. Valid for the connection's life,
 * in any of its callbacks. */
const char *websock_conn_param(const websock_conn *conn, const char *name);

/* The context load() set with websock_options_set_context() for this
 * connection's generation, or NULL. Any of its callbacks. */
void *websock_conn_context(const websock_conn *conn);

/* Logs one line to the host's log, prefixed with the route and connection
 * id. printf-style. level: WEBSOCK_LOG_ERROR, _WARN, _INFO or _DEBUG (0 to
 * 3). conn may be NULL (in load() or unload(), or on a plugin's own
 * thread): the line then names the route, the plugin and its generation,
 * found from the code that called (which generation's private copy of the
 * .so it lies in) or, inside a callback, from the callback the host is in
 * (a compiler's tail call leaves no caller of the plugin's own), e.g.
 * "route /chat plugin chat generation 3: ...". Any thread. */
void websock_log(const websock_conn *conn, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------------------ */
/* The upgrade request (valid in upgrade() and init())                       */
/* ------------------------------------------------------------------------ */

/* "GET". */
const char *websock_request_method(const websock_request *req);
/* The path without the query, as the client sent it (not decoded):
 * "/chat/room%201". */
const char *websock_request_path(const websock_request *req);
/* The query string without '?' ("" if none). */
const char *websock_request_query(const websock_request *req);
/* The first value of a header, matched case-insensitively, or NULL. */
const char *websock_request_header(const websock_request *req,
                                   const char *name);
/* Number of headers, and the i-th one's name and value (0 or
 * WEBSOCK_ENOENT). */
size_t websock_request_header_count(const websock_request *req);
int websock_request_header_at(const websock_request *req, size_t i,
                              const char **name, const char **value);
/* The client's address, "127.0.0.1:5000" or "[::1]:5000". */
const char *websock_request_remote_addr(const websock_request *req);
/* The subprotocol the host would pick from the route's list, or NULL. */
const char *websock_request_subprotocol(const websock_request *req);
/* 1 if the request came over TLS (a listen_tls listener: wss://), 0 over
 * plain TCP. */
int websock_request_tls(const websock_request *req);
/* The subject of the client certificate the TLS handshake verified (the
 * listener has tls_client_ca), in RFC 2253 form ("CN=alice,O=Acme"), or
 * NULL: plain TCP or no client certificate. Owned by the host; valid as
 * long as req (in upgrade() and init()). */
const char *websock_request_peer_subject(const websock_request *req);

/* A value the route's path pattern captured, or NULL. A route's `path` may
 * have parameters: a segment `:name` matches one non-empty path segment
 * (`path = /chat/:room`), and a last segment `*` matches the rest of the
 * path, nothing, one segment or several (`path = /files/` then `*`; read
 * it under the name "*"). For "/chat/room%201",
 * websock_request_param(req, "room") is "room 1"; for "/files/a/b.txt",
 * websock_request_param(req, "*") is "a/b.txt". Values are percent-decoded
 * (the request is refused with 400 if a `%` is not followed by two hex
 * digits, if a value decodes to a NUL byte, or if a `:name` value decodes
 * to a '/'). Owned by the host; valid as long as req (websock_conn_param()
 * gives them for the connection's life). */
const char *websock_request_param(const websock_request *req, const char *name);

/* The context load() set for the generation this request goes to
 * (websock_options_set_context()), or NULL. In upgrade() and init(). */
void *websock_request_context(const websock_request *req);

/* ------------------------------------------------------------------------ */
/* The upgrade response (in upgrade() only)                                  */
/* ------------------------------------------------------------------------ */

/* Adds a header to the response, whether 101 or a refusal. Copies both.
 * Returns 0, WEBSOCK_ENOMEM, or WEBSOCK_EINVAL: an empty name or one that is
 * not an HTTP token, a value with control characters (CR, LF, NUL, ...; HTAB
 * is fine), or a header the host owns (Upgrade, Connection, Content-Length,
 * Transfer-Encoding, Sec-WebSocket-*). On a refusal, a Content-Type given
 * here replaces the default text/plain. */
int websock_response_add_header(websock_response *resp, const char *name,
                                const char *value);

/* Picks the subprotocol (copied): it must be one the client offered.
 * Returns 0, or WEBSOCK_EINVAL if the client did not offer it. */
int websock_response_set_subprotocol(websock_response *resp,
                                     const char *protocol);

/* Sets the body of a refusal (copied); ignored for 101. */
int websock_response_set_body(websock_response *resp, const char *body);

/* Hands a value on to init(), where it is the initial *state. The plugin
 * owns it: if upgrade() returns 0, init() (or terminate() when init is NULL)
 * is always called and can free it; if upgrade() refuses, the plugin frees
 * it before returning. */
void websock_response_set_state(websock_response *resp, void *state);

/* ------------------------------------------------------------------------ */
/* Route options (in load())                                                 */
/* ------------------------------------------------------------------------ */

/* A value from [options], or NULL. */
const char *websock_option(const websock_options *options, const char *key);
/* Number of options, and the i-th one (0 or WEBSOCK_ENOENT). */
size_t websock_option_count(const websock_options *options);
int websock_option_at(const websock_options *options, size_t i,
                      const char **key, const char **value);

/* In load() only: sets the generation's context, a pointer of the plugin's
 * own that every callback of this generation can read
 * (websock_options_context(), websock_conn_context(),
 * websock_request_context()) instead of file-scope statics. The host never
 * touches what it points to; the table's unload_context() frees it. Several
 * workers read it at once: what it points to needs its own locking if it
 * changes. Returns 0, WEBSOCK_EINVAL (options NULL) or WEBSOCK_ECONTEXT
 * (outside load()). */
int websock_options_set_context(const websock_options *options, void *context);

/* The context load() set, or NULL. Any callback, any thread, until
 * unload_context() is called. */
void *websock_options_context(const websock_options *options);
/* ------------------------------------------------------------------------ */
/* Live code upgrade (in export_state())                                     */
/* ------------------------------------------------------------------------ */

/* Copies `len` bytes of `data` to the end of the exported state. Returns 0;
 * WEBSOCK_ETOOBIG if the state would pass the new route's max_message_size
 * (nothing of this call is appended, what was appended before stays);
 * WEBSOCK_ENOMEM; WEBSOCK_EINVAL (buf NULL, or data NULL with len > 0). */
int websock_buf_append(websock_buf *buf, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* WEBSOCK_H */
