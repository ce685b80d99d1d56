/*
 * connfix.h - a connection on a socketpair, for the unit tests of the
 * network modules (test_conn.c, test_http.c, test_outq.c, test_msgs.c,
 * test_api.c): a worker set up without its thread (its loop run by the
 * test, on the test's thread), a registry serving the recorder test plugin
 * at /rec, and one end of a socketpair adopted as a connection while the
 * test holds the other. Scripted bytes go in, what the server writes comes
 * out. Include testutil.h first; link the test with HOST_API (the plugin
 * calls the real websock_* functions).
 */
#ifndef WSH_CONNFIX_H
#define WSH_CONNFIX_H

#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "base/log.h"
#include "network/conn.h"
#include "network/worker.h"
#include "protocol/frame.h"

typedef struct connfix {
  wsh_config cfg;
  wsh_registry *reg;
  wsh_conn_env env;
  websock_host host;
  wsh_worker w;
  int peer; /* the test's end of the socketpair */
  char rec[PATH_MAX];
  uint8_t in[256 * 1024]; /* what the server wrote, not yet consumed */
  size_t nin;
} connfix;

static connfix fx;

static int fix_metrics(void *arg, char **out) {
  (void)arg;
  *out = strdup("websockd_test 1\n");
  return 0;
}

/* Runs the loop until it has nothing ready (bounded). */
__attribute__((unused)) static void fix_run(void) {
  for (int i = 0; i < 50; i++)
    if (event_base_loop(fx.w.loop.base, EVLOOP_NONBLOCK) == 1)
      break;
}

/* A new connection on a socketpair (after fix_setup). */
__attribute__((unused)) static websock_conn *fix_connect(void) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  fx.peer = sv[1];
  fx.nin = 0;
  struct sockaddr_storage ss = {.ss_family = AF_UNIX};
  ck_assert_int_eq(wsh_conn_new(&fx.w.loop, sv[0], (struct sockaddr *)&ss,
                                sizeof(sa_family_t), WSH_LISTEN_PLAIN),
                   0);
  return fx.w.loop.conns;
}

__attribute__((unused)) static void fix_setup(void) {
  tmp_setup();
  wsh_log_set_level(WSH_LOG_ERROR);
  char dir[PATH_MAX], conf[PATH_MAX + 16], text[3 * PATH_MAX];
  tmp_path(dir, "routes");
  mkdir(dir, 0700);
  tmp_path(fx.rec, "rec.log");
  snprintf(conf, sizeof(conf), "%s/rec.conf", dir);
  snprintf(text, sizeof(text),
           "path = /rec\nplugin = %s/recorder.so\nsubprotocols = chat\n"
           "[options]\nrecord = %s\n",
           WSH_TEST_PLUGIN_DIR, fx.rec);
  write_file(conf, text);
  wsh_config_init(&fx.cfg);
  char err[512];
  ck_assert_int_eq(wsh_registry_new(&fx.reg, err, sizeof(err)), 0);
  int failures = -1;
  ck_assert_int_eq(wsh_registry_load_dir(fx.reg, dir, &failures), 0);
  ck_assert_int_eq(failures, 0);
  fx.env = (wsh_conn_env){
      .cfg = &fx.cfg, .reg = fx.reg, .render_metrics = fix_metrics};
  ck_assert_int_eq(wsh_worker_init(&fx.w, 0, &fx.env, &fx.host, NULL, 100), 0);
  fx.host = (websock_host){.workers = &fx.w, .nworkers = 1};
  wsh_topic_counts_init(&fx.host.counts);
  wsh_registry_set_host(fx.reg, &fx.host);
  fx.peer = -1;
}

__attribute__((unused)) static void fix_teardown(void) {
  if (fx.peer >= 0)
    close(fx.peer);
  while (fx.w.loop.conns)
    wsh_conn_abort(fx.w.loop.conns);
  wsh_worker_free(&fx.w);
  wsh_topic_counts_free(&fx.host.counts);
  wsh_registry_free(fx.reg);
  wsh_config_free(&fx.cfg);
  tmp_teardown();
}

__attribute__((unused)) static void fix_send(const void *data, size_t len) {
  ck_assert_int_eq(send(fx.peer, data, len, MSG_NOSIGNAL), (ssize_t)len);
  fix_run();
}

/* Reads what the server wrote into fx.in, running the loop, until `want`
 * bytes are there, EOF, or about a second passes. Returns fx.nin. */
__attribute__((unused)) static size_t fix_read(size_t want) {
  for (int i = 0; i < 100 && fx.nin < want; i++) {
    fix_run();
    ssize_t n = recv(fx.peer, fx.in + fx.nin, sizeof(fx.in) - fx.nin, 0);
    if (n == 0)
      break;
    if (n > 0)
      fx.nin += (size_t)n;
    else
      poll(NULL, 0, 10);
  }
  return fx.nin;
}

/* True once the server closed its end (EOF on ours). */
__attribute__((unused)) static bool fix_eof(void) {
  for (int i = 0; i < 100; i++) {
    fix_run();
    uint8_t b[4096];
    ssize_t n = recv(fx.peer, b, sizeof(b), 0);
    if (n == 0)
      return true;
    if (n < 0)
      poll(NULL, 0, 10);
  }
  return false;
}

/* Drops the first n bytes of fx.in. */
__attribute__((unused)) static void fix_consume(size_t n) {
  memmove(fx.in, fx.in + n, fx.nin - n);
  fx.nin -= n;
}

#define FIX_UPGRADE(path, extra)                                               \
  "GET " path " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"                 \
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"     \
  "Sec-WebSocket-Version: 13\r\n" extra "\r\n"

/* Upgrades the current connection to /rec; consumes the 101 and "hello"
 * (the recorder's init pushes it). */
__attribute__((unused)) static void fix_upgrade(void) {
  const char *req = FIX_UPGRADE("/rec", "");
  fix_send(req, strlen(req));
  fix_read(1);
  char *end = memmem(fx.in, fx.nin, "\r\n\r\n", 4);
  ck_assert_ptr_nonnull(end);
  ck_assert_int_eq(memcmp(fx.in, "HTTP/1.1 101", 12), 0);
  fix_consume((size_t)(end + 4 - (char *)fx.in));
  fix_read(7); /* 81 05 hello */
  ck_assert_int_ge(fx.nin, 7);
  ck_assert_int_eq(memcmp(fx.in, "\x81\x05hello", 7), 0);
  fix_consume(7);
}

/* A masked client frame into out; returns its length. */
__attribute__((unused)) static size_t fix_frame(uint8_t *out, uint8_t opcode,
                                                const void *data, size_t len) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t n = 0;
  out[n++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    out[n++] = (uint8_t)(0x80 | len);
  } else {
    out[n++] = 0x80 | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  }
  memcpy(out + n, key, 4);
  n += 4;
  memcpy(out + n, data, len);
  wsh_mask(out + n, len, key, 0);
  return n + len;
}

#endif
