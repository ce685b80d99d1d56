/*
 * test_log.c - unit tests for host/base/log.c: one line per event on stderr
 * with a UTC timestamp and the level, levels filtered, level names parsed, and
 * a message too long for one line cut (still one line); websock_log(NULL, ...)
 * named by the plugin call the host is in when its caller is not a plugin's
 * code (a plugin's tail call leaves the host's return address).
 */
#include <check.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/crash.h"
#include "base/log.h"
#include "websock.h"

#define WSH_TEST_NAME "test_log"
#include "testutil.h"

/* Runs fn with stderr going to a file; returns what was written. */
static const char *capture(void (*fn)(void)) {
  char path[PATH_MAX];
  tmp_path(path, "stderr.txt");
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  dup2(fileno(f), STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  fclose(f);
  return read_file(path);
}

static void log_three(void) {
  wsh_log_set_level(WSH_LOG_INFO);
  wsh_error("first %d", 1);
  wsh_info("second %s", "two");
  wsh_debug("hidden");
}

START_TEST(lines_and_levels) {
  const char *out = capture(log_three);
  regex_t re;
  ck_assert_int_eq(
      regcomp(
          &re,
          "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}"
          "Z error: first 1\n"
          "[0-9T:.-]+Z info: second two\n$",
          REG_EXTENDED),
      0);
  ck_assert_msg(regexec(&re, out, 0, NULL, 0) == 0, "got: %s", out);
  regfree(&re);
}
END_TEST

static void log_long(void) {
  char big[5000];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  wsh_warn("%s", big);
}

START_TEST(long_message_is_one_line) {
  const char *out = capture(log_long);
  ck_assert_uint_gt(strlen(out), 1000);
  ck_assert_uint_le(strlen(out), 2048);
  ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

static void log_from_host_calls(void) {
  wsh_log_set_level(WSH_LOG_INFO);
  wsh_crash_enter("/r", "p", "route /r plugin p generation 7", "unload", 0);
  websock_log(NULL, WEBSOCK_LOG_INFO, "bye %d", 1);
  wsh_crash_enter("/r", "p", NULL, "unload", 0); /* no label known */
  websock_log(NULL, WEBSOCK_LOG_WARN, "no label");
  wsh_crash_leave();
  websock_log(NULL, WEBSOCK_LOG_INFO, "outside");
}

START_TEST(plugin_log_named_by_the_call) {
  const char *out = capture(log_from_host_calls);
  regex_t re;
  ck_assert_int_eq(
      regcomp(&re,
              "^[0-9T:.-]+Z info: route /r plugin p generation 7: bye 1\n"
              "[0-9T:.-]+Z warn: route /r plugin p: no label\n"
              "[0-9T:.-]+Z info: plugin: outside\n$",
              REG_EXTENDED),
      0);
  ck_assert_msg(regexec(&re, out, 0, NULL, 0) == 0, "got: %s", out);
  regfree(&re);
}
END_TEST

START_TEST(parse_level) {
  ck_assert_int_eq(wsh_log_parse_level("error"), WSH_LOG_ERROR);
  ck_assert_int_eq(wsh_log_parse_level("WARN"), WSH_LOG_WARN);
  ck_assert_int_eq(wsh_log_parse_level("warning"), WSH_LOG_WARN);
  ck_assert_int_eq(wsh_log_parse_level("Info"), WSH_LOG_INFO);
  ck_assert_int_eq(wsh_log_parse_level("debug"), WSH_LOG_DEBUG);
  ck_assert_int_eq(wsh_log_parse_level("loud"), -1);
  wsh_log_set_level(WSH_LOG_DEBUG);
  ck_assert_int_eq(wsh_log_level(), WSH_LOG_DEBUG);
}
END_TEST

static Suite *log_suite(void) {
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("log");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, lines_and_levels);
  tcase_add_test(tc, long_message_is_one_line);
  tcase_add_test(tc, plugin_log_named_by_the_call);
  tcase_add_test(tc, parse_level);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(log_suite());
}
