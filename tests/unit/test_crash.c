/*
 * test_crash.c - unit tests for host/base/crash.c: the per-thread record of the
 * plugin callback running, and (in a build without a sanitizer, which owns
 * the fatal signals otherwise) the one line a fatal signal leaves, naming
 * that callback, before the default action.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/crash.h"

#define WSH_TEST_NAME "test_crash"
#include "testutil.h"

static void *other_thread(void *arg) {
  (void)arg;
  return (void *)wsh_crash_current.route; /* its own, empty record */
}

START_TEST(context_is_per_thread) {
  wsh_crash_enter("/chat", "chat", NULL, "handle_in", 42);
  ck_assert_str_eq(wsh_crash_current.route, "/chat");
  ck_assert_uint_eq(wsh_crash_current.conn, 42);
  pthread_t t;
  void *seen = (void *)1;
  ck_assert_int_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
  pthread_join(t, &seen);
  ck_assert_ptr_null(seen);
  wsh_crash_leave();
  ck_assert_ptr_null(wsh_crash_current.route);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

START_TEST(fatal_signal_names_the_callback) {
  if (SANITIZED)
    return; /* the sanitizer's own report is the crash report there */
  char path[PATH_MAX];
  tmp_path(path, "stderr.txt");
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    FILE *f = fopen(path, "w");
    dup2(fileno(f), STDERR_FILENO);
    wsh_crash_install();
    wsh_crash_enter("/faulty", "faulty", NULL, "handle_in", 7);
    raise(SIGSEGV);
    _exit(0);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGSEGV);
  const char *out = read_file(path);
  ck_assert_has(out, "fatal signal 11 in plugin faulty, handle_in() of route "
                     "/faulty, conn 7; exiting\n");
}
END_TEST

static Suite *crash_suite(void) {
  Suite *s = suite_create("crash");
  TCase *tc = tcase_create("crash");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, context_is_per_thread);
  tcase_add_test(tc, fatal_signal_names_the_callback);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(crash_suite());
}
