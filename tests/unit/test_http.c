/*
 * test_http.c - unit tests for host/network/http.c, the HTTP side of a
 * connection, over a socketpair (connfix.h): /healthz, /metrics through the
 * environment's hook, 405, 404, 426 at a WebSocket route, refusals of a bad
 * upgrade, the plugin's upgrade() refusing, and the 408 of a late head;
 * each answer counted by status.
 */
#include <check.h>

#define WSH_TEST_NAME "test_http"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "connfix.h"

/* Sends a request on a new connection; returns the whole answer. */
static const char *answer(const char *req) {
  fix_connect();
  fix_send(req, strlen(req));
  fix_read(sizeof(fx.in) - 1); /* until the server closes */
  fx.in[fx.nin] = 0;
  return (const char *)fx.in;
}

static unsigned long long count(int status) {
  return atomic_load(&fx.w.loop.stats.responses[wsh_status_index(status)]);
}

START_TEST(healthz_and_metrics) {
  const char *a = answer("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ck_assert_has(a, "HTTP/1.1 200 OK\r\n");
  ck_assert_has(a, "\r\n\r\nok\n");
  close(fx.peer);
  a = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ck_assert_has(a, "Content-Type: text/plain; version=0.0.4\r\n");
  ck_assert_has(a, "websockd_test 1\n");
  ck_assert_uint_eq(count(200), 2);
}
END_TEST

START_TEST(plain_refusals) {
  ck_assert_has(answer("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
                "HTTP/1.1 404");
  close(fx.peer);
  const char *a = answer("POST /healthz HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 0\r\n\r\n");
  ck_assert_has(a, "HTTP/1.1 405");
  ck_assert_has(a, "Allow: GET, HEAD\r\n");
  close(fx.peer);
  ck_assert_has(answer("GET /rec HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 426");
  ck_assert_uint_eq(count(404), 1);
  ck_assert_uint_eq(count(405), 1);
  ck_assert_uint_eq(count(426), 1);
}
END_TEST

START_TEST(upgrade_refusals) {
  const char *a =
      answer("GET /rec HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: "
             "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  ck_assert_has(a, "HTTP/1.1 426");
  ck_assert_has(a, "Sec-WebSocket-Version: 13\r\n");
  close(fx.peer);
  ck_assert_has(answer(FIX_UPGRADE("/elsewhere", "")), "HTTP/1.1 404");
  close(fx.peer);
  a = answer(FIX_UPGRADE("/rec", "X-Test-Refuse: 1\r\n"));
  ck_assert_has(a, "HTTP/1.1 401");
  ck_assert_has(a, "WWW-Authenticate: Bearer realm=\"test\"\r\n");
  ck_assert_has(read_file(fx.rec), "upgrade /rec\n");
  close(fx.peer); /* the refused connection is gone, and its place too */
  fx.peer = -1;
  fix_run();
  ck_assert_uint_eq(fx.w.loop.nconns, 0);
  ck_assert_uint_eq(atomic_load(&fx.env.open), 0);
}
END_TEST

START_TEST(upgrade_with_subprotocol) {
  fix_connect();
  const char *req = FIX_UPGRADE("/rec?proto=chat", "Sec-WebSocket-Protocol: "
                                                   "chat\r\n");
  fix_send(req, strlen(req));
  fix_read(1);
  fx.in[fx.nin] = 0;
  ck_assert_has((char *)fx.in, "HTTP/1.1 101");
  ck_assert_has((char *)fx.in, "Sec-WebSocket-Protocol: chat\r\n");
  ck_assert_has((char *)fx.in, "X-Recorder: yes\r\n");
  ck_assert_uint_eq(count(101), 1);
}
END_TEST

START_TEST(late_head_gets_408) {
  fx.cfg.handshake_timeout_ms = 30;
  fix_connect();
  fix_send("GET /heal", 9);
  poll(NULL, 0, 60);
  fix_read(12);
  fx.in[fx.nin] = 0;
  ck_assert_has((char *)fx.in, "HTTP/1.1 408");
  ck_assert_uint_eq(count(408), 1);
}
END_TEST

static Suite *http_suite(void) {
  Suite *s = suite_create("http");
  TCase *tc = tcase_create("answers");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, healthz_and_metrics);
  tcase_add_test(tc, plain_refusals);
  tcase_add_test(tc, upgrade_refusals);
  tcase_add_test(tc, upgrade_with_subprotocol);
  tcase_add_test(tc, late_head_gets_408);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(http_suite());
}
