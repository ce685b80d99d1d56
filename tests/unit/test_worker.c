/*
 * test_worker.c - unit tests for host/network/worker.c: shared payloads
 * counted, messages to a dead reference refused, a worker run on
 * its own thread that adopts a socket, answers it when told to stop, and
 * tells its owner through its hooks (never calling the server itself).
 */
#include <check.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/thread.h>

#include "base/config.h"
#include "network/conn.h"
#include "base/log.h"
#include "network/worker.h"

#define WSH_TEST_NAME "test_worker"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

START_TEST(shared_refs) {
  wsh_shared *sh = wsh_shared_new("room", 5);
  ck_assert_ptr_nonnull(sh);
  memcpy(sh->data, "hello", 5);
  ck_assert_str_eq(sh->topic, "room");
  wsh_shared_ref(sh);
  ck_assert_int_eq(atomic_load(&sh->refs), 2);
  wsh_shared_unref(sh);
  ck_assert_int_eq(atomic_load(&sh->refs), 1);
  wsh_shared_unref(sh); /* freed: ASan would see a leak otherwise */
}
END_TEST

typedef struct hooks_seen {
  atomic_int stopping, exited;
} hooks_seen;

static void on_stopping(void *arg, wsh_worker *w) {
  (void)w;
  atomic_fetch_add(&((hooks_seen *)arg)->stopping, 1);
}

static void on_exited(void *arg, wsh_worker *w) {
  (void)w;
  atomic_fetch_add(&((hooks_seen *)arg)->exited, 1);
}

START_TEST(dead_ref_refused) {
  wsh_config cfg;
  wsh_config_init(&cfg);
  wsh_conn_env env = {.cfg = &cfg};
  websock_host host;
  wsh_worker w;
  ck_assert_int_eq(wsh_worker_init(&w, 0, &env, &host, NULL, 100), 0);
  ck_assert_int_eq(wsh_worker_post_send(&w, 5, 1, "x", 1), WEBSOCK_ENOENT);
  wsh_worker_free(&w); /* never started: nothing to join */
  wsh_config_free(&cfg);
}
END_TEST

START_TEST(adopts_and_stops) {
  wsh_config cfg;
  wsh_config_init(&cfg);
  wsh_conn_env env = {.cfg = &cfg};
  websock_host host;
  hooks_seen seen = {0};
  wsh_worker_hooks hooks = {on_stopping, on_exited, &seen};
  wsh_worker w;
  ck_assert_int_eq(wsh_worker_init(&w, 0, &env, &host, &hooks, 300), 0);
  host.workers = &w;
  host.nworkers = 1;
  ck_assert_int_eq(wsh_worker_start(&w), 0);

  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  struct sockaddr_storage ss = {.ss_family = AF_UNIX};
  ck_assert_int_eq(wsh_worker_post_fd(&w, sv[0], (struct sockaddr *)&ss,
                                      sizeof(sa_family_t), WSH_LISTEN_PLAIN),
                   0);
  usleep(50 * 1000); /* adopted, waiting for its request */
  wsh_worker_post_stop(&w);
  wsh_worker_free(&w); /* joins: the thread has ended */
  ck_assert_int_ge(atomic_load(&seen.stopping), 1);
  ck_assert_int_eq(atomic_load(&seen.exited), 1);

  /* a connection still in its handshake was told 503 and closed */
  char buf[512] = "";
  int fl = 0;
  ssize_t n = recv(sv[1], buf, sizeof(buf) - 1, fl);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  ck_assert_has(buf, "HTTP/1.1 503");
  close(sv[1]);
  wsh_config_free(&cfg);
}
END_TEST

static Suite *worker_suite(void) {
  Suite *s = suite_create("worker");
  TCase *tc = tcase_create("worker");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, shared_refs);
  tcase_add_test(tc, dead_ref_refused);
  tcase_add_test(tc, adopts_and_stops);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  wsh_log_set_level(WSH_LOG_ERROR);
  evthread_use_pthreads(); /* as the server does: workers are woken from
                              other threads */
  return run_suite(worker_suite());
}
