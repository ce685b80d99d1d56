/*
 * test_server.c - unit tests for host/network/server.c: a server set up
 * in-process with two workers, listening on an ephemeral loopback port, answers
 * plain HTTP (/healthz, and /metrics through the hook it was given), hands
 * websock_host to plugins as its own struct, and stops its workers when
 * freed.
 */
#include <arpa/inet.h>
#include <check.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "network/server.h"

#define WSH_TEST_NAME "test_server"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

static atomic_int metrics_calls;

static int fake_metrics(void *srv, char **out) {
  (void)srv;
  atomic_fetch_add(&metrics_calls, 1);
  *out = strdup("websockd_fake 1\n");
  return *out ? 0 : WEBSOCK_ENOMEM;
}

/* One request, the whole answer (the server closes after plain HTTP). */
static const char *ask(int port, const char *req) {
  static char buf[8192];
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
  ck_assert_int_eq(send(s, req, strlen(req), 0), (ssize_t)strlen(req));
  size_t got = 0;
  ssize_t n;
  while (got < sizeof(buf) - 1 &&
         (n = recv(s, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
    got += (size_t)n;
  buf[got] = '\0';
  close(s);
  return buf;
}

START_TEST(serves_plain_http) {
  wsh_config cfg;
  wsh_config_init(&cfg);
  char *argv[] = {"websockd", "--listen",  "127.0.0.1:0", "--workers",
                  "2",        "--plugins", tmp_dir};
  char err[512];
  ck_assert_int_eq(wsh_config_from_args(&cfg, 7, argv, err, sizeof(err)), 0);
  ck_assert_int_eq(wsh_config_finish(&cfg, err, sizeof(err)), 0);
  wsh_registry *reg = NULL;
  ck_assert_int_eq(wsh_registry_new(&reg, err, sizeof(err)), 0);
  wsh_server *srv = NULL;
  wsh_server_hooks hooks = {.render_metrics = fake_metrics};
  ck_assert_msg(wsh_server_new(&srv, &cfg, reg, &hooks, err, sizeof(err)) == 0,
                "%s", err);
  ck_assert_uint_eq(srv->nworkers, 2);
  ck_assert_ptr_eq(srv->host.workers, srv->workers);
  ck_assert_uint_eq(srv->host.nworkers, 2);
  ck_assert_ptr_ne((void *)&srv->host, (void *)srv);
  ck_assert_ptr_eq(srv->workers[1].loop.host, &srv->host);
  ck_assert_ptr_eq(srv->workers[0].loop.env, &srv->env);
  ck_assert_ptr_eq(srv->env.cfg, &cfg);
  ck_assert_msg(wsh_server_listen(srv, err, sizeof(err)) == 0, "%s", err);
  ck_assert_uint_eq(srv->nlisteners, 1);
  struct sockaddr_in sin;
  socklen_t len = sizeof(sin);
  ck_assert_int_eq(getsockname(evconnlistener_get_fd(srv->listeners[0]),
                               (struct sockaddr *)&sin, &len),
                   0);
  int port = ntohs(sin.sin_port);

  ck_assert_has(ask(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
                "HTTP/1.1 200");
  const char *m = ask(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ck_assert_has(m, "HTTP/1.1 200");
  ck_assert_has(m, "websockd_fake 1");
  ck_assert_int_eq(atomic_load(&metrics_calls), 1);
  ck_assert_has(ask(port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
                "HTTP/1.1 404");
  /* both workers served (the listener hands sockets out in turn) */
  unsigned long long a0 = atomic_load(&srv->workers[0].loop.stats.accepted);
  unsigned long long a1 = atomic_load(&srv->workers[1].loop.stats.accepted);
  ck_assert_uint_eq(a0 + a1, 3);
  ck_assert_uint_ge(a0, 1);
  ck_assert_uint_ge(a1, 1);

  wsh_server_free(srv); /* stops and joins the workers */
  wsh_registry_free(reg);
  wsh_config_free(&cfg);
}
END_TEST

static Suite *server_suite(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("server");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, serves_plain_http);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  wsh_log_set_level(WSH_LOG_ERROR);
  return run_suite(server_suite());
}
