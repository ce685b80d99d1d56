/*
 * test_conn.c - unit tests for host/network/conn.c, the WebSocket state
 * machine, driven over a socketpair with scripted bytes and the loop run by
 * the test (tests/unit/connfix.h): the upgrade, masked frames in and their
 * echo out, pings answered, protocol errors closed with the right code, the
 * closing handshake, the connection's state and counters as it goes, the
 * heap an idle one costs, and the idle timeout and server pings.
 */
#include <check.h>

#define WSH_TEST_NAME "test_conn"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "connfix.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* from the sanitizer runtime (sanitizer/allocator_interface.h, which
 * Debian's gcc does not install) */
size_t __sanitizer_get_current_allocated_bytes(void);
/* Heap bytes in use. The sanitizers' allocator counts what was asked for,
 * without glibc's 8-byte header and 16-byte rounding per chunk. */
static size_t heap_in_use(void) {
  return __sanitizer_get_current_allocated_bytes();
}
#define HEAP_KIND "requested"
#else
#include <malloc.h>
static size_t heap_in_use(void) {
  return mallinfo2().uordblks;
}
#define HEAP_KIND "glibc chunks"
#endif

START_TEST(upgrade_then_echo) {
  websock_conn *c = fix_connect();
  ck_assert_int_eq(c->state, WSH_CONN_HANDSHAKE);
  const char *req = FIX_UPGRADE("/rec", "");
  fix_send(req, strlen(req));
  fix_read(1);
  fx.in[fx.nin] = 0;
  ck_assert_has((char *)fx.in, "HTTP/1.1 101 Switching Protocols\r\n");
  /* RFC 6455 1.3's example key and answer */
  ck_assert_has((char *)fx.in,
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
  ck_assert_int_eq(c->state, WSH_CONN_OPEN);
  ck_assert_uint_eq(atomic_load(&fx.env.open), 1);
  ck_assert_uint_eq(atomic_load(&fx.w.loop.stats.open), 1);
  ck_assert(c->in_slot);
  fix_consume((size_t)((char *)memmem(fx.in, fx.nin, "\r\n\r\n", 4) + 4 -
                       (char *)fx.in));
  fix_read(7);
  ck_assert_int_eq(memcmp(fx.in, "\x81\x05hello", 7), 0);
  fix_consume(7);

  uint8_t f[64];
  size_t n = fix_frame(f, WEBSOCK_OP_TEXT, "ping?", 5);
  fix_send(f, n);
  fix_read(7);
  ck_assert_int_eq(fx.nin, 7);
  ck_assert_int_eq(memcmp(fx.in, "\x81\x05ping?", 7), 0); /* unmasked */
  ck_assert_uint_eq(atomic_load(&fx.w.loop.stats.msgs_in), 1);
  ck_assert_uint_eq(atomic_load(&fx.w.loop.stats.msgs_out), 2);
}
END_TEST

/* A connection has a decoder of its own only while a read ends inside a
 * frame: the loop's decodes what arrives whole. */
START_TEST(decoder_only_inside_a_frame) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  ck_assert_ptr_null(c->dec);
  uint8_t f[300];
  char text[200];
  memset(text, 'a', sizeof(text));
  size_t n = fix_frame(f, WEBSOCK_OP_TEXT, text, sizeof(text));
  fix_send(f, 3); /* inside the header */
  ck_assert_ptr_nonnull(c->dec);
  fix_send(f + 3, 100); /* inside the payload */
  ck_assert_ptr_nonnull(c->dec);
  fix_send(f + 103, n - 103);
  ck_assert_ptr_null(c->dec); /* between frames again */
  fix_read(4 + sizeof(text));
  ck_assert_uint_eq(fx.nin, 4 + sizeof(text));
  ck_assert_int_eq(fx.in[0], 0x81);
  fix_consume(fx.nin);
  /* a whole frame in one read never gets one; the loop's is free again */
  n = fix_frame(f, WEBSOCK_OP_TEXT, "hi", 2);
  fix_send(f, n);
  ck_assert_ptr_null(c->dec);
  ck_assert_ptr_null(fx.w.loop.dec.c);
  fix_read(4);
  ck_assert_int_eq(memcmp(fx.in, "\x81\x02hi", 4), 0);
}
END_TEST

START_TEST(frames_split_byte_by_byte) {
  fix_connect();
  fix_upgrade();
  uint8_t f[64];
  size_t n = fix_frame(f, WEBSOCK_OP_BINARY, "\x01\x02\x03", 3);
  for (size_t i = 0; i < n; i++)
    fix_send(f + i, 1);
  fix_read(5);
  ck_assert_int_eq(fx.nin, 5);
  ck_assert_int_eq(memcmp(fx.in, "\x82\x03\x01\x02\x03", 5), 0);
}
END_TEST

START_TEST(ping_is_answered) {
  fix_connect();
  fix_upgrade();
  uint8_t f[64];
  size_t n = fix_frame(f, WEBSOCK_OP_PING, "hb", 2);
  fix_send(f, n);
  fix_read(4);
  ck_assert_int_eq(memcmp(fx.in, "\x8a\x02hb", 4), 0);
}
END_TEST

START_TEST(unmasked_frame_closes_1002) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  fix_send("\x81\x02hi", 4); /* a client frame without a mask */
  fix_read(4);
  ck_assert_uint_ge(fx.nin, 4);
  ck_assert_int_eq(fx.in[0], 0x88);
  ck_assert_int_eq((fx.in[2] << 8) | fx.in[3], 1002);
  ck_assert_int_ne(c->state, WSH_CONN_OPEN);
}
END_TEST

START_TEST(closing_handshake) {
  fix_connect();
  fix_upgrade();
  uint8_t f[64];
  size_t n = fix_frame(f, WEBSOCK_OP_CLOSE,
                       "\x03\xe8"
                       "bye",
                       5);
  fix_send(f, n);
  fix_read(7);
  ck_assert_int_eq(memcmp(fx.in,
                          "\x88\x05\x03\xe8"
                          "bye",
                          7),
                   0);
  ck_assert(fix_eof()); /* the server closes first */
  ck_assert_uint_eq(fx.w.loop.nconns, 0);
  ck_assert_uint_eq(atomic_load(&fx.env.open), 0);
  ck_assert_uint_eq(atomic_load(&fx.w.loop.stats.open), 0);
  ck_assert_has(read_file(fx.rec), "terminate 1 1 1000 bye\n");
}
END_TEST

/* The socket's reads, counted: the connection's transport ops, copied with
 * a read that counts. */
static const wsh_transport_ops *real_ops;
static wsh_transport_ops counting_ops;
static int nreads;

static ssize_t counting_read(wsh_transport *t, void *buf, size_t len) {
  nreads++;
  return real_ops->read(t, buf, len);
}

static void count_reads(websock_conn *c) {
  real_ops = c->tp.ops;
  counting_ops = *real_ops;
  counting_ops.read = counting_read;
  c->tp.ops = &counting_ops;
  nreads = 0;
}

/* The close frame ends a read that filled the whole buffer, and bytes wait
 * behind it: the server asks the socket, finds them, and lingers (shuts
 * its side, waits for the peer's EOF) rather than closing at once, which
 * would turn its close into a reset. */
START_TEST(close_after_a_full_read_asks_again) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  count_reads(c);
  ck_assert_uint_eq(fx.w.loop.rbuf_size, 65536);
  static uint8_t buf[65536 + 16];
  size_t n = 0;
  uint8_t payload[125];
  memset(payload, 'p', sizeof(payload));
  for (int i = 0; i < 500; i++) /* 500 × 131 bytes */
    n += fix_frame(buf + n, WEBSOCK_OP_PING, payload, 125);
  n += fix_frame(buf + n, WEBSOCK_OP_PING, payload, 22); /* 28 more */
  n += fix_frame(buf + n, WEBSOCK_OP_CLOSE, "\x03\xe8", 2);
  ck_assert_uint_eq(n, 65536); /* the close frame ends the first read */
  memcpy(buf + n, "0123456789", 10);
  fix_send(buf, n + 10);
  ck_assert_int_eq(nreads, 2);
  ck_assert_uint_eq(fx.w.loop.nconns, 1); /* lingering */
  ck_assert_int_eq(c->state, WSH_CONN_LINGER);
  close(fx.peer);
  fx.peer = -1;
  fix_run();
  ck_assert_uint_eq(fx.w.loop.nconns, 0);
  ck_assert_has(read_file(fx.rec), "terminate 1 1 1000 \n");
}
END_TEST

START_TEST(peer_gone_without_close) {
  fix_connect();
  fix_upgrade();
  close(fx.peer);
  fx.peer = -1;
  fix_run();
  ck_assert_uint_eq(fx.w.loop.nconns, 0);
  ck_assert_has(read_file(fx.rec), "terminate 1 4 1006 connection closed "
                                   "without a close frame\n");
}
END_TEST

START_TEST(shutdown_closes_1001) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  wsh_conn_shutdown(c);
  wsh_conn_settle_all(&fx.w.loop);
  fix_read(4);
  ck_assert_int_eq(fx.in[0], 0x88);
  ck_assert_int_eq((fx.in[2] << 8) | fx.in[3], 1001);
  ck_assert_has(read_file(fx.rec), "terminate 1 2 1001 \n");
}
END_TEST

/* log_connections' line is written at info: below that level an open
 * connection carries none of what it would say (issue 18); at info it
 * carries it in its own allocation's tail, not in `more`. */
START_TEST(no_log_state_below_info) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  ck_assert_int_eq(fx.cfg.log_connections, 1);
  ck_assert_ptr_null(c->more); /* fix_setup logs errors only */
  ck_assert(!c->logs);
  close(fx.peer);
  fx.peer = -1;
  fix_run();
  wsh_log_set_level(WSH_LOG_INFO);
  c = fix_connect();
  fix_upgrade();
  wsh_log_set_level(WSH_LOG_ERROR);
  ck_assert_ptr_null(c->more);
  ck_assert(c->logs);
  ck_assert_uint_ne(c->log->opened_ms, 0);
  char peer[64];
  wsh_conn_log_peer(c->log, peer, sizeof(peer));
  ck_assert_str_eq(peer, "unix"); /* the fixture's socketpair */
}
END_TEST

/* The closing line's peer is packed into the connection and printed as
 * wsh_format_addr printed it. */
START_TEST(log_peer_packed) {
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(4242)};
  struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(65535)};
  ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr), 1);
  ck_assert_int_eq(inet_pton(AF_INET, "10.1.2.3", &in.sin_addr), 1);
  const struct sockaddr *sa[] = {(struct sockaddr *)&in6,
                                 (struct sockaddr *)&in};
  const char *want[] = {"[2001:db8::1]:4242", "10.1.2.3:65535"};
  wsh_log_set_level(WSH_LOG_INFO);
  for (int i = 0; i < 2; i++) {
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    if (fx.peer >= 0)
      close(fx.peer);
    fx.peer = sv[1];
    fx.nin = 0;
    ck_assert_int_eq(
        wsh_conn_new(&fx.w.loop, sv[0], sa[i], sizeof(in6), WSH_LISTEN_PLAIN),
        0);
    websock_conn *c = fx.w.loop.conns;
    fix_upgrade();
    ck_assert(c->logs);
    char peer[64];
    wsh_conn_log_peer(c->log, peer, sizeof(peer));
    ck_assert_str_eq(peer, want[i]);
    ck_assert_str_eq(wsh_conn_peer(c).s, want[i]);
  }
  wsh_log_set_level(WSH_LOG_ERROR);
}
END_TEST

/* ---- idle memory (issue 18: 256 bytes per idle connection) ---------------
 *
 * What each idle WebSocket connection adds to the heap, measured as the
 * benchmark's idle scenario holds them (upgraded to an echo route, nothing
 * in flight) but with the heap's own figure, deterministic: the connection
 * (152 bytes; 216 with log_connections' tail at info). Its websock_ref slot
 * (16 bytes) is in an array allocated 4,096 slots at a time, before these
 * connections (bench/PERFORMANCE.md counts it). Under the sanitizers (the
 * suite) the figure is requested bytes: bounds 160 and 224, an 8-byte
 * margin (one more pointer per connection passes, two fail). In a glibc
 * build it is malloc chunks (160 and 224 bytes): bounds 176 and 240, one
 * chunk size more. */

#define IDLE_N 300

/* A route file `name`.conf with text beside the fixture's /rec, loaded;
 * path is its route. */
static void add_route(const char *name, const char *path, const char *text) {
  char dir[PATH_MAX], conf[PATH_MAX + 64];
  tmp_path(dir, "routes");
  snprintf(conf, sizeof(conf), "%s/%s.conf", dir, name);
  write_file(conf, text);
  wsh_replaced *rep = NULL;
  size_t nrep = 0;
  char summary[256], err[256];
  ck_assert_int_eq(wsh_registry_reload(fx.reg, dir, &rep, &nrep, summary,
                                       sizeof(summary), err, sizeof(err)),
                   0);
  wsh_replaced_free(rep, nrep);
  wsh_generation *g = wsh_registry_acquire(fx.reg, path);
  ck_assert_ptr_nonnull(g);
  wsh_generation_release(g);
}

/* The echo plugin at /echo (the benchmark's route), with `extra` settings
 * lines. */
static void add_echo_route(const char *extra) {
  char text[PATH_MAX + 256];
  snprintf(text, sizeof(text), "path = /echo\nplugin = %s/old_echo.so\n%s",
           WSH_TEST_PLUGIN_DIR, extra);
  add_route("echo", "/echo", text);
}

/* An upgraded, idle connection to /echo; returns the test's end. */
static int open_idle(void) {
  fix_connect();
  const char *req = FIX_UPGRADE("/echo", "");
  fix_send(req, strlen(req));
  fix_read(1);
  char *end = memmem(fx.in, fx.nin, "\r\n\r\n", 4);
  ck_assert_ptr_nonnull(end);
  ck_assert_int_eq(memcmp(fx.in, "HTTP/1.1 101", 12), 0);
  ck_assert_ptr_eq(end + 4, (char *)fx.in + fx.nin); /* nothing pushed */
  ck_assert_int_eq(fx.w.loop.conns->state, WSH_CONN_OPEN);
  int peer = fx.peer;
  fx.peer = -1;
  return peer;
}

/* Heap bytes per idle connection over IDLE_N of them (after one: the slot
 * chunk and the loop's lists are not per connection). */
static size_t idle_bytes(void) {
  static int peers[IDLE_N + 1];
  peers[IDLE_N] = open_idle();
  fix_run();
  size_t before = heap_in_use();
  for (int i = 0; i < IDLE_N; i++)
    peers[i] = open_idle();
  fix_run();
  size_t after = heap_in_use();
  for (int i = 0; i <= IDLE_N; i++)
    close(peers[i]);
  fix_run(); /* EOF: all freed */
  ck_assert_ptr_null(fx.w.loop.conns);
  return (after - before) / IDLE_N;
}

/* Bytes per idle connection on the echo route with `settings`, below info
 * and at info, against the bounds: ASan's requested bytes, or glibc's
 * chunks (TSan's allocator counts its 16-byte size classes, which come to
 * glibc's figures: its bounds are glibc's). */
static void check_idle_memory(const char *what, const char *settings,
                              size_t san_warn, size_t san_info,
                              size_t glibc_warn, size_t glibc_info) {
  add_echo_route(settings);
  size_t warn = idle_bytes();
  wsh_log_set_level(WSH_LOG_INFO);
  size_t info = idle_bytes();
  wsh_log_set_level(WSH_LOG_ERROR);
  fprintf(stderr,
          "%s: %zu bytes (" HEAP_KIND ") per idle connection below info, "
          "%zu at info\n",
          what, warn, info);
#if defined(__SANITIZE_ADDRESS__)
  size_t bound_warn = san_warn, bound_info = san_info;
  (void)glibc_warn;
  (void)glibc_info;
#else
  size_t bound_warn = glibc_warn, bound_info = glibc_info;
  (void)san_warn;
  (void)san_info;
#endif
  ck_assert_msg(warn <= bound_warn,
                "%s: %zu bytes (" HEAP_KIND ") per idle connection below "
                "info, bound %zu",
                what, warn, bound_warn);
  ck_assert_msg(info <= bound_info,
                "%s: %zu bytes (" HEAP_KIND ") per idle connection at info, "
                "bound %zu",
                what, info, bound_info);
}

START_TEST(idle_memory) {
  check_idle_memory("idle_memory", "", 160, 224, 176, 240);
}
END_TEST

/* The same on a route with an idle timeout and server pings (Bandit's
 * default, nginx's habit): the connection's deadlines are its slot's entry
 * in the worker's heap (16 bytes, in a chunk of 4,096 allocated before
 * these) and 8 bytes in the heap's array, which doubles as it grows: no
 * `more`, no timer event. Bounds 176 and 240 requested under the
 * sanitizers (152 and 216, the heap's 8 to 16, a margin), 192 and 256
 * in glibc chunks. Was 416 requested (`more` and a libevent event). */
START_TEST(idle_memory_with_deadlines) {
  check_idle_memory("idle_memory_with_deadlines",
                    "idle_timeout_ms = 60000\nping_interval_ms = 30000\n", 176,
                    240, 192, 256);
}
END_TEST

/* ---- idle timeout and server pings ----------------------------------------
 *
 * Through the loop and the real clock, the recorder at /dl with the
 * deadlines given. Times are asserted from below (a deadline never fires
 * early); from above only where a loaded machine cannot matter. */

static void add_deadline_route(unsigned idle, unsigned ping, unsigned pong) {
  char text[3 * PATH_MAX];
  snprintf(text, sizeof(text),
           "path = /dl\nplugin = %s/recorder.so\nidle_timeout_ms = %u\n"
           "ping_interval_ms = %u\nping_timeout_ms = %u\n"
           "[options]\nrecord = %s\n",
           WSH_TEST_PLUGIN_DIR, idle, ping, pong, fx.rec);
  add_route("dl", "/dl", text);
}

/* An upgraded connection to /dl (101 and "hello" consumed). */
static websock_conn *open_dl(void) {
  websock_conn *c = fix_connect();
  const char *req = FIX_UPGRADE("/dl", "");
  fix_send(req, strlen(req));
  fix_read(1);
  char *end = memmem(fx.in, fx.nin, "\r\n\r\n", 4);
  ck_assert_ptr_nonnull(end);
  fix_consume((size_t)(end + 4 - (char *)fx.in));
  fix_read(7);
  ck_assert_int_eq(memcmp(fx.in, "\x81\x05hello", 7), 0);
  fix_consume(7);
  ck_assert_int_eq(c->state, WSH_CONN_OPEN);
  return c;
}

/* Runs the loop until the clock reaches t. */
static void run_until(uint64_t t) {
  while (wsh_now_ms() < t) {
    fix_run();
    poll(NULL, 0, 2);
  }
}

/* Reads one whole frame from the server into op/payload (up to 125 bytes);
 * returns the payload's length. */
static size_t read_frame(uint8_t *op, uint8_t *payload) {
  fix_read(2);
  ck_assert_uint_ge(fx.nin, 2);
  size_t len = fx.in[1] & 0x7f;
  ck_assert_uint_lt(len, 126);
  fix_read(2 + len);
  ck_assert_uint_ge(fx.nin, 2 + len);
  *op = fx.in[0] & 0x0f;
  memcpy(payload, fx.in + 2, len);
  fix_consume(2 + len);
  return len;
}

/* Nothing from the server for now. */
static void assert_quiet(void) {
  fix_run();
  uint8_t b[16];
  ck_assert_int_eq(recv(fx.peer, b, sizeof(b), MSG_DONTWAIT), -1);
}

/* The frame read was our close: 1001 with `text` (12 bytes), and the
 * recorder saw `terminate`. */
static void assert_closed_1001(uint8_t op, const uint8_t *p, size_t n,
                               const char *text, const char *terminate) {
  ck_assert_uint_eq(op, WEBSOCK_OP_CLOSE);
  ck_assert_uint_eq(n, 2 + strlen(text));
  ck_assert_int_eq((p[0] << 8) | p[1], 1001);
  ck_assert_int_eq(memcmp(p + 2, text, strlen(text)), 0);
  ck_assert_has(read_file(fx.rec), terminate);
}

/* A read puts the idle timeout off; silence then closes with 1001 "idle
 * timeout", terminate(timeout). */
START_TEST(idle_timeout_after_last_read) {
  add_deadline_route(300, 0, 10000);
  uint64_t t0 = wsh_now_ms();
  open_dl(); /* its deadline: by ta + 300 */
  uint64_t ta = wsh_now_ms();
  run_until(t0 + 250);
  uint8_t f[64], op, p[128];
  uint64_t t1 = wsh_now_ms(); /* the read: at t1 or after */
  fix_send(f, fix_frame(f, WEBSOCK_OP_BINARY, "x", 1));
  ck_assert_uint_eq(read_frame(&op, p), 1); /* the echo */
  ck_assert_uint_eq(op, WEBSOCK_OP_BINARY);
  run_until(ta + 340); /* past the first deadline: the read put it off */
  assert_quiet();
  size_t n = read_frame(&op, p);
  ck_assert_uint_ge(wsh_now_ms(), t1 + 300);
  assert_closed_1001(op, p, n, "idle timeout", "terminate 1 3 1001 \n");
}
END_TEST

/* A ping after the interval (reads do not put it off), the next one the
 * interval after the pong, and 1001 "ping timeout" when a pong is late. */
START_TEST(server_pings_and_pong_deadline) {
  add_deadline_route(0, 200, 150);
  uint64_t t0 = wsh_now_ms();
  open_dl();
  run_until(t0 + 100);
  uint8_t f[64], op, p[128];
  fix_send(f, fix_frame(f, WEBSOCK_OP_BINARY, "x", 1));
  ck_assert_uint_eq(read_frame(&op, p), 1); /* the echo */
  ck_assert_uint_eq(read_frame(&op, p), 0);
  ck_assert_uint_eq(op, WEBSOCK_OP_PING);
  ck_assert_uint_ge(wsh_now_ms(), t0 + 200);
  uint64_t t1 = wsh_now_ms(); /* the pong: read at t1 or after */
  fix_send(f, fix_frame(f, WEBSOCK_OP_PONG, "", 0));
  run_until(t1 + 160); /* past the pong's deadline: it was answered */
  ck_assert_uint_eq(read_frame(&op, p), 0);
  ck_assert_uint_eq(op, WEBSOCK_OP_PING);
  ck_assert_uint_ge(wsh_now_ms(), t1 + 200);
  size_t n = read_frame(&op, p); /* no pong this time */
  ck_assert_uint_ge(wsh_now_ms(), t1 + 200 + 150);
  assert_closed_1001(op, p, n, "ping timeout", "terminate 1 3 1001 no pong\n");
}
END_TEST

/* A connection closed while filed leaves the heap with its slot: the next
 * connection in that slot keeps its own deadline, and nothing touches the
 * freed one (ASan). */
START_TEST(closed_while_filed) {
  add_deadline_route(300, 0, 10000);
  uint64_t t0 = wsh_now_ms();
  websock_conn *a = open_dl();
  uint32_t slot_a = a->slot;
  int peer_a = fx.peer;
  open_dl(); /* b */
  int peer_b = fx.peer;
  uint64_t tb = wsh_now_ms(); /* a's and b's deadlines: by tb + 300 */
  ck_assert_uint_eq(wsh_deadlines_count(&fx.w.loop.deadlines), 2);
  close(peer_a);
  fix_run(); /* EOF: a is freed, filed */
  ck_assert_uint_eq(fx.w.loop.nconns, 1);
  ck_assert_uint_eq(wsh_deadlines_count(&fx.w.loop.deadlines), 1);
  run_until(t0 + 250);
  uint64_t tc = wsh_now_ms(); /* c's deadline: from tc + 300 */
  websock_conn *c = open_dl();
  ck_assert_uint_eq(c->slot, slot_a); /* reused */
  run_until(tb + 340);
  ck_assert_int_eq(c->state, WSH_CONN_OPEN); /* a's deadline is not c's */
  assert_quiet();
  uint8_t op, p[128];
  read_frame(&op, p);
  ck_assert_uint_eq(op, WEBSOCK_OP_CLOSE);
  ck_assert_uint_ge(wsh_now_ms(), tc + 300);
  close(peer_b);
}
END_TEST

/* Many connections due in the same tick: at most WSH_DEADLINE_BATCH per
 * wake-up (the loop serves sockets between), every one closed with 1001
 * "idle timeout". */
START_TEST(many_due_at_once) {
  enum { N = 300 };
  add_deadline_route(1000, 0, 10000);
  static int peers[N];
  const char *req = FIX_UPGRADE("/dl", "");
  for (int i = 0; i < N; i++) { /* all the requests, then one run */
    fix_connect();
    peers[i] = fx.peer;
    ck_assert_int_eq(send(peers[i], req, strlen(req), MSG_NOSIGNAL),
                     (ssize_t)strlen(req));
  }
  fx.peer = -1;
  uint64_t t0 = wsh_now_ms();
  fix_run();
  uint64_t t1 = wsh_now_ms();
  size_t open = 0;
  for (websock_conn *c = fx.w.loop.conns; c; c = c->next)
    open += c->state == WSH_CONN_OPEN;
  ck_assert_uint_eq(open, N);
  ck_assert_uint_lt(t1 - t0, 1000); /* all opened before the first is due */
  ck_assert_uint_eq(wsh_deadlines_count(&fx.w.loop.deadlines), N);
  uint64_t now = wsh_now_ms();
  if (now < t1 + 1050) /* all due, the loop not run meanwhile */
    poll(NULL, 0, (int)(t1 + 1050 - now));
  event_base_loop(fx.w.loop.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
  ck_assert_uint_eq(wsh_deadlines_count(&fx.w.loop.deadlines),
                    N - WSH_DEADLINE_BATCH);
  fix_run();
  ck_assert_uint_eq(wsh_deadlines_count(&fx.w.loop.deadlines), 0);
  static const uint8_t close_frame[] = "\x88\x0e\x03\xe9idle timeout";
  for (int i = 0; i < N; i++) {
    uint8_t b[512];
    ssize_t n = recv(peers[i], b, sizeof(b), 0);
    ck_assert_int_gt(n, 16);
    ck_assert_int_eq(memcmp(b + n - 16, close_frame, 16), 0);
    close(peers[i]);
  }
  fix_run();
  ck_assert_uint_eq(fx.w.loop.nconns, 0);
  const char *rec = read_file(fx.rec);
  size_t closed = 0;
  for (const char *q = rec; (q = strstr(q, " 3 1001 \n")); q++)
    closed++;
  ck_assert_uint_eq(closed, N);
}
END_TEST

static Suite *conn_suite(void) {
  Suite *s = suite_create("conn");
  TCase *tc = tcase_create("socketpair");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, upgrade_then_echo);
  tcase_add_test(tc, frames_split_byte_by_byte);
  tcase_add_test(tc, ping_is_answered);
  tcase_add_test(tc, unmasked_frame_closes_1002);
  tcase_add_test(tc, closing_handshake);
  tcase_add_test(tc, close_after_a_full_read_asks_again);
  tcase_add_test(tc, peer_gone_without_close);
  tcase_add_test(tc, shutdown_closes_1001);
  tcase_add_test(tc, no_log_state_below_info);
  tcase_add_test(tc, decoder_only_inside_a_frame);
  tcase_add_test(tc, log_peer_packed);
  tcase_add_test(tc, idle_memory);
  tcase_add_test(tc, idle_memory_with_deadlines);
  tcase_add_test(tc, idle_timeout_after_last_read);
  tcase_add_test(tc, server_pings_and_pong_deadline);
  tcase_add_test(tc, closed_while_filed);
  tcase_add_test(tc, many_due_at_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(conn_suite());
}
