/*
 * test_metrics.c - unit tests for host/ops/metrics.c: the Prometheus page of a
 * server (per-worker counters, upgrade answers by status, reloads, open
 * connections), rendered from a server whose workers never ran.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "ops/metrics.h"
#include "network/server.h"

#define WSH_TEST_NAME "test_metrics"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

START_TEST(page) {
  wsh_config cfg;
  wsh_config_init(&cfg);
  wsh_server srv;
  memset(&srv, 0, sizeof(srv));
  char err[512];
  ck_assert_msg(wsh_registry_new(&srv.reg, err, sizeof(err)) == 0, "%s", err);
  srv.cfg = &cfg;
  wsh_worker workers[2];
  memset(workers, 0, sizeof(workers));
  srv.workers = workers;
  srv.nworkers = 2;
  atomic_store(&srv.env.open, 3);
  atomic_store(&workers[0].loop.stats.open, 1);
  atomic_store(&workers[1].loop.stats.open, 2);
  atomic_store(&workers[1].loop.stats.msgs_in, 10);
  atomic_store(&workers[0].loop.stats.responses[wsh_status_index(101)], 4);
  atomic_store(&workers[1].loop.stats.responses[wsh_status_index(101)], 1);
  atomic_store(&workers[1].loop.stats.responses[wsh_status_index(418)], 1);

  char *text = NULL;
  ck_assert_int_eq(wsh_metrics_render(&srv, &text), 0);
  ck_assert_has(text, "# TYPE websockd_connections gauge\n");
  ck_assert_has(text, "websockd_worker_connections{worker=\"0\"} 1\n");
  ck_assert_has(text, "websockd_worker_connections{worker=\"1\"} 2\n");
  ck_assert_has(text, "websockd_messages_in_total{worker=\"1\"} 10\n");
  ck_assert_has(text, "websockd_http_responses_total{status=\"101\"} 5\n");
  ck_assert_has(text, "websockd_http_responses_total{status=\"other\"} 1\n");
  ck_assert_has(text, "websockd_reloads_total{result=\"ok\"} 0\n");
  ck_assert_has(text, "websockd_last_reload_success 1\n");
  ck_assert_has(text, "websockd_open_connections 3\n");
  /* every line is a comment or "name{labels} value" */
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    ck_assert_msg(line[0] == '#' || strncmp(line, "websockd_", 9) == 0, "%s",
                  line);
  free(text);
  wsh_registry_free(srv.reg);
  wsh_config_free(&cfg);
}
END_TEST

static Suite *metrics_suite(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("page");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, page);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  wsh_log_set_level(WSH_LOG_ERROR);
  return run_suite(metrics_suite());
}
