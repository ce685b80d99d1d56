/*
 * websock_test.h - a fake websockd host for unit-testing a plugin without a
 * network (libwebsock_test.so, pkg-config `websock-test`, CMake
 * `WebSock::test`).
 *
 * The library implements every websock_* function of websock.h, so a test
 * program linked against it can dlopen() a plugin .so (RTLD_NOW |
 * RTLD_LOCAL, as the host does) and the plugin's calls land here. It is a
 * shared library for that reason: link it as such (-lwebsock_test), not
 * statically. The test then plays both the client and the host's event
 * loop:
 *
 *   websock_test_host_new(&h);
 *   websock_test_load(h, "./chat.so", &route, &p);  -> load()
 *   websock_test_connect(p, &request, &c);          -> upgrade(), init()
 *   websock_test_client_text(c, "hi");              -> handle_in, now
 *   websock_test_run(h);                            -> queued handle_info
 *   websock_test_sent_text(c, 0) ...                -> what it pushed
 *   websock_test_log_find(c, "joined") ...          -> what it logged
 *   websock_test_host_free(h);                      -> terminate, unload
 *
 * The rules it applies are websockd's own: the library is built from the
 * same source files for them (what a callback may call and when, argument
 * checks, how a result or a stop closes, what upgrade() may answer, close
 * codes and texts, response headers, UTF-8, the handler table check), and
 * websockd's tests play one script through both and compare.
 *
 * How the fake behaves (and where it differs from websockd):
 *  - Callbacks run on the calling thread, at once, from the websock_test_*
 *    driving functions. Call those from one thread, never from inside a
 *    callback (they return WEBSOCK_ECONTEXT there; the void ones do
 *    nothing).
 *  - websock_send(), websock_publish() and websock_broadcast() only queue,
 *    as on the host (a plugin that publishes from handle_in is not re-entered).
 *    Queued messages are delivered by websock_test_run() or
 *    websock_test_advance(), in the order queued. They may be called from any
 *    thread, like on the host; delivery happens on the thread that runs the
 *    queue. Topic members are looked up at delivery time, in the order the
 *    connections were created.
 *  - Timers (websock_send_after) follow a fake clock that starts at 0 ms and
 *    moves only with websock_test_advance().
 *  - Every payload a callback gets (data, terminate's reason text) is a
 *    private copy freed when the callback returns, so that a plugin keeping
 *    such a pointer shows up under AddressSanitizer or valgrind.
 *  - websock_push() of WEBSOCK_OP_TEXT checks UTF-8 and returns WEBSOCK_EINVAL
 *    for invalid text (stricter than the host, which sends it and lets the
 *    client fail the connection with 1007); so do websock_broadcast() and
 *    websock_test_client_message().
 *  - No backpressure: websock_unsent_bytes() returns 0 and pushes never fail
 *    with WEBSOCK_EFULL. No max_message_size, origins or pings.
 *  - No permessage-deflate: websock_conn_compressed() returns 0 and
 *    websock_push_uncompressed() is websock_push().
 *  - No TLS: websock_request_tls() returns 0 and
 *    websock_request_peer_subject() NULL, as for a plain TCP client.
 *  - The request's path must match the route's path (else 404): exactly,
 *    or as the host matches a pattern such as "/chat/:room" (the values,
 *    percent-decoded, for websock_request_param() and websock_conn_param();
 *    400 for one that does not decode). Each plugin is one route: which of
 *    several routes would win is the host's business, not tested here.
 *  - websock_topic_subscribers() counts the connections of this fake host
 *    subscribed to the topic; websock_topic_subscribers_all() is the same
 *    count (one host, no bus).
 *
 * Ownership: the host owns every connection, plugin and recorded message.
 * Pointers returned by the inspection functions stay valid until the object
 * they came from is freed (websock_test_conn_free, websock_test_host_free),
 * except where a comment says otherwise. Strings passed in are copied.
 *
 * Errors: functions returning int return 0 (or a count, or a callback's
 * result, as documented) or a negative websock_errno code.
 */
#ifndef WEBSOCK_TEST_H
#define WEBSOCK_TEST_H

#include <stddef.h>
#include <stdint.h>

#include <websock.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* The fake host                                                             */
/* ------------------------------------------------------------------------ */

/* Creates a fake host: no plugins, no connections, the clock at 0 ms. It is
 * a real websock_host: websock_publish(host, ...) and websock_broadcast()
 * work on it from the test too. Returns 0 or WEBSOCK_ENOMEM. */
int websock_test_host_new(websock_host **out);

/* Ends every open connection as a host shutdown does (close 1001,
 * terminate() with WEBSOCK_REASON_SHUTDOWN), calls unload() of every plugin
 * still loaded, dlclose()s them, and frees everything: the host, its
 * plugins, connections and recorded messages. NULL is ignored. */
void websock_test_host_free(websock_host *host);

/* The last error of a websock_test_* call on this host, as one line naming
 * the cause (for example "./chat.so: unknown ABI version 7 in
 * websock_handler_v1 (this host knows version 1)"), or "" if none. Owned by
 * the host; valid until the next websock_test_* call on it. */
const char *websock_test_error(const websock_host *host);

/* Lines logged by plugins through websock_log() go to stderr when their
 * level is at most `level` (0 error, 1 warning, 2 info, 3 debug; default 1).
 * -1 silences them. Every line is recorded whatever this level, for
 * websock_test_log_count() and the others under "Log lines" below. */
void websock_test_set_log_level(websock_host *host, int level);

/* ------------------------------------------------------------------------ */
/* Plugins                                                                   */
/* ------------------------------------------------------------------------ */

/* One loaded plugin (a generation, in host terms). Owned by the host. */
typedef struct websock_test_plugin websock_test_plugin;

/* What a route file would say. Every field may be NULL/zero. */
typedef struct websock_test_route {
  /* The route's path, for websock_conn_route() and for matching requests,
   * exact or a pattern ("/chat/:room"; see websock_request_param()); NULL:
   * "/test". */
  const char *path;
  /* The [options] section: key, value, key, value, ..., NULL. Handed to
   * load() and to websock_conn_option(). */
  const char *const *options;
  /* The route's `subprotocols`, in order of preference, NULL-terminated:
   * what websock_request_subprotocol() negotiates from. */
  const char *const *subprotocols;
} websock_test_route;

/* Loads the plugin at so_path the way the host does: copies it to a private
 * temporary file (so that loading one .so twice gives two independent
 * copies of its globals, as two generations on the host), dlopen()s that
 * with RTLD_NOW | RTLD_LOCAL and deletes the file, looks up
 * websock_handler_v1, checks abi_version == WEBSOCK_ABI_VERSION, a
 * struct_size reaching at least handle_in and a non-NULL handle_in, copies
 * the table (fields beyond struct_size read as NULL), then calls load() with
 * the route's options. route may be NULL (all defaults).
 * Returns 0 and *out; WEBSOCK_ENOENT if so_path does not exist;
 * WEBSOCK_EINVAL for any other refusal (not loadable, missing symbol, bad
 * table, a route path that is not a valid pattern, an option key the
 * table's option_keys does not list, load() returned non-zero) with the
 * cause in websock_test_error();
 * WEBSOCK_ENOMEM.
 * With the environment variable WEBSOCK_TEST_NO_COPY=1, so_path itself is
 * dlopen()ed instead, so that a debugger finds the plugin's symbols on
 * disk; loading one path twice then shares its globals. */
int websock_test_load(websock_host *host, const char *so_path,
                      const websock_test_route *route,
                      websock_test_plugin **out);

/* Unloads the plugin: its open connections are first ended as by
 * websock_test_shutdown(), then unload() runs and the .so is dlclose()d.
 * unload_context() follows unload() when load() set a context.
 * Calling it twice is harmless. The websock_test_plugin itself, and its
 * connections with everything they recorded, stay readable until
 * websock_test_host_free(); new connections to it are refused
 * (WEBSOCK_ECLOSED). */
void websock_test_unload(websock_test_plugin *plugin);

/* The plugin's table as the host copied it (fields beyond its struct_size
 * are NULL). The strings it points to (name, version) belong to the .so:
 * valid until websock_test_unload(). */
const struct websock_handler *
websock_test_handler(const websock_test_plugin *plugin);

/* ------------------------------------------------------------------------ */
/* Connections: upgrade and init                                             */
/* ------------------------------------------------------------------------ */

/* An upgrade request. Every field may be NULL. */
typedef struct websock_test_request {
  const char *method; /* NULL: "GET" (anything else: 400) */
  const char *path;   /* NULL: the route's path (any other: 404) */
  const char *query;  /* without '?'; NULL: "" */
  /* Extra headers: name, value, name, value, ..., NULL. The request always
   * carries Host, Upgrade, Connection, Sec-WebSocket-Key and
   * Sec-WebSocket-Version (unless given here), then these. */
  const char *const *headers;
  const char *remote_addr; /* NULL: "127.0.0.1:<40000 + connection number>" */
  /* Subprotocols the client offers, in its order, NULL-terminated; sent as
   * one Sec-WebSocket-Protocol header. */
  const char *const *subprotocols;
} websock_test_request;

/* Where a fake connection stands. */
typedef enum websock_test_state {
  WEBSOCK_TEST_REFUSED = 0,  /* the upgrade was answered with 400-599 */
  WEBSOCK_TEST_UPGRADED = 1, /* 101 answered; websock_test_init() not yet */
  WEBSOCK_TEST_OPEN = 2,     /* init() said OK (or there is no init) */
  WEBSOCK_TEST_CLOSED = 3    /* stopped, closed by the client, or ended */
} websock_test_state;

/* Starts a connection to the plugin with the request req (NULL: all
 * defaults): the host's checks (404, 400 as above), the negotiated
 * subprotocol, then the plugin's upgrade() if it has one.
 * Returns the HTTP status answered: 101 if accepted, else the refusal
 * (400-599; 500 if upgrade() returned something other than 0 or 400-599),
 * and *out, a new connection in state WEBSOCK_TEST_UPGRADED or
 * WEBSOCK_TEST_REFUSED, owned by the host. Returns WEBSOCK_ECLOSED if the
 * plugin is unloaded, WEBSOCK_ECONTEXT inside a callback, WEBSOCK_ENOMEM;
 * *out is then untouched. */
int websock_test_upgrade(websock_test_plugin *plugin,
                         const websock_test_request *req, websock_conn **out);

/* Opens an upgraded connection: init() runs (websock_conn_request() is
 * valid inside it), with *state starting as the value upgrade() handed on.
 * Returns what init returned (WEBSOCK_OK or WEBSOCK_STOP; WEBSOCK_OK when
 * there is no init), or WEBSOCK_EINVAL if the connection is not in state
 * WEBSOCK_TEST_UPGRADED. After WEBSOCK_STOP the connection is CLOSED with
 * the close the plugin chose, and terminate() is not called (as on the
 * host: terminate follows only an init that said OK). */
int websock_test_init(websock_conn *conn);

/* websock_test_upgrade() then, if 101, websock_test_init(). Returns 0 if
 * the connection is open; WEBSOCK_ECLOSED if it was refused or init()
 * stopped (*out is set: inspect it); or an error as websock_test_upgrade()
 * returns (*out untouched). */
int websock_test_connect(websock_test_plugin *plugin,
                         const websock_test_request *req, websock_conn **out);

/* Frees one connection and what it recorded, ending it first as by
 * websock_test_shutdown() if it is open. Optional: the host frees the rest.
 * A websock_ref to it then reports WEBSOCK_ENOENT, as refs to closed
 * connections do. NULL is ignored. */
void websock_test_conn_free(websock_conn *conn);

/* Besides these, websock_conn_route(), websock_conn_option(),
 * websock_conn_subprotocol(), websock_conn_host() and websock_self() may be
 * called from the test on any connection; websock_push() and the other
 * functions reserved to callbacks return WEBSOCK_ECONTEXT there, as on the
 * host. */

/* The upgrade's answer: 101, a refusal status, or 0 (never answered). */
int websock_test_status(const websock_conn *conn);

/* The first response header (added by upgrade()) of that name, matched
 * case-insensitively, or NULL. */
const char *websock_test_response_header(const websock_conn *conn,
                                         const char *name);

/* The number of headers upgrade() added, and the i-th one (0 or
 * WEBSOCK_ENOENT). */
size_t websock_test_response_header_count(const websock_conn *conn);
int websock_test_response_header_at(const websock_conn *conn, size_t i,
                                    const char **name, const char **value);

/* The body set by websock_response_set_body() for a refusal, or NULL. */
const char *websock_test_response_body(const websock_conn *conn);

/* ------------------------------------------------------------------------ */
/* Driving an open connection                                                */
/* ------------------------------------------------------------------------ */

/* Unless said otherwise, these return what the callback returned
 * (WEBSOCK_OK or WEBSOCK_STOP), WEBSOCK_OK if the plugin has no such
 * callback, or a negative code without calling anything: WEBSOCK_ECLOSED if
 * the connection is not open, WEBSOCK_EINVAL for bad arguments,
 * WEBSOCK_ECONTEXT inside a callback. After WEBSOCK_STOP (or a result that
 * is neither OK nor STOP, treated as an error stop, as the host does) the
 * connection is closed as websock_close*() chose and terminate() has run. */

/* A whole message from the client: handle_in with opcode WEBSOCK_OP_TEXT
 * (data must be valid UTF-8, else WEBSOCK_EINVAL: the host never hands a
 * plugin invalid text) or WEBSOCK_OP_BINARY. */
int websock_test_client_message(websock_conn *conn, websock_opcode opcode,
                                const void *data, size_t len);

/* websock_test_client_message(conn, WEBSOCK_OP_TEXT, text, strlen(text)). */
int websock_test_client_text(websock_conn *conn, const char *text);

/* A ping or pong from the client (at most 125 bytes): handle_control. The
 * host's own pong answer is not recorded as a sent message. */
int websock_test_client_control(websock_conn *conn, websock_opcode opcode,
                                const void *data, size_t len);

/* The client closes with `code` and `reason` (NULL: "", at most 123 bytes
 * of UTF-8): the host echoes the close (recorded, see websock_test_closed)
 * and terminate() runs with WEBSOCK_REASON_REMOTE, the code and the reason.
 * code is one a client may send (1000-1003, 1007-1014, 3000-4999), or 1005
 * for a close frame without a code (echoed without one). Returns 0,
 * WEBSOCK_ECLOSED if the connection was not open, WEBSOCK_EINVAL for
 * another code or reason. */
int websock_test_client_close(websock_conn *conn, uint16_t code,
                              const char *reason);

/* The client's TCP connection ends without a close frame (a reset, an
 * EOF): nothing is sent, and terminate() runs with WEBSOCK_REASON_ERROR,
 * code 1006 and the detail "connection closed without a close frame", as
 * on the host. Returns 0 or WEBSOCK_ECLOSED. */
int websock_test_client_drop(websock_conn *conn);

/* handle_info(data) now, as if a message had just been delivered (the
 * queue of websock_test_run() is not involved); websock_info_source() says
 * WEBSOCK_INFO_SEND. */
int websock_test_info(websock_conn *conn, const void *data, size_t len);

/* Live code upgrade, as websockd does it for a `reload = handoff` route:
 * the connection's plugin's export_state() writes its state (at most 1 MiB,
 * the host's default max_message_size), then next's import_state() reads
 * it, and the same connection goes on with next's callbacks (next is a
 * second websock_test_load() of the new build, or of the same .so: its
 * statics are its own). What the connection recorded, its timers and its
 * topics stay. Returns 0 if it moved; WEBSOCK_STOP if export_state or
 * import_state returned non-zero: the connection is then CLOSED with 1012
 * "service restart", and terminate() (WEBSOCK_REASON_SHUTDOWN, 1012) was
 * called by the plugin holding the state (the old one if export failed,
 * next if import failed); WEBSOCK_EINVAL if the host would drain instead
 * (no export_state in the connection's plugin, no import_state in next, or
 * another plugin name) or next is of another host; WEBSOCK_ECLOSED if the
 * connection is not open or next is unloaded; WEBSOCK_ECONTEXT inside a
 * callback. */
int websock_test_handoff(websock_conn *conn, websock_test_plugin *next);

/* The host shuts down: close 1001 "server shutting down", terminate() with
 * WEBSOCK_REASON_SHUTDOWN and code 1001. Returns 0 or WEBSOCK_ECLOSED. */
int websock_test_shutdown(websock_conn *conn);

/* The host ends the connection for any reason kind other than REMOTE
 * (see websock_test_client_close): it sends a close frame with `code`
 * and `text` (NULL: "") unless code is 1006 (the TCP connection is gone),
 * and terminate() gets kind, code and, for WEBSOCK_REASON_ERROR, text as
 * the detail (the other kinds get ""). For example (TIMEOUT, 1001, "idle
 * timeout") or (ERROR, 1002, "reserved bits set"). Returns 0,
 * WEBSOCK_ECLOSED or WEBSOCK_EINVAL. */
int websock_test_end(websock_conn *conn, websock_reason_kind kind,
                     uint16_t code, const char *text);

/* ------------------------------------------------------------------------ */
/* The event loop: queued messages and the fake clock                        */
/* ------------------------------------------------------------------------ */

/* Delivers everything queued (websock_send, websock_publish,
 * websock_broadcast) in order, and fires the timers due at the current
 * fake time, until nothing is left, including what the delivered callbacks
 * queue in turn. Each delivery goes to connections that are open at that
 * moment: handle_info for sends, publishes and timers, a recorded message
 * (shared = 1) for broadcasts. Returns the number of queued messages and
 * timers processed, WEBSOCK_ECONTEXT inside a callback, or WEBSOCK_ETOOBIG
 * after 1000000 of them in one call (a plugin that feeds itself forever). */
int websock_test_run(websock_host *host);

/* Moves the fake clock forward by ms, firing every timer that falls due on
 * the way in deadline order (the clock reads each timer's deadline while it
 * fires), with websock_test_run() before each and at the end. Returns the
 * number of timers fired, or an error as websock_test_run(). */
int websock_test_advance(websock_host *host, uint64_t ms);

/* The fake clock, in milliseconds since websock_test_host_new(). */
uint64_t websock_test_now(const websock_host *host);

/* websock_send_after() timers of this connection not yet fired or
 * cancelled (0 once it is closed: timers die with the connection). */
size_t websock_test_timers_pending(const websock_conn *conn);

/* ------------------------------------------------------------------------ */
/* Inspecting a connection                                                   */
/* ------------------------------------------------------------------------ */

/* One message the connection sent to its client. */
typedef struct websock_test_msg {
  websock_opcode opcode; /* TEXT, BINARY, PING or PONG */
  /* The payload, owned by the host, followed by a NUL byte (not counted in
   * len) so that text can be read as a C string. Never NULL. */
  const uint8_t *data;
  size_t len;
  int shared; /* 1: from websock_broadcast(); 0: from websock_push() */
} websock_test_msg;

/* The state (websock_test_state). */
websock_test_state websock_test_state_of(const websock_conn *conn);

/* The number of messages sent to the client (pushed or broadcast), since
 * the connection started or websock_test_clear_sent(). */
size_t websock_test_sent_count(const websock_conn *conn);

/* The i-th of them (0 is the oldest), or NULL past the end. */
const websock_test_msg *websock_test_sent(const websock_conn *conn, size_t i);

/* The i-th message's payload as a C string if it is a text message, else
 * NULL. */
const char *websock_test_sent_text(const websock_conn *conn, size_t i);

/* Forgets the recorded messages (the pointers returned for them die). */
void websock_test_clear_sent(websock_conn *conn);

/* 1 if the host sent (or, for the client's close, echoed) a close frame,
 * with its code and text (cut at 123 bytes, as on the wire; code 1005 for a
 * frame without a code); 0 if not (open, or the TCP connection was gone).
 * code and text may be NULL. */
int websock_test_closed(const websock_conn *conn, uint16_t *code,
                        const char **text);

/* How many times the host called terminate() (counted even when the plugin
 * has no terminate callback). Exactly 1 for every connection whose init
 * said OK once it is closed; 0 otherwise. */
int websock_test_terminate_count(const websock_conn *conn);

/* The reason terminate() was given (its text copied), or NULL if it was
 * never called. */
const websock_reason *websock_test_terminate_reason(const websock_conn *conn);

/* 1 if the connection is subscribed to topic, else 0. */
int websock_test_subscribed(const websock_conn *conn, const char *topic);

/* ------------------------------------------------------------------------ */
/* Log lines                                                                 */
/* ------------------------------------------------------------------------ */

/* Every line a plugin logs through websock_log() is recorded, whatever the
 * level websock_test_set_log_level() lets through to stderr: the text as
 * formatted (without the host's prefix) and the level (0 error, 1 warning,
 * 2 info, 3 debug). The fake host's own lines about a plugin (a callback
 * result that is neither OK nor STOP, invalid UTF-8 pushed) are recorded
 * too, as websockd logs them.
 *
 * conn names whose lines: a connection's (websock_log(conn, ...) in its
 * callbacks), or NULL for the lines logged without a connection (in load()
 * or unload(), or on a plugin's own thread). Those are process-wide, not
 * per host, since a thread cannot say which host it belongs to; they stay
 * until websock_test_clear_log(NULL). A connection's lines go with it
 * (websock_test_conn_free, websock_test_host_free). These may be called
 * from any thread. */

/* The number of lines recorded for conn (or NULL, see above). */
size_t websock_test_log_count(const websock_conn *conn);

/* The i-th line (0 is the oldest) and, if level is not NULL, its level; NULL
 * past the end. The text is owned by the host and valid until the lines are
 * cleared or freed. */
const char *websock_test_log_at(const websock_conn *conn, size_t i, int *level);

/* The index of the first line containing needle (a plain substring), or
 * WEBSOCK_ENOENT if none does (WEBSOCK_EINVAL for a NULL needle). */
int websock_test_log_find(const websock_conn *conn, const char *needle);

/* Forgets the lines recorded for conn (or NULL: the process-wide ones); the
 * pointers returned for them die. */
void websock_test_clear_log(websock_conn *conn);

/* ------------------------------------------------------------------------ */
/* Expectations, for plain C test programs                                   */
/* ------------------------------------------------------------------------ */

/* WEBSOCK_TEST_EXPECT(cond): if cond is false, prints "file:line: expected
 * cond" to stderr and counts a failure. Evaluates to 1 if cond held, else
 * 0, so `if (!WEBSOCK_TEST_EXPECT(c)) return;` works. Unlike assert() it is
 * not compiled out by NDEBUG. */
#define WEBSOCK_TEST_EXPECT(cond)                                              \
  websock_test_expect_((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

/* WEBSOCK_TEST_EXPECT_STR(actual, expected): the two C strings are equal
 * (NULL equals only NULL); on failure prints both. */
#define WEBSOCK_TEST_EXPECT_STR(actual, expected)                              \
  websock_test_expect_str_((actual), (expected), #actual, __FILE__, __LINE__)

/* Failures counted so far in this process (all hosts). A test's main()
 * typically ends with `return websock_test_failures() ? 1 : 0;`. */
int websock_test_failures(void);

/* The functions behind the macros. */
int websock_test_expect_(int ok, const char *expr, const char *file, int line);
int websock_test_expect_str_(const char *actual, const char *expected,
                             const char *expr, const char *file, int line);

#ifdef __cplusplus
}
#endif

#endif /* WEBSOCK_TEST_H */
